#!/usr/bin/env python3
"""Writes tests/golden/optim/*.txt: reference values from PyTorch 1.13's optimizers and LR
schedulers for tests/optim/test_optim_golden.cpp.

Run with the Debian python (python3-torch 1.13):  /usr/bin/python3 tests/golden/make_optim_golden.py

Each optimizer case takes three parameters (shapes [2, 3], [4] and [21]) through five step() calls
with fixed gradients; parameter 1 has no gradient on step 3 (grad = None), which PyTorch skips.
The [21] parameter is long enough for the C++ CPU loop's SIMD-width packs (16 floats, 8 doubles)
and leaves a remainder, so both of its code paths are compared with PyTorch. The
file holds the inputs, the parameters after every step and the optimizer state after the last
step, for float64 and float32. The C++ test reads the inputs from the file, so only the option
table below must agree with the one in the test (a mismatch makes the test fail, not pass).

Line format (whitespace-separated):
  case <name> <dtype> <steps>
  param <i> <ndim> <dims...> <values...>        initial value
  grad <step> <i> <values...>                   gradient for step (1-based); absent = None
  after <step> <i> <values...>                  parameter after that step
  state <i> <buffer> <values...>                buffer after the last step ("step" included)
  end
  schedule <name> <count> <values...>           learning rate at t = 0 .. count-1
"""
import math
import os

import torch

STEPS = 5
SKIP = (3, 1)  # (step, parameter) without a gradient

CASES = [
    # name, constructor, options
    ("sgd_plain", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_momentum_wd", torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
    ("sgd_greedyhash", torch.optim.SGD, dict(lr=1e-3, momentum=0.9, weight_decay=5e-4)),
    ("sgd_nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_dampening_maximize", torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, maximize=True)),
    ("rmsprop_wd", torch.optim.RMSprop, dict(lr=0.01, weight_decay=0.1)),
    ("rmsprop_centered", torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True)),
    ("rmsprop_momentum", torch.optim.RMSprop, dict(lr=0.01, momentum=0.9)),
    ("rmsprop_centered_momentum", torch.optim.RMSprop,
     dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("adam", torch.optim.Adam, dict(lr=0.1)),
    ("adam_wd", torch.optim.Adam, dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adam_amsgrad_maximize", torch.optim.Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.01, maximize=True)),
    ("adamw", torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1)),
    ("adamw_amsgrad", torch.optim.AdamW, dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.2, amsgrad=True)),
]


def fmt(values, dtype):
    spec = "%.17g" if dtype == torch.float64 else "%.9g"
    return " ".join(spec % v for v in values)


def inputs():
    g = torch.Generator().manual_seed(1234)
    init = [torch.randn(2, 3, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64),
            torch.randn(21, generator=g, dtype=torch.float64)]
    grads = {}
    for step in range(1, STEPS + 1):
        for i, p in enumerate(init):
            if (step, i) == SKIP:
                continue
            # Gradients of mixed scale and sign, with an exact zero (Adam then divides 0 by eps).
            scale = [1.0, 0.01, 3.0, 0.3, 1e-3][step - 1]
            v = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
            v.view(-1)[0] = 0.0 if (step, i) == (2, 0) else v.view(-1)[0]
            grads[(step, i)] = v
    return init, grads


def run_case(out, name, ctor, options, dtype, init, grads):
    params = [p.clone().to(dtype).requires_grad_(True) for p in init]
    opt = ctor(params, **options)
    out.append("case %s %s %d" % (name, "float64" if dtype == torch.float64 else "float32", STEPS))
    for i, p in enumerate(params):
        out.append("param %d %d %s %s" % (i, p.dim(), " ".join(map(str, p.shape)), fmt(p.detach().view(-1).tolist(), dtype)))
    for step in range(1, STEPS + 1):
        opt.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            if (step, i) in grads:
                gv = grads[(step, i)].to(dtype)
                p.grad = gv.clone()
                out.append("grad %d %d %s" % (step, i, fmt(gv.view(-1).tolist(), dtype)))
        opt.step()
        for i, p in enumerate(params):
            out.append("after %d %d %s" % (step, i, fmt(p.detach().view(-1).tolist(), dtype)))
    for i, p in enumerate(params):
        for key, value in sorted(opt.state[p].items()):
            if value is None:  # SGD without momentum files a None buffer
                continue
            vals = value.reshape(-1).tolist() if torch.is_tensor(value) else [float(value)]
            out.append("state %d %s %s" % (i, key, fmt(vals, dtype)))
    out.append("end")


def schedules(out):
    # StepLR driven the PyTorch way: one scheduler.step() per epoch after optimizer.step().
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out.append("schedule steplr_1e-3_30_0.1 %d %s" % (len(lrs), fmt(lrs, torch.float64)))

    # jeonsworld/ViT-pytorch's WarmupCosineSchedule (utils/scheduler.py): LambdaLR with this lambda,
    # cycles = 0.5. Values up to t_total; past it the two definitions part ways on purpose.
    warmup, total, base, cycles = 7, 40, 3e-2, 0.5

    def lr_lambda(step):
        if step < warmup:
            return float(step) / float(max(1.0, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    lrs = []
    for _ in range(total + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out.append("schedule warmup_cosine_3e-2_7_40 %d %s" % (len(lrs), fmt(lrs, torch.float64)))


def main():
    assert torch.__version__.startswith("1.13"), "golden values are defined as PyTorch 1.13's: " + torch.__version__
    init, grads = inputs()
    out = ["# Generated by tests/golden/make_optim_golden.py with torch %s; do not edit." % torch.__version__]
    for dtype in (torch.float64, torch.float32):
        for name, ctor, options in CASES:
            run_case(out, name, ctor, options, dtype, init, grads)
    schedules(out)
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "optim"), exist_ok=True)
    path = os.path.join(here, "optim", "pytorch_optim.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote", path, len(out), "lines")


if __name__ == "__main__":
    main()
