#!/usr/bin/env bash
# Trains ViTTiny28 + CSQ, 64 bits, for 4 epochs on the 5,000 Fashion-MNIST training images and
# evaluates on the full protocol (1,000 queries, 64,000 database items). Passes when mAP ≥ 0.55
# and every output file is there. (Measured 2026-11-28 on the 2-core build machine: 0.651.)
set -euo pipefail
vts=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$vts" train --epochs 4 --eval-every 4 --out "$out" --quiet
for f in metrics.json query_codes.npy db_codes.npy query_labels.npy db_labels.npy pr_curve.json pr_curve.svg \
         best.safetensors; do
  [[ -s "$out/$f" ]] || { echo "missing output $f"; exit 1; }
done
map=$(sed -n 's/^  "map": \([0-9.eE+-]*\),*$/\1/p' "$out/metrics.json")
echo "mAP = $map"
awk -v m="$map" 'BEGIN { exit !(m >= 0.55) }' || { echo "mAP $map is below the bar 0.55"; exit 1; }
