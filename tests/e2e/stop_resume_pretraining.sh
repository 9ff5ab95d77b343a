#!/usr/bin/env bash
# `vts train --pretrain-epochs` stopped inside the classifier pretraining and resumed ends as the
# run never stopped: PER_CLASS Fashion-MNIST test images of each class in ten class folders,
# ViTTiny28 pretrained as a classifier for PRETRAIN_EPOCHS epochs, then 1 epoch of CSQ. SIGTERM
# once the first pretraining epoch has ended (its progress line) stops the run inside the
# pretraining (exit status 143); the checkpoint says so in `vts info`, `vts encode` refuses it (no
# hash model yet), --resume with --pretrain-epochs 0 is refused, and --resume goes on from the saved
# batch: the evaluation, both loss histories (the pretraining's and the hash stage's) and
# best.safetensors equal the unbroken run's, bit for bit.
# Usage: stop_resume_pretraining.sh VTS PER_CLASS PRETRAIN_EPOCHS [TRAIN_FLAGS...] (e.g. --device
# cuda with the program linked with vts-emu: the device path, run on the CPU).
set -euo pipefail
vts=$(realpath "$1")
per_class=$2
pretrain_epochs=$3
shift 3
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$(dirname "$0")/class_folders.sh"
source "$(dirname "$0")/run_metrics.sh"
source "$(dirname "$0")/stop_position.sh"
write_class_folders "$data" "$out/photos" "$per_class" "$out"
common=(--dataset folder --data-dir "$out/photos" --epochs 1 "$@")
flags=("${common[@]}" --pretrain-epochs "$pretrain_epochs")

if ! "$vts" train "${flags[@]}" --out "$out/unbroken" --quiet >"$out/unbroken.txt" 2>"$out/unbroken.err"; then
  # --device cuda where there is no usable device: a clear error, and this test does not apply (77:
  # ctest's Skipped).
  [[ " $* " == *" --device cuda "* ]] && grep -q -- "--device cuda" "$out/unbroken.err" &&
    { echo "skipped: $(cat "$out/unbroken.err")"; exit 77; }
  cat "$out/unbroken.err"
  fail "the unbroken run failed"
fi

# Not --quiet: the progress line of each epoch's last step is the cue (stderr is not a terminal).
"$vts" train "${flags[@]}" --out "$out/run" >"$out/first.txt" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q "^pretrain epoch 1/$pretrain_epochs  step" "$out/first.txt" && break
  sleep 0.05
done
grep -q "^pretrain epoch 1/$pretrain_epochs  step" "$out/first.txt" ||
  { kill $pid; cat "$out/first.txt"; fail "no pretraining epoch ended"; }
kill -TERM $pid
rc=0
wait $pid || rc=$?
((rc == 143)) || { cat "$out/first.txt"; fail "SIGTERM: expected exit status 143, got $rc"; }
stop_line="stopped by SIGTERM in classifier pretraining epoch [0-9]*/$pretrain_epochs before its batch"
grep -q "$stop_line" "$out/first.txt" ||
  { cat "$out/first.txt"; fail "the stop did not fall inside the pretraining, or does not say so"; }
grep -o "stopped by [^;]*" "$out/first.txt"

"$vts" info "$out/run/last.safetensors" >"$out/info.txt"
grep -q "stopped in the classifier pretraining after [1-9][0-9]* of its epochs" "$out/info.txt" ||
  { cat "$out/info.txt"; fail "vts info does not say the checkpoint is inside the pretraining"; }
expect_info_position "$out/first.txt" "$out/info.txt" pretraining
rc=0
"$vts" encode --model "$out/run/last.safetensors" --data-dir "$out/photos" --out "$out/x.vtsidx" \
  >"$out/encode.txt" 2>&1 || rc=$?
((rc != 0)) && grep -q "saved inside the classifier pretraining .* it holds no hash model yet" "$out/encode.txt" ||
  { cat "$out/encode.txt"; fail "vts encode of a pretraining checkpoint: expected a refusal that says why"; }
rc=0
"$vts" train "${common[@]}" --pretrain-epochs 0 --out "$out/run" --resume "$out/run" >"$out/zero.txt" 2>&1 || rc=$?
refusal="stopped in classifier pretraining epoch [0-9]*; it goes on only with --pretrain-epochs"
((rc != 0)) && grep -q "$refusal" "$out/zero.txt" ||
  { cat "$out/zero.txt"; fail "--resume with --pretrain-epochs 0: expected a refusal"; }

"$vts" train "${flags[@]}" --out "$out/run" --quiet --resume "$out/run" >"$out/resumed.txt"
grep -q "resumed from .* in the classifier pretraining, after [1-9][0-9]* of its epochs" "$out/resumed.txt" ||
  { cat "$out/resumed.txt"; fail "the resumed run does not say where it goes on"; }
[[ -n $(evaluations "$out/unbroken") && $(evaluations "$out/run") == "$(evaluations "$out/unbroken")" ]] ||
  fail "the evaluations differ from the unbroken run's: $(evaluations "$out/run")" \
    "against $(evaluations "$out/unbroken")"
[[ $(loss_history "$out/run") == "$(loss_history "$out/unbroken")" ]] ||
  fail "the loss history differs: $(loss_history "$out/run") against $(loss_history "$out/unbroken")"
# The pretraining's epoch means: one an epoch, the stopped epoch's taken up where it was cut.
epochs_recorded=$(pretrain_loss_history "$out/unbroken" | grep -o '"epoch"' | wc -l)
((epochs_recorded == pretrain_epochs)) ||
  fail "metrics.json: expected $pretrain_epochs pretraining epochs in pretrain_loss_history," \
    "found $(pretrain_loss_history "$out/unbroken")"
[[ $(pretrain_loss_history "$out/run") == "$(pretrain_loss_history "$out/unbroken")" ]] ||
  fail "the pretraining's loss history differs: $(pretrain_loss_history "$out/run")" \
    "against $(pretrain_loss_history "$out/unbroken")"
grep -Eq '"pretrain_seconds": [0-9.e+-]*[1-9]' "$out/run/metrics.json" ||
  fail "metrics.json: expected the pretraining's seconds, found $(grep pretrain_seconds "$out/run/metrics.json")"
cmp -s "$out/run/best.safetensors" "$out/unbroken/best.safetensors" ||
  fail "best.safetensors differs from the unbroken run's"
echo "stop and resume inside the classifier pretraining: ok"
