#!/usr/bin/python3
"""Writes the small files that tests/io reads back: .npy and .npz written by numpy itself, and
.safetensors written byte by byte with struct + json (the format is simple enough that the
`safetensors` package is not needed). The C++ tests recompute every expected value from the
formulas below, so keep the two in step when changing either.

Run from anywhere:  /usr/bin/python3 tests/golden/make_io_fixtures.py
"""
import io
import json
import os
import struct
import time
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io")


def path(name):
    return os.path.join(OUT, name)


def bf16_bits(values):
    """float32 -> bfloat16 bit patterns, round to nearest even (what torch and vts::bf16 do)."""
    u = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def write_npy_version(name, arr, version):
    with open(path(name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version)


def write_safetensors(name, tensors, metadata=None):
    """tensors: list of (key, dtype string, shape, raw little-endian bytes), stored in that order."""
    header = {}
    offset = 0
    blobs = []
    for key, dtype, shape, raw in tensors:
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path(name), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def assert_zip64_members(name):
    """numpy's savez opens every member with force_zip64=True; check the files really carry the
    zip64 extra field (id 0x0001) in their local headers, so the C++ test covers zip64."""
    with open(path(name), "rb") as f:
        data = f.read()
    with zipfile.ZipFile(path(name)) as z:
        for info in z.infolist():
            off = info.header_offset
            assert data[off:off + 4] == b"PK\x03\x04"
            name_len, extra_len = struct.unpack("<HH", data[off + 26:off + 30])
            extra = data[off + 30 + name_len:off + 30 + name_len + extra_len]
            assert extra[:2] == b"\x01\x00", (name, info.filename, extra)


def main():
    os.makedirs(OUT, exist_ok=True)
    # np.savez stamps members with the current time; pin the clock so that rerunning the script
    # reproduces the committed fixtures byte for byte.
    os.environ["TZ"] = "UTC"
    time.tzset()
    time.time = lambda: 1577836800.0  # 2020-01-01

    # --- .npy ----------------------------------------------------------------------------------
    np.save(path("f32_2x3.npy"), (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    np.save(path("f64_scalar.npy"), np.array(np.pi, dtype=np.float64))
    np.save(path("f16_7.npy"), np.array([0, 1, -2.5, 65504, 2.0**-24, np.inf, np.nan], dtype=np.float16))
    np.save(path("i64_4.npy"), np.array([-(2**40), -1, 0, 2**40 + 7], dtype=np.int64))
    np.save(path("bool_2x2.npy"), np.array([[True, False], [False, True]]))
    np.save(path("u8_5.npy"), np.array([0, 1, 127, 128, 255], dtype=np.uint8))
    np.save(path("empty_0x3.npy"), np.zeros((0, 3), dtype=np.float32))
    # Fortran order: element [i, j, k] is i*12 + j*4 + k, stored with i varying fastest.
    np.save(path("fortran_f32_2x3x4.npy"), np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
    # Big-endian, and big-endian + Fortran order together.
    np.save(path("be_f8_3x2.npy"), (np.arange(6) / 4).reshape(3, 2).astype(">f8"))
    np.save(path("be_i4_fortran_3x4.npy"), np.asfortranarray((np.arange(12) - 6).reshape(3, 4).astype(">i4")))
    # Header format versions 2.0 and 3.0 (numpy only picks them itself for huge headers).
    write_npy_version("v2_i16_3.npy", np.array([-300, 0, 300], dtype=np.int16), (2, 0))
    write_npy_version("v3_u32_2.npy", np.array([7, 4000000000], dtype=np.uint32), (3, 0))
    # bfloat16 as numpy stores ml_dtypes.bfloat16: raw 2-byte voids.
    np.save(path("bf16_v2_4.npy"), bf16_bits([1.0, -2.0, 0.15625, 3.0e38]).view("V2"))
    for name in ("be_f8_3x2.npy", "be_i4_fortran_3x4.npy"):
        assert np.load(path(name)).dtype.byteorder == ">", name
    # An object array: must be refused, not unpickled.
    np.save(path("object_2.npy"), np.array([1, "a"], dtype=object), allow_pickle=True)

    # --- .npz ----------------------------------------------------------------------------------
    members = {
        "weights": (np.arange(12, dtype=np.float32) / 8).reshape(3, 4),
        "labels": np.array([3, 1, 4, 1, 5], dtype=np.int64),
        "mask": np.array([True, False, True]),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "i32": np.array([-(2**31), 2**31 - 1], dtype=np.int32),
        "u16": np.array([0, 65535], dtype=np.uint16),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "half": np.array([0.5, -0.25], dtype=np.float16),
        "scalar": np.array(2.5, dtype=np.float64),
        "Transformer/encoderblock_0/LayerNorm_0/scale": np.linspace(0, 1, 5, dtype=np.float32),
    }
    np.savez(path("stored.npz"), **members)
    np.savez_compressed(path("deflated.npz"), **members)
    assert_zip64_members("stored.npz")
    assert_zip64_members("deflated.npz")
    # A member that compresses well, so the deflated path really inflates many bytes.
    np.savez_compressed(path("deflated_big.npz"), zeros=np.zeros((64, 64), dtype=np.float32),
                        ramp=np.arange(1000, dtype=np.int32))
    # Written by plain zipfile without zip64 (other tools do this), members stored and deflated.
    with zipfile.ZipFile(path("plain_zip.npz"), "w") as z:
        for key, comp in (("a", zipfile.ZIP_STORED), ("b", zipfile.ZIP_DEFLATED)):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.arange(4, dtype=np.float32) + (10 if key == "b" else 0))
            z.writestr(zipfile.ZipInfo(key + ".npy", date_time=(2020, 1, 1, 0, 0, 0)), buf.getvalue(),
                       compress_type=comp)
    np.savez(path("empty.npz"))
    # A member that is not an .npy image, and two members that map to the same key.
    with zipfile.ZipFile(path("not_npy.npz"), "w") as z:
        z.writestr("readme.txt", b"this is not an array\n")
    with zipfile.ZipFile(path("dup_key.npz"), "w") as z:
        for name in ("a.npy", "a"):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.zeros(2, dtype=np.float32))
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), buf.getvalue())

    # --- .safetensors --------------------------------------------------------------------------
    f32 = (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(2, 3)
    tensors = [
        ("weight", "F32", (2, 3), f32.tobytes()),
        ("ids", "I64", (4,), np.array([-5, 0, 5, 2**50], dtype="<i8").tobytes()),
        ("flags", "BOOL", (2, 2), np.array([1, 0, 0, 1], dtype=np.uint8).tobytes()),
        ("half", "F16", (3,), np.array([1.5, -0.0, 1024], dtype="<f2").tobytes()),
        ("brain", "BF16", (3,), bf16_bits([1.0, -3.5, 0.1]).astype("<u2").tobytes()),
        ("bytes", "U8", (3,), bytes([0, 200, 255])),
        ("small", "I8", (2,), np.array([-7, 7], dtype=np.int8).tobytes()),
        ("shorts", "I16", (2,), np.array([-1000, 1000], dtype="<i2").tobytes()),
        ("ints", "I32", (1, 2), np.array([-70000, 70000], dtype="<i4").tobytes()),
        ("scalar", "F64", (), np.array(2.0**0.5, dtype="<f8").tobytes()),
        ("nothing", "F32", (0, 2), b""),
    ]
    write_safetensors("basic.safetensors", tensors, {"format": "pt", "note": "vts fixture"})
    write_safetensors("no_metadata.safetensors", [("x", "F32", (2,), np.array([1, 2], dtype="<f4").tobytes())])

    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
