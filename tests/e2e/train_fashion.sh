#!/usr/bin/env bash
# Trains ViTTiny28 + CSQ, 64 bits, for 4 epochs on the 5,000 Fashion-MNIST training images and
# evaluates on the full protocol (1,000 queries, 64,000 database items). Passes when mAP ≥ 0.55
# and every output file is there. (Measured 2026-11-28 on the 2-core build machine: 0.651.) Then
# checks that one epoch at 1 and at 2 threads gives the same bits, and that --device cuda without
# a GPU, and --precision bf16 or --cuda-graphs on the CPU, are clear errors.
# Usage: train_fashion.sh VTS [RUN_DIR]. With RUN_DIR the run is written there (emptied first) and
# kept: the retrieval test uses it instead of training a model of its own (a ctest fixture).
set -euo pipefail
vts=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run=$out
if [[ -n ${2:-} ]]; then
  run=$2
  rm -rf "$run"
fi
"$vts" train --epochs 4 --eval-every 4 --out "$run" --quiet
for f in metrics.json query_codes.npy db_codes.npy query_labels.npy db_labels.npy pr_curve.json pr_curve.svg \
         best.safetensors; do
  [[ -s "$run/$f" ]] || { echo "missing output $f"; exit 1; }
done
map=$(sed -n 's/^  "map": \([0-9.eE+-]*\),*$/\1/p' "$run/metrics.json")
echo "mAP = $map"
awk -v m="$map" 'BEGIN { exit !(m >= 0.55) }' || { echo "mAP $map is below the bar 0.55"; exit 1; }

# The thread count does not change the bits (docs/ops.md, "Threads"): one epoch at 1 and at 2
# threads ends with the same losses, codes, and bytes in every tensor of the checkpoint (its JSON
# header differs: timings).
tensor_bytes() {  # a safetensors file after its 8-byte length and JSON header
  local header
  header=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  tail -c +$((9 + header)) "$1"
}
for threads in 1 2; do
  "$vts" train --epochs 1 --eval-every 1 --threads "$threads" --out "$out/threads$threads" --quiet
done
for f in query_codes.npy db_codes.npy; do
  cmp -s "$out/threads1/$f" "$out/threads2/$f" || { echo "$f differs between 1 and 2 threads"; exit 1; }
done
source "$(dirname "$0")/run_metrics.sh"
one=$(loss_history "$out/threads1")
two=$(loss_history "$out/threads2")
[[ -n $one && $one == "$two" ]] || { echo "the losses differ between 1 and 2 threads: $one against $two"; exit 1; }
cmp -s <(tensor_bytes "$out/threads1/last.safetensors") <(tensor_bytes "$out/threads2/last.safetensors") ||
  { echo "the checkpoint's tensors differ between 1 and 2 threads"; exit 1; }

# --device cuda without a usable GPU (no device, or a build without vts::cuda) is a clear error
# that names the flag and leaves no output folder; with a GPU it trains like the CPU run.
if "$vts" train --device cuda --epochs 1 --out "$out/cuda" --quiet 2>"$out/cuda.err" >/dev/null; then
  [[ -s "$out/cuda/metrics.json" ]] || { echo "--device cuda succeeded but wrote no metrics.json"; exit 1; }
else
  grep -q -- "--device cuda" "$out/cuda.err" || { echo "--device cuda failed without naming the flag:"; cat "$out/cuda.err"; exit 1; }
  [[ ! -e "$out/cuda" ]] || { echo "--device cuda failed but created $out/cuda"; exit 1; }
fi

# --precision bf16 on the CPU is refused before anything runs, naming both flags.
if "$vts" train --precision bf16 --epochs 1 --out "$out/bf16" --quiet 2>"$out/bf16.err" >/dev/null; then
  echo "--precision bf16 without --device cuda should fail"; exit 1
fi
grep -q -- "--precision bf16 needs --device cuda" "$out/bf16.err" || { echo "unexpected error:"; cat "$out/bf16.err"; exit 1; }
[[ ! -e "$out/bf16" ]] || { echo "--precision bf16 failed but created $out/bf16"; exit 1; }

# The loss's hyperparameters as the run used them (the reference's, no --loss-param given).
tr -d ' \n' <"$run/metrics.json" | grep -q '"loss_params":{"lambda":0.0001}' ||
  { echo "metrics.json should list the loss's hyperparameters"; exit 1; }

# CUDA graphs are CUDA's default: the CPU run records them off, and asking for them on the CPU is refused.
grep -q '"cuda_graphs": false' "$run/metrics.json" || { echo "metrics.json of a CPU run should say cuda_graphs false"; exit 1; }
if "$vts" train --cuda-graphs --epochs 1 --out "$out/graphs" --quiet 2>"$out/graphs.err" >/dev/null; then
  echo "--cuda-graphs without --device cuda should fail"; exit 1
fi
grep -q -- "--cuda-graphs applies to --device cuda" "$out/graphs.err" || { echo "unexpected error:"; cat "$out/graphs.err"; exit 1; }
[[ ! -e "$out/graphs" ]] || { echo "--cuda-graphs failed but created $out/graphs"; exit 1; }
