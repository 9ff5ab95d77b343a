#!/usr/bin/env python3
"""PyTorch peer of vts_bench_ops: the same cases, the same work counts, the same timing (median of
--reps runs after --warmup), the same JSON line format, with impl "pytorch".

    /usr/bin/python3 benchmarks/ops/pytorch_ops.py --threads 2 [--reps 20] [--filter gemm]

PyTorch 1.13 has no fused CPU attention, so attention is the composition a ViT implementation
writes: softmax(q·kᵀ/√d)·v with torch.matmul and torch.softmax (the B·H·N·N score tensor is
materialised). GEMMs go through torch.matmul, i.e. whatever BLAS Debian's libblas.so.3 points at;
--threads also pins that BLAS (OPENBLAS_NUM_THREADS, set before torch is imported).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def _pin_blas_threads():
    # Debian's torch reports BLAS_INFO=generic, so torch.set_num_threads does not reach the
    # OpenBLAS behind libblas.so.3, which then uses every core: a "--threads 1" GEMM ran on two
    # threads. OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded, i.e. at `import torch`.
    for i, a in enumerate(sys.argv):
        value = a.split("=", 1)[1] if a.startswith("--threads=") else (
            sys.argv[i + 1] if a == "--threads" and i + 1 < len(sys.argv) else None)
        if value is not None and value.isdigit() and int(value) > 0:
            os.environ["OPENBLAS_NUM_THREADS"] = value


_pin_blas_threads()
try:
    import torch  # noqa: E402  (after the environment is set)
except ImportError:  # a traceback ending in ModuleNotFoundError said less
    sys.exit(f"pytorch_ops.py: {sys.executable} cannot import torch (Debian: apt install python3-torch)")
import torch.nn.functional as F  # noqa: E402


def time_it(args, run):
    for _ in range(args.warmup):
        run()
    ms = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        run()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


# Every case name asked about, and the lines printed: a --filter that matches no case is an error,
# as in vts_bench_ops (an empty output with exit status 0 reads as a successful run).
CASE_NAMES = []
REPORTED = [0]


def report(args, name, shape, amount, flops, timing, impl="pytorch"):
    median, fastest = timing
    REPORTED[0] += 1
    print(json.dumps({
        "bench": "ops", "case": name, "impl": impl, "shape": shape, "threads": torch.get_num_threads(),
        "reps": args.reps, "median_ms": round(median, 4), "min_ms": round(fastest, 4),
        "metric": "gflop_s" if flops else "gb_s", "value": round(amount / (median * 1e-3) * 1e-9, 3),
    }), flush=True)


def wanted(args, name):
    CASE_NAMES.append(name)
    return not args.filter or args.filter in name


def rand(*shape, grad=False):
    return (torch.rand(*shape) * 2 - 1).requires_grad_(grad)


def dims(*d):
    return "x".join(map(str, d))


def bench_gemm(args, name, m, k, n, a_transposed=False):
    if not wanted(args, name):
        return
    a, b = (rand(k, m).t() if a_transposed else rand(m, k)), rand(k, n)
    with torch.no_grad():
        report(args, name, dims(m, k, n), 2.0 * m * n * k, True, time_it(args, lambda: torch.matmul(a, b)))
        if not a_transposed:  # the layer form x·Wᵀ + b, vts_bench_ops's vts_linear
            w, bias = rand(n, k), rand(n)
            report(args, name, dims(m, k, n), 2.0 * m * n * k, True,
                   time_it(args, lambda: torch.nn.functional.linear(a, w, bias)), impl="pytorch_linear")


def bench_fwd_bwd(args, name, shape, inputs, forward, fwd_work, fwd_bwd_work):
    amount_f, flops = fwd_work
    amount_fb, _ = fwd_bwd_work
    if wanted(args, name + "_fwd"):
        with torch.no_grad():
            report(args, name + "_fwd", shape, amount_f, flops, time_it(args, lambda: forward(inputs)))
    if not wanted(args, name + "_fwd_bwd"):
        return
    with torch.no_grad():
        seed = rand(*forward(inputs).shape)

    def run():
        for t in inputs:
            t.grad = None
        forward(inputs).backward(seed)

    report(args, name + "_fwd_bwd", shape, amount_fb, flops, time_it(args, run))


def attention(q, k, v):
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def bench_adam(args, n):
    # torch.optim.Adam in 1.13 defaults to the single-tensor path (foreach=False on the CPU).
    if not wanted(args, "adam_step"):
        return
    p = rand(n, grad=True)
    p.grad = rand(n)
    opt = torch.optim.Adam([p], lr=1e-5)
    report(args, "adam_step", dims(n), 7.0 * 4.0 * n, False, time_it(args, opt.step))


def bench_init(args, out, inp):
    # nn.Linear's reset_parameters for the weight: kaiming_uniform_ with a = √5, i.e. U(±1/√fan_in).
    if not wanted(args, "init_linear"):
        return
    w = torch.empty(out, inp)
    report(args, "init_linear", dims(out, inp), 4.0 * out * inp, False,
           time_it(args, lambda: torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--filter", default="")
    args = p.parse_args()
    # reps 0 ended in statistics.median's StatisticsError; a negative --threads was ignored.
    if args.threads < 0 or args.reps < 1 or args.warmup < 0:
        p.error(f"need --threads >= 0, --reps >= 1, --warmup >= 0, got --threads {args.threads} "
                f"--reps {args.reps} --warmup {args.warmup}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(20240601)

    B, tokens, dim, heads, mlp = 4, 197, 768, 12, 3072
    M = B * tokens
    bench_gemm(args, "gemm_qkv", M, dim, 3 * dim)
    bench_gemm(args, "gemm_fc1", M, dim, mlp)
    bench_gemm(args, "gemm_fc2", M, mlp, dim)
    bench_gemm(args, "gemm_tiny_qkv", 64 * 17, 64, 192)
    bench_gemm(args, "gemm_tiny_fc2", 64 * 17, 256, 64)
    bench_gemm(args, "gemm_tiny_head", 64, 17 * 64, 1024)
    bench_gemm(args, "gemm_head_input_grad", B, 1024, tokens * dim)
    bench_gemm(args, "gemm_small_qkv_wgrad", 3 * 192, 64 * 65, 192, a_transposed=True)
    bench_gemm(args, "gemm_small_head", 64, 65 * 192, 1024)

    nbytes = 4.0 * M * dim
    bench_fwd_bwd(args, "layer_norm", dims(M, dim), [rand(M, dim, grad=True), rand(dim, grad=True), rand(dim, grad=True)],
                  lambda t: F.layer_norm(t[0], (dim,), t[1], t[2], 1e-6), (2 * nbytes, False), (5 * nbytes, False))
    rows = B * heads * tokens
    nbytes = 4.0 * rows * tokens
    bench_fwd_bwd(args, "softmax", dims(rows, tokens), [rand(rows, tokens, grad=True)],
                  lambda t: torch.softmax(t[0], dim=-1), (2 * nbytes, False), (5 * nbytes, False))
    nbytes = 4.0 * M * mlp
    bench_fwd_bwd(args, "gelu", dims(M, mlp), [rand(M, mlp, grad=True)], lambda t: F.gelu(t[0]),
                  (2 * nbytes, False), (5 * nbytes, False))
    bench_fwd_bwd(args, "dropout", dims(M, mlp), [rand(M, mlp, grad=True)],
                  lambda t: F.dropout(t[0], 0.1, training=True), (2 * nbytes, False), (5 * nbytes, False))
    for name, (b, h, n, d) in (("attention_b16", (B, heads, tokens, 64)), ("attention_tiny", (64, 4, 17, 16))):
        base = float(b * h * n * n * d)
        bench_fwd_bwd(args, name, dims(b, h, n, d), [rand(b, h, n, d, grad=True) for _ in range(3)],
                      lambda t: attention(*t), (4 * base, True), (12 * base, True))
    bench_adam(args, 1 << 24)
    bench_init(args, 4096, 4096)
    if not REPORTED[0]:
        print(f"pytorch_ops.py: --filter '{args.filter}' matches no case; the cases are {', '.join(CASE_NAMES)}",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
