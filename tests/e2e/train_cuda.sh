#!/usr/bin/env bash
# `vts train --device cuda` through the whole program, on 100 Fashion-MNIST images written as class
# folders (10 a class: 90 train in batches of 32, two full and one partial a step, 10 queries):
#   - the default run replays CUDA graphs: metrics.json says so, with 3 graph steps in 2 epochs (an
#     epoch's first full batch of all runs op by op, the next is captured, partial batches never);
#   - `--no-cuda-graphs` gives the same loss history and mAP, bit for bit (as printed in metrics.json);
#   - `--resume` from a 1-epoch run's checkpoint ends where the 2-epoch run ended (graphs on: the
#     resumed process captures anew; the learning rate is still warming up after epoch 1, so the
#     1-epoch run's schedule was the 2-epoch run's, though vts warns that the epochs changed);
#   - bf16 trains with the graphs too.
# Without a usable device the script checks the error and exits 77 (ctest: Skipped). Run with
# vts_cli_emu (the program linked with vts-emu) it runs the device path on the CPU.
# Usage: train_cuda.sh VTS
set -euo pipefail
vts=$1
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/class_folders.sh"
write_class_folders "$data" "$out/photos" 10 "$out"

train() {  # train RUN_NAME ARGS...: a run on the folder, on the device
  local run=$1
  shift
  "$vts" train --dataset folder --data-dir "$out/photos" --batch 32 --device cuda --out "$out/$run" --quiet "$@" \
    >"$out/$run.txt" 2>"$out/$run.err"
}
if ! train graphs --epochs 2; then
  grep -q -- "--device cuda" "$out/graphs.err" || { cat "$out/graphs.err"; fail "--device cuda failed without naming the flag"; }
  echo "skipped: $(cat "$out/graphs.err")"
  exit 77
fi
grep -q "folder: 90 train / 10 query / 90 database" "$out/graphs.txt" || { cat "$out/graphs.txt"; fail "unexpected split"; }
metric() {  # metric RUN KEY: a top-level value of the run's metrics.json, as written
  tr -d ' \n' <"$out/$1/metrics.json" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2-
}
source "$(dirname "$0")/run_metrics.sh"
history() { loss_history "$out/$1"; }
map() { metric "$1" last_map; }  # the last evaluation's (the resumed run also lists its first run's)
tr -d ' \n' <"$out/graphs/metrics.json" | grep -q '"cuda_graphs":true' || fail "metrics.json: graphs not on by default"
[[ $(metric graphs graph_steps) == 3 ]] || fail "graph_steps $(metric graphs graph_steps), expected 3"
[[ $(metric graphs cuda_graphs_off) == '""' ]] || fail "graphs turned off: $(metric graphs cuda_graphs_off)"
[[ -n $(map graphs) ]] || fail "no mAP in metrics.json"

train eager --epochs 2 --no-cuda-graphs || { cat "$out/eager.err"; fail "--no-cuda-graphs failed"; }
tr -d ' \n' <"$out/eager/metrics.json" | grep -q '"cuda_graphs":false' || fail "--no-cuda-graphs: metrics.json says graphs"
[[ $(metric eager graph_steps) == 0 ]] || fail "--no-cuda-graphs replayed $(metric eager graph_steps) steps"
[[ $(history graphs) == "$(history eager)" ]] ||
  fail "losses with graphs $(history graphs), without $(history eager)"
[[ $(map graphs) == "$(map eager)" ]] || fail "mAP with graphs $(map graphs), without $(map eager)"

train first --epochs 1 || { cat "$out/first.err"; fail "1-epoch run failed"; }
train first --epochs 2 --resume "$out/first" || { cat "$out/first.err"; fail "--resume failed"; }
[[ $(history first) == "$(history graphs)" ]] ||
  fail "losses after --resume $(history first), uninterrupted $(history graphs)"
[[ $(map first) == "$(map graphs)" ]] || fail "mAP after --resume $(map first), uninterrupted $(map graphs)"

train bf16 --epochs 1 --precision bf16 || { cat "$out/bf16.err"; fail "--precision bf16 failed"; }
[[ $(metric bf16 graph_steps) == 1 ]] || fail "bf16: graph_steps $(metric bf16 graph_steps), expected 1"
echo "vts train --device cuda: graphs $(history graphs), mAP $(map graphs); the same without them and after --resume"
