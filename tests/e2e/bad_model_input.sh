#!/usr/bin/env bash
# Checkpoints that are damaged or edited by hand are refused with an error that names the file, the
# key or tensor and what was wrong, never a crash or a raw JSON library message:
#   - metadata `bits` far out of range, or disagreeing with the hash head's last weight matrix
#     (the network is sized from it before any tensor is checked: a huge value was a giant allocation);
#   - NaN or Inf among the weights (vts encode --model, and vts train --pretrained with a vts checkpoint);
#   - metadata values of the wrong JSON type (vts encode, vts info, vts train --resume);
#   - an index whose fingerprint holds a number out of range (vts info, vts search);
#   - --resume with a record that cannot be continued (negative epoch, malformed evaluations or
#     loss history), refused before an epoch is trained.
# and a new `vts train` into the run's folder is refused without --overwrite (nothing written).
# Usage: bad_model_input.sh VTS RUN_DIR: RUN_DIR is a finished `vts train` run (fashion-mnist, its
# defaults) holding best.safetensors and last.safetensors.
set -euo pipefail
export LC_ALL=C  # byte lengths of the headers
vts=$(realpath "$1")
run=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for f in best last; do
  [[ -s $run/$f.safetensors ]] || fail "$run holds no $f.safetensors (a finished vts train run was expected)"
done

source "$(dirname "$0")/expect_error.sh"

# safetensors: an 8-byte little-endian header length, the JSON header (our metadata is a JSON
# string under "__metadata__"."vts", so its quotes appear as \"), then the tensors' data.
header_length() { head -c 8 "$1" | od -An -tu8 | tr -d ' '; }
header_of() { head -c $((8 + $(header_length "$1"))) "$1" | tail -c "$(header_length "$1")"; }
le64() {
  local i
  for ((i = 0; i < 8; i++)); do printf "\\x$(printf %02x $((($1 >> (8 * i)) & 255)))"; done
}
# edit_header SRC DST SED_SCRIPT: SRC with its header passed through sed; its length may change.
edit_header() {
  local old new
  old=$(header_of "$1")
  new=$(printf '%s' "$old" | sed -e "$3")
  [[ $new != "$old" ]] || fail "the edit '$3' changed nothing in the header of $1"
  { le64 "${#new}"; printf '%s' "$new"; tail -c +$((9 + ${#old})) "$1"; } >"$2"
}
# Byte offset in the file of a tensor's data.
data_offset() {
  local start
  start=$(header_of "$1" | sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\[\([0-9]*\),.*/\1/p")
  [[ -n $start ]] || fail "no tensor $2 in $1"
  echo $((8 + $(header_length "$1") + start))
}
# A scalar of the vts metadata, as written (strings keep their \" quotes); the first occurrence is
# the top-level key's, since the keys are sorted and nested ones come inside later keys.
meta() { header_of "$1" | grep -o "\\\\\"$2\\\\\":[^,}]*" | sed -n '1s/^[^:]*://p'; }

best=$run/best.safetensors
last=$run/last.safetensors
encode() { "$vts" encode --model "$1" --split query --out "$out/never.vtsidx" --quiet; }

# The untouched checkpoint loads (a failure below is the edit's, not the run's).
"$vts" info "$best" >/dev/null

# bits: a huge value, one vts train cannot make, and one that disagrees with the weights.
edit_header "$best" "$out/bits_huge.safetensors" 's/\\"bits\\":[0-9]*/\\"bits\\":1000000000000/'
bits=$(meta "$best" bits)
expect_error "bits = 1000000000000; expected a code length from 8 to 4096" encode "$out/bits_huge.safetensors"
grep -q "bits_huge.safetensors'" "$out/err.txt" &&
  grep -q "'model.hash_head.fc2.weight' has shape ($bits, " "$out/err.txt" ||
  { cat "$out/err.txt"; fail "the error does not name the file and the head's weight shape"; }
edit_header "$best" "$out/bits_odd.safetensors" 's/\\"bits\\":[0-9]*/\\"bits\\":12/'
expect_error "bits = 12; expected a code length from 8 to 4096, a multiple of 8" encode "$out/bits_odd.safetensors"
other_bits=$((bits == 32 ? 64 : 32))
edit_header "$best" "$out/bits_other.safetensors" "s/\\\\\"bits\\\\\":[0-9]*/\\\\\"bits\\\\\":$other_bits/"
expect_error "bits = $other_bits, but tensor 'model.hash_head.fc2.weight' has shape ($bits, " \
  encode "$out/bits_other.safetensors"
edit_header "$best" "$out/bits_text.safetensors" 's/\\"bits\\":\([0-9]*\)/\\"bits\\":\\"\1\\"/'
expect_error "metadata 'bits': expected a whole number" encode "$out/bits_text.safetensors"
[[ ! -e $out/never.vtsidx ]] || fail "a refused checkpoint left an index behind"

# NaN and Inf weights: named, with their count, by vts encode and by vts train --pretrained.
cp "$best" "$out/nan.safetensors"
at=$(data_offset "$out/nan.safetensors" model.backbone.cls_token)
printf '\x00\x00\xc0\x7f\x00\x00\x80\x7f' | dd of="$out/nan.safetensors" bs=1 seek="$at" conv=notrunc status=none
expect_error "tensor 'model.backbone.cls_token' holds 2 non-finite values" encode "$out/nan.safetensors"
expect_error "tensor 'model.backbone.cls_token' holds 2 non-finite values" \
  "$vts" train --pretrained "$out/nan.safetensors" --epochs 1 --out "$out/pretrained" --quiet

# Metadata of the wrong JSON type: the file, the key, the type expected and what was found.
edit_header "$best" "$out/flip.safetensors" 's/\\"flip_average\\":[a-z]*/\\"flip_average\\":\\"yes\\"/'
expect_error "flip.safetensors': metadata 'flip_average': expected true or false, found \"yes\" (string)" \
  encode "$out/flip.safetensors"
edit_header "$best" "$out/loss.safetensors" 's/\\"loss\\":\\"[a-z]*\\"/\\"loss\\":5/'
expect_error "metadata 'loss': expected a string, found 5 (number)" encode "$out/loss.safetensors"
edit_header "$best" "$out/queries.safetensors" 's/\\"query_per_class\\":[0-9]*/\\"query_per_class\\":-5/'
expect_error "metadata 'query_per_class': expected a whole number of 0 or more" encode "$out/queries.safetensors"
edit_header "$last" "$out/names.safetensors" 's/\\"split\\":{/\\"split\\":{\\"class_names\\":\\"x\\",/'
expect_error "metadata 'split.class_names': expected an array of strings" "$vts" info "$out/names.safetensors"

# Index files edited by hand: the fingerprint's numbers are read whole and in range, not wrapped
# (a weights_crc32 of -1 was taken as 4294967295, another model's CRC). The edits keep the
# fingerprint's length and redo the format's two CRC-32s, as an editor who knew the format would.
"$vts" encode --model "$best" --split query --out "$out/query.vtsidx" --quiet
u64_at() { od -An -tu8 -j"$2" -N8 "$1" | tr -d ' '; }
crc32_le() { gzip -c | tail -c 8 | head -c 4; }  # gzip's trailer: the input's CRC-32, little-endian
# edit_fingerprint SRC DST SED_SCRIPT (index header: fingerprint offset at byte 40, length at 48,
# CRC-32 of bytes [128, end) at 104, CRC-32 of the header with that field zero at 108).
edit_fingerprint() {
  local at length old new
  at=$(u64_at "$1" 40)
  length=$(u64_at "$1" 48)
  old=$(dd if="$1" bs=1 skip="$at" count="$length" status=none)
  new=$(printf '%s' "$old" | sed -e "$3")
  [[ $new != "$old" && ${#new} == "${#old}" ]] || fail "the edit '$3' changed nothing or the length in $1's fingerprint"
  cp "$1" "$2"
  printf '%s' "$new" | dd of="$2" bs=1 seek="$at" conv=notrunc status=none
  tail -c +129 "$2" | crc32_le | dd of="$2" bs=1 seek=104 conv=notrunc status=none
  printf '\0\0\0\0' | dd of="$2" bs=1 seek=108 conv=notrunc status=none
  head -c 128 "$2" | crc32_le | dd of="$2" bs=1 seek=108 conv=notrunc status=none
}
# A valid edit first, so that the refusals below are the fingerprint's and not the CRCs'.
edit_fingerprint "$out/query.vtsidx" "$out/renamed.vtsidx" 's/"loss":"csq"/"loss":"dsh"/'
"$vts" info "$out/renamed.vtsidx" | grep -q "dsh" || fail "vts info does not read a re-CRC'd index"
edit_fingerprint "$out/query.vtsidx" "$out/crc.vtsidx" 's/"weights_crc32":[0-9][0-9]/"weights_crc32":-1/'
expect_error "crc.vtsidx': its fingerprint's vts_model.weights_crc32 is -1" "$vts" info "$out/crc.vtsidx"
grep -q "; expected a whole number from 0 to 4294967295, as vts encode writes it" "$out/err.txt" ||
  { cat "$out/err.txt"; fail "the error does not give the range"; }
edit_fingerprint "$out/query.vtsidx" "$out/bits.vtsidx" 's/"bits":64/"bits":-1/'
expect_error "vts_model.bits is -1; expected a whole number from 8 to 4096" \
  "$vts" search --index "$out/bits.vtsidx" --model "$best" --image "$out/none.png" --no-gallery

# --resume: the record is checked whole before an epoch is trained.
setting() { meta "$last" "$1" | tr -d '\\"'; }  # the run's, to resume it with
resume() {
  "$vts" train --resume "$1" --config "$(setting config)" --head "$(setting head)" --loss "$(setting loss)" \
    --bits "$(setting bits)" --epochs $(($(setting epoch) + 1)) --eval-every 1000 --out "$out/resumed" --quiet "${@:2}"
}
edit_header "$last" "$out/epoch.safetensors" 's/\\"epoch\\":[0-9]*,\\"evaluations/\\"epoch\\":-5,\\"evaluations/'
expect_error "metadata 'epoch': expected a whole number of 0 or more, found -5" resume "$out/epoch.safetensors"
edit_header "$last" "$out/evals.safetensors" 's/\\"evaluations\\":\[[^]]*\]/\\"evaluations\\":\\"x\\"/'
expect_error "metadata 'evaluations': expected an array" resume "$out/evals.safetensors"
! grep -q "eval after epoch" "$out/err.txt" || fail "--resume trained before it refused the evaluations"
edit_header "$last" "$out/history.safetensors" 's/\\"loss_history\\":\[{/\\"loss_history\\":[[1,2],{/'
expect_error "metadata 'loss_history\[0\]': expected an object with \"epoch\" and \"loss\"" \
  resume "$out/history.safetensors"
# A run stopped inside an epoch (vts train --time-limit, Ctrl-C, SIGTERM; stop_resume.sh) keeps its
# position there; it goes on only with the batches it counted, and a malformed position is named.
with_position() {  # with_position DST STEPS LOSS_SUM: the finished run as if stopped in its next epoch
  local q='\\"'  # a quote inside the metadata string, as sed matches and writes it
  local from="${q}epoch${q}:\([0-9]*\),${q}evaluations"
  local to="${q}epoch${q}:\1,${q}epoch_progress${q}:{${q}steps${q}:$2,${q}loss_sum${q}:$3},${q}evaluations"
  edit_header "$last" "$1" "s/$from/$to/"
}
batch=$(sed -n 's/^ *"batch": \([0-9]*\),*$/\1/p' "$run/metrics.json")
next_epoch=$(($(setting epoch) + 1))
with_position "$out/inside.safetensors" 5 1.5
expect_error "stopped in epoch $next_epoch after 5 batches of $batch images; it goes on only with --batch $batch, \
found --batch 32" resume "$out/inside.safetensors" --batch 32
with_position "$out/past.safetensors" 100000 1.5
expect_error "stopped in epoch $next_epoch after 100000 batches, but an epoch of this run's training split has" \
  resume "$out/past.safetensors"
with_position "$out/sum.safetensors" 5 '\\"x\\"'
expect_error "metadata 'epoch_progress.loss_sum': expected a finite number, found \"x\"" resume "$out/sum.safetensors"
with_position "$out/steps.safetensors" -5 1.5
expect_error "metadata 'epoch_progress.steps': expected a whole number of 0 or more, found -5" \
  resume "$out/steps.safetensors"
[[ ! -e $out/resumed/best.safetensors ]] || fail "a refused --resume wrote a checkpoint"

# A new run into a finished run's folder is refused before anything is written (a repeated command
# would replace its best checkpoint); --resume of the folder continues it (train_folder.sh), and
# --overwrite replaces it, here in a copy.
best_sum=$(cksum <"$best")
expect_error "--out $run already holds a run (best.safetensors and last.safetensors): continue it with --resume" \
  "$vts" train --epochs 1 --out "$run" --quiet
[[ $(cksum <"$best") == "$best_sum" ]] || fail "a refused vts train changed $best"
cp -r "$run" "$out/copy"
"$vts" train --epochs 1 --eval-every 1 --out "$out/copy" --overwrite --quiet >/dev/null
[[ $(meta "$out/copy/best.safetensors" epoch) == 1 ]] || fail "--overwrite did not replace the run in $out/copy"
echo "bad model input: ok"
