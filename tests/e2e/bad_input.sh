#!/usr/bin/env bash
# What the `vts` commands do with bad flags and with outputs or failures that would cost the user's
# files or work (found by an adversarial pass over the program, 2026-12-05):
#   - a count outside its range, a negative seed, a non-number: exit 1 and a message naming the flag,
#     the range and what was given (no crash at --threads 100000, no 2^63-sized arithmetic); a loss
#     hyperparameter the loss does not have, or out of its range;
#   - -k far above the index's size lists the index, without reserving memory for k;
#   - an output that is one of the command's inputs is refused, and the input stays as it was;
#   - an encode onto an existing index or file is refused without --overwrite (or --update);
#   - an image file or a binary file given as a list of images is refused;
#   - a failed `encode --update` never leaves fewer codes than the index it would replace;
#   - a query image that cannot be decoded, found at the first evaluation, keeps the epochs trained:
#     --resume evaluates and finishes with the uninterrupted run's results;
#   - a finished run continued for more epochs under a constant schedule ends as the longer run.
# Usage: bad_input.sh VTS RUN_DIR (a finished `vts train` run of the tiny config on Fashion-MNIST).
set -euo pipefail
vts=$(realpath "$1")
run=$2
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$(dirname "$0")/expect_error.sh"
source "$(dirname "$0")/run_metrics.sh"
[[ -s $run/best.safetensors ]] || fail "$run holds no best.safetensors (a finished vts train run was expected)"

# Flags.
expect_error "--batch: expected a whole number from 1 to 1048576, found 0" "$vts" train --batch 0 --out "$out/x"
expect_error "--bits: expected a whole number from 8 to 4096 that is a multiple of 8, found 100" \
  "$vts" train --bits 100 --out "$out/x"
expect_error "--bits: expected a whole number from 8 to 4096 that is a multiple of 8, found 'abc'" \
  "$vts" train --bits abc --out "$out/x"
expect_error "--seed: expected a whole number from 0 to 18446744073709551615, found '-1'" \
  "$vts" train --seed -1 --out "$out/x"
expect_error "--lr: expected a number > 0, found 'nan'" "$vts" train --lr nan --out "$out/x"
expect_error "--erase: expected a number from 0 to 1, found 2" "$vts" train --erase 2 --out "$out/x"
expect_error "--ema: expected a number from 0 to 0.99999, found 'abc'" "$vts" train --ema abc --out "$out/x"
expect_error "--epochs: expected a whole number from 0 to 1000000, found 9223372036854775807" \
  "$vts" train --epochs 9223372036854775807 --out "$out/x"
expect_error "--topk: expected a whole number from -1 to" "$vts" train --topk -5 --out "$out/x"
expect_error "--time-limit: expected a time such as 3h50m, 90m, 45s or 5400 (seconds), found '2m3h'" \
  "$vts" train --time-limit 2m3h --out "$out/x"
expect_error "--time-limit: expected a time such as 3h50m, 90m, 45s or 5400 (seconds), found '1.5h'" \
  "$vts" train --time-limit 1.5h --out "$out/x"
expect_error "--time-limit: expected a time above 0, found '0m'" "$vts" train --time-limit 0m --out "$out/x"
expect_error "--threads: expected a whole number from 1 to 1024, found 100000" \
  "$vts" train --threads 100000 --out "$out/x"
expect_error "--workers: expected a whole number from 0 to 256, found 1000000" \
  "$vts" encode --model "$run" --out "$out/x.vtsidx" --workers 1000000
expect_error "--time-limit requires --update" "$vts" encode --model "$run" --images "$out" --out "$out/x.vtsidx" \
  --time-limit 1h
expect_error "--time-limit: expected a time above 0, found '0s'" \
  "$vts" encode --model "$run" --images "$out" --out "$out/x.vtsidx" --update --time-limit 0s
expect_error "--precision-at: expected a whole number from 1 to" "$vts" evaluate --queries "$run/best.safetensors" \
  --database "$run/best.safetensors" --precision-at 0
expect_error "-k: expected a whole number from 1 to" "$vts" search --index "$run/best.safetensors" --image x.png -k 0
expect_error "--loss-param beta=1: csq loss has no hyperparameter 'beta'; its hyperparameters: lambda 0.0001" \
  "$vts" train --loss-param beta=1 --out "$out/x"
expect_error "--loss-param alpha=-1: hashnet loss: alpha = -1; expected a number from 0 to" \
  "$vts" train --loss hashnet --loss-param alpha=-1 --out "$out/x"
expect_error "--loss-param margin: expected NAME=VALUE" "$vts" train --loss dpn --loss-param margin --out "$out/x"
expect_error "--loss-param alpha=2: alpha is given twice" \
  "$vts" train --loss dsh --loss-param alpha=1 --loss-param alpha=2 --out "$out/x"
[[ ! -e $out/x ]] || fail "a refused command created its output"

# A small labelled folder of images, and its index.
source "$(dirname "$0")/class_folders.sh"
write_class_folders "$data" "$out/photos" 3 "$out"
"$vts" encode --model "$run" --images "$out/photos" --class-folders --out "$out/photos.vtsidx" --quiet >/dev/null
cp "$out/photos.vtsidx" "$out/photos.kept"
query=$(ls "$out/photos/bag"/*.pgm | head -1)

# -k above the index's size: the whole index, at once.
"$vts" search --index "$out/photos.vtsidx" --image "$query" -k 1000000000 --exclude-query --no-gallery >"$out/k.txt"
[[ $(awk 'NR > 2 && $1 ~ /^[0-9]+$/' "$out/k.txt" | wc -l) == 29 ]] ||
  { cat "$out/k.txt"; fail "-k 10^9 --exclude-query: expected the 29 other images of 30"; }

# An output that is an input.
expect_error "--out $out/photos.vtsidx: this is what --index reads" \
  "$vts" export --index "$out/photos.vtsidx" --format faiss --out "$out/photos.vtsidx"
expect_error "--json $out/photos.vtsidx: this is what --index reads" \
  "$vts" search --index "$out/photos.vtsidx" --image "$query" --json "$out/photos.vtsidx" --no-gallery
expect_error "--gallery $query: this is what --image reads" \
  "$vts" search --index "$out/photos.vtsidx" --image "$query" --gallery "$query"
cmp -s "$out/photos.vtsidx" "$out/photos.kept" || fail "a refused export or search changed the index"
mkdir "$out/model"
cp "$run/best.safetensors" "$out/model/"
expect_error "this is what --model reads" \
  "$vts" encode --model "$out/model" --images "$out/photos" --out "$out/model/best.safetensors"
cmp -s "$out/model/best.safetensors" "$run/best.safetensors" || fail "a refused encode changed the checkpoint"
# An encode onto an existing index (a repeated command; the index may have taken hours) is refused
# and the index stays; --overwrite replaces it, and a file that is not an index is named as such.
expect_error "--out $out/photos.vtsidx already holds an index of 30 codes of 64 bits: bring an index up to date with --update (images), replace it with --overwrite" \
  "$vts" encode --model "$run" --split query --out "$out/photos.vtsidx" --quiet
cmp -s "$out/photos.vtsidx" "$out/photos.kept" || fail "a refused encode changed the index"
"$vts" encode --model "$run" --images "$out/photos" --class-folders --out "$out/photos.vtsidx" --overwrite --quiet >/dev/null
cmp -s "$out/photos.vtsidx" "$out/photos.kept" && fail "--overwrite did not rewrite the index (its encode time)"
cp "$out/photos.vtsidx" "$out/photos.kept"
printf 'notes' >"$out/notes.txt"
expect_error "--out $out/notes.txt already holds a file that is not an index" \
  "$vts" encode --model "$run" --split query --out "$out/notes.txt" --quiet
[[ $(cat "$out/notes.txt") == notes ]] || fail "a refused encode changed $out/notes.txt"

# Not a list of images.
expect_error "found an image file" "$vts" encode --model "$run" --images "$query" --out "$out/one.vtsidx"
head -c 600 "$data/t10k-labels-idx1-ubyte.gz" >"$out/binary.txt"
expect_error "found a binary file" "$vts" encode --model "$run" --images "$out/binary.txt" --out "$out/b.vtsidx"
expect_error "found a binary file" "$vts" search --index "$out/photos.vtsidx" --queries "$out/binary.txt" --no-gallery

# `encode --update` of a moved folder (every image new) that meets an undecodable one: the index
# keeps its 30 codes instead of being saved with the none encoded so far.
mv "$out/photos" "$out/moved"
printf 'not an image' >"$out/moved/bag/zz_broken.png"
expect_error "is left as it was" "$vts" encode --model "$run" --images "$out/moved" --class-folders \
  --out "$out/photos.vtsidx" --update --quiet
cmp -s "$out/photos.vtsidx" "$out/photos.kept" || fail "a failed --update replaced the index"
rm "$out/moved/bag/zz_broken.png"

# A query image that cannot be decoded: training stops at the first evaluation with the epochs
# kept, and --resume (the image fixed) ends as the uninterrupted run does.
lists=$out/lists
mkdir -p "$lists"
n=0
for f in $(cd "$out/moved" && ls -- */*.pgm); do
  class=${f%%/*}
  row=""
  for c in "${fashion_class_names[@]}"; do [[ $c == "$class" ]] && row+=" 1" || row+=" 0"; done
  if ((n++ % 3 == 0)); then echo "$f$row" >>"$lists/test.txt"; else echo "$f$row" >>"$lists/train.txt"; fi
done
cp "$lists/train.txt" "$lists/database.txt"
train_lists() {  # train_lists OUT [FLAGS...]
  local dest=$1
  shift
  "$vts" train --dataset list --data-dir "$lists" --image-root "$out/moved" --epochs "${epochs:-3}" --eval-every 1 \
    --out "$dest" --quiet "$@"
}
train_lists "$out/whole" >/dev/null
first_query=$(awk 'NR == 1 { print $1 }' "$lists/test.txt")
cp "$out/moved/$first_query" "$out/query.kept"
printf 'not an image' >"$out/moved/$first_query"
expect_error "the training state after epoch 1 is saved in $out/stopped/last.safetensors" train_lists "$out/stopped"
cp "$out/query.kept" "$out/moved/$first_query"
train_lists "$out/stopped" --resume "$out/stopped" >/dev/null
[[ -n $(evaluations "$out/whole") && $(evaluations "$out/stopped") == "$(evaluations "$out/whole")" ]] ||
  fail "the resumed run's evaluations differ from the uninterrupted run's"
cmp -s "$out/stopped/best.safetensors" "$out/whole/best.safetensors" ||
  fail "the resumed run's best.safetensors differs from the uninterrupted run's"

# A finished run continued for more epochs: under a schedule that does not read the number of
# epochs (constant, step) that is the longer run, which --resume says instead of calling it a change;
# under cosine (the default) it is a change.
epochs=2 train_lists "$out/short" --schedule constant >/dev/null
train_lists "$out/short" --schedule constant --final-lr 0.5 --resume "$out/short" >"$out/continued.txt"
grep -q "note: --epochs 2->3; the constant schedule does not depend on the number of epochs" "$out/continued.txt" ||
  { cat "$out/continued.txt"; fail "--resume with more epochs under a constant schedule: expected the note that says it continues"; }
train_lists "$out/long" --schedule constant >/dev/null
[[ $(evaluations "$out/short") == "$(evaluations "$out/long")" ]] ||
  fail "2 + 1 epochs under a constant schedule: the evaluations differ from an uninterrupted 3-epoch run's"
cmp -s "$out/short/best.safetensors" "$out/long/best.safetensors" ||
  fail "2 + 1 epochs under a constant schedule: best.safetensors differs from an uninterrupted 3-epoch run's"
epochs=2 train_lists "$out/short.cosine" >/dev/null
train_lists "$out/short.cosine" --resume "$out/short.cosine" >"$out/continued.txt"
grep -q "this run differs from the checkpoint's: epochs 2->3; the result will not be that of an uninterrupted run" \
  "$out/continued.txt" || { cat "$out/continued.txt"; fail "--resume with more epochs under cosine: expected the note of a change"; }
echo "bad input: ok"
