#!/usr/bin/env python3
"""Writes tests/golden/losses/*.npz: reference values for the six hashing losses, read by
tests/hash/test_losses.cpp.

Run with the Debian python (python3-torch 1.13, numpy):  /usr/bin/python3 tests/golden/make_loss_golden.py

The losses below are written from docs/reference/hashing-spec.md §2 (DeepHash-pytorch HEAD, our
default) and §7.3 (the VTS paper's code, our `reference_compat` switch), in float64 PyTorch. They
are deliberately NOT a transcription of include/vts/hash/losses.hpp: where the C++ uses an
algebraic shortcut (||a-b||^2 expanded, softplus helpers, fused cross-entropy) this file uses the
plain form, so a shared mistake would have to be made twice, independently.

What is random in a loss (CSQ centers beyond 2K classes, DPN targets, the multi-label tie-break
bits, GreedyHash's classifier) cannot be reproduced across RNGs, so it is drawn here, stored in
the fixture, and injected by the C++ test. The Hadamard centers are deterministic and are NOT
injected: the C++ must rebuild them itself.

Files
  single.npz   C = 10 one-hot labels          }  each: inputs, then per case and K in {16, 32, 64}
  multi.npz    C = 21 multi-hot, one zero row }  the loss of two consecutive batches and d loss/d u
  csq_c100.npz CSQ with C = 100 > 2K = 32 (random fallback rows stored and injected)
  centers.npz  Sylvester Hadamard matrices and CSQ center tables from the popcount formula

Inputs (per label file)
  labels  uint8 [N=40, C]   the label row of every training item (a batch takes rows [ind])
  ind1, ind2 int64 [8]      batch item indices: distinct; ind2 shares 3 items with ind1, including
                            (multi) the all-zero row, so bank rows are overwritten and 40-13 rows
                            stay unvisited (zero) throughout
  u1_K*, u2_K* float32 [8, K]  raw outputs; float32 so the float C++ run sees the same numbers.
                            u1 holds exact 0, +1 and -1 entries to pin the kinks (sign(0) = 0,
                            abs'(0) = 0, the clamp's gradient at the DPN hinge)
  W_K*    float32 [C, K]    GreedyHash classifier, U(-1/sqrt K, 1/sqrt K)
  dpn_T_K* int8 [C, K]      DPN targets, exactly floor(K/2) entries -1 per row
  tie_K*  uint8 [K]         the multi-label tie-break bits (CSQ and DPN)

Expected values per case and K
  <case>_K<K>_loss float64 [2]        loss after batch 1 and after batch 2 (same loss object)
  <case>_K<K>_du1, _du2 float32 [8, K] d loss / d u of each batch
  greedyhash_K<K>_dW1, _dW2 float32 [C, K]  d loss / d W (HEAD trains the classifier)
Gradients are computed in float64 and stored rounded to float32 (relative error <= 6e-8, two
orders below the 1e-5 the test asks for) to keep the fixtures small.

Cases (epoch passed to the loss in parentheses)
  dsh, dsh_compat            memory bank; compat = zero-gradient quantization term (0)
  hashnet, hashnet_e45       in-batch, scale 1 (0) and sqrt(3) (45)
  hashnet_compat             memory bank of tanh(u), scale fixed at 1 even at epoch 45 (45)
  greedyhash                 alpha 0.1 (0); compat has the same values, only W stays frozen
  greedyhash_imagenet        HEAD's imagenet override alpha = 1 (0)
  idhn                       memory bank (0)
  csq                        single: argmax rule; multi: sign-of-sum rule with tie bits (0)
  dpn                        same center rules, memory bank written but unused (0)
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses")
N, B = 40, 8
KS = (16, 32, 64)


# ---- centers ------------------------------------------------------------------------------------
def hadamard(K):
    """Sylvester Hadamard matrix from the closed form (-1)^popcount(i & j) (no scipy)."""
    i = np.arange(K)[:, None]
    j = np.arange(K)[None, :]
    parity = np.vectorize(lambda v: bin(int(v)).count("1") & 1)(i & j)
    return (1 - 2 * parity).astype(np.int8)


def csq_table(C, K, random_rows=None):
    """Rows of [H; -H]; beyond 2K classes the given balanced random rows."""
    H = hadamard(K)
    both = np.concatenate([H, -H], axis=0)
    if C <= 2 * K:
        return both[:C]
    assert random_rows is not None and random_rows.shape == (C - 2 * K, K)
    return np.concatenate([both, random_rows], axis=0)


def balanced_rows(rng, rows, K, negatives):
    out = np.ones((rows, K), dtype=np.int8)
    for r in range(rows):
        out[r, rng.choice(K, size=negatives, replace=False)] = -1
    return out


def first_argmax(y):
    """Index of the first maximal entry of each row (all-zero row -> 0), written out by hand."""
    t = []
    for row in y.tolist():
        best = 0
        for c, v in enumerate(row):
            if v > row[best]:
                best = c
        t.append(best)
    return torch.tensor(t, dtype=torch.long)


def targets_for(y, T, multi, tie):
    """Per-row ±1 target: T[argmax y] (single) or sign of y·T with zeros replaced by tie bits."""
    T = torch.as_tensor(T, dtype=torch.float64)
    if not multi:
        return T[first_argmax(y)]
    z = y @ T
    tie = torch.as_tensor(tie, dtype=torch.float64).expand_as(z)
    z = torch.where(z == 0, tie, z)
    return torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))


# ---- the losses (spec §2, §7.3) -----------------------------------------------------------------
class SignSTE(torch.autograd.Function):
    """sign() forward, identity backward (GreedyHash's straight-through hash layer)."""

    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g


def balanced_mean(loss, S):
    """mean over S == 1 entries + mean over S == 0 entries; an empty side contributes nothing."""
    pos, neg = S > 0, S <= 0
    out = torch.zeros(())
    if pos.any():
        out = out + loss[pos].mean()
    if neg.any():
        out = out + loss[neg].mean()
    return out


class Dsh:  # §2.1; compat: §2.1 history / §7.3
    def __init__(self, K, C, compat):
        self.U, self.Y, self.m, self.alpha, self.compat = torch.zeros(N, K), torch.zeros(N, C), 2.0 * K, 0.1, compat

    def __call__(self, u, y, ind, epoch):
        self.U[ind] = u.detach()
        self.Y[ind] = y
        D = ((u[:, None, :] - self.U[None, :, :]) ** 2).sum(-1)  # B x N, gradient through u only
        d = ((y @ self.Y.t()) == 0).double()  # 1 = no shared label (unvisited rows included)
        pair = 0.5 * (1 - d) * D + 0.5 * d * torch.clamp(self.m - D, min=0)
        if self.compat:
            quant = (1 - torch.sign(u)).abs().mean()
        else:
            quant = (1 - u.abs()).abs().mean()
        return pair.mean() + self.alpha * quant


class HashNet:  # §2.2 (HEAD, in-batch) and the older memory-bank form used by VTS (§7.3)
    def __init__(self, K, C, compat):
        self.alpha, self.compat = 0.1, compat
        if compat:
            self.U, self.Y = torch.zeros(N, K), torch.zeros(N, C)

    def __call__(self, u, y, ind, epoch):
        scale = 1.0 if self.compat else math.sqrt(epoch // 20 + 1)
        h = torch.tanh(scale * u)
        if self.compat:
            self.U[ind] = h.detach()
            self.Y[ind] = y
            S = ((y @ self.Y.t()) > 0).double()
            theta = self.alpha * h @ self.U.t()
            pair = torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - S * theta
        else:
            S = ((y @ y.t()) > 0).double()
            theta = self.alpha * h @ h.t()
            pair = F.softplus(theta) - S * theta
        return balanced_mean(pair, S)


class GreedyHash:  # §2.3
    def __init__(self, W, alpha):
        self.W, self.alpha = W, alpha

    def __call__(self, u, y, ind, epoch):
        b = SignSTE.apply(u)
        ce = F.cross_entropy(b @ self.W.t(), first_argmax(y))
        return ce + self.alpha * ((u.abs() - 1) ** 3).abs().mean()


class Idhn:  # §2.4
    def __init__(self, K, C):
        self.U, self.Y, self.K = torch.zeros(N, K), torch.zeros(N, C), float(K)
        self.alpha, self.gamma, self.lam = 0.5, 0.1, 0.1

    def __call__(self, u, y, ind, epoch):
        v = u / (u.abs() + 1)
        self.U[ind] = v.detach()
        self.Y[ind] = y
        norms = y.norm(dim=1)[:, None] * self.Y.norm(dim=1)[None, :]
        s = (y @ self.Y.t()) / (norms + 1e-5)
        M = ((s > 0.99) | (s < 0.01)).double()
        theta = self.alpha * v @ self.U.t()
        ce = torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta
        mse = (theta + self.K - 2 * s * self.K) ** 2
        return (M * ce + self.gamma * (1 - M) * mse).mean() + self.lam * (v.abs() - 1).abs().mean()


class Csq:  # §2.5
    def __init__(self, T, multi, tie):
        self.T, self.multi, self.tie, self.lam = T, multi, tie, 1e-4

    def __call__(self, u, y, ind, epoch):
        h = torch.tanh(u)
        c = targets_for(y, self.T, self.multi, self.tie)
        center = F.binary_cross_entropy((h + 1) / 2, (c + 1) / 2)  # clamps each log at -100
        return center + self.lam * ((h.abs() - 1) ** 2).mean()


class Dpn:  # §2.6, plain "[DPN]" (no -A, no -T)
    def __init__(self, K, C, T, multi, tie):
        self.U, self.Y = torch.zeros(N, K), torch.zeros(N, C)
        self.T, self.multi, self.tie, self.m = T, multi, tie, 1.0

    def __call__(self, u, y, ind, epoch):
        self.U[ind] = u.detach()  # written as the reference does; only DPN-A reads it
        self.Y[ind] = y
        t = targets_for(y, self.T, self.multi, self.tie)
        return torch.clamp(self.m - u * t, min=0).mean()


# ---- fixtures -----------------------------------------------------------------------------------
def make_labels(rng, C, multi):
    if not multi:
        y = np.zeros((N, C), np.uint8)
        y[np.arange(N), rng.integers(0, C, N)] = 1
        return y, None
    y = np.zeros((N, C), np.uint8)
    for n in range(N):
        k = rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])
        y[n, rng.choice(C, size=k, replace=False)] = 1
    zero_item = 7
    y[zero_item] = 0
    return y, zero_item


def make_indices(rng, zero_item):
    perm = rng.permutation(N)
    ind1 = perm[:B].copy()
    if zero_item is not None and zero_item not in ind1:
        ind1[2] = zero_item
    rest = np.array([i for i in perm if i not in ind1])
    keep = [zero_item] if zero_item is not None else []
    keep += [i for i in ind1 if i not in keep][: 3 - len(keep)]
    ind2 = np.concatenate([np.array(keep), rest[: B - len(keep)]])
    rng.shuffle(ind2)
    assert len(set(ind1)) == B and len(set(ind2)) == B and len(set(ind1) & set(ind2)) == 3
    return ind1.astype(np.int64), ind2.astype(np.int64)


def make_u(rng, K, special):
    u = rng.standard_normal((B, K)).astype(np.float32)
    if special:
        u[0, 0], u[1, 1], u[2, 2] = 0.0, 1.0, -1.0
    return u


def run(loss, batches, params=()):
    """Feeds the batches through one loss object; returns losses, d/du and d/d params per batch."""
    losses, grads, pgrads = [], [], []
    for u_np, y_np, ind, epoch in batches:
        u = torch.tensor(u_np.astype(np.float64), requires_grad=True)
        for p in params:
            p.grad = None
        out = loss(u, torch.tensor(y_np.astype(np.float64)), torch.tensor(ind), epoch)
        out.backward()
        losses.append(out.item())
        grads.append(u.grad.numpy().astype(np.float32))
        pgrads.append([p.grad.numpy().astype(np.float32) for p in params])
    return np.array(losses), grads, pgrads


def label_file(name, C, multi, seed):
    rng = np.random.default_rng(seed)
    labels, zero_item = make_labels(rng, C, multi)
    ind1, ind2 = make_indices(rng, zero_item)
    out = {"labels": labels, "ind1": ind1, "ind2": ind2}
    y1, y2 = labels[ind1], labels[ind2]
    yd1 = torch.tensor(y1, dtype=torch.float64)
    # Coverage checks on the data itself: both kinds of pair must occur, and (multi) IDHN soft pairs.
    assert ((yd1 @ yd1.t()) > 0).sum() > B and ((yd1 @ yd1.t()) == 0).sum() > 0
    for K in KS:
        u1, u2 = make_u(rng, K, True), make_u(rng, K, False)
        bound = 1.0 / math.sqrt(K)
        W = rng.uniform(-bound, bound, (C, K)).astype(np.float32)
        T = balanced_rows(rng, C, K, K // 2)
        tie = rng.integers(0, 2, K).astype(np.uint8)
        out.update({f"u1_K{K}": u1, f"u2_K{K}": u2, f"W_K{K}": W, f"dpn_T_K{K}": T, f"tie_K{K}": tie})

        def batches(epoch):
            return [(u1, y1, ind1, epoch), (u2, y2, ind2, epoch)]

        cases = {
            "dsh": (Dsh(K, C, False), 0),
            "dsh_compat": (Dsh(K, C, True), 0),
            "hashnet": (HashNet(K, C, False), 0),
            "hashnet_e45": (HashNet(K, C, False), 45),
            "hashnet_compat": (HashNet(K, C, True), 45),
            "greedyhash_imagenet": (GreedyHash(torch.tensor(W.astype(np.float64)), 1.0), 0),
            "idhn": (Idhn(K, C), 0),
            "csq": (Csq(csq_table(C, K), multi, tie), 0),
            "dpn": (Dpn(K, C, T, multi, tie), 0),
        }
        for case, (loss, epoch) in cases.items():
            vals, du, _ = run(loss, batches(epoch))
            out.update({f"{case}_K{K}_loss": vals, f"{case}_K{K}_du1": du[0], f"{case}_K{K}_du2": du[1]})
        Wt = torch.tensor(W.astype(np.float64), requires_grad=True)
        vals, du, dW = run(GreedyHash(Wt, 0.1), batches(0), params=[Wt])
        out.update({f"greedyhash_K{K}_loss": vals, f"greedyhash_K{K}_du1": du[0], f"greedyhash_K{K}_du2": du[1],
                    f"greedyhash_K{K}_dW1": dW[0][0], f"greedyhash_K{K}_dW2": dW[1][0]})
        if multi:
            # IDHN must see soft pairs in batch 1 against the bank (some s in [0.01, 0.99]).
            Yb = torch.zeros(N, C)
            Yb[ind1] = yd1
            s = (yd1 @ Yb.t()) / (yd1.norm(dim=1)[:, None] * Yb.norm(dim=1)[None, :] + 1e-5)
            assert ((s >= 0.01) & (s <= 0.99)).sum() > 0, "no IDHN soft pair"
    np.savez_compressed(os.path.join(OUT, name), **out)


def csq_fallback_file(seed):
    """CSQ with C = 100 classes and K = 16 bits: rows 32..99 are balanced random rows (stored)."""
    rng = np.random.default_rng(seed)
    C, K = 100, 16
    rows = balanced_rows(rng, C - 2 * K, K, K // 2)
    T = csq_table(C, K, rows)
    labels = np.zeros((B, C), np.uint8)
    classes = np.array([0, 5, 31, 32, 57, 99, 99, 64])  # Hadamard rows, -H rows and random rows
    labels[np.arange(B), classes] = 1
    u = make_u(rng, K, True)
    vals, du, _ = run(Csq(T, False, None), [(u, labels, np.arange(B), 0)])
    np.savez_compressed(os.path.join(OUT, "csq_c100.npz"), centers=T, labels=labels, u=u, loss=vals, du=du[0])


def centers_file():
    out = {f"hadamard_K{K}": hadamard(K) for K in (1, 2, 4, 8, 16, 32, 64)}
    for C, K in ((10, 16), (21, 16), (32, 16), (80, 64), (100, 64)):
        out[f"csq_C{C}_K{K}"] = csq_table(C, K)
    np.savez_compressed(os.path.join(OUT, "centers.npz"), **out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    label_file("single.npz", 10, False, seed=20240601)
    label_file("multi.npz", 21, True, seed=20240602)
    csq_fallback_file(seed=20240603)
    centers_file()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1024:.1f} KiB")
