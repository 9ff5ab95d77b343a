#!/usr/bin/env python3
"""Merges JSON lines from vts_bench_ops and pytorch_ops.py into one Markdown table.

    vts_bench_ops --threads 2 > vts.jsonl
    /usr/bin/python3 benchmarks/ops/pytorch_ops.py --threads 2 > torch.jsonl
    python3 benchmarks/ops/compare.py vts.jsonl torch.jsonl [more.jsonl ...]

When a (case, impl, threads) appears in several files (repeated runs), the run with the lowest
median is kept and the table says how many runs there were. "vts / best peer" is the ratio of
median times (below 1: VTS is faster); the peers of vts are every implementation but the layer
forms (vts_linear, pytorch_linear: x·Wᵀ + b), and vts_linear's peer is pytorch_linear.
"""
import json
import sys
from collections import defaultdict


# The fields each line must carry (vts_bench_ops and pytorch_ops.py print them all).
FIELDS = ("case", "impl", "shape", "threads", "median_ms", "min_ms", "metric", "value")


def fail(message):
    print(f"compare.py: {message}", file=sys.stderr)
    sys.exit(2)


def main(paths):
    # A missing file, a broken line or another benchmark's output used to end in a traceback (or,
    # for an empty file, in an empty table with exit status 0).
    runs = defaultdict(list)
    for path in paths:
        try:
            f = open(path)
        except OSError as e:
            fail(f"cannot read {path}: {e.strerror}")
        with f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if line.startswith("{"):
                    try:
                        r = json.loads(line)
                    except json.JSONDecodeError as e:
                        fail(f"{path}:{number}: not JSON ({e})")
                    missing = [k for k in FIELDS if k not in r]
                    if r.get("bench") != "ops" or missing:
                        fail(f"{path}:{number}: expected a line of vts_bench_ops or pytorch_ops.py (\"bench\": \"ops\" "
                             f"and {', '.join(FIELDS)}), found {line[:120]}")
                    runs[(r["case"], r["impl"], r["threads"])].append(r)
    if not runs:
        fail(f"no measurements in {', '.join(paths)}")
    best = {k: min(v, key=lambda r: r["median_ms"]) for k, v in runs.items()}
    cases = []
    for (case, _, threads) in best:
        if (case, threads) not in cases:
            cases.append((case, threads))
    unit = {"gflop_s": "GFLOP/s", "gb_s": "GB/s"}
    print("| case | shape | threads | impl | median ms | min ms | rate | runs | vts / best peer |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for case, threads in cases:
        rows = sorted((r for (c, _, t), r in best.items() if c == case and t == threads), key=lambda r: r["impl"])
        peers = [r for r in rows if r["impl"] not in ("vts", "vts_linear", "pytorch_linear")]
        best_peer = {"vts": min(peers, key=lambda r: r["median_ms"]) if peers else None,
                     "vts_linear": next((r for r in rows if r["impl"] == "pytorch_linear"), None)}
        for r in rows:
            ratio = ""
            peer = best_peer.get(r["impl"])
            if peer:
                ratio = "%.2f (vs %s)" % (r["median_ms"] / peer["median_ms"], peer["impl"])
            print("| %s | %s | %d | %s | %.3f | %.3f | %.1f %s | %d | %s |" % (
                case, r["shape"], threads, r["impl"], r["median_ms"], r["min_ms"], r["value"], unit[r["metric"]],
                len(runs[(case, r["impl"], threads)]), ratio))


if __name__ == "__main__":
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
