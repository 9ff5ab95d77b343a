#!/usr/bin/env python3
"""PyTorch peer for bench_attention: F.scaled_dot_product_attention at the same shapes, once per
SDPA backend that accepts the case (FLASH_ATTENTION, EFFICIENT_ATTENTION, CUDNN_ATTENTION — cuDNN's
fused attention — and MATH), with the same method as bench_common.hpp: CUDA events around each run,
an L2 flush (a write of 2× the L2 size) before each timed run, median over the repetitions.

Forward is timed without autograd (inference inputs); backward is timed as
torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), i.e. the backward kernels alone.
Work counted as in bench_attention.cpp: forward 4·B·H·N²·d, backward 10·B·H·N²·d FLOPs.
Prints one JSON line per measurement (impl "torch_sdpa_<backend>")."""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


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


def emit(kernel, shape, dtype, impl, t, work, device):
    med, mn, mean = t
    print(json.dumps({"bench": "attention", "kernel": kernel, "shape": shape, "dtype": dtype, "impl": impl,
                      "median_ms": med, "min_ms": mn, "mean_ms": mean, "rate": work / (med * 1e-3) / 1e12,
                      "unit": "TFLOP/s", "rel_err": -1, "device": device}), flush=True)


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
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)]
    B, H, d = 32, 12, 64
    print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()} on {device}; "
          f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}", file=sys.stderr)
    for N in (197, 50):
        for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
            shape = f"B{B}xH{H}xN{N}xd{d}"
            g = torch.Generator(device="cuda").manual_seed(N)
            q, k, v, dout = (torch.randn(B, H, N, d, device="cuda", dtype=dtype, generator=g) for _ in range(4))
            flops = B * H * N * N * d
            for label, backend in backends:
                try:
                    with sdpa_kernel([backend]):
                        with torch.inference_mode():
                            F.scaled_dot_product_attention(q, k, v)
                            tf = timer(lambda: F.scaled_dot_product_attention(q, k, v), args.warmup, args.reps, flush)
                        qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                        out = F.scaled_dot_product_attention(qg, kg, vg)
                        tb = timer(lambda: torch.autograd.grad(out, (qg, kg, vg), dout, retain_graph=True),
                                   args.warmup, args.reps, flush)
                except RuntimeError as e:  # the backend does not take this dtype/shape
                    print(f"{label} {name} N={N}: not available ({str(e).splitlines()[0][:120]})", file=sys.stderr)
                    continue
                emit("attention_fwd", shape, name, f"torch_sdpa_{label}", tf, 4 * flops, device)
                emit("attention_bwd", shape, name, f"torch_sdpa_{label}", tb, 10 * flops, device)


if __name__ == "__main__":
    main()
