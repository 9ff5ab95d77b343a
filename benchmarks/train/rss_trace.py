#!/usr/bin/env python3
"""Runs a command and samples its resident memory (VmRSS in /proc/PID/status) every 0.1 s.

Prints one JSON line: the command, its exit status, wall seconds, the peak RSS in KiB (the unit of
/usr/bin/time's "Maximum resident set size") and when it was reached. With --trace FILE the
samples go there too ("seconds KiB" per line), to see which phase of a run (training, evaluation,
writing a checkpoint) holds the peak; /usr/bin/time gives only the peak.

  benchmarks/train/rss_trace.py --trace rss.txt -- build/examples/vts/vts train --config b16 ...
"""
import argparse
import json
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", help="write the samples here")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given (put it after --)")

    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    samples = []
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        samples.append((time.monotonic() - start, int(line.split()[1])))
        except (FileNotFoundError, ProcessLookupError):
            pass  # exited between poll() and open()
        time.sleep(args.interval)
    wall = time.monotonic() - start
    if args.trace:
        with open(args.trace, "w") as out:
            out.writelines(f"{t:.2f} {kib}\n" for t, kib in samples)
    peak_at, peak = max(samples, key=lambda s: s[1]) if samples else (0.0, 0)
    print(json.dumps({"command": command, "rc": proc.returncode, "wall_s": round(wall, 2),
                      "peak_rss_kib": peak, "peak_at_s": round(peak_at, 2), "samples": len(samples)}))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
