#!/usr/bin/env python3
"""Counts the SASS instructions of a kernel's loops, the way docs/cuda.md ("Exponentials") counts
the attention kernels' per-tile work without a device.

    scripts/sass-loop-count.py OBJECT KERNEL_PATTERN [--arch sm_90] [--cuobjdump PATH]

OBJECT is a compiled .cu.o (e.g. build/kernels/CMakeFiles/vts_cuda.dir/attention/attention_fwd_bf16.cu.o),
KERNEL_PATTERN a regular expression matched against the mangled kernel names. For every backward
branch (a BRA to a lower address) it prints the loop it closes: the instructions from the target to
the branch, and how many of them are MUFU.EX2, HMMA and HGMMA; with --whole, the kernel's total
instead. cuobjdump is not part of the toolkit installed here: docs/cuda.md, "Reading the machine code
without a device", says where to get it.
"""
import argparse
import re
import subprocess
import sys


def kernels(sass, arch, pattern):
    """{mangled name: [(address, instruction text)]} for the kernels of `arch` matching `pattern`."""
    found, current_arch, name = {}, None, None
    for line in sass.splitlines():
        if m := re.search(r"arch = (sm_\w+)", line):
            current_arch = m.group(1)
        elif m := re.search(r"Function : (\S+)", line):
            name = m.group(1)
        elif (m := re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)) and name and current_arch == arch:
            if re.search(pattern, name):
                found.setdefault(name, []).append((int(m.group(1), 16), m.group(2)))
    return found


def summary(instructions):
    texts = [t for _, t in instructions]
    return (f"instructions {len(texts)}, MUFU.EX2 {sum('MUFU.EX2' in t for t in texts)}, "
            f"HMMA {sum('HMMA' in t for t in texts)}, HGMMA {sum('HGMMA' in t for t in texts)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("object")
    ap.add_argument("pattern")
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--cuobjdump", default="cuobjdump")
    ap.add_argument("--whole", action="store_true", help="count each matching kernel whole, not its loops")
    args = ap.parse_args()
    try:
        sass = subprocess.run([args.cuobjdump, "-sass", args.object], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        sys.exit(f"sass-loop-count: could not run '{args.cuobjdump} -sass {args.object}': {err}")
    found = kernels(sass, args.arch, args.pattern)
    if not found:
        sys.exit(f"sass-loop-count: no {args.arch} kernel in {args.object} matches '{args.pattern}'")
    for name, instructions in sorted(found.items()):
        print(name)
        if args.whole:
            print("  whole kernel:", summary(instructions))
            continue
        for address, text in instructions:
            if (m := re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", text)) and int(m.group(1), 16) < address:
                head = int(m.group(1), 16)
                print(f"  loop {head:#x}..{address:#x}:", summary([(a, t) for a, t in instructions if head <= a <= address]))


if __name__ == "__main__":
    main()
