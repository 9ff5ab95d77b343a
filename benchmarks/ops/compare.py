#!/usr/bin/env python3
"""Merges JSON lines from vts_bench_ops and pytorch_ops.py into one Markdown table.

    vts_bench_ops --threads 2 > vts.jsonl
    /usr/bin/python3 benchmarks/ops/pytorch_ops.py --threads 2 > torch.jsonl
    python3 benchmarks/ops/compare.py vts.jsonl torch.jsonl [more.jsonl ...]

When a (case, impl, threads) appears in several files (repeated runs), the run with the lowest
median is kept and the table says how many runs there were. "vts / best peer" is the ratio of
median times (below 1: VTS is faster); the peers are every implementation other than vts and
vts_linear.
"""
import json
import sys
from collections import defaultdict


def main(paths):
    runs = defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    runs[(r["case"], r["impl"], r["threads"])].append(r)
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
        ours = next((r for r in rows if r["impl"] == "vts"), None)
        peers = [r for r in rows if r["impl"] not in ("vts", "vts_linear")]
        peer = min(peers, key=lambda r: r["median_ms"]) if peers else None
        for r in rows:
            ratio = ""
            if r is ours and peer:
                ratio = "%.2f (vs %s)" % (ours["median_ms"] / peer["median_ms"], peer["impl"])
            print("| %s | %s | %d | %s | %.3f | %.3f | %.1f %s | %d | %s |" % (
                case, r["shape"], threads, r["impl"], r["median_ms"], r["min_ms"], r["value"], unit[r["metric"]],
                len(runs[(case, r["impl"], threads)]), ratio))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
