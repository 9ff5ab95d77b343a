#!/usr/bin/env python3
"""Markdown table of compare_cpu.sh's JSON lines: per mode, config, batch and threads, the median
step time of each VTS build (named by its GEMM library: "kernel + eigen" where our AVX-512 kernel
takes the float products and Eigen the rest) and of the PyTorch peer (its faster run,
with or without OMP_WAIT_POLICY=PASSIVE), and VTS ÷ peer for each build.

    benchmarks/train/compare_cpu.sh build build-blas > cpu.jsonl
    python3 benchmarks/train/summarize_cpu.py cpu.jsonl
"""
import json
import sys


# The fields each line must carry (vts_bench_train and pytorch_train_step.py print them all).
FIELDS = ("impl", "config", "batch", "threads", "step_ms_median")


def main():
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if len(sys.argv) != 2:
        sys.exit("usage: summarize_cpu.py FILE.jsonl")
    groups, builds = {}, []
    # A missing file or another benchmark's line used to end in a traceback, an empty file in an
    # empty table with exit status 0.
    try:
        f = open(sys.argv[1])
    except OSError as e:
        sys.exit(f"summarize_cpu.py: cannot read {sys.argv[1]}: {e.strerror}")
    with f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"summarize_cpu.py: {sys.argv[1]}:{number}: not JSON ({e})")
            if any(k not in r for k in FIELDS):
                sys.exit(f"summarize_cpu.py: {sys.argv[1]}:{number}: expected a line of vts_bench_train or "
                         f"pytorch_train_step.py ({', '.join(FIELDS)}), found {line[:120]}")
            key = (r.get("mode", "train"), r["config"], r["batch"], r["threads"])
            g = groups.setdefault(key, {"peer": None})
            ms = r["step_ms_median"]
            if r["impl"] == "pytorch":
                g["peer"] = ms if g["peer"] is None else min(g["peer"], ms)
            else:
                # "gemm" names the library behind the float kernel (eigen or openblas); the kernel
                # itself shows in gemm_library, which AVX-512 builds begin with "VTS AVX-512 kernel".
                name = r.get("gemm", "vts")
                if r.get("gemm_library", "").startswith("VTS AVX-512 kernel"):
                    name = f"kernel + {name}"
                builds += [name] if name not in builds else []
                g[name] = ms
    if not groups:
        sys.exit(f"summarize_cpu.py: no training-step lines in {sys.argv[1]}")
    head = ["mode", "config", "batch", "threads"] + [f"VTS ({b}) ms" for b in builds] + ["PyTorch ms"]
    head += [f"VTS ({b}) ÷ PyTorch" for b in builds]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 4 + "---:|" * (len(head) - 4))
    for (mode, config, batch, threads), g in groups.items():
        cells = [mode, config, str(batch), str(threads)]
        cells += [f"{g[b]:,.1f}" if b in g else "–" for b in builds]
        cells.append(f"{g['peer']:,.1f}" if g["peer"] else "–")
        cells += [f"**{g[b] / g['peer']:.2f}**" if b in g and g["peer"] else "–" for b in builds]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
