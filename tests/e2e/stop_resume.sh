#!/usr/bin/env bash
# `vts train` stopped part way and resumed ends as the run never stopped: the fixture's run
# (`vts train --epochs 4 --eval-every 4`, tiny, CSQ, Fashion-MNIST) again, stopped by --time-limit
# (exit status 75), resumed and stopped again by SIGTERM (143), then resumed to the end. Its
# evaluation, loss history and best.safetensors must equal the fixture's, bit for bit, wherever
# the stops fell: inside an epoch (the next batch then comes from the saved position) or in the
# evaluation (run again on resume).
# Usage: stop_resume.sh VTS RUN_DIR (the unbroken run).
set -euo pipefail
vts=$(realpath "$1")
run=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$(dirname "$0")/run_metrics.sh"
source "$(dirname "$0")/stop_position.sh"
[[ -s $run/best.safetensors && -s $run/metrics.json ]] || fail "$run holds no finished vts train run"
train() { "$vts" train --epochs 4 --eval-every 4 --out "$out/run" --quiet "$@"; }

# The time limit counts from the start; three seconds lands in the training on the machines this
# ran on (the whole run takes 12-25 s), but anywhere is a stop this test accepts.
rc=0
train --time-limit 3 >"$out/first.txt" 2>&1 || rc=$?
((rc == 75)) || { cat "$out/first.txt"; fail "--time-limit 3: expected exit status 75, got $rc"; }
grep -q "stopped by --time-limit (0m03s) in .*; the training state is saved in $out/run/last.safetensors" \
  "$out/first.txt" || { cat "$out/first.txt"; fail "--time-limit: the stop does not say where the state is"; }
grep -o "stopped by [^;]*" "$out/first.txt"
[[ ! -e $out/run/metrics.json ]] || fail "a stopped run wrote metrics.json"
# vts info says where --resume goes on: inside an epoch (the stop line counts batches from 1), or
# the evaluation that did not finish.
"$vts" info "$out/run/last.safetensors" >"$out/info.txt"
expect_info_position "$out/first.txt" "$out/info.txt" ""
if grep -q "in the evaluation after epoch" "$out/first.txt"; then
  grep -q "the evaluation after epoch [0-9]* did not finish: --resume runs it first" "$out/info.txt" ||
    { cat "$out/info.txt"; fail "vts info does not say the evaluation is pending"; }
fi

# SIGTERM once the resumed run has read its checkpoint (the handler is in place by then); the
# program itself in the background, not a subshell running `train`, which the signal would end.
"$vts" train --epochs 4 --eval-every 4 --out "$out/run" --quiet --resume "$out/run" >"$out/second.txt" 2>&1 &
pid=$!
for _ in $(seq 200); do
  grep -q "resumed from" "$out/second.txt" && break
  sleep 0.05
done
grep -q "resumed from" "$out/second.txt" || { kill $pid; cat "$out/second.txt"; fail "the resumed run did not start"; }
kill -TERM $pid
rc=0
wait $pid || rc=$?
((rc == 143)) || { cat "$out/second.txt"; fail "SIGTERM: expected exit status 143, got $rc"; }
grep -q "stopped by SIGTERM in " "$out/second.txt" || { cat "$out/second.txt"; fail "SIGTERM: no stop message"; }
grep -o "stopped by [^;]*" "$out/second.txt"

train --resume "$out/run" >"$out/third.txt"
[[ -n $(evaluations "$run") && $(evaluations "$out/run") == "$(evaluations "$run")" ]] ||
  fail "the evaluations differ from the unbroken run's: $(evaluations "$out/run") against $(evaluations "$run")"
[[ -n $(loss_history "$run") && $(loss_history "$out/run") == "$(loss_history "$run")" ]] ||
  fail "the loss history differs from the unbroken run's: $(loss_history "$out/run") against $(loss_history "$run")"
cmp -s "$out/run/best.safetensors" "$run/best.safetensors" || fail "best.safetensors differs from the unbroken run's"
for f in query_codes.npy db_codes.npy; do
  cmp -s "$out/run/$f" "$run/$f" || fail "$f differs from the unbroken run's"
done
echo "stop and resume: ok"
