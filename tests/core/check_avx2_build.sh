#!/usr/bin/env bash
# The core and optimizer tests built for a CPU with AVX2 and FMA but no AVX-512
# (-march=x86-64-v3, VTS_NATIVE off) and run. Every build machine since 2026-12-04 has had
# AVX-512, so a native build compiles only the AVX-512 branches of the panel GEMM, the float
# attention, dropout's masks and the Philox blocks; what an AVX2 CPU runs instead (the Philox
# blocks' AVX2 code, the general attention and mask loops, Eigen's GEMMs where the panel kernel is
# not compiled at all) would otherwise go unbuilt and untested.
# Usage: check_avx2_build.sh SOURCE_DIR BUILD_DIR (the build folder is kept: a rerun rebuilds only
# what changed). Exit 77 (ctest: Skipped) where this CPU cannot run x86-64-v3 code.
set -euo pipefail
src=$1
build=$2
cpu_flags=" $(grep -m 1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for needed in avx2 fma bmi2 movbe; do
  [[ $cpu_flags == *" $needed "* ]] || { echo "this CPU has no $needed: x86-64-v3 code cannot run here"; exit 77; }
done
# shellcheck source=scripts/lib/cmake-build.sh
source "$src/scripts/lib/cmake-build.sh"
cmake_configure "$src" "$build" -DCMAKE_BUILD_TYPE=Release -DVTS_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3 \
  -DVTS_CUDA=OFF -DVTS_BUILD_EXAMPLES=OFF -DVTS_BUILD_BENCHMARKS=OFF -DVTS_BUILD_TESTS=ON
programs=(vts_test_core vts_test_optim)
cmake_build_quietly "$build" "the AVX2 build" "${programs[@]}"
for p in "${programs[@]}"; do
  exe=$(built_program "$build" "$p")
  # The flags must have taken: an instruction on a 512-bit register would mean the AVX-512 code
  # was built after all (and would fault on an AVX2 CPU).
  zmm=$(objdump -d --no-show-raw-insn "$exe" | grep -c '%zmm' || true)
  [[ $zmm == 0 ]] || { echo "$p: $zmm instructions use zmm registers; expected none in an x86-64-v3 build"; exit 1; }
  echo "== $p (x86-64-v3: AVX2 and FMA, no AVX-512)"
  "$exe" -w NoTests
done
