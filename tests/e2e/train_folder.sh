#!/usr/bin/env bash
# `vts train --dataset folder` on your own images: 600 Fashion-MNIST test images written as PGM
# files into ten class folders named after the classes (60 each), the way a user's photos would lie.
# Trains ViTTiny28 + CSQ for 30 epochs (grey 28x28: the tiny config decodes the folder's images to
# one channel) and passes when mAP ≥ 0.5 on the 60 queries against the 540 other images (chance is
# about 0.1; measured 2026-12-04 on the 2-core build machine: 0.703), metrics.json names the
# classes in label order, and --query-per-class / --train-per-class reach the split. Then
# `vts encode` of the run's own database split and `vts search` by one of the image files: the file
# finds itself at distance 0, most of its 10 neighbours share its class folder, and the results'
# labels are the class names; `vts encode --images DIR --class-folders` labels a whole folder the same
# way. --no-augment changes the training; with --ema, best.safetensors holds the averaged weights the
# run scored; --resume notices a changed folder. Last, `--dataset list` on lists of the same images
# with an 11th class (multi-label), mAP ≥ 0.5 (measured 2026-12-04: 0.711).
# Usage: train_folder.sh VTS
set -euo pipefail
vts=$1
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/class_folders.sh"
names=("${fashion_class_names[@]}")
write_class_folders "$data" "$out/photos" 60 "$out"

"$vts" train --dataset folder --data-dir "$out/photos" --epochs 30 --eval-every 30 --out "$out/run" --quiet \
  >"$out/train.txt"
grep -q "folder: 540 train / 60 query / 540 database" "$out/train.txt" || { cat "$out/train.txt"; fail "unexpected split"; }
map=$(sed -n 's/^  "map": \([0-9.eE+-]*\),*$/\1/p' "$out/run/metrics.json")
echo "mAP = $map"
awk -v m="$map" 'BEGIN { exit !(m >= 0.5) }' || fail "mAP $map is below the bar 0.5"
tr -d ' \n' <"$out/run/metrics.json" |
  grep -q '"classes":\["bag","boot","coat","dress","pullover","sandal","shirt","sneaker","trouser","tshirt"\]' ||
  fail "metrics.json does not list the classes in label order"

"$vts" train --dataset folder --data-dir "$out/photos" --query-per-class 5 --train-per-class 20 --epochs 0 \
  --out "$out/counts" --quiet >"$out/counts.txt"
grep -q "folder: 200 train / 50 query / 550 database" "$out/counts.txt" || { cat "$out/counts.txt"; fail "counts ignored"; }
"$vts" encode --model "$out/counts" --data-dir "$out/photos" --split query --out "$out/q.vtsidx" --quiet >"$out/enc.txt"
grep -q "folder query split: 50 images" "$out/enc.txt" || { cat "$out/enc.txt"; fail "encode did not take the run's counts"; }

# --no-augment reaches the folder's train split (it did not reach the list datasets' before 2026-12-04):
# the same seed gives the same losses, and without augmentation other ones.
source "$(dirname "$0")/run_metrics.sh"
for flag in --augment --no-augment; do
  "$vts" train --dataset folder --data-dir "$out/photos" --epochs 2 --out "$out/aug$flag" $flag --quiet >/dev/null
done
"$vts" train --dataset folder --data-dir "$out/photos" --epochs 2 --out "$out/again" --quiet >/dev/null
[[ $(loss_history "$out/again") == "$(loss_history "$out/aug--augment")" ]] || fail "the same run twice differs"
[[ $(loss_history "$out/aug--no-augment") != "$(loss_history "$out/aug--augment")" ]] || fail "--no-augment changed nothing"

# --ema: best.safetensors holds the averaged weights the evaluation scored (the checkpoint writer
# reads them while they are swapped in), so its codes score the run's mAP to the last digit; the
# live weights are those of the run without --ema, which scores another.
map_of() { grep '^  "map"' "$1/metrics.json"; }
"$vts" train --dataset folder --data-dir "$out/photos" --epochs 2 --eval-every 2 --ema 0.9 --out "$out/ema" --quiet \
  >/dev/null
"$vts" encode --model "$out/ema" --data-dir "$out/photos" --out "$out/ema_db.vtsidx" --quiet >/dev/null
"$vts" encode --model "$out/ema" --data-dir "$out/photos" --split query --out "$out/ema_q.vtsidx" --quiet >/dev/null
"$vts" evaluate --queries "$out/ema_q.vtsidx" --database "$out/ema_db.vtsidx" --out "$out/ema_eval" >/dev/null
[[ -n $(map_of "$out/ema") && $(map_of "$out/ema_eval") == "$(map_of "$out/ema")" ]] ||
  fail "--ema: best.safetensors scores $(map_of "$out/ema_eval"), the run scored $(map_of "$out/ema")"
[[ $(map_of "$out/ema") != "$(map_of "$out/aug--augment")" ]] || fail "--ema scored as the live weights do"

# The run's database split again (its seed and counts come from the checkpoint), then a search by file.
"$vts" encode --model "$out/run" --data-dir "$out/photos" --out "$out/db.vtsidx" --quiet >/dev/null
sandals=("$out/photos/sandal"/*)
query=$(basename "${sandals[0]}")
"$vts" search --index "$out/db.vtsidx" --image "$out/photos/sandal/$query" -k 10 --no-gallery >"$out/search.txt"
hits=$(awk 'NR > 2 && $1 ~ /^[0-9]+$/' "$out/search.txt")
[[ $(wc -l <<<"$hits") == 10 ]] || { cat "$out/search.txt"; fail "expected 10 results"; }
if grep -q "/sandal/$query\$" <<<"$hits"; then  # a database image: it must find itself first
  awk 'NR == 3' "$out/search.txt" | grep -q "^ *1 *0 " || { cat "$out/search.txt"; fail "$query not at distance 0"; }
fi
same=$(grep -c "/photos/sandal/" <<<"$hits" || true)
echo "neighbours in the query's class folder: $same of 10"
[[ $same -ge 6 ]] || { cat "$out/search.txt"; fail "only $same of 10 neighbours are sandals"; }
# The label column names the class folders (the index keeps the run's class names).
named=$(awk '{ split($4, p, "/"); if ($3 == p[length(p) - 1]) n++ } END { print n + 0 }' <<<"$hits")
[[ $named == 10 ]] || { cat "$out/search.txt"; fail "labels do not name the class folders ($named of 10)"; }

# A whole labelled folder (not a split): --images DIR --class-folders, the labels named the same way.
"$vts" encode --model "$out/run" --images "$out/photos" --class-folders --out "$out/all.vtsidx" --quiet >"$out/all.txt"
grep -q "wrote 600 codes of 64 bits with labels" "$out/all.txt" || { cat "$out/all.txt"; fail "--class-folders"; }
"$vts" search --index "$out/all.vtsidx" --image "$out/photos/sandal/$query" -k 1 --no-gallery >"$out/one.txt"
awk 'NR == 3' "$out/one.txt" | grep -q " 0  sandal " || { cat "$out/one.txt"; fail "the image is not its own nearest, labelled sandal"; }
# The JSON form names the classes too: the index's class list, and each result's labels by name.
"$vts" search --index "$out/all.vtsidx" --image "$out/photos/sandal/$query" -k 1 --json - >"$out/one.json"
tr -d ' \n' <"$out/one.json" | grep -q '"classes":\["bag","boot",' || { cat "$out/one.json"; fail "JSON class list"; }
tr -d ' \n' <"$out/one.json" | grep -q '"distance":0,.*"labels":\["sandal"\]' || { cat "$out/one.json"; fail "JSON labels"; }
# --update after a class folder is added: the 600 codes are kept, the labels follow the new classes.
mkdir "$out/photos/aaa_new"
cp "$out/photos/sandal/$query" "$out/photos/aaa_new/copy.pgm"
"$vts" encode --model "$out/run" --images "$out/photos" --class-folders --out "$out/all.vtsidx" --update --quiet \
  >"$out/update.txt"
grep -q "600 unchanged (codes kept), 1 new, 0 changed, 0 removed" "$out/update.txt" || { cat "$out/update.txt"; fail "--update"; }
"$vts" search --index "$out/all.vtsidx" --image "$out/photos/sandal/$query" --radius 0 --no-gallery >"$out/two.txt"
grep -q " 0  aaa_new .*/aaa_new/copy.pgm" "$out/two.txt" && grep -q " 0  sandal .*/sandal/$query" "$out/two.txt" ||
  { cat "$out/two.txt"; fail "after --update, the copy and the original are not both at distance 0 with their classes"; }
rm -r "$out/photos/aaa_new"

# `vts evaluate`: the run's query split against its database split gives the run's mAP; a held-out
# folder with one of the run's classes and one it never saw is matched to the classes by name.
"$vts" encode --model "$out/run" --data-dir "$out/photos" --split query --out "$out/query.vtsidx" --quiet >/dev/null
"$vts" evaluate --queries "$out/query.vtsidx" --database "$out/db.vtsidx" --out "$out/eval" >"$out/eval.txt"
[[ $(grep '^  "map"' "$out/eval/metrics.json") == "$(grep '^  "map"' "$out/run/metrics.json")" ]] ||
  { cat "$out/eval.txt"; fail "vts evaluate's mAP differs from the run's"; }
mkdir -p "$out/held/sandal" "$out/held/unseen"
cp "$out/photos/sandal/$query" "$out/held/sandal/"
cp "$out/photos/bag/$(ls "$out/photos/bag" | head -1)" "$out/held/unseen/"
"$vts" encode --model "$out/run" --images "$out/held" --class-folders --out "$out/held.vtsidx" --quiet >/dev/null
"$vts" evaluate --queries "$out/held.vtsidx" --database "$out/db.vtsidx" --out "$out/held_eval" >"$out/held.txt"
grep -q "the database has no class 'unseen'" "$out/held.txt" || { cat "$out/held.txt"; fail "unseen class not noted"; }
tr -d ' \n' <"$out/held_eval/metrics.json" | grep -q '"classes":\["bag",.*"tshirt","unseen"\]' ||
  { cat "$out/held_eval/metrics.json"; fail "classes not matched by name"; }
# The sandal query's AP is what the run's own ranking gives it (> 0); the unseen class's is 0.
tr -d ' \n' <"$out/held_eval/per_query.json" | grep -Eq '/sandal/[^"]*","ap":(0\.[0-9]*[1-9]|1\.0)' ||
  { cat "$out/held_eval/per_query.json"; fail "the held-out sandal has no relevant neighbour"; }
tr -d ' \n' <"$out/held_eval/per_query.json" | grep -q '/unseen/[^"]*","ap":0\.0}' ||
  { cat "$out/held_eval/per_query.json"; fail "the unseen class's AP is not 0"; }

# --resume says when the folder changed since the checkpoint (an image added), and is quiet otherwise.
"$vts" train --dataset folder --data-dir "$out/photos" --epochs 2 --resume "$out/again" --out "$out/again" >"$out/resume.txt" 2>/dev/null
! grep -q "differs" "$out/resume.txt" || { cat "$out/resume.txt"; fail "an unchanged resume reported a difference"; }
bags=("$out/photos/bag"/*)
cp "${bags[0]}" "$out/photos/bag/added.pgm"
"$vts" train --dataset folder --data-dir "$out/photos" --epochs 2 --resume "$out/again" --out "$out/again" >"$out/resume.txt" 2>/dev/null
grep -q "dataset split (train 540->541 database 540->541)" "$out/resume.txt" || { cat "$out/resume.txt"; fail "the changed folder went unnoticed"; }
rm "$out/photos/bag/added.pgm"

# A bad layout is a clear error that names it, and writes nothing.
cp "${bags[0]}" "$out/photos/stray.pgm"
if "$vts" train --dataset folder --data-dir "$out/photos" --epochs 1 --out "$out/bad" --quiet 2>"$out/bad.err" >/dev/null; then
  fail "an image outside the class folders was accepted"
fi
grep -q "stray.pgm" "$out/bad.err" || { cat "$out/bad.err"; fail "the error does not name the stray image"; }
[[ ! -e "$out/bad" ]] || fail "a refused run created its output folder"
if "$vts" train --dataset folder --epochs 1 --out "$out/bad" --quiet 2>"$out/bad.err" >/dev/null; then
  fail "--dataset folder without --data-dir was accepted"
fi
grep -q -- "--dataset folder needs --data-dir: the folder of class folders" "$out/bad.err" || { cat "$out/bad.err"; fail "unclear error"; }
if "$vts" train --dataset coco --data-dir "$out" --query-per-class 5 --out "$out/bad" --quiet 2>"$out/bad.err" >/dev/null; then
  fail "--query-per-class with a list dataset was accepted"
fi
grep -q -- "coco: the split is the one train.txt, test.txt and database.txt list; expected no per-class counts" "$out/bad.err" || { cat "$out/bad.err"; fail "unclear error"; }
[[ ! -e "$out/bad" ]] || fail "a refused run created its output folder"

# `--dataset list`: the same images through lists of your own, DeepHash's format, with a class the
# folders do not have (footwear: sandal, sneaker, boot), so that some images carry two; names from
# classes.txt. Every tenth image (by test-set index, so the classes interleave) is a query, the
# rest train and form the database.
lists=$out/lists
mkdir -p "$lists"
printf '%s\n' "${names[@]}" footwear >"$lists/classes.txt"
: >"$lists/test.txt"
: >"$lists/train.txt"
n=0
for f in $(cd "$out/photos" && ls -- */img*.pgm | sort -t/ -k2); do
  class=${f%%/*}
  row=""
  for c in "${names[@]}"; do [[ $c == "$class" ]] && row+=" 1" || row+=" 0"; done
  [[ $class == sandal || $class == sneaker || $class == boot ]] && row+=" 1" || row+=" 0"
  if ((n++ % 10 == 0)); then echo "$f$row" >>"$lists/test.txt"; else echo "$f$row" >>"$lists/train.txt"; fi
done
cp "$lists/train.txt" "$lists/database.txt"
"$vts" train --dataset list --data-dir "$lists" --image-root "$out/photos" --epochs 30 --eval-every 30 \
  --out "$out/list_run" --quiet >"$out/list.txt"
grep -q "11 classes" "$out/list.txt" && grep -q "footwear" "$out/list.txt" || { cat "$out/list.txt"; fail "list: classes"; }
list_map=$(sed -n 's/^  "map": \([0-9.eE+-]*\),*$/\1/p' "$out/list_run/metrics.json")
echo "list protocol, 11 classes (two on footwear): mAP = $list_map"
awk -v m="$list_map" 'BEGIN { exit !(m >= 0.5) }' || fail "list protocol: mAP $list_map below the bar 0.5"
tr -d ' \n' <"$out/list_run/metrics.json" | grep -q '"classes":\["tshirt",.*"boot","footwear"\]' ||
  fail "list protocol: metrics.json does not name the classes"
echo "ok"
