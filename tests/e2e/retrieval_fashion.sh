#!/usr/bin/env bash
# End to end on the real Fashion-MNIST files: train a model briefly, `vts encode` the database and
# the query split and a folder of PGM files cut from the test set, `vts search` by image file and
# by dataset source, several queries at once (--queries, --json), `vts evaluate` (it must give the
# training run's mAP), `vts export` to FAISS and Milvus, `vts encode --update` of a changed folder
# (and continued after an undecodable image, after SIGTERM and after --time-limit), `vts info`,
# `vts --version`, and check that bad input is refused.
#   - a query item searched by its own source is found at distance 0 (same transform, same codes);
#   - a PGM file and the IDX record it was cut from give the same code;
#   - the neighbours of 10 test images share their class in at least 60 % of the top 10
#     (measured 2026-11-28 after 2 epochs of training: 72 of 100; 2026-12-03 with the training
#     test's 4-epoch model: 84 of 100).
# Usage: retrieval_fashion.sh VTS [RUN_DIR]: RUN_DIR is a finished `vts train` run to use (ctest
# passes the one the training test keeps); without it a model is trained here for 2 epochs.
set -euo pipefail
vts=$(realpath "$1")  # absolute: some steps run in other folders
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# add_links DIR PREFIX: 100 symbolic links in DIR to each of library2's 10 images, named PREFIX<i>-<image>.
add_links() {
  for f in "$out"/library2/*.pgm; do
    for i in $(seq 100); do ln -s "$f" "$1/$2$i-${f##*/}"; done
  done
}
# wait_for_line FILE PATTERN: until a command running in the background has written PATTERN (10 s at most).
wait_for_line() {
  for _ in $(seq 1000); do
    grep -q "$2" "$1" && return
    sleep 0.01
  done
}

# `vts --version` names the build's GEMM library, after the float kernel of an AVX-512 build (and
# exits 0 without running anything).
"$vts" --version >"$out/version.txt" || fail "vts --version exited $?"
grep -q '^vts [0-9]' "$out/version.txt" &&
  grep -Eq '^CPU GEMMs: (VTS AVX-512 kernel for float, )?(Eigen|OpenBLAS) ' "$out/version.txt" ||
  { cat "$out/version.txt"; fail "vts --version does not name the version and the CPU GEMM library"; }

run=${2:-}
if [[ -z $run ]]; then
  run=$out/run
  "$vts" train --epochs 2 --eval-every 2 --out "$run" --quiet >/dev/null
fi
[[ -s $run/best.safetensors ]] || fail "$run holds no best.safetensors (a finished vts train run was expected)"
"$vts" encode --model "$run" --out "$out/db.vtsidx" --quiet
"$vts" encode --model "$run/best.safetensors" --split query --out "$out/query.vtsidx" --quiet

# `vts evaluate` of the query split against the database split scores them as `vts train` did:
# the same mAP to the last digit (same codes, same ranking, the protocol's cut-off).
"$vts" evaluate --queries "$out/query.vtsidx" --database "$out/db.vtsidx" --out "$out/eval" >"$out/eval.txt"
train_map=$(grep '^  "map"' "$run/metrics.json")
[[ -n $train_map && $(grep '^  "map"' "$out/eval/metrics.json") == "$train_map" ]] ||
  { cat "$out/eval.txt"; fail "vts evaluate's mAP differs from the training run's ($train_map)"; }
grep -q "fashion-mnist's query and database splits" "$out/eval.txt" || { cat "$out/eval.txt"; fail "protocol not seen"; }
for f in per_query.json pr_curve.json pr_curve.svg; do [[ -s $out/eval/$f ]] || fail "vts evaluate wrote no $f"; done
[[ $(grep -c '"ap":' "$out/eval/per_query.json") == 1000 ]] || fail "per_query.json does not hold 1,000 queries"

# Ten test images as binary PGM files (header, then the 784 bytes of record i).
test_images=$data/t10k-images-idx3-ubyte.gz
test_labels=$data/t10k-labels-idx1-ubyte.gz
mkdir -p "$out/pgm"
gzip -dc "$test_images" >"$out/t10k-images.raw"
gzip -dc "$test_labels" >"$out/t10k-labels.raw"
cut_bytes() { dd if="$1" bs=4096 iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
for i in 0 1 2 3 4 5 6 7 8 9; do
  { printf 'P5\n28 28\n255\n'; cut_bytes "$out/t10k-images.raw" $((16 + 784 * i)) 784; } >"$out/pgm/img$i.pgm"
done
"$vts" encode --model "$run" --images "$out/pgm" --out "$out/pgm.vtsidx" --quiet
# Lists: plain paths (one with a blank in its name), and a DeepHash list whose label count is read
# from its first entry, with classes.txt beside it naming the columns.
cp "$out/pgm/img1.pgm" "$out/my photo.pgm"
printf '%s\n' "$out/pgm/img0.pgm" "  $out/my photo.pgm  " "" >"$out/paths.txt"
"$vts" encode --model "$run" --images "$out/paths.txt" --out "$out/paths.vtsidx" --quiet >"$out/paths_enc.txt"
grep -q "wrote 2 codes of 64 bits to" "$out/paths_enc.txt" || { cat "$out/paths_enc.txt"; fail "list of paths"; }
printf 'img0.pgm 1 0\nimg1.pgm 0 1\nimg2.pgm 1 1\n' >"$out/pgm/labelled.txt"
printf 'top\nbottom\n' >"$out/pgm/classes.txt"
"$vts" encode --model "$run" --images "$out/pgm/labelled.txt" --out "$out/labelled.vtsidx" --quiet >/dev/null
"$vts" info "$out/labelled.vtsidx" | grep -q "labels: 2 classes: top, bottom" || fail "list labels or class names"
rm "$out/pgm/labelled.txt" "$out/pgm/classes.txt"
cp -r "$out/pgm" "$out/library"  # for `vts encode --update` at the end
cp -r "$out/pgm" "$out/library2"
library_made=$(date +%s.%N)

# The PGM file and its IDX record must land on the same code (distance 0).
"$vts" search --index "$out/pgm.vtsidx" --image "$test_images#3" --radius 0 --no-gallery >"$out/same.txt"
grep -q "img3.pgm" "$out/same.txt" || { cat "$out/same.txt"; fail "img3.pgm is not at distance 0 from its IDX record"; }

# A query item found by its own source at distance 0.
first_query_source=$("$vts" search --index "$out/query.vtsidx" --image "$out/pgm/img0.pgm" -k 1 --no-gallery |
                     awk 'NR == 3 { print $4 }')
"$vts" search --index "$out/query.vtsidx" --image "$first_query_source" --radius 0 --no-gallery >"$out/self.txt"
grep -qF "$first_query_source" "$out/self.txt" || { cat "$out/self.txt"; fail "query item not found at distance 0"; }
# --exclude-query leaves it out (the query given by a relative path: compared as the index spells it).
(cd "$(dirname "$first_query_source")" &&
  "$vts" search --index "$out/query.vtsidx" --image "$(basename "$first_query_source")" -k 5 --exclude-query \
    --no-gallery) >"$out/others.txt"
[[ $(awk 'NR > 2 && $1 ~ /^[0-9]+$/' "$out/others.txt" | wc -l) == 5 ]] && ! grep -qF "$first_query_source" "$out/others.txt" ||
  { cat "$out/others.txt"; fail "--exclude-query: expected 5 neighbours without the query itself"; }

# Ten queries by file: top-10 labels against the true labels; a gallery for the first.
labels=($(cut_bytes "$out/t10k-labels.raw" 8 10 | od -An -tu1))
agree=0
for i in 0 1 2 3 4 5 6 7 8 9; do
  gallery=()
  [[ $i == 0 ]] && gallery=(--gallery "$out/gallery.png") || gallery=(--no-gallery)
  "$vts" search --index "$out/db.vtsidx" --image "$out/pgm/img$i.pgm" -k 10 "${gallery[@]}" >"$out/s$i.txt"
  rows=$(awk 'NR > 2 && $1 ~ /^[0-9]+$/' "$out/s$i.txt" | wc -l)
  [[ $rows == 10 ]] || { cat "$out/s$i.txt"; fail "expected 10 result rows, found $rows"; }
  agree=$((agree + $(awk -v c="${labels[$i]}" 'NR > 2 && $1 ~ /^[0-9]+$/ && $3 == c' "$out/s$i.txt" | wc -l)))
done
echo "top-10 neighbours sharing the query's class: $agree of 100"
((agree >= 60)) || fail "only $agree of 100 neighbours share the query's class (bar: 60)"
[[ $(head -c 8 "$out/gallery.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "gallery is not a PNG"

# The same ten queries at once, as a folder and as a list of the IDX records they were cut from:
# each query's table is the one its own search printed, the JSON lists 10 × 10 results, and the
# galleries folder holds one PNG per query.
for i in 0 1 2 3 4 5 6 7 8 9; do echo "$test_images#$i"; done >"$out/queries.txt"
"$vts" search --index "$out/db.vtsidx" --queries "$out/pgm" -k 10 --json "$out/batch/results.json" \
  --gallery "$out/galleries" >"$out/batch.txt"
"$vts" search --index "$out/db.vtsidx" --queries "$out/queries.txt" -k 10 >"$out/batch_idx.txt"
table_of() {  # table_of FILE QUERY: the result rows printed under "query QUERY:"
  awk -v q="query $2:" 'index($0, q) == 1 { on = 1; next } on && !NF { exit } on && $1 ~ /^[0-9]+$/' "$1"
}
for i in 0 1 2 3 4 5 6 7 8 9; do
  single=$(awk 'NR > 2 && $1 ~ /^[0-9]+$/' "$out/s$i.txt")
  [[ $(table_of "$out/batch.txt" "$out/pgm/img$i.pgm") == "$single" ]] ||
    { cat "$out/batch.txt"; fail "--queries folder: img$i.pgm's table differs from its own search's"; }
  [[ $(table_of "$out/batch_idx.txt" "$test_images#$i") == "$single" ]] ||
    { cat "$out/batch_idx.txt"; fail "--queries list: record $i's table differs from img$i.pgm's search"; }
done
[[ $(grep -c '"rank":' "$out/batch/results.json") == 100 ]] || fail "results.json does not hold 10 x 10 results"
grep -qF "\"query\": \"$out/pgm/img9.pgm\"" "$out/batch/results.json" || fail "results.json does not name img9.pgm"
[[ $(ls "$out/galleries" | grep -c '\.png$') == 10 ]] || { ls "$out/galleries"; fail "expected 10 galleries"; }

# Exports.
"$vts" export --index "$out/db.vtsidx" --format faiss --out "$out/db.faiss" >/dev/null
# IBxF fourcc, then d = 64 as int32 little-endian.
[[ $(head -c 8 "$out/db.faiss" | od -An -tx1 | tr -d ' \n') == 4942784640000000 ]] || fail "FAISS header"
"$vts" export --index "$out/db.vtsidx" --format milvus --out "$out/milvus" >/dev/null
[[ -s "$out/milvus/vectors.npy" && -s "$out/milvus/ids.npy" ]] || fail "Milvus files missing"

# Bad input: a clear error and a non-zero exit, never a crash.
source "$(dirname "$0")/expect_error.sh"
head -c 1000 "$out/db.vtsidx" >"$out/cut.vtsidx"
expect_error "cut.vtsidx" "$vts" search --index "$out/cut.vtsidx" --image "$out/pgm/img0.pgm" --no-gallery
expect_error "nothere.png" "$vts" search --index "$out/db.vtsidx" --image "$out/nothere.png" --no-gallery
expect_error "holds 10000 images" "$vts" search --index "$out/db.vtsidx" --image "$test_images#10000" --no-gallery
printf 'not an image' >"$out/pgm/broken.png"
expect_error "broken.png" "$vts" encode --model "$run" --images "$out/pgm" --out "$out/broken.vtsidx" --quiet
[[ ! -e "$out/broken.vtsidx" ]] || fail "a failed encode left an index file behind"
# --skip-unreadable leaves it out, names it, and gives the other ten their codes.
"$vts" encode --model "$run" --images "$out/pgm" --out "$out/skipped.vtsidx" --skip-unreadable --quiet >"$out/skip.txt" 2>&1
grep -q "left out 1 image that could not be read" "$out/skip.txt" && grep -q "broken.png" "$out/skip.txt" &&
  grep -q "wrote 10 codes" "$out/skip.txt" || { cat "$out/skip.txt"; fail "--skip-unreadable"; }
for index in pgm skipped; do "$vts" export --index "$out/$index.vtsidx" --format milvus --out "$out/m_$index" >/dev/null; done
cmp -s "$out/m_pgm/vectors.npy" "$out/m_skipped/vectors.npy" || fail "--skip-unreadable changed the other codes"
expect_error "holds no labels" "$vts" evaluate --queries "$out/pgm.vtsidx" --database "$out/db.vtsidx"
expect_error "radius: expected a whole number from -1" "$vts" evaluate --queries "$out/query.vtsidx" --database "$out/db.vtsidx" --radius -2
"$vts" evaluate --queries "$out/query.vtsidx" --database "$out/query.vtsidx" >"$out/self_eval.txt"
grep -q "1000 of 1000 queries are also in the database" "$out/self_eval.txt" || { cat "$out/self_eval.txt"; fail "no overlap note"; }
expect_error "expected a query" "$vts" search --index "$out/db.vtsidx" --no-gallery
expect_error "use --image" "$vts" search --index "$out/db.vtsidx" --queries "$out/pgm/img0.pgm" --no-gallery
printf '%s\n' "$out/pgm/img0.pgm" "$out/nothere.png" >"$out/bad_queries.txt"
expect_error "nothere.png" "$vts" search --index "$out/db.vtsidx" --queries "$out/bad_queries.txt" --no-gallery
printf '\n  \n' >"$out/empty_queries.txt"
expect_error "found none" "$vts" search --index "$out/db.vtsidx" --queries "$out/empty_queries.txt" --no-gallery
expect_error "expected a folder for one PNG" "$vts" search --index "$out/db.vtsidx" --queries "$out/queries.txt" \
  --gallery "$out/gallery.png"
# Another model: the same checkpoint with one byte of the class token changed (safetensors: u64
# header length, the JSON header with each tensor's data_offsets, then the data).
cp "$run/best.safetensors" "$out/other.safetensors"
header_len=$(head -c 8 "$out/other.safetensors" | od -An -tu8 | tr -d ' ')
cls_offset=$(head -c $((8 + header_len)) "$out/other.safetensors" |
             sed -n 's/.*"model\.backbone\.cls_token":{[^}]*"data_offsets":\[\([0-9]*\),.*/\1/p')
[[ -n $cls_offset ]] || fail "no model.backbone.cls_token in the checkpoint header"
printf '\x55' | dd of="$out/other.safetensors" bs=1 seek=$((8 + header_len + cls_offset + 1)) conv=notrunc 2>/dev/null
expect_error "not the one" "$vts" search --index "$out/db.vtsidx" --model "$out/other.safetensors" \
  --image "$out/pgm/img0.pgm" --no-gallery

# `vts encode --update`: a first update encodes everything; after an image is added, one removed
# and one overwritten, the next keeps the other 8 codes and gives the index a fresh encode gives.
# (Files changed within 2 s of an encode's start count as changed: let the copies age first.)
sleep "$(awk -v t0="$library_made" -v now="$(date +%s.%N)" 'BEGIN { w = t0 + 2.5 - now; print (w > 0 ? w : 0) }')"
"$vts" encode --model "$run" --images "$out/library" --out "$out/library.vtsidx" --update --quiet >"$out/u1.txt"
grep -q "no index there yet" "$out/u1.txt" || { cat "$out/u1.txt"; fail "first --update"; }
cp "$out/pgm/img0.pgm" "$out/library/added.pgm"
rm "$out/library/img9.pgm"
cp "$out/pgm/img6.pgm" "$out/library/img5.pgm"
"$vts" encode --model "$run" --images "$out/library" --out "$out/library.vtsidx" --update --quiet >"$out/u2.txt"
grep -q "8 unchanged (codes kept), 1 new, 1 changed, 1 removed" "$out/u2.txt" || { cat "$out/u2.txt"; fail "--update counts"; }
"$vts" encode --model "$run" --images "$out/library" --out "$out/fresh.vtsidx" --quiet >/dev/null
for index in library fresh; do "$vts" export --index "$out/$index.vtsidx" --format milvus --out "$out/m_$index" >/dev/null; done
cmp -s "$out/m_library/vectors.npy" "$out/m_fresh/vectors.npy" || fail "--update's codes differ from a fresh encode's"
"$vts" search --index "$out/library.vtsidx" --image "$out/pgm/img6.pgm" --radius 0 --no-gallery >"$out/u3.txt"
grep -q "/library/img5.pgm" "$out/u3.txt" || { cat "$out/u3.txt"; fail "the overwritten img5.pgm kept its old code"; }
"$vts" encode --model "$out/other.safetensors" --split query --out "$out/other_query.vtsidx" --quiet >/dev/null
expect_error "different models" "$vts" evaluate --queries "$out/other_query.vtsidx" --database "$out/db.vtsidx"
# An update saves its codes as it goes (--save-every, here every chunk of 4 images) and when an
# image cannot be decoded; run again, it continues from there.
printf 'not an image' >"$out/library2/zz_broken.png"
rc=0
"$vts" encode --model "$run" --images "$out/library2" --out "$out/library2.vtsidx" --update --batch 1 \
  --save-every 0.000001 >"$out/u4.txt" 2>&1 || rc=$?
((rc == 1)) && grep -q "saved 4 codes" "$out/u4.txt" && grep -q "saved 8 codes" "$out/u4.txt" &&
  grep -q "zz_broken.png" "$out/u4.txt" && grep -q "holds the 8 images encoded so far" "$out/u4.txt" ||
  { cat "$out/u4.txt"; fail "an update stopped by an undecodable image (rc $rc)"; }
rm "$out/library2/zz_broken.png"
"$vts" encode --model "$run" --images "$out/library2" --out "$out/library2.vtsidx" --update --quiet >"$out/u5.txt"
grep -q "8 unchanged (codes kept), 2 new, 0 changed, 0 removed" "$out/u5.txt" || { cat "$out/u5.txt"; fail "continued update"; }
"$vts" export --index "$out/library2.vtsidx" --format milvus --out "$out/m_library2" >/dev/null
"$vts" encode --model "$run" --images "$out/library2" --out "$out/fresh2.vtsidx" --quiet >/dev/null
"$vts" export --index "$out/fresh2.vtsidx" --format milvus --out "$out/m_fresh2" >/dev/null
cmp -s "$out/m_library2/vectors.npy" "$out/m_fresh2/vectors.npy" || fail "the continued update differs from a fresh encode"
# SIGTERM (or Ctrl-C) stops an update before its next batch and saves the codes so far, as
# --save-every does; the same command then continues. An index of 10 images, then 1,000 links to
# them added, encoded one a batch, so that the signal, sent once the update has said what it will
# encode, comes while it encodes; whenever it comes, the save holds at least the 10 kept codes.
cp -r "$out/library2" "$out/library3"
sleep 2.5  # files changed less than 2 s before an encode's start count as possibly changed
"$vts" encode --model "$run" --images "$out/library3" --out "$out/library3.vtsidx" --update --quiet >/dev/null
add_links "$out/library3" ""
sleep 2.5
"$vts" encode --model "$run" --images "$out/library3" --out "$out/library3.vtsidx" --update --batch 1 --threads 1 \
  >"$out/u6.txt" 2>&1 &
pid=$!
wait_for_line "$out/u6.txt" "10 unchanged (codes kept), 1000 new"
kill -TERM $pid
rc=0
wait $pid || rc=$?
((rc == 143)) &&
  grep -q "vts encode: stopped by SIGTERM; progress saved: $out/library3.vtsidx holds the [0-9]* images" "$out/u6.txt" ||
  { cat "$out/u6.txt"; fail "an update stopped by SIGTERM (rc $rc)"; }
saved=$(sed -n 's/.*holds the \([0-9]*\) images.*/\1/p' "$out/u6.txt")
"$vts" encode --model "$run" --images "$out/library3" --out "$out/library3.vtsidx" --update --quiet >"$out/u7.txt"
grep -q "$saved unchanged (codes kept), $((1010 - saved)) new" "$out/u7.txt" ||
  { cat "$out/u6.txt" "$out/u7.txt"; fail "the update after SIGTERM did not keep the $saved codes saved"; }
"$vts" export --index "$out/library3.vtsidx" --format milvus --out "$out/m_library3" >/dev/null
"$vts" encode --model "$run" --images "$out/library3" --out "$out/fresh3.vtsidx" --quiet >/dev/null
"$vts" export --index "$out/fresh3.vtsidx" --format milvus --out "$out/m_fresh3" >/dev/null
cmp -s "$out/m_library3/vectors.npy" "$out/m_fresh3/vectors.npy" ||
  fail "the update after SIGTERM differs from a fresh encode"
# --time-limit stops an update the same way (exit status 75). The clock runs on while the process
# is held with SIGSTOP, so the limit has passed when it goes on, at whichever batch it was.
add_links "$out/library3" more-
sleep 2.5
"$vts" encode --model "$run" --images "$out/library3" --out "$out/library3.vtsidx" --update --batch 1 --threads 1 \
  --time-limit 1 >"$out/u8.txt" 2>&1 &
pid=$!
wait_for_line "$out/u8.txt" "1010 unchanged (codes kept), 1000 new"
kill -STOP $pid
sleep 1.5
kill -CONT $pid
rc=0
wait $pid || rc=$?
((rc == 75)) && grep -q "vts encode: stopped by --time-limit (0m01s); progress saved: $out/library3.vtsidx holds the" \
  "$out/u8.txt" || { cat "$out/u8.txt"; fail "an update stopped by --time-limit (rc $rc)"; }
saved=$(sed -n 's/.*holds the \([0-9]*\) images.*/\1/p' "$out/u8.txt")
((saved >= 1010)) || fail "the update stopped by --time-limit saved $saved codes, fewer than the 1010 kept"
"$vts" encode --model "$run" --images "$out/library3" --out "$out/library3.vtsidx" --update --quiet >"$out/u9.txt"
grep -q "$saved unchanged (codes kept), $((2010 - saved)) new" "$out/u9.txt" ||
  { cat "$out/u8.txt" "$out/u9.txt"; fail "the update after --time-limit did not keep the $saved codes saved"; }
# `vts info` says what an index and a checkpoint hold.
"$vts" info "$out/db.vtsidx" "$out/library.vtsidx" "$run" >"$out/info.txt"
grep -q "holds: the database split of fashion-mnist" "$out/info.txt" && grep -q "labels: 10 classes" "$out/info.txt" &&
  grep -q "holds: image files, encoded" "$out/info.txt" && grep -q "^  epoch [0-9]*, mAP 0\." "$out/info.txt" ||
  { cat "$out/info.txt"; fail "vts info"; }
expect_error "expected a vts index file" "$vts" info "$out/t10k-labels.raw"
expect_error "another model" "$vts" encode --model "$out/other.safetensors" --images "$out/library" \
  --out "$out/library.vtsidx" --update --quiet
head -c 500 "$out/library.vtsidx" >"$out/cut_library.vtsidx"
expect_error "remove or move it to encode every image afresh" "$vts" encode --model "$run" --images "$out/library" \
  --out "$out/cut_library.vtsidx" --update --quiet
expect_error "does not record when" "$vts" encode --model "$run" --images "$out/library" --out "$out/db.vtsidx" \
  --update --quiet
echo "retrieval end to end: ok"
