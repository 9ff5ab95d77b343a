#!/usr/bin/env bash
# Builds tests/downstream/project against VTS installed into a temporary prefix (find_package)
# and with VTS as a subfolder (add_subdirectory), and runs it both ways.
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src" -B "$work/vts-build" "${gen[@]}" -DVTS_BUILD_TESTS=OFF -DVTS_BUILD_EXAMPLES=OFF \
  -DVTS_BUILD_BENCHMARKS=OFF -DVTS_CUDA=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/vts-build" >/dev/null
cmake -S "$src/tests/downstream/project" -B "$work/pkg" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/pkg" >/dev/null
"$work/pkg/downstream"
if [[ -x $work/pkg/downstream_blas ]]; then "$work/pkg/downstream_blas"; fi
cmake -S "$src/tests/downstream/project" -B "$work/sub" "${gen[@]}" -DVTS_USE=subdirectory \
  -DVTS_SOURCE_DIR="$src" -DVTS_CUDA=OFF >/dev/null
cmake --build "$work/sub" >/dev/null
"$work/sub/downstream"
if [[ -x $work/sub/downstream_blas ]]; then "$work/sub/downstream_blas"; fi
# vts::data and vts::io, where this machine has their dependencies (the subfolder build defines
# them then); the installed package must export them too (it once left vts::data out, unnoticed
# while only vts::vts was tried from outside).
if [[ -x $work/sub/downstream_data_io ]]; then
  "$work/sub/downstream_data_io"
  "$work/pkg/downstream_data_io"
fi
