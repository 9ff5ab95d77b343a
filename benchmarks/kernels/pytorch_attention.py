#!/usr/bin/env python3
"""PyTorch peer for bench_attention: F.scaled_dot_product_attention at the same shapes, once per
SDPA backend that accepts the case (FLASH_ATTENTION, EFFICIENT_ATTENTION, CUDNN_ATTENTION — cuDNN's
fused attention — and MATH), with the same method as bench_common.hpp: CUDA events around each run,
an L2 flush (a write of 2× the L2 size) before each timed run, median over the repetitions.

Forward is timed without autograd (inference inputs); backward is timed as
torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), i.e. the backward kernels alone.
Each is timed eager (impl "torch_sdpa_<backend>_eager") and as a CUDA-graph replay (impl
"torch_sdpa_<backend>": the kernels' own time); peer_timing.py says why both.
Work counted as in bench_attention.cpp: forward 4·B·H·N²·d, backward 10·B·H·N²·d FLOPs.
Prints one JSON line per measurement."""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from peer_timing import check_counts, eager_and_graph


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
    check_counts(ap, args)
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
                        fwd = lambda: F.scaled_dot_product_attention(q, k, v)
                        tf = eager_and_graph(fwd, args.warmup, args.reps, flush, inference=True)
                        qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                        out = F.scaled_dot_product_attention(qg, kg, vg)
                        bwd = lambda: torch.autograd.grad(out, (qg, kg, vg), dout, retain_graph=True)
                        tb = eager_and_graph(bwd, args.warmup, args.reps, flush)
                except RuntimeError as e:  # the backend does not take this dtype/shape
                    print(f"{label} {name} N={N}: not available ({str(e).splitlines()[0][:120]})", file=sys.stderr)
                    continue
                for kernel, (eager, graph), work in (("attention_fwd", tf, 4 * flops), ("attention_bwd", tb, 10 * flops)):
                    emit(kernel, shape, name, f"torch_sdpa_{label}_eager", eager, work, device)
                    if graph is not None:
                        emit(kernel, shape, name, f"torch_sdpa_{label}", graph, work, device)


if __name__ == "__main__":
    main()
