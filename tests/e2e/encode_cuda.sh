#!/usr/bin/env bash
# `vts encode --device cuda` against `vts encode` on the CPU, on 16 Fashion-MNIST test images cut
# into PGM files, with the model the training test keeps:
#   - the two indexes carry the same model fingerprint (the identity does not depend on the device);
#   - every image's GPU code is within 2 bits of its CPU code (fp32 GEMMs on both: only an output
#     within rounding of zero can change sign), checked by a radius-2 search of the GPU index with
#     `vts search`, which encodes the query on the CPU;
#   - `vts search --device cuda` encodes queries on the GPU: each within 2 bits of its CPU code;
#   - --gemm tf32 runs too; --gemm without --device cuda is refused;
#   - on vts-emu, a device too small for the model: an error that says so and what to change.
# Without a usable device the script checks the error and exits 77 (ctest: Skipped). Run with
# vts_cli_emu (the program linked with vts-emu) it runs the device path on the CPU.
# Usage: encode_cuda.sh VTS RUN_DIR
set -euo pipefail
vts=$1
run=$2
data=${VTS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
[[ -s $run/best.safetensors ]] || fail "$run holds no best.safetensors (a finished vts train run was expected)"

# gzipped as Debian ships it, or plain (scripts/gpu-check's packed copy).
if [[ -f $data/t10k-images-idx3-ubyte.gz ]]; then
  gzip -dc "$data/t10k-images-idx3-ubyte.gz" >"$out/t10k-images.raw"
else
  cp "$data/t10k-images-idx3-ubyte" "$out/t10k-images.raw"
fi
mkdir -p "$out/pgm"
for i in $(seq 0 15); do
  { printf 'P5\n28 28\n255\n'
    dd if="$out/t10k-images.raw" bs=4096 iflag=skip_bytes,count_bytes skip=$((16 + 784 * i)) count=784 status=none
  } >"$out/pgm/img$i.pgm"
done

if ! "$vts" encode --model "$run" --images "$out/pgm" --out "$out/gpu.vtsidx" --device cuda --quiet \
    >"$out/gpu.txt" 2>"$out/gpu.err"; then
  grep -q -- "--device cuda" "$out/gpu.err" || { cat "$out/gpu.err"; fail "--device cuda failed without naming the flag"; }
  [[ ! -e "$out/gpu.vtsidx" ]] || fail "--device cuda failed but wrote $out/gpu.vtsidx"
  echo "skipped: $(cat "$out/gpu.err")"
  exit 77
fi
grep -q "on the GPU" "$out/gpu.txt" || { cat "$out/gpu.txt"; fail "encode did not report the GPU"; }
# vts search encodes each query on the CPU, and accepts the GPU index only if the fingerprints
# match. Each image's own GPU code must lie within 2 bits of its CPU code. (Not "its nearest
# code": CSQ pulls a class's codes onto one center, so other images often share the same code.)
for i in $(seq 0 15); do
  "$vts" search --index "$out/gpu.vtsidx" --image "$out/pgm/img$i.pgm" --radius 2 --no-gallery >"$out/s$i.txt"
  awk 'NR > 2 && $1 ~ /^[0-9]+$/ { print $4 }' "$out/s$i.txt" | grep -q "/img$i.pgm$" ||
    { cat "$out/s$i.txt"; fail "img$i.pgm: its GPU code is more than 2 bits from its CPU code"; }
done

# The other way round: the 16 queries encoded on the GPU by `vts search --device cuda`, searched in
# an index of their CPU codes; each must again find itself within 2 bits.
"$vts" encode --model "$run" --images "$out/pgm" --out "$out/cpu.vtsidx" --quiet >/dev/null
"$vts" search --index "$out/cpu.vtsidx" --queries "$out/pgm" --radius 2 --device cuda >"$out/gpu_queries.txt"
grep -q "16 queries, encoded on the GPU" "$out/gpu_queries.txt" || { cat "$out/gpu_queries.txt"; fail "search --device cuda"; }
for i in $(seq 0 15); do
  awk -v q="query $out/pgm/img$i.pgm:" 'index($0, q) == 1 { on = 1; next } on && !NF { exit } on { print $4 }' \
    "$out/gpu_queries.txt" | grep -q "/img$i.pgm$" ||
    { cat "$out/gpu_queries.txt"; fail "img$i.pgm: encoded by vts search --device cuda, not within 2 bits of its CPU code"; }
done

# Out of device memory (only vts-emu can be made small): the error names the allocation, the next
# line what to change, and no index is left behind.
if "$vts" --version | grep -q "device: vts-emu"; then
  if VTS_EMU_MEMORY_MB=1 "$vts" encode --model "$run" --images "$out/pgm" --out "$out/oom.vtsidx" --device cuda \
      --quiet >/dev/null 2>"$out/oom.err"; then
    fail "encode on a 1 MiB device succeeded"
  fi
  grep -q "out of memory" "$out/oom.err" && grep -q "a smaller --batch needs less" "$out/oom.err" ||
    { cat "$out/oom.err"; fail "out of device memory: no error naming it and what to change"; }
  [[ ! -e "$out/oom.vtsidx" ]] || fail "encode ran out of device memory but wrote $out/oom.vtsidx"
fi

"$vts" encode --model "$run" --images "$out/pgm" --out "$out/tf32.vtsidx" --device cuda --gemm tf32 --quiet >/dev/null
[[ -s "$out/tf32.vtsidx" ]] || fail "--gemm tf32 wrote no index"
if "$vts" encode --model "$run" --images "$out/pgm" --out "$out/bad.vtsidx" --gemm tf32 --quiet 2>"$out/bad.err"; then
  fail "--gemm without --device cuda was accepted"
fi
grep -q -- "--gemm tf32 applies to --device cuda" "$out/bad.err" || { cat "$out/bad.err"; fail "unexpected --gemm error"; }
echo "16 images: GPU codes match the CPU's"
