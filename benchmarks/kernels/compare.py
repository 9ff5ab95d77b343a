#!/usr/bin/env python3
"""Joins the JSON lines of the kernel benchmarks (vts) and their PyTorch peers into one Markdown
table: for each (kernel, shape, dtype), vts's median time next to the fastest peer's, the ratio
peer ÷ vts (above 1: vts faster; the target is ≥ 1.0), vts's rate (TFLOP/s or GB/s) and its
relative error against the CPU reference. The D2D copy lines give the memory roofline: a kernel
rated in GB/s is also shown as a fraction of the copy that moves the same number of bytes (the
issue's ≥ 80 % target), when bench_copy timed that size. Lines of
the training-step benchmarks (vts_bench_train, pytorch_train_step.py: they carry step_ms_median)
go to a second table, images/s side by side; their op profiles (vts_bench_train --profile-steps:
lines with "profile") to a third, the ops that take most of each step. Last, the alternatives that
wait for a device's verdict, each against the default it would replace, and the combination of the
kernel candidates that won (chosen here, timed by scripts/gpu-check in the same run) against the
default step.
Usage: compare.py FILE.jsonl [FILE.jsonl ...]
       compare.py --choose [--precision bf16|fp32] FILE.jsonl ...
           prints vts_bench_train's flags for that combination in the B/16 step of that precision
           (bf16 by default; one line, empty when no candidate won); the reasons go to stderr"""
import json
import math
import statistics
import sys


def main():
    args = sys.argv[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    choose_only = bool(args) and args[0] == "--choose"
    precision = "bf16"
    if choose_only:
        args = args[1:]
        if args[:1] == ["--precision"]:
            # A bad value used to be taken for a file name (FileNotFoundError: '--precision').
            if len(args) < 2 or args[1] not in ("bf16", "fp32"):
                return usage_error(f"--precision expects bf16 or fp32, got '{args[1] if len(args) > 1 else ''}'")
            precision, args = args[1], args[2:]
    unknown = [a for a in args if a.startswith("-")]
    if unknown:
        return usage_error(f"unknown option '{unknown[0]}' (options: --choose [--precision bf16|fp32], first)")
    if not args:
        return usage_error("expected one or more FILE.jsonl, got none")
    rows = []
    for path in args:
        try:
            f = open(path)
        except OSError as e:
            return usage_error(f"cannot read {path}: {e.strerror}")
        with f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        # Kept going (a run killed mid-line leaves a broken last line), but said:
                        # a measurement dropped without a word looked like one never taken.
                        print(f"compare.py: {path}:{number}: not JSON, skipped ({e})", file=sys.stderr)
    steps = [r for r in rows if "step_ms_median" in r]
    profiles = [r for r in rows if "profile" in r]
    rows = [r for r in rows if "kernel" in r]
    if choose_only:
        choices = choose(rows, steps, precision)
        for family, flags, reason in choices:
            print(f"{family}: {reason}", file=sys.stderr)
        print(" ".join(chosen_flags(choices)))
        return 0
    if not rows and not steps and not profiles:
        print("no measurements")
        return 1
    print_kernels(rows)
    print_steps(steps)
    print_profiles(profiles)
    print_decisions(rows, steps)
    return 0


def usage_error(message):
    """Exit status 2 with the message and the usage (the docstring's last lines) on stderr."""
    print(f"compare.py: {message}\n" + __doc__[__doc__.index("Usage:"):], file=sys.stderr)
    return 2


# Alternatives waiting for a device to decide whether they become the default (docs/cuda.md,
# "Running the GPU check"): (what it would change, kernels or "step", the candidate, the default).
# Kernel candidates are compared with the default at every shape and dtype timed; step candidates
# with the step row that differs only in the one setting.
KERNEL_DECISIONS = [
    ("LayerNormForwardLaunch{.rows_per_warp = 2} as the forward's default", ["layer_norm_fwd"], "vts_rows2", "vts"),
    ("LayerNormBackwardLaunch{.prefetch_rows = true} as the backward's default", ["layer_norm_bwd"],
     "vts_w8x2_g16_prefetch", "vts"),
    ("LayerNormBackwardLaunch{.fold_by_class = true} as the backward's default", ["layer_norm_bwd"],
     "vts_w8x2_g16_fold2", "vts"),
    ("both: prefetch_rows and fold_by_class", ["layer_norm_bwd"], "vts_w8x2_g16_prefetch_fold2", "vts"),
    ("LayerNormBackwardLaunch{.blocks_per_sm = 3, .shared_sums = true} as the backward's default", ["layer_norm_bwd"],
     "vts_w8x3_g16_shared", "vts"),
    ("both: 3 blocks an SM with shared_sums, and fold_by_class", ["layer_norm_bwd"], "vts_w8x3_g16_fold2_shared", "vts"),
    ("the kept dropout mask (forward + backward)", ["gelu_dropout_fwd", "gelu_dropout_bwd"], "vts_keep", "vts"),
    ("the split attention backward at every N", ["attention_bwd"], "vts_split1", "vts"),
    ("set_attention_bf16_forward_narrow_last_tile(true) as the forward's default", ["attention_fwd"],
     "vts_narrow_last1", "vts"),
    ("set_attention_bf16_forward_mask_last_tile_only(true) as the forward's default (d = 64)", ["attention_fwd"],
     "vts_mask_last1", "vts"),
    ("set_attention_bf16_forward_unrolled_loads(true) as the forward's default (d = 64)", ["attention_fwd"],
     "vts_unrolled_loads1", "vts"),
    ("both: unrolled loads and the mask in the last tile only", ["attention_fwd"], "vts_unrolled_loads1_mask_last1",
     "vts"),
    ("all three: unrolled loads, mask in the last tile only, narrow last tile", ["attention_fwd"],
     "vts_unrolled_loads1_mask_last1_narrow_last1", "vts"),
    ("set_attention_bf16_forward_fold_scale(true) as the forward's default (d = 64)", ["attention_fwd"],
     "vts_fold_scale1", "vts"),
    ("all four: the three above and the folded scale", ["attention_fwd"],
     "vts_unrolled_loads1_mask_last1_narrow_last1_fold_scale1", "vts"),
    ("set_attention_bf16_forward_wgmma(true) as the forward's default (d = 64, N ≤ 256, H100/H200)",
     ["attention_fwd"], "vts_wgmma1", "vts"),
    ("set_attention_bf16_forward_wgmma_blocks(3) for the Hopper forward", ["attention_fwd"], "vts_wgmma1_blocks3",
     "vts_wgmma1"),
    ("set_attention_bf16_backward_wgmma(true) as the backward's default (d = 64, N ≤ 256, H100/H200)",
     ["attention_bwd"], "vts_wgmma1", "vts"),
    ("set_attention_f32_skip_padding(true) as the fp32 kernels' default (forward + backward)",
     ["attention_fwd", "attention_bwd"], "vts_skip_padding1", "vts"),
]
STEP_DECISIONS = [
    ("the composite fp32 attention (GEMMs on TF32, softmax) in the fp32 B/16 step", "attention", "composite",
     "fused"),
    ("the fused fp32 attention without the padding's work in the fp32 B/16 step", "attention",
     "fused, skip padding", "fused"),
    ("the split attention backward in the B/16 step", "attention", "fused, split backward", "fused"),
    ("the Hopper attention kernels in the B/16 step", "attention", "fused, wgmma", "fused"),
    ("the kept dropout mask in the B/16 step", "dropout_mask", "kept", "drawn"),
    ("the mma.sync forward's four tile-code switches in the B/16 step", "attention_fwd",
     "unrolled_loads,mask_last,narrow_last,fold_scale", "default"),
    ("the LayerNorm launches rows2, shared and fold in the B/16 step", "layer_norm", "rows2,shared,fold", "default"),
]


# The combination scripts/gpu-check times after the single candidates (compare.py --choose): for each
# part of the B/16 bf16 step, the kernel benchmark's fastest row at that step's shape among the ones
# vts_bench_train can switch on, if it beats the default's row by CHOICE_MARGIN and its results are
# right, and if a step timed earlier in the same run ran that setting (alone or with others) to the
# end — a setting whose step failed, was skipped, or was never timed is not chosen. The step with
# the chosen flags then says what they are worth together.
CHOICE_MARGIN = 0.02  # the kernel benchmark's medians move by less than this between runs
# The attention rows in the layout the step uses (the packed qkv: q, k, v rows 3·H·d apart) where
# the benchmark printed them, else the contiguous [B, H, N, d] ones.
B16_SHAPES = {"attention": ["B32xH12xN197xd64_packed", "B32xH12xN197xd64"], "layer_norm": ["6304x768"],
              "gelu": ["6304x3072"]}
FWD_SWITCHES = ("narrow_last", "mask_last", "unrolled_loads", "fold_scale")


def attention_fwd_value(impl):
    """vts_bench_train's --attention-fwd list for a kernel-benchmark row of the bf16 forward, or None."""
    fixed = {"vts": "", "vts_rows64": "", "vts_rows128": "rows128", "vts_rows64_warp32": "warp32",
             "vts_rows128_warp32": "rows128,warp32", "vts_wgmma1": "wgmma", "vts_wgmma1_blocks3": "wgmma,blocks3"}
    if impl in fixed:
        return fixed[impl]
    # vts_<a>1_<b>1 -> a, b
    names = impl[len("vts_"):-1].split("1_") if impl.startswith("vts_") and impl.endswith("1") else []
    return ",".join(names) if names and all(n in FWD_SWITCHES for n in names) else None


def step_settings(r):
    """What a vts B/16 bf16 step line ran, in the chooser's terms."""
    attention = r.get("attention", "fused")
    fwd = set(filter(None, r.get("attention_fwd", "").split(",")))
    if attention == "fused, wgmma":  # --hopper-attention: both Hopper kernels
        fwd.add("wgmma")
    bwd = {"fused, split backward": "split", "fused, one-barrier backward": "one_barrier",
           "fused, wgmma backward": "wgmma", "fused, wgmma": "wgmma"}.get(attention, "")
    return {"fwd": fwd, "bwd": bwd, "ln": set(filter(None, r.get("layer_norm", "").split(","))),
            "keep": r.get("dropout_mask") == "kept"}


# family: (kernels whose medians are added, shape key, row -> value, value -> flags, whether a step's
# settings (step_settings) ran the value).
CHOICE_FAMILIES = [
    ("attention forward", ["attention_fwd"], "attention", attention_fwd_value, lambda v: ["--attention-fwd", v],
     lambda v, st: set(v.split(",")) <= st["fwd"]),
    ("attention backward", ["attention_bwd"], "attention",
     {"vts": "", "vts_2barrier": "", "vts_1barrier": "one_barrier", "vts_split1": "split", "vts_wgmma1": "wgmma"}
     .get, lambda v: ["--attention-bwd", v], lambda v, st: st["bwd"] == v),
    ("LayerNorm forward", ["layer_norm_fwd"], "layer_norm", {"vts": "", "vts_rows2": "rows2"}.get,
     lambda v: ["--layer-norm", v], lambda v, st: set(v.split(",")) <= st["ln"]),
    ("LayerNorm backward", ["layer_norm_bwd"], "layer_norm",
     {"vts": "", "vts_w8x2_g16_prefetch": "prefetch", "vts_w8x2_g16_fold2": "fold",
      "vts_w8x2_g16_prefetch_fold2": "prefetch,fold", "vts_w8x3_g16_shared": "shared",
      "vts_w8x3_g16_fold2_shared": "shared,fold"}.get,
     lambda v: ["--layer-norm", v], lambda v, st: set(v.split(",")) <= st["ln"]),
    ("GELU + dropout mask", ["gelu_dropout_fwd", "gelu_dropout_bwd"], "gelu", {"vts": "", "vts_keep": "kept"}.get,
     lambda v: ["--keep-dropout-mask"], lambda v, st: st["keep"]),
]


def choose_fp32_attention(steps):
    """The fp32 step's attention (fused kernels, the same without the padding's work, or the composite
    ops): decided on the step lines themselves, since the composite path has no kernel row."""
    family = "attention (fp32)"
    values = {"fused": "", "fused, skip padding": "skip_padding", "composite": "composite"}
    times = {}
    for r in steps:
        if (r.get("impl") == "vts" and r.get("config") == "b16" and r.get("precision") == "fp32"
                and r.get("gemm") == "tf32" and not r.get("cuda_graphs") and "label" not in r
                and not any(k in r for k in ("layer_norm", "dropout_mask"))):
            value = values.get(r.get("attention", "fused"))
            if value is not None:
                times.setdefault(value, []).append(r["step_ms_median"])
    median = {v: statistics.median(ms) for v, ms in times.items()}
    if "" not in median:
        return (family, [], "the default fp32 step was not timed: nothing chosen")
    best = min((v for v in median if v), key=lambda v: median[v], default=None)
    if best is None:
        return (family, [], f"default kept ({median['']:.2f} ms): no candidate step")
    if median[best] <= (1 - CHOICE_MARGIN) * median[""]:
        return (family, ["--attention-f32", best], f"{best} {median[best]:.2f} ms against the default step's "
                f"{median['']:.2f} ({median[''] / median[best]:.2f}×)")
    return (family, [], f"default kept ({median['']:.2f} ms): the fastest candidate, {best}, {median[best]:.2f} ms, "
            f"is {median[''] / median[best]:.2f}× (≥ {1 / (1 - CHOICE_MARGIN):.2f}× needed)")


def choose(rows, steps, precision="bf16"):
    """[(family, flags, reason)] for every family of the B/16 step in `precision`: flags empty where
    the default stays. fp32 has no attention kernel families (its candidates are whole paths, chosen
    on the step lines) and takes the fp32 kernel rows of the others."""
    out = [choose_fp32_attention(steps)] if precision == "fp32" else []
    ran = [step_settings(r) for r in steps if r.get("impl") == "vts" and r.get("config") == "b16"
           and r.get("precision") == precision]
    for family, kernels, shape_key, value_of, flags_of, covered in CHOICE_FAMILIES:
        if precision == "fp32" and family.startswith("attention"):
            continue
        timed = {r["shape"] for r in rows if r["kernel"] in kernels and r["dtype"] == precision}
        shape = next((x for x in B16_SHAPES[shape_key] if x in timed), B16_SHAPES[shape_key][-1])
        times = {}  # impl -> summed median over the family's kernels, only where every kernel was timed
        bad = {}
        for impl in {r["impl"] for r in rows if r["kernel"] in kernels}:
            if value_of(impl) is None:
                continue
            found = [r for k in kernels for r in rows if r["kernel"] == k and r["impl"] == impl
                     and r["shape"] == shape and r["dtype"] == precision]
            if len({r["kernel"] for r in found}) != len(kernels):
                continue
            per_kernel = {r["kernel"]: r for r in found}  # the last line of each kernel, if timed twice
            times[impl] = sum(r["median_ms"] for r in per_kernel.values())
            problems = [p for p in (error_problem(r) for r in per_kernel.values()) if p]
            if problems:
                bad[impl] = problems[0]
        if "vts" not in times:
            out.append((family, [], f"the default was not timed at {shape}: nothing chosen"))
            continue
        default_ms = times["vts"]
        notes = []
        candidates = []
        for impl, ms in sorted(times.items(), key=lambda kv: kv[1]):
            value = value_of(impl)
            if not value:
                continue
            if impl in bad:
                notes.append(f"{impl} left out ({bad[impl]})")
                continue
            if not any(covered(value, st) for st in ran):
                notes.append(f"{impl} left out (no B/16 {precision} step line ran {value})")
                continue
            candidates.append((impl, ms, value))
        extra = f"; {'; '.join(notes)}" if notes else ""
        if candidates and candidates[0][1] <= (1 - CHOICE_MARGIN) * default_ms:
            impl, ms, value = candidates[0]
            out.append((family, flags_of(value), f"{impl} {ms:.4f} ms against the default's {default_ms:.4f} "
                        f"at {shape} ({default_ms / ms:.2f}×){extra}"))
        elif candidates:
            impl, ms, _ = candidates[0]
            out.append((family, [], f"default kept ({default_ms:.4f} ms): the fastest candidate, {impl}, "
                        f"{ms:.4f} ms, is {default_ms / ms:.2f}× (≥ {1 / (1 - CHOICE_MARGIN):.2f}× needed){extra}"))
        else:
            out.append((family, [], f"default kept ({default_ms:.4f} ms): no candidate{extra}"))
    return out


def chosen_flags(choices):
    """vts_bench_train's flags for the choices; the two LayerNorm families' lists become one --layer-norm."""
    flags, layer_norm = [], []
    for _, f, _ in choices:
        if f[:1] == ["--layer-norm"]:
            layer_norm += f[1].split(",")
        else:
            flags += f
    if layer_norm:
        flags += ["--layer-norm", ",".join(layer_norm)]
    return flags


# The relative error a kernel's output may have against the CPU reference (the parity bars).
ERROR_BARS = {"bf16": 1e-2, "fp32": 1e-5}


def error_problem(r):
    """Why a candidate's results disqualify it, or None: a NaN or infinite error (an output left
    unwritten), or one above its dtype's bar. Unchecked rows (--no-check: negative) pass here and
    say so in the table."""
    e = r.get("rel_err")
    if e is None or (not math.isnan(e) and e < 0):
        return None
    if math.isnan(e) or math.isinf(e):
        return f"rel err {e}"
    bar = ERROR_BARS.get(r.get("dtype"))
    return f"rel err {e:.2e} > {bar:g}" if bar is not None and e > bar else None


def print_decisions(rows, steps):
    """For each pending alternative: its time against the default's where both were timed, and
    whether it was faster everywhere (then: make it the default) — unless its results were wrong
    somewhere (an error that is NaN or above the dtype's bar), which decides first."""
    lines = []
    for what, kernels, cand, base in KERNEL_DECISIONS:
        # A decision over several kernels (a forward and its backward that come as a pair) is made on
        # their summed times, per shape and dtype where all of them were timed both ways.
        pairs = []
        for shape, dtype in dict.fromkeys((r["shape"], r["dtype"]) for r in rows
                                          if r["kernel"] in kernels and r["impl"] == cand):
            found = {}
            for k in kernels:
                c = [r for r in rows if (r["kernel"], r["impl"], r["shape"], r["dtype"]) == (k, cand, shape, dtype)]
                d = [b for b in rows if (b["kernel"], b["impl"], b["shape"], b["dtype"]) == (k, base, shape, dtype)]
                if c and d:
                    found[k] = (d[0], c[0])
            if len(found) != len(kernels):
                continue
            cand_rows = [c for _, c in found.values()]
            # The row whose error is shown and judged: a disqualifying one if any, else the largest.
            worst = next((c for c in cand_rows if error_problem(c)), None) or max(
                cand_rows, key=lambda c: c.get("rel_err", -1) if not math.isnan(c.get("rel_err", -1)) else math.inf)
            pairs.append((f"{' + '.join(kernels)} {shape} {dtype}", sum(d["median_ms"] for d, _ in found.values()),
                          sum(c["median_ms"] for _, c in found.values()), worst))
        lines.append((what, pairs))
    # A step line's settings; a field a line leaves out has its default value.
    defaults = {"attention": "fused", "dropout_mask": "drawn", "cuda_graphs": False, "gemm_epilogues": True,
                "attention_fwd": "default", "layer_norm": "default"}
    keys = ("config", "batch", "precision", "gemm", "cuda_graphs", "attention", "dropout_mask", "gemm_epilogues",
            "attention_fwd", "layer_norm")
    def setting(r, x):
        """The line's value of x (the default where it has none); the two lists in a fixed order, so
        that the same settings named in another order compare equal."""
        v = r.get(x, defaults.get(x))
        return ",".join(sorted(v.split(","))) if x in ("attention_fwd", "layer_norm") else v

    median = statistics.median
    for what, field, cand, base in STEP_DECISIONS:
        pairs = []
        cand = setting({field: cand}, field)
        for r in steps:
            if r.get("impl") != "vts" or setting(r, field) != cand or "label" in r:
                continue
            # The default step may have been timed more than once (gpu-check times it again beside
            # the chosen combination): the median of its lines.
            d = [b["step_ms_median"] for b in steps if b.get("impl") == "vts" and setting(b, field) == base
                 and all(setting(b, x) == setting(r, x) for x in keys if x != field)]
            if d:
                graphs = ", graphs" if r.get("cuda_graphs") else ""
                pairs.append((f"step {r['config']} {r['precision']}{graphs}", median(d), r["step_ms_median"], r))
        lines.append((what, pairs))
    # The chosen combination (lines labelled "chosen") against the default step with the same config,
    # precision, GEMMs and graphs: the median of each side's lines.
    choice_fields = ("attention", "dropout_mask", "attention_fwd", "layer_norm")
    chosen = [r for r in steps if r.get("impl") == "vts" and r.get("label") == "chosen"]
    for group in {tuple(setting(r, x) for x in keys if x not in choice_fields) for r in chosen}:
        same = lambda r: tuple(setting(r, x) for x in keys if x not in choice_fields) == group
        cand = [r for r in chosen if same(r)]
        d = [b["step_ms_median"] for b in steps if b.get("impl") == "vts" and "label" not in b and same(b)
             and all(setting(b, x) == defaults[x] for x in choice_fields)]
        r = cand[0]
        settings = "; ".join(f"{x} {setting(r, x)}" for x in choice_fields if setting(r, x) != defaults[x])
        graphs = ", graphs" if r.get("cuda_graphs") else ""
        pairs = [(f"step {r['config']} {r['precision']}{graphs} ({len(d)} default, {len(cand)} chosen lines)",
                  median(d), median([c["step_ms_median"] for c in cand]), r)] if d else []
        lines.append((f"the chosen combination ({settings})", pairs))
    for precision in ("bf16", "fp32"):
        choices = choose(rows, steps, precision)
        if any(f for _, f, _ in choices) or any(r.get("precision") == precision for r in chosen):
            print(f"\n**Chosen for the combined {precision} step** (compare.py --choose: the fastest kernel row at "
                  f"the B/16 shape that vts_bench_train can switch on, if ≥ {100 * CHOICE_MARGIN:.0f} % faster than "
                  "the default's)\n")
            for family, _, reason in choices:
                print(f"- {family}: {reason}")
            print(f"- flags: `{' '.join(chosen_flags(choices)) or '(none)'}`")
    print("\n**Pending decisions** (candidate against the default, same run; ratio > 1: the candidate is faster)\n")
    print("| alternative | where | default ms | candidate ms | ratio | candidate rel err | verdict |")
    print("|---|---|---:|---:|---:|---:|---|")
    for what, pairs in lines:
        if not pairs:
            print(f"| {what} | not timed | | | | | – |")
            continue
        problems = [p for p in (error_problem(r) for *_, r in pairs) if p]
        if problems:
            verdict = f"**wrong results** ({problems[0]}): fix before timing matters"
        elif all(c < d for _, d, c, _ in pairs):
            verdict = "faster everywhere: make it the default"
        else:
            verdict = "not faster everywhere: keep the default"
        for i, (where, d, c, r) in enumerate(pairs):
            err = fmt_err(r) if "rel_err" in r else "–"
            print(f"| {what if i == 0 else ''} | {where} | {d:.4f} | {c:.4f} | {d / c:.2f} | {err} | "
                  f"{verdict if i == 0 else ''} |")


def print_profiles(profiles, top=15):
    """Per profiled run (config, batch, precision): its ops, most device time first, the first `top`
    of them and the rest summed."""
    def key(r):
        return (r["config"], r["batch"], r["precision"], r.get("cuda_graphs", False))

    runs = []
    for r in profiles:
        if key(r) not in runs:
            runs.append(key(r))
    for k in runs:
        ops = sorted((r for r in profiles if key(r) == k), key=lambda r: -r["ms_per_step"])
        total = ops[0]["profiled_ms_per_step"]
        launches = sum(r["calls_per_step"] for r in ops)
        graphs = ", CUDA graphs" if k[3] else ""
        print(f"\n**Op profile, {k[0]} batch {k[1]} {k[2]}{graphs}**: {total:.2f} ms and {launches:.0f} ops per step "
              f"(profiled steps; each op charged the time since the one before it)\n")
        print("| op | calls / step | ms / step | share |")
        print("|---|---:|---:|---:|")
        for r in ops[:top]:
            print(f"| {r['profile']} | {r['calls_per_step']:g} | {r['ms_per_step']:.3f} | {100 * r['share']:.1f} % |")
        rest = ops[top:]
        if rest:
            print(f"| {len(rest)} others | {sum(r['calls_per_step'] for r in rest):g} | "
                  f"{sum(r['ms_per_step'] for r in rest):.3f} | {100 * sum(r['share'] for r in rest):.1f} % |")


def epilogues(r):
    """'off' when VTS_GEMM_EPILOGUES=0, else the number of calls that fell back ('–' without the field)."""
    if r.get("gemm_epilogues") is False:
        return "off"
    return r.get("gemm_epilogue_fallbacks", "–")


def print_steps(steps):
    if not steps:
        return
    # Epilogue fallbacks: vts on CUDA, linear-layer GEMM calls whose bias epilogues cuBLASLt refused
    # (0: all taken; off: switched off with VTS_GEMM_EPILOGUES=0).
    # Graphs: vts with --cuda-graphs, the network's forward and backward replayed (graph_nodes of them).
    # Dropout mask: "kept" where the MLP's GELU + dropout kept its mask as bits (--keep-dropout-mask).
    # Device MiB: vts on CUDA, what its allocator holds after the timed steps (handed out, cached, in
    # the graphs' pools); PyTorch rows have none.
    # Launches: the kernel candidates switched on in the step (--attention-fwd, --layer-norm).
    print("\n| training step | config | batch | impl | precision | GEMMs | attention | dropout mask | launches "
          "| graphs | ms (median) | images/s | epilogue fallbacks | device MiB |")
    print("|---|---|---:|---|---|---|---|---|---|---|---:|---:|---:|---:|")
    for r in steps:
        graphs = f"{r['graph_nodes']} nodes" if r.get("cuda_graphs") else "–"
        held = f"{r['device_held_mib']:.0f}" if "device_held_mib" in r else "–"
        launches = "; ".join(f"{label} {r[k]}" for k, label in (("attention_fwd", "attention fwd:"),
                                                               ("layer_norm", "LayerNorm:")) if k in r) or "–"
        print(f"| {r.get('device', 'cpu')} | {r['config']} | {r['batch']} | {r['impl']} | {r.get('precision', 'fp32')} | "
              f"{r.get('gemm', '–')} | {r.get('attention', 'fused')} | {r.get('dropout_mask', 'drawn' if r['impl'] == 'vts' else '–')} | "
              f"{launches} | {graphs} | {r['step_ms_median']:.2f} | {r['imgs_per_s']:.1f} | {epilogues(r)} | {held} |")


def print_kernels(rows):
    if not rows:
        return
    devices = sorted({r.get("device", "?") for r in rows})
    print(f"Device(s): {', '.join(devices)}\n")
    copies = [r for r in rows if r["kernel"] == "d2d_copy"]
    for c in copies:
        print(f"- D2D copy {c['shape']}: {c['median_ms']:.4f} ms, {c['rate']:.0f} GB/s (read + write)")
    if copies:
        print()
    print("| kernel | shape | dtype | vts ms | baseline ms | baseline | ratio (baseline ÷ vts) | vts rate | of copy | vts rel err |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|---:|")
    keys = []
    for r in rows:
        k = (r["kernel"], r["shape"], r["dtype"])
        if r["kernel"] != "d2d_copy" and k not in keys:
            keys.append(k)
    for k in keys:
        group = [r for r in rows if (r["kernel"], r["shape"], r["dtype"]) == k]
        ours = [r for r in group if r["impl"] == "vts"]
        peers = sorted((r for r in group if not r["impl"].startswith("vts")), key=lambda r: r["median_ms"])
        o = ours[0] if ours else None
        p = peers[0] if peers else None
        ratio = f"**{p['median_ms'] / o['median_ms']:.2f}**" if (o and p) else "–"
        print(f"| {k[0]} | {k[1]} | {k[2]} | {o['median_ms']:.4f} | " if o else f"| {k[0]} | {k[1]} | {k[2]} | – | ",
              end="")
        print(f"{p['median_ms']:.4f} | {p['impl']} | " if p else "– | – | ", end="")
        rate = f"{o['rate']:.1f} {o['unit']}" if o else "–"
        err = fmt_err(o)
        print(f"{ratio} | {rate} | {of_copy(o, copies)} | {err} |")
    variants = [r for r in rows if r["impl"].startswith("vts_")]
    if variants:
        # "default ÷ variant": above 1, the variant is faster than the library's default ("vts") on
        # the same kernel, shape and dtype — the figure that decides whether it becomes the default.
        print("\n| vts variant | kernel | shape | dtype | ms | default ÷ variant | rate | of copy | rel err |")
        print("|---|---|---|---|---:|---:|---:|---:|---:|")
        for r in variants:
            err = fmt_err(r)
            default = next((d for d in rows if d["impl"] == "vts" and
                            (d["kernel"], d["shape"], d["dtype"]) == (r["kernel"], r["shape"], r["dtype"])), None)
            speedup = f"{default['median_ms'] / r['median_ms']:.2f}" if default and r["median_ms"] > 0 else "–"
            print(f"| {r['impl']} | {r['kernel']} | {r['shape']} | {r['dtype']} | {r['median_ms']:.4f} | {speedup} | "
                  f"{r['rate']:.1f} {r['unit']} | {of_copy(r, copies)} | {err} |")


def fmt_err(r):
    """The relative error against the CPU reference; '–' when not checked (negative), and a NaN or
    infinite error (an output left unwritten, a poisoned buffer) shown loudly, not as unchecked."""
    if not r or "rel_err" not in r:
        return "–"
    e = r["rel_err"]
    if math.isnan(e) or math.isinf(e):
        return f"**{e}** (wrong)"
    return f"{e:.2e}" if e >= 0 else "–"


def of_copy(o, copies):
    """The kernel's bandwidth over that of the copy with the same traffic (within 1 %), or '–'."""
    if not o or o.get("unit") != "GB/s":
        return "–"
    traffic = o["rate"] * o["median_ms"]  # GB/s × ms = MB; a copy's traffic is twice its size
    for c in copies:
        if abs(c["rate"] * c["median_ms"] - traffic) <= 0.01 * traffic:
            return f"{100 * o['rate'] / c['rate']:.0f} %"
    return "–"


if __name__ == "__main__":
    sys.exit(main())
