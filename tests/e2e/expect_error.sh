# Sourced by the end-to-end scripts, which define `out` (their scratch folder) and `fail`.
# expect_error PATTERN COMMAND...: COMMAND must exit with status 1 (bad input is an error, never a
# crash) and print PATTERN, a grep regular expression; its output stays in $out/err.txt.
expect_error() {
  local pattern=$1
  shift
  local rc=0
  "$@" >"$out/err.txt" 2>&1 || rc=$?
  ((rc == 1)) || { cat "$out/err.txt"; fail "expected exit status 1, got $rc: $*"; }
  grep -q -- "$pattern" "$out/err.txt" || { cat "$out/err.txt"; fail "error does not mention '$pattern': $*"; }
}
