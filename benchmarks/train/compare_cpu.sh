#!/usr/bin/env bash
# The CPU training step and encoding (the forward of `vts encode`) of VTS and of the PyTorch peer,
# alternating per configuration so that all see the same machine: tiny, small and b16 at 1 and 2
# threads, and the peer once more at 2 threads with OMP_WAIT_POLICY=PASSIVE (its OpenMP team
# otherwise spins against OpenBLAS's threads). One JSON line per run (docs/perf.md, "Training step
# (CPU)" and "Encoding, and the GEMM library"). Needs each build's vts_bench_train and Debian's
# python3-torch.
# Usage: benchmarks/train/compare_cpu.sh [--mode train|encode|both] [BUILD_DIR...]
#   (default: both modes, build/). Several build folders are timed side by side, e.g. build/ and a
#   -DVTS_BLAS=ON build, to compare their GEMM paths in one run.
# Environment: PEER_PYTHON (default /usr/bin/python3) picks the PyTorch to compare with.
set -euo pipefail
cd "$(dirname "$0")/../.."
modes=(train encode)
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,11s/^# \{0,1\}//p' "$0"
  exit 0
fi
if [[ ${1:-} == --mode ]]; then
  case ${2:-} in
    train | encode) modes=("$2") ;;
    both) ;;
    *) echo "compare_cpu.sh: --mode expects train, encode or both, got '${2:-}'" >&2; exit 2 ;;
  esac
  shift 2
fi
builds=("$@")
((${#builds[@]})) || builds=(build)
for b in "${builds[@]}"; do
  [[ -x $b/benchmarks/train/vts_bench_train ]] ||
    { echo "compare_cpu.sh: $b/benchmarks/train/vts_bench_train not found; build it first (ninja -C $b vts_bench_train)" >&2; exit 1; }
done
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment (this build machine sets Haswell and
# 512) override the kernels OpenBLAS picks for the CPU: unset for every run, so the peer and a
# -DVTS_BLAS=ON build both get OpenBLAS's AVX-512 kernels.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
peer() { "${PEER_PYTHON:-/usr/bin/python3}" benchmarks/train/pytorch_train_step.py "$@"; }
# Without PyTorch the first peer run failed after VTS's first line was printed: a partial output
# that summarize_cpu.py would turn into a table without peers.
"${PEER_PYTHON:-/usr/bin/python3}" -c 'import torch' 2>/dev/null ||
  { echo "compare_cpu.sh: ${PEER_PYTHON:-/usr/bin/python3} cannot import torch (Debian: apt install python3-torch; or set PEER_PYTHON)" >&2; exit 1; }
for mode in "${modes[@]}"; do
  # config, batch, timed steps, warm-up steps: training at the batch of the earlier tables,
  # encoding at vts encode's batch (256) where a step takes seconds at most, b16 at 32.
  if [[ $mode == train ]]; then specs=("tiny 64 30 3" "small 64 6 1" "b16 4 4 1"); else specs=("tiny 256 20 2" "small 256 4 1" "b16 32 2 1"); fi
  for spec in "${specs[@]}"; do
    set -- $spec
    for t in 1 2; do
      for b in "${builds[@]}"; do
        OMP_NUM_THREADS=$t "$b/benchmarks/train/vts_bench_train" --mode "$mode" --config "$1" --batch "$2" \
          --steps "$3" --warmup "$4" --threads "$t"
      done
      peer --mode "$mode" --config "$1" --batch "$2" --steps "$3" --warmup "$4" --threads "$t"
    done
    OMP_WAIT_POLICY=PASSIVE peer --mode "$mode" --config "$1" --batch "$2" --steps "$3" --warmup "$4" --threads 2
  done
done
