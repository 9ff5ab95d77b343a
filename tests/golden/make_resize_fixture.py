#!/usr/bin/python3
"""Writes tests/golden/data_resize_pil.txt: PIL's BILINEAR resize of small random 8-bit images,
and the torchvision-0.5 eval pipeline (Resize(int) on the shorter side, CenterCrop, ToTensor,
Normalize with ImageNet mean/std) on two more. tests/data/test_image.cpp compares vts::data's
resize and transform against it, so the C++ test needs no Python.

Run with Debian's interpreter (python3-pil, python3-numpy):  /usr/bin/python3 tests/golden/make_resize_fixture.py

File format (whitespace-separated tokens; one record per case):
  resize   NAME C IN_H IN_W OUT_H OUT_W       then IN_H*IN_W*C input bytes (HWC),
           R r_1..r_R  K c_1..c_K             the output rows and columns that were kept,
           R*K*C output bytes (HWC over the kept rows/columns)
  pipeline NAME C IN_H IN_W SHORTER CROP      then IN_H*IN_W*C input bytes (HWC),
           C*CROP*CROP floats (CHW, normalised)
"""
import os

import numpy as np
import PIL
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_pil(a):
    return Image.fromarray(a, "RGB" if a.ndim == 3 else "L")


def as_hwc(img):
    a = np.asarray(img)
    return a if a.ndim == 3 else a[:, :, None]


def resize_case(out, rng, name, c, in_h, in_w, out_h, out_w, rows=None, cols=None):
    shape = (in_h, in_w, c) if c == 3 else (in_h, in_w)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    r = as_hwc(to_pil(a).resize((out_w, out_h), Image.BILINEAR))
    rows = list(range(out_h)) if rows is None else rows
    cols = list(range(out_w)) if cols is None else cols
    out.append(f"resize {name} {c} {in_h} {in_w} {out_h} {out_w}")
    out.append(" ".join(map(str, a.reshape(-1))))
    out.append(f"{len(rows)} " + " ".join(map(str, rows)) + f" {len(cols)} " + " ".join(map(str, cols)))
    out.append(" ".join(map(str, r[np.ix_(rows, cols)].reshape(-1))))


def pipeline_case(out, rng, name, in_h, in_w, shorter, crop):
    a = rng.integers(0, 256, size=(in_h, in_w, 3), dtype=np.uint8)
    img = to_pil(a)
    # torchvision 0.5 transforms.functional.resize with an int size.
    w, h = img.size
    if not ((w <= h and w == shorter) or (h <= w and h == shorter)):
        if w < h:
            ow, oh = shorter, int(shorter * h / w)
        else:
            oh, ow = shorter, int(shorter * w / h)
        img = img.resize((ow, oh), Image.BILINEAR)
    # torchvision 0.5 center_crop: Python 3 round(), halves to even.
    w, h = img.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    t = np.asarray(img).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    t = (t - MEAN[:, None, None]) / STD[:, None, None]
    out.append(f"pipeline {name} 3 {in_h} {in_w} {shorter} {crop}")
    out.append(" ".join(map(str, a.reshape(-1))))
    out.append(" ".join(f"{v:.9g}" for v in t.reshape(-1)))


def main():
    rng = np.random.default_rng(20240611)
    out = [f"vts-resize-fixture 1 pillow {PIL.__version__}"]
    resize_case(out, rng, "up_rgb", 3, 6, 8, 19, 27)
    resize_case(out, rng, "down_rgb", 3, 30, 40, 7, 11)
    resize_case(out, rng, "mixed_grey", 1, 9, 20, 16, 7)
    resize_case(out, rng, "factor10_grey", 1, 50, 37, 5, 4)
    keep = list(range(0, 224, 7)) + [223]
    resize_case(out, rng, "cifar_grey", 1, 32, 32, 224, 224, keep, keep)
    pipeline_case(out, rng, "landscape", 23, 31, 17, 14)  # 17x22, crop offsets round(1.5)=2, 4
    pipeline_case(out, rng, "portrait", 31, 22, 16, 13)   # 22x16, crop offsets round(4.5)=4, round(1.5)=2
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_resize_pil.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
