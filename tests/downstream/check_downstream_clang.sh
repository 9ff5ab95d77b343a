#!/usr/bin/env bash
# Builds tests/downstream/project with Clang, VTS as a subfolder, optimised and with every warning an
# error, and runs it: the library is header-only, so a user compiling with Clang compiles all of it
# (CI builds everything else with GCC). Besides the two small programs it compiles and runs
# examples/hashing (the whole pipeline: ViT, head, loss, trainer, codes, mAP, search), which exits
# non-zero below its mAP bar. -O3 matters: Clang's loop diagnostics (-Wpass-failed) come from the
# optimiser, and they land in the user's code.
# Exit 77 (ctest: Skipped) only where no Clang is installed; scripts/install-deps installs it.
set -euo pipefail
src=$1
cxx=${VTS_CLANG_CXX:-$(command -v clang++ || true)}
if [[ -z $cxx ]]; then
  echo "no clang++ on PATH (scripts/install-deps installs Debian's clang and libomp-dev)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/tests/downstream/project" -B "$work/sub" "${gen[@]}" -DVTS_USE=subdirectory \
  -DVTS_SOURCE_DIR="$src" -DVTS_CUDA=OFF -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" -DVTS_DOWNSTREAM_HASHING_EXAMPLE=ON >/dev/null
# The three programs it runs (not downstream_blas: the same main.cpp again, 16 s of Clang's time).
cmake --build "$work/sub" --target downstream downstream_data_io downstream_hashing
"$cxx" --version | head -1
"$work/sub/downstream"
"$work/sub/downstream_data_io"
# One thread, as the GCC build's example test (ctest runs other tests beside this one).
OMP_NUM_THREADS=1 "$work/sub/downstream_hashing" --quiet
