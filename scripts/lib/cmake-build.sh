# shellcheck shell=bash
# Sourced by the scripts that configure and build a folder of their own (scripts/build,
# scripts/run-sanitized-tests, tests/core/check_avx2_build.sh): the generator choice, a quiet
# build of a few targets, and finding a built program.

# cmake_configure SOURCE_DIR BUILD_DIR [CMAKE_ARGS...]
# A new build folder uses Ninja when present; an existing one keeps the generator it was made
# with (cmake refuses to change it).
cmake_configure() {
  local src=$1 build=$2
  shift 2
  local generator=()
  if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  cmake -S "$src" -B "$build" "${generator[@]}" "$@" >/dev/null
}

# cmake_build_quietly BUILD_DIR WHAT TARGET...
# Builds the targets into BUILD_DIR/build.log, shown (its end) only when the build fails: the log
# is long (GCC's false -Wmaybe-uninitialized notes inside Eigen's AVX-512 code). WHAT names the
# build in the failure message.
cmake_build_quietly() {
  local build=$1 what=$2
  shift 2
  local targets=() t
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$build" -j "$(nproc)" "${targets[@]}" >"$build/build.log" 2>&1 ||
    { tail -n 60 "$build/build.log"; echo "$what failed; full log: $build/build.log"; return 1; }
}

# built_program BUILD_DIR NAME: prints the path of the executable NAME under BUILD_DIR/tests, or
# says it was not built and fails.
built_program() {
  local exe
  exe=$(find "$1/tests" -type f -name "$2" -perm -u+x | head -n 1)
  [[ -n $exe ]] || { echo "$2 was not built in $1" >&2; return 1; }
  echo "$exe"
}
