#!/usr/bin/env python3
"""PyTorch peer of vts_bench_train: the same ViT + all-token hash head + CSQ loss + Adam step on
random input, timed the same way (median of --steps after --warmup). Prints one JSON line.

    /usr/bin/python3 benchmarks/train/pytorch_train_step.py --config tiny --batch 64 --threads 2
    python3 benchmarks/train/pytorch_train_step.py --config b16 --batch 32 --device cuda --precision bf16

On CUDA the step is timed between two synchronisations; --precision bf16 runs the model under
torch.autocast(bfloat16) with fp32 weights and Adam state (the usual mixed-precision recipe), the
loss in fp32. --attention sdpa uses F.scaled_dot_product_attention (PyTorch's fused kernels; the
default wherever it exists, PyTorch >= 2.0); manual is the explicit softmax(QK^T)V of eager code
(the default on older PyTorch, such as Debian's 1.13).

--mode encode times what vts_bench_train --mode encode does: the forward alone, model.eval()
(dropout off) under torch.inference_mode(), the outputs copied to the host (autocast as above).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def _pin_blas_threads():
    # torch.set_num_threads does not reach the OpenBLAS behind Debian's torch (BLAS_INFO=generic):
    # without this, "--threads 1" ran every GEMM on both cores. OpenBLAS reads the variable when it
    # is loaded, i.e. at `import torch`, so this runs first.
    for i, arg in enumerate(sys.argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else (
            sys.argv[i + 1] if arg == "--threads" and i + 1 < len(sys.argv) else None)
        if value is not None and value.isdigit() and int(value) > 0:
            os.environ["OPENBLAS_NUM_THREADS"] = value


_pin_blas_threads()

try:
    import torch  # noqa: E402  (after pinning the BLAS threads)
except ImportError:  # a traceback ending in ModuleNotFoundError said less
    sys.exit(f"pytorch_train_step.py: {sys.executable} cannot import torch (Debian: apt install python3-torch)")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CONFIGS = {  # image, channels, patch, dim, depth, heads, mlp
    "tiny": (28, 1, 7, 64, 4, 4, 256),
    "small": (32, 3, 4, 192, 6, 3, 768),
    "b16": (224, 3, 16, 768, 12, 12, 3072),
    "b32": (224, 3, 32, 768, 12, 12, 3072),
}


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, sdpa=False):
        super().__init__()
        self.heads = heads
        self.sdpa = sdpa
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)
        self.drop = nn.Dropout(0.1)

    def attention(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.sdpa:
            out = F.scaled_dot_product_attention(q, k, v)
            return self.proj(out.transpose(1, 2).reshape(b, n, d))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        out = att.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm2(x))))))


class HashViT(nn.Module):
    def __init__(self, image, channels, patch, dim, depth, heads, mlp, bits=64, sdpa=False):
        super().__init__()
        grid = image // patch
        self.embed = nn.Conv2d(channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        self.drop = nn.Dropout(0.1)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp, sdpa) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear((grid * grid + 1) * dim, 1024), nn.ReLU(),
                                  nn.Linear(1024, bits))

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.norm(self.blocks(self.drop(x)))
        return self.head(x.flatten(1))


def report(a, model, attention, times, extra):
    times.sort()
    med = statistics.median(times)
    print(json.dumps({"impl": "pytorch", **extra, "torch": torch.__version__,
                      "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "all"), "device": a.device,
                      "precision": a.precision, "attention": attention,
                      **({"gemm": a.gemm} if a.device == "cuda" and a.precision == "fp32" else {}),
                      "gpu": torch.cuda.get_device_name() if a.device == "cuda" else None, "config": a.config, "batch": a.batch,
                      "threads": torch.get_num_threads(), "steps": a.steps, "step_ms_median": round(med, 3),
                      "step_ms_min": round(times[0], 3), "imgs_per_s": round(1000 * a.batch / med, 2),
                      "params": sum(p.numel() for p in model.parameters())}))


def encode(a, model, x, attention):
    model.eval()
    times = []
    with torch.inference_mode():
        for s in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                u = model(x)
            u.cpu()  # waits for the device, as the codes are read back
            dt = (time.perf_counter() - t0) * 1000
            if s >= a.warmup:
                times.append(dt)
    report(a, model, attention, times, {"mode": "encode"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="tiny", choices=CONFIGS)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--attention", default=None, choices=["manual", "sdpa"])
    p.add_argument("--mode", default="train", choices=["train", "encode"])
    # CUDA fp32: the matmuls and convolutions on TF32 tensor cores (as vts_bench_train --gemm tf32,
    # vts's fp32 default) or in IEEE fp32 (PyTorch's default for matmuls). Reported as "gemm".
    p.add_argument("--gemm", default="fp32", choices=["fp32", "tf32"])
    a = p.parse_args()
    # --steps 0 ended in an IndexError after the warm-up had run; --batch 0 in a torch error; a
    # negative --threads was ignored (vts_bench_train rejects all three the same way).
    if a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 0:
        p.error(f"need --batch >= 1, --steps >= 1, --warmup >= 0, --threads >= 0, got --batch {a.batch} "
                f"--steps {a.steps} --warmup {a.warmup} --threads {a.threads}")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("pytorch_train_step: --device cuda but torch sees no GPU", file=sys.stderr)
        sys.exit(77)
    attention = a.attention or ("sdpa" if hasattr(F, "scaled_dot_product_attention") else "manual")
    if attention == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        print(f"pytorch_train_step: --attention sdpa needs PyTorch >= 2.0, this is {torch.__version__}", file=sys.stderr)
        sys.exit(2)
    if a.gemm == "tf32" and (a.device != "cuda" or a.precision != "fp32"):
        print("pytorch_train_step: --gemm tf32 picks how CUDA fp32 matmuls run; "
              "it needs --device cuda --precision fp32", file=sys.stderr)
        sys.exit(2)
    torch.backends.cuda.matmul.allow_tf32 = a.gemm == "tf32"
    torch.backends.cudnn.allow_tf32 = a.gemm == "tf32"
    torch.manual_seed(7)
    dev = torch.device(a.device)
    image, channels, *_ = CONFIGS[a.config]
    model = HashViT(*CONFIGS[a.config], sdpa=attention == "sdpa").to(dev)
    x = torch.randn(a.batch, channels, image, image, device=dev)
    if a.mode == "encode":
        encode(a, model, x, attention)
        return
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    centers = torch.randint(0, 2, (a.batch, 64), device=dev).float()
    use_bf16 = a.precision == "bf16"

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    times = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=use_bf16):
            u = model(x)
        h = torch.tanh(u.float())  # BCE is not autocast-safe: the loss runs in fp32
        loss = F.binary_cross_entropy(0.5 * (h + 1), centers) + 1e-4 * ((h.abs() - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        dt = (time.perf_counter() - t0) * 1000
        if s >= a.warmup:
            times.append(dt)
    report(a, model, attention, times, {"mode": "train"})


if __name__ == "__main__":
    main()
