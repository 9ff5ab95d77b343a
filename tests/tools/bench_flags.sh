#!/usr/bin/env bash
# The CPU benchmarks' command lines, as a user meets them: --help answers with the flags (exit 0);
# a bad flag or value is an error on stderr with a non-zero exit status and nothing on stdout (no
# line a compare script would read as a result); the smallest run prints JSON that the compare
# scripts read. A second or so in all: one case of vts_bench_ops, one step of the tiny model.
# Usage: bench_flags.sh REPO_ROOT OPS TRAIN EVAL [SEARCH]   (SEARCH: empty when built without FAISS)
set -uo pipefail
root=$1 ops=$2 train=$3 eval=$4 search=${5:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# expect_error CMD...: non-zero status, a message on stderr, nothing on stdout.
expect_error() {
  "$@" >"$dir/out" 2>"$dir/err"
  local rc=$?
  if ((rc == 0)) || [[ -s $dir/out || ! -s $dir/err ]]; then
    fail "$* (exit $rc; stdout: $(head -c 200 "$dir/out"); stderr: $(head -c 200 "$dir/err"))"
  fi
}
# expect_help CMD...: exit 0 and a usage text.
expect_help() {
  "$@" >"$dir/out" 2>&1 && grep -qi usage "$dir/out" || fail "$* did not print its usage with exit status 0"
}

expect_help "$ops" --help
expect_error "$ops" --bogus
expect_error "$ops" --reps 0
expect_error "$ops" --reps abc
expect_error "$ops" --threads -1
expect_error "$ops" --filter no_such_case
"$ops" --filter gemm_tiny_qkv --reps 1 --warmup 0 --threads 1 >"$dir/ops.jsonl" || fail "vts_bench_ops gemm_tiny_qkv"
grep -q '^{"bench":"ops","case":"gemm_tiny_qkv","impl":"vts",' "$dir/ops.jsonl" || fail "vts_bench_ops printed no vts line"

expect_help "$train" --help
expect_error "$train" --bogus
expect_error "$train" --steps 0
expect_error "$train" --steps abc
expect_error "$train" --threads -1
expect_error "$train" --config no_such_config
"$train" --config tiny --batch 1 --steps 1 --warmup 0 --threads 1 >"$dir/train.jsonl" || fail "vts_bench_train tiny"
grep -q '"step_ms_median"' "$dir/train.jsonl" || fail "vts_bench_train printed no step line"
# --label reaches the line in both modes (the encode line once left it out).
"$train" --config tiny --batch 1 --steps 1 --warmup 0 --threads 1 --mode encode --label enc_1 >"$dir/encode.jsonl" ||
  fail "vts_bench_train tiny --mode encode"
grep -q '"mode": "encode".*"label": "enc_1"' "$dir/encode.jsonl" || fail "vts_bench_train --mode encode lost its --label"
"$train" --config tiny --batch 1 --steps 1 --warmup 0 --threads 1 --label train_1 >"$dir/train_label.jsonl" ||
  fail "vts_bench_train tiny --label"
grep -q '"label": "train_1"' "$dir/train_label.jsonl" || fail "vts_bench_train lost its --label"

expect_help "$eval" --help
expect_error "$eval" --bits 12
expect_error "$eval" --threads -1
expect_error "$eval" --n 0
"$eval" --n 1000 --queries 10 --repeat 1 --threads 1 >"$dir/eval.jsonl" || fail "vts_bench_eval"
grep -q '"map"' "$dir/eval.jsonl" || fail "vts_bench_eval printed no map"

if [[ -n $search ]]; then
  expect_help "$search" --help
  expect_error "$search" --bits 12
  expect_error "$search" --n 100 -k 200
  "$search" --n 1000 --queries 10 -k 5 --repeat 1 --threads 1 >"$dir/search.jsonl" || fail "vts_bench_search"
  grep -q '"ok":true' "$dir/search.jsonl" || fail "vts_bench_search's distance check did not pass"
fi

if command -v python3 >/dev/null; then
  python3 -c 'import json, sys; [json.loads(l) for f in sys.argv[1:] for l in open(f)]' "$dir"/*.jsonl ||
    fail "a benchmark printed a line that is not JSON"
  python3 "$root/benchmarks/ops/compare.py" "$dir/ops.jsonl" >/dev/null || fail "ops compare.py on vts_bench_ops's lines"
  python3 "$root/benchmarks/train/summarize_cpu.py" "$dir/train.jsonl" >/dev/null ||
    fail "summarize_cpu.py on vts_bench_train's line"
  expect_error python3 "$root/benchmarks/ops/compare.py" "$dir/train.jsonl"
  expect_error python3 "$root/benchmarks/train/summarize_cpu.py" "$dir/ops.jsonl"
fi
((failed)) || echo ok
exit $failed
