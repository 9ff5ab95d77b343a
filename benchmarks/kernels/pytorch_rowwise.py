#!/usr/bin/env python3
"""PyTorch peer for bench_layer_norm and bench_gelu: F.layer_norm, F.gelu (approximate='none') and
F.dropout(F.gelu(x)) (the MLP's middle, bench_gelu's gelu_dropout rows)
at the same shapes and dtypes, forward and backward, with the method of bench_common.hpp (CUDA
events, an L2 flush before each timed run, median). Bytes counted as there: LayerNorm forward
2·rows·n·s (+8 B/row), backward 3·rows·n·s (+8 B/row); GELU forward 2·n·s, backward 3·n·s.
PyTorch's bf16 LayerNorm writes bf16 dw/db where vts writes fp32 (n = 768 values: no difference
in bytes worth counting). Each is timed eager (impl "torch_eager") and as a CUDA-graph replay
(impl "torch"); peer_timing.py says why both."""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

from peer_timing import check_counts, eager_and_graph


def emit(bench, kernel, shape, dtype, timings, work, device):
    """One line for the eager timing (impl "torch_eager") and one for the graph replay ("torch")."""
    eager, graph = timings
    emit_one(bench, kernel, shape, dtype, "torch_eager", eager, work, device)
    if graph is not None:
        emit_one(bench, kernel, shape, dtype, "torch", graph, work, device)


def emit_one(bench, kernel, shape, dtype, impl, t, work, device):
    med, mn, mean = t
    print(json.dumps({"bench": bench, "kernel": kernel, "shape": shape, "dtype": dtype, "impl": impl,
                      "median_ms": med, "min_ms": mn, "mean_ms": mean, "rate": work / (med * 1e-3) / 1e9,
                      "unit": "GB/s", "rel_err": -1, "device": device}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    check_counts(ap, args)
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device", file=sys.stderr)
        sys.exit(77)
    props = torch.cuda.get_device_properties(0)
    device = props.name
    flush = torch.empty(max(2 * props.L2_cache_size, 8 << 20) // 4, dtype=torch.float32, device="cuda")
    # Inputs from a generator of their own: a graph capture registers the default generator, and
    # one capture that failed left it unusable for the next torch.randn (H200, 2026-11-28).
    gen = torch.Generator(device="cuda").manual_seed(0)
    gelu_inputs = []
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
        s = 2 if dtype == torch.bfloat16 else 4
        randn = lambda *shape: torch.randn(*shape, device="cuda", dtype=dtype, generator=gen)
        for rows in (32 * 197, 32 * 50):
            n = 768
            x = randn(rows, n) * 2
            w, b = randn(n), randn(n)
            g = randn(rows, n)
            tf = eager_and_graph(lambda: F.layer_norm(x, (n,), w, b, 1e-6), args.warmup, args.reps, flush,
                                 inference=True)
            xg, wg, bg = (t.detach().requires_grad_() for t in (x, w, b))
            y = F.layer_norm(xg, (n,), wg, bg, 1e-6)
            tb = eager_and_graph(lambda: torch.autograd.grad(y, (xg, wg, bg), g, retain_graph=True), args.warmup,
                                 args.reps, flush)
            emit("layer_norm", "layer_norm_fwd", f"{rows}x{n}", name, tf, 2 * rows * n * s + 8 * rows, device)
            emit("layer_norm", "layer_norm_bwd", f"{rows}x{n}", name, tb, 3 * rows * n * s + 8 * rows, device)
        rows, width = 32 * 197, 3072
        x = randn(rows, width) * 2
        g = randn(rows, width)
        tf = eager_and_graph(lambda: F.gelu(x), args.warmup, args.reps, flush, inference=True)
        xg = x.detach().requires_grad_()
        y = F.gelu(xg)
        tb = eager_and_graph(lambda: torch.autograd.grad(y, (xg,), g, retain_graph=True), args.warmup, args.reps, flush)
        elems = rows * width
        emit("gelu", "gelu_fwd", f"{rows}x{width}", name, tf, 2 * elems * s, device)
        emit("gelu", "gelu_bwd", f"{rows}x{width}", name, tb, 3 * elems * s, device)
        gelu_inputs.append((dtype, name, s, x, g))
    # GELU then dropout (p = 0.1, training), bench_gelu's gelu_dropout rows, counted as GELU's bytes.
    # Last: dropout draws from the default generator, which a failed graph capture can leave
    # unusable (see above), so nothing else runs after it.
    for dtype, name, s, x, g in gelu_inputs:
        rows, width = x.shape
        elems = rows * width
        try:
            tf = eager_and_graph(lambda: F.dropout(F.gelu(x), 0.1, training=True), args.warmup, args.reps, flush,
                                 inference=True)
            xg = x.detach().requires_grad_()
            y = F.dropout(F.gelu(xg), 0.1, training=True)
            tb = eager_and_graph(lambda: torch.autograd.grad(y, (xg,), g, retain_graph=True), args.warmup, args.reps,
                                 flush)
        except RuntimeError as e:
            print(f"gelu + dropout not timed: {str(e).splitlines()[0][:160]}", file=sys.stderr)
            continue
        emit("gelu", "gelu_dropout_fwd", f"{rows}x{width}", name, tf, 2 * elems * s, device)
        emit("gelu", "gelu_dropout_bwd", f"{rows}x{width}", name, tb, 3 * elems * s, device)


if __name__ == "__main__":
    main()
