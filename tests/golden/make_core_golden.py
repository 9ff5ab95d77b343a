#!/usr/bin/python3
"""Prints the PyTorch reference numbers hardcoded in tests/core/test_golden.cpp.

Run with the Debian interpreter that has torch (`/usr/bin/python3 tests/golden/make_core_golden.py`)
and paste a changed block back into the test. The C++ tests never run Python. Every value is computed
in float64 unless the block says float32; numbers are printed with 17 significant digits so a double
round-trips exactly.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def show(name, t):
    vals = ", ".join(f"{v:.17g}" for v in t.detach().reshape(-1).tolist())
    print(f"// {name}\n{{{vals}}}\n")


# gelu, exact erf form (F.gelu's default) and, for contrast, the tanh approximation.
x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], requires_grad=True)
y = F.gelu(x)
show("gelu", y)
show("gelu tanh form (must differ)", F.gelu(x, approximate="tanh"))
y.sum().backward()
show("gelu grad", x.grad)

# softplus over a wide range; torch switches to the identity above 20.
x = torch.tensor([-100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 30.0, 100.0], requires_grad=True)
y = F.softplus(x)
show("softplus", y)
y.sum().backward()
show("softplus grad", x.grad)
show("softplus float32", F.softplus(x.detach().float()))

# binary cross entropy with probabilities exactly 0 and 1: each log is clamped at -100.
p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 0.25], requires_grad=True)
t = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 1.0])
loss = F.binary_cross_entropy(p, t)
show("bce", loss)
loss.backward()
show("bce grad", p.grad)

# cross entropy, mean over the batch.
logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 1.0, 0.5]], requires_grad=True)
target = torch.tensor([3, 0, 1])
loss = F.cross_entropy(logits, target)
show("cross_entropy", loss)
loss.backward()
show("cross_entropy grad", logits.grad)

# layer norm: a row whose variance is comparable to eps, and a larger eps.
x = torch.tensor([[1.0, 1.001, 0.999, 1.002], [0.0, 1.0, 2.0, 3.0]])
w = torch.tensor([1.0, 2.0, 0.5, -1.0])
b = torch.tensor([0.0, 0.1, -0.2, 0.3])
show("layer_norm eps=1e-5", F.layer_norm(x, (4,), w, b, eps=1e-5))
show("layer_norm eps=0.1", F.layer_norm(x, (4,), w, b, eps=0.1))

# softmax and log_softmax on large logits.
z = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0], [-745.0, -745.5, -746.0]])
show("softmax", F.softmax(z, dim=-1))
show("log_softmax", F.log_softmax(z, dim=-1))
show("softmax float32", F.softmax(z.float(), dim=-1))
show("log_softmax float32", F.log_softmax(z.float(), dim=-1))
