#!/usr/bin/env python3
"""Writes tests/golden/vit/*: a small random ViT saved in Google's .npz layout and in timm's
safetensors layout, with its inputs and outputs, read by tests/weights/test_vit_weights.cpp.

Run with the Debian python (python3-torch 1.13, numpy, scipy):
    /usr/bin/python3 tests/golden/make_vit_golden.py

The model is written here from docs/reference/hashing-spec.md §6.2 in the shape of jeonsworld's
ViT-pytorch (separate query/key/value Linear layers, a stride-P convolution for the patches), not
from include/vts/nn/vit.hpp, and the two file layouts follow §6.3 (Google) and timm's names. So a
mistake in our loader's key map or transposes would have to be repeated here, independently, to
go unnoticed.

Model (config ViTGolden32 in the C++ test): 32x32 images, 3 channels, patch 8 (grid 4x4, 17
tokens), dim 48, 2 pre-LN blocks, 3 heads (Dh 16), MLP 96, LayerNorm eps 1e-6, erf GELU, class
token and learned position embeddings, final LayerNorm over all tokens.

Values. Every weight and input is rounded to bfloat16 and then held as float32/float64, so the
bfloat16 safetensors file, the float32 npz and the float64 reference all describe exactly the
same numbers. The reference forward pass runs in float64; the C++ test compares its float32 run
against it (the 1e-5 golden bound) and its float64 run (which isolates the key map from rounding).

Files
  vit_golden32.npz           Google layout (embedding/kernel HWIO, query/key/value kernels
                             (D, H, Dh), out/kernel (H, Dh, D), Dense kernels (in, out), ...),
                             float32, plus pre_logits/* and head/* that a loader must ignore.
                             Deflated (np.savez_compressed) to keep the fixtures small; the
                             stored layout of the real files is covered by the full-size test.
  vit_golden32.safetensors   timm layout (patch_embed.proj.weight [D, C, P, P], fused
                             attn.qkv [3D, D] rows q;k;v, head.* present), bfloat16.
  expected.npz
    images   float32 [2, 3, 32, 32]
    tokens   float64 [2, 17, 48]   final-LayerNorm output
    all.fc1.weight [16, 816], all.fc1.bias [16], all.fc2.weight [16, 16], all.fc2.bias [16]
             an all-token hash head (flatten token-major -> Linear -> ReLU -> Linear), under the
             names AllTokenHead::visit gives them with prefix "all". The paper's head is 1024
             wide; 16 keeps this file small and takes the same code path.
    cls.fc.weight [16, 48], cls.fc.bias [16]   a class-token hash head
    u_all, u_cls float64 [2, 16]  the heads' outputs (evaluation mode: no dropout)
    pos_g{6,3,1}      float32 [1, 1 + g*g, 48]  position embeddings on other grids, and
    pos_g{6,3,1}_to4  float32 [1, 17, 48]       jeonsworld's resize of them to the 4x4 grid
                                                (scipy.ndimage.zoom, order=1, CLS row kept)
"""
import json
import math
import os
import struct

import numpy as np
import scipy
import scipy.ndimage
import torch
import torch.nn.functional as F

torch.manual_seed(20240611)
torch.set_default_dtype(torch.float64)

IMAGE, C, P, D, DEPTH, H, M = 32, 3, 8, 48, 2, 3, 96
G = IMAGE // P
N = G * G + 1
DH = D // H
BITS, HIDDEN = 16, 16
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vit")


def bf16(t):
    """Rounds to the nearest bfloat16, keeps float64."""
    return t.to(torch.bfloat16).to(torch.float64)


def rand(*shape, std=1.0, mean=0.0):
    return bf16(torch.randn(*shape) * std + mean)


# ---- the model, as plain tensors (jeonsworld naming in spirit) --------------------------------
w = {
    "patch_w": rand(D, C, P, P, std=1 / math.sqrt(C * P * P)),  # Conv2d weight (out, in, kh, kw)
    "patch_b": rand(D, std=0.1),
    "cls": rand(1, 1, D, std=0.5),
    "pos": rand(1, N, D, std=0.5),
    "norm_w": rand(D, std=0.2, mean=1.0),
    "norm_b": rand(D, std=0.1),
}
for i in range(DEPTH):
    b = f"b{i}."
    w[b + "ln1_w"], w[b + "ln1_b"] = rand(D, std=0.2, mean=1.0), rand(D, std=0.1)
    # q and k larger than usual so the attention pattern is far from uniform and a head mix-up shows.
    for name, std in (("q", 2.0), ("k", 2.0), ("v", 1.0), ("out", 1.0)):
        w[b + name + "_w"] = rand(D, D, std=std / math.sqrt(D))  # Linear weight (out, in)
        w[b + name + "_b"] = rand(D, std=0.1)
    w[b + "ln2_w"], w[b + "ln2_b"] = rand(D, std=0.2, mean=1.0), rand(D, std=0.1)
    w[b + "fc1_w"], w[b + "fc1_b"] = rand(M, D, std=1 / math.sqrt(D)), rand(M, std=0.1)
    w[b + "fc2_w"], w[b + "fc2_b"] = rand(D, M, std=1 / math.sqrt(M)), rand(D, std=0.1)


def layer_norm(x, weight, bias):
    return F.layer_norm(x, (D,), weight, bias, eps=1e-6)


def forward(images):
    B = images.shape[0]
    x = F.conv2d(images, w["patch_w"], w["patch_b"], stride=P)  # [B, D, G, G]
    x = x.flatten(2).transpose(1, 2)  # row-major patch grid -> [B, G*G, D]
    x = torch.cat([w["cls"].expand(B, 1, D), x], dim=1) + w["pos"]
    for i in range(DEPTH):
        b = f"b{i}."
        h = layer_norm(x, w[b + "ln1_w"], w[b + "ln1_b"])

        def heads(t):
            return t.view(B, N, H, DH).permute(0, 2, 1, 3)  # head h owns features [h*DH, (h+1)*DH)

        q = heads(F.linear(h, w[b + "q_w"], w[b + "q_b"]))
        k = heads(F.linear(h, w[b + "k_w"], w[b + "k_b"]))
        v = heads(F.linear(h, w[b + "v_w"], w[b + "v_b"]))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DH), dim=-1)
        ctx = (att @ v).permute(0, 2, 1, 3).reshape(B, N, D)
        x = x + F.linear(ctx, w[b + "out_w"], w[b + "out_b"])
        h = layer_norm(x, w[b + "ln2_w"], w[b + "ln2_b"])
        h = F.gelu(F.linear(h, w[b + "fc1_w"], w[b + "fc1_b"]))  # exact (erf) GELU
        x = x + F.linear(h, w[b + "fc2_w"], w[b + "fc2_b"])
    return layer_norm(x, w["norm_w"], w["norm_b"])


images = bf16(torch.randn(2, C, IMAGE, IMAGE))
tokens = forward(images)

head = {
    "all.fc1.weight": rand(HIDDEN, N * D, std=1 / math.sqrt(N * D)),
    "all.fc1.bias": rand(HIDDEN, std=0.5),
    "all.fc2.weight": rand(BITS, HIDDEN, std=1 / math.sqrt(HIDDEN)),
    "all.fc2.bias": rand(BITS, std=0.1),
    "cls.fc.weight": rand(BITS, D, std=1 / math.sqrt(D)),
    "cls.fc.bias": rand(BITS, std=0.1),
}
flat = tokens.reshape(2, N * D)  # token-major: element t*D + c
u_all = F.linear(torch.relu(F.linear(flat, head["all.fc1.weight"], head["all.fc1.bias"])),
                 head["all.fc2.weight"], head["all.fc2.bias"])
u_cls = F.linear(tokens[:, 0], head["cls.fc.weight"], head["cls.fc.bias"])


def f32(t):
    return t.detach().numpy().astype(np.float32)


# ---- Google layout (hashing-spec §6.3) ---------------------------------------------------------
google = {
    "embedding/kernel": f32(w["patch_w"].permute(2, 3, 1, 0)),  # (out, in, kh, kw) -> HWIO
    "embedding/bias": f32(w["patch_b"]),
    "cls": f32(w["cls"]),
    "Transformer/posembed_input/pos_embedding": f32(w["pos"]),
    "Transformer/encoder_norm/scale": f32(w["norm_w"]),
    "Transformer/encoder_norm/bias": f32(w["norm_b"]),
    # In the in21k files these exist and the VTS loader skips them.
    "pre_logits/kernel": f32(rand(D, D)),
    "pre_logits/bias": f32(rand(D)),
    "head/kernel": f32(rand(D, 10)),
    "head/bias": f32(rand(10)),
}
for i in range(DEPTH):
    b, g = f"b{i}.", f"Transformer/encoderblock_{i}/"
    att = g + "MultiHeadDotProductAttention_1/"
    google[g + "LayerNorm_0/scale"], google[g + "LayerNorm_0/bias"] = f32(w[b + "ln1_w"]), f32(w[b + "ln1_b"])
    google[g + "LayerNorm_2/scale"], google[g + "LayerNorm_2/bias"] = f32(w[b + "ln2_w"]), f32(w[b + "ln2_b"])
    for flax, ours in (("query", "q"), ("key", "k"), ("value", "v")):
        # Flax DenseGeneral kernel: [in, heads, head_dim] = the Linear weight transposed, split.
        google[att + flax + "/kernel"] = f32(w[b + ours + "_w"].t().reshape(D, H, DH))
        google[att + flax + "/bias"] = f32(w[b + ours + "_b"].reshape(H, DH))
    google[att + "out/kernel"] = f32(w[b + "out_w"].t().reshape(H, DH, D))
    google[att + "out/bias"] = f32(w[b + "out_b"])
    google[g + "MlpBlock_3/Dense_0/kernel"] = f32(w[b + "fc1_w"].t())
    google[g + "MlpBlock_3/Dense_0/bias"] = f32(w[b + "fc1_b"])
    google[g + "MlpBlock_3/Dense_1/kernel"] = f32(w[b + "fc2_w"].t())
    google[g + "MlpBlock_3/Dense_1/bias"] = f32(w[b + "fc2_b"])

# ---- timm layout -------------------------------------------------------------------------------
timm = {
    "patch_embed.proj.weight": w["patch_w"],
    "patch_embed.proj.bias": w["patch_b"],
    "cls_token": w["cls"],
    "pos_embed": w["pos"],
    "norm.weight": w["norm_w"],
    "norm.bias": w["norm_b"],
    "head.weight": rand(10, D),
    "head.bias": rand(10),
}
for i in range(DEPTH):
    b, t = f"b{i}.", f"blocks.{i}."
    timm[t + "norm1.weight"], timm[t + "norm1.bias"] = w[b + "ln1_w"], w[b + "ln1_b"]
    timm[t + "attn.qkv.weight"] = torch.cat([w[b + "q_w"], w[b + "k_w"], w[b + "v_w"]], 0)
    timm[t + "attn.qkv.bias"] = torch.cat([w[b + "q_b"], w[b + "k_b"], w[b + "v_b"]], 0)
    timm[t + "attn.proj.weight"], timm[t + "attn.proj.bias"] = w[b + "out_w"], w[b + "out_b"]
    timm[t + "norm2.weight"], timm[t + "norm2.bias"] = w[b + "ln2_w"], w[b + "ln2_b"]
    timm[t + "mlp.fc1.weight"], timm[t + "mlp.fc1.bias"] = w[b + "fc1_w"], w[b + "fc1_b"]
    timm[t + "mlp.fc2.weight"], timm[t + "mlp.fc2.bias"] = w[b + "fc2_w"], w[b + "fc2_b"]


def write_safetensors_bf16(path, tensors):
    """The safetensors container written by hand (8-byte little-endian header length, JSON
    header, raw data) so the fixture does not depend on the safetensors package."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].contiguous().to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


# ---- position-embedding resize (hashing-spec §6.4), as jeonsworld's loader does it -------------
def resize_pos(posemb, gs_new):
    tok, grid = posemb[:, :1], posemb[0, 1:]
    gs_old = int(math.isqrt(len(grid)))
    grid = grid.reshape(gs_old, gs_old, -1)
    grid = scipy.ndimage.zoom(grid, (gs_new / gs_old, gs_new / gs_old, 1), order=1)
    return np.concatenate([tok, grid.reshape(1, gs_new * gs_new, -1)], axis=1)


expected = {
    "images": f32(images),
    "tokens": tokens.numpy(),
    "u_all": u_all.numpy(),
    "u_cls": u_cls.numpy(),
}
expected.update({k: f32(v) for k, v in head.items()})
for g_old in (6, 3, 1):
    src = f32(rand(1, 1 + g_old * g_old, D, std=0.5))
    expected[f"pos_g{g_old}"] = src
    expected[f"pos_g{g_old}_to4"] = resize_pos(src, G)
    assert expected[f"pos_g{g_old}_to4"].dtype == np.float32

os.makedirs(OUT, exist_ok=True)
np.savez_compressed(os.path.join(OUT, "vit_golden32.npz"), **google)
write_safetensors_bf16(os.path.join(OUT, "vit_golden32.safetensors"), timm)
np.savez_compressed(os.path.join(OUT, "expected.npz"), **expected)
print("scipy", scipy.__version__, "torch", torch.__version__)
for name in sorted(os.listdir(OUT)):
    print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")
