#!/usr/bin/env bash
# The CPU training step of VTS and of the PyTorch peer, alternating per configuration so that both
# see the same machine: tiny, small and b16 at 1 and 2 threads, and the peer once more at 2 threads
# with OMP_WAIT_POLICY=PASSIVE (its OpenMP team otherwise spins against OpenBLAS's threads). One
# JSON line per run (docs/perf.md, "Training step (CPU)"). Needs the build's vts_bench_train and
# Debian's python3-torch.
# Usage: benchmarks/train/compare_cpu.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=${1:-build}/benchmarks/train/vts_bench_train
[[ -x $bench ]] || { echo "compare_cpu.sh: $bench not found; build it first (ninja -C build vts_bench_train)" >&2; exit 1; }
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 benchmarks/train/pytorch_train_step.py "$@"; }
for spec in "tiny 64 30 3" "small 64 6 1" "b16 4 4 1"; do
  set -- $spec
  for t in 1 2; do
    OMP_NUM_THREADS=$t "$bench" --config "$1" --batch "$2" --steps "$3" --warmup "$4" --threads "$t"
    peer --config "$1" --batch "$2" --steps "$3" --warmup "$4" --threads "$t"
  done
  OMP_WAIT_POLICY=PASSIVE peer --config "$1" --batch "$2" --steps "$3" --warmup "$4" --threads 2
done
