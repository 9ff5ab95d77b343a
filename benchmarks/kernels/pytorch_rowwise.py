#!/usr/bin/env python3
"""PyTorch peer for bench_layer_norm and bench_gelu: F.layer_norm and F.gelu (approximate='none')
at the same shapes and dtypes, forward and backward, with the method of bench_common.hpp (CUDA
events, an L2 flush before each timed run, median). Bytes counted as there: LayerNorm forward
2·rows·n·s (+8 B/row), backward 3·rows·n·s (+8 B/row); GELU forward 2·n·s, backward 3·n·s.
PyTorch's bf16 LayerNorm writes bf16 dw/db where vts writes fp32 (n = 768 values: no difference
in bytes worth counting). One JSON line per measurement (impl "torch")."""
import argparse
import json
import sys

import torch
import torch.nn.functional as F


def timer(fn, warmup, reps, flush):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        flush.zero_()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2], times[0], sum(times) / len(times)


def emit(bench, kernel, shape, dtype, t, work, device):
    med, mn, mean = t
    print(json.dumps({"bench": bench, "kernel": kernel, "shape": shape, "dtype": dtype, "impl": "torch",
                      "median_ms": med, "min_ms": mn, "mean_ms": mean, "rate": work / (med * 1e-3) / 1e9,
                      "unit": "GB/s", "rel_err": -1, "device": device}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device", file=sys.stderr)
        sys.exit(77)
    props = torch.cuda.get_device_properties(0)
    device = props.name
    flush = torch.empty(max(2 * props.L2_cache_size, 8 << 20) // 4, dtype=torch.float32, device="cuda")
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
        s = 2 if dtype == torch.bfloat16 else 4
        for rows in (32 * 197, 32 * 50):
            n = 768
            x = torch.randn(rows, n, device="cuda", dtype=dtype) * 2
            w, b = torch.randn(n, device="cuda", dtype=dtype), torch.randn(n, device="cuda", dtype=dtype)
            g = torch.randn(rows, n, device="cuda", dtype=dtype)
            with torch.inference_mode():
                tf = timer(lambda: F.layer_norm(x, (n,), w, b, 1e-6), args.warmup, args.reps, flush)
            xg, wg, bg = (t.detach().requires_grad_() for t in (x, w, b))
            y = F.layer_norm(xg, (n,), wg, bg, 1e-6)
            tb = timer(lambda: torch.autograd.grad(y, (xg, wg, bg), g, retain_graph=True), args.warmup, args.reps,
                       flush)
            emit("layer_norm", "layer_norm_fwd", f"{rows}x{n}", name, tf, 2 * rows * n * s + 8 * rows, device)
            emit("layer_norm", "layer_norm_bwd", f"{rows}x{n}", name, tb, 3 * rows * n * s + 8 * rows, device)
        rows, width = 32 * 197, 3072
        x = torch.randn(rows, width, device="cuda", dtype=dtype) * 2
        g = torch.randn(rows, width, device="cuda", dtype=dtype)
        with torch.inference_mode():
            tf = timer(lambda: F.gelu(x), args.warmup, args.reps, flush)
        xg = x.detach().requires_grad_()
        y = F.gelu(xg)
        tb = timer(lambda: torch.autograd.grad(y, (xg,), g, retain_graph=True), args.warmup, args.reps, flush)
        elems = rows * width
        emit("gelu", "gelu_fwd", f"{rows}x{width}", name, tf, 2 * elems * s, device)
        emit("gelu", "gelu_bwd", f"{rows}x{width}", name, tb, 3 * elems * s, device)


if __name__ == "__main__":
    main()
