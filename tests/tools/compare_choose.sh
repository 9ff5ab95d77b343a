#!/usr/bin/env bash
# compare.py --choose (scripts/gpu-check's combined step) on lines shaped like a device run's: the
# fastest right candidate per part of the B/16 step wins when ≥ 2 % faster than the default; wrong
# results, a failed step of the candidate's own, and launches vts_bench_train cannot switch on leave
# a row out; the summary pairs the "chosen" step lines with the default step's.
# Usage: compare_choose.sh path/to/compare.py
set -euo pipefail
compare=$1
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

kernel() {  # kernel shape impl median_ms rel_err
  echo "{\"bench\": \"x\", \"kernel\": \"$1\", \"shape\": \"$2\", \"dtype\": \"bf16\", \"impl\": \"$3\", \"median_ms\": $4, \"rate\": 1.0, \"unit\": \"TFLOP/s\", \"rel_err\": $5}"
}
step() {  # step_ms_median extra-json-fields
  echo "{\"impl\": \"vts\", \"mode\": \"train\", \"device\": \"cuda\", \"precision\": \"bf16\", \"gemm\": \"bf16\", \"config\": \"b16\", \"batch\": 32, \"steps\": 20, \"step_ms_median\": $1, \"imgs_per_s\": 1.0, \"cuda_graphs\": true, \"graph_nodes\": 315$2}"
}
A=B32xH12xN197xd64
{
  kernel attention_fwd $A vts 0.0540 0.002
  kernel attention_fwd $A vts_rows128_warp32 0.0510 0.002
  kernel attention_fwd $A vts_unrolled_loads1_mask_last1 0.0450 0.002
  kernel attention_fwd $A vts_wgmma1 0.0300 0.003
  kernel attention_fwd $A vts_wgmma1_blocks3 0.0290 NaN       # wrong: left out
  kernel attention_fwd B32xH12xN50xd64 vts_rows128 0.0010 0.002  # another shape: not the step's
  kernel attention_bwd $A vts 0.1320 0.002
  kernel attention_bwd $A vts_1barrier 0.1230 0.002          # fastest, but no step ran it: left out
  kernel attention_bwd $A vts_split1 0.1240 0.002
  kernel attention_bwd $A vts_wgmma1 0.0700 0.5             # above bf16's bar: left out
  kernel layer_norm_fwd 6304x768 vts 0.01150 0.001
  kernel layer_norm_fwd 6304x768 vts_rows2 0.01140 0.001       # 1 % faster: not enough
  kernel layer_norm_bwd 6304x768 vts 0.0193 0.001
  kernel layer_norm_bwd 6304x768 vts_w8x2_g16_shared 0.0140 0.001   # no vts_bench_train flag: ignored
  kernel layer_norm_bwd 6304x768 vts_w8x3_g16_fold2_shared 0.0150 0.001
  kernel layer_norm_bwd 6304x768 vts_w8x2_g16_prefetch 0.0160 0.001
  kernel gelu_dropout_fwd 6304x3072 vts 0.046 0.002
  kernel gelu_dropout_bwd 6304x3072 vts 0.058 0.002
  kernel gelu_dropout_fwd 6304x3072 vts_keep 0.047 0.002
  kernel gelu_dropout_bwd 6304x3072 vts_keep 0.037 0.002
  step 11.86 ""
  step 11.70 ', "attention": "fused, split backward"'
  step 11.80 ', "attention": "fused, wgmma", "wgmma_applies": true'
  step 11.60 ', "attention_fwd": "unrolled_loads,mask_last,narrow_last,fold_scale"'
  step 11.75 ', "layer_norm": "rows2,shared,fold"'
  step 11.70 ', "dropout_mask": "kept"'
} >"$dir/run.jsonl"

fail() { echo "FAILED: $*"; exit 1; }
flags=$(python3 "$compare" --choose "$dir/run.jsonl" 2>"$dir/reasons.txt")
cat "$dir/reasons.txt"
expected="--attention-fwd wgmma --attention-bwd split --keep-dropout-mask --layer-norm shared,fold"
[[ $flags == "$expected" ]] || fail "flags '$flags', expected '$expected'"
grep -q "vts_wgmma1_blocks3 left out (rel err nan)" "$dir/reasons.txt" || fail "the NaN row was not named as left out"
grep -q "vts_wgmma1 left out (rel err 5.00e-01 > 0.01)" "$dir/reasons.txt" || fail "the wrong backward was not left out"
grep -q "LayerNorm forward: default kept" "$dir/reasons.txt" || fail "a 1 % gain was taken"
grep -q "vts_1barrier left out (no B/16 bf16 step line ran one_barrier)" "$dir/reasons.txt" ||
  fail "a setting no step ran was not named as left out"

# A step line that ran one_barrier (with other settings) makes it a candidate.
{
  cat "$dir/run.jsonl"
  step 11.9 ', "attention": "fused, one-barrier backward", "attention_fwd": "rows128,warp32", "layer_norm": "prefetch,fold"'
} >"$dir/coverage.jsonl"
flags=$(python3 "$compare" --choose "$dir/coverage.jsonl" 2>/dev/null)
[[ $flags == "--attention-fwd wgmma --attention-bwd one_barrier --keep-dropout-mask --layer-norm shared,fold" ]] ||
  fail "with one_barrier's step: flags '$flags'"

# The attention rows in the step's packed layout decide where the benchmark printed them.
{
  cat "$dir/run.jsonl"
  kernel attention_fwd ${A}_packed vts 0.0560 0.002
  kernel attention_fwd ${A}_packed vts_wgmma1 0.0300 0.003
  kernel attention_fwd ${A}_packed vts_unrolled_loads1_mask_last1 0.0280 0.002
} >"$dir/packed.jsonl"
flags=$(python3 "$compare" --choose "$dir/packed.jsonl" 2>"$dir/reasons_packed.txt")
[[ $flags == "--attention-fwd unrolled_loads,mask_last --attention-bwd split --keep-dropout-mask --layer-norm shared,fold" ]] ||
  fail "with packed rows: flags '$flags'"
grep -q "attention forward: vts_unrolled_loads1_mask_last1 0.0280 ms against the default's 0.0560 at ${A}_packed" \
  "$dir/reasons_packed.txt" || fail "the packed rows were not the ones compared"

# Without the Hopper step's line the Hopper forward is not chosen: the mma.sync switches are.
grep -v '"fused, wgmma"' "$dir/run.jsonl" >"$dir/no_hopper.jsonl"
flags=$(python3 "$compare" --choose "$dir/no_hopper.jsonl" 2>/dev/null)
[[ $flags == "--attention-fwd unrolled_loads,mask_last --attention-bwd split --keep-dropout-mask --layer-norm shared,fold" ]] ||
  fail "without the Hopper step: flags '$flags'"

# No kernel lines at all: nothing chosen, an empty line, status 0.
step 11.86 "" >"$dir/steps_only.jsonl"
flags=$(python3 "$compare" --choose "$dir/steps_only.jsonl" 2>/dev/null)
[[ -z $flags ]] || fail "steps only: flags '$flags'"

# The combined step timed twice beside two more default lines: the summary compares the medians
# (default 11.86, 11.90, 11.80 -> 11.86; chosen 11.10, 11.30 -> 11.20, the mean of the middle two).
{
  cat "$dir/run.jsonl"
  step 11.90 ""
  step 11.10 ', "attention": "fused, split backward", "attention_fwd": "wgmma", "dropout_mask": "kept", "layer_norm": "shared,fold", "label": "chosen"'
  step 11.80 ""
  step 11.30 ', "attention": "fused, split backward", "attention_fwd": "wgmma", "dropout_mask": "kept", "layer_norm": "shared,fold", "label": "chosen"'
} >"$dir/combined.jsonl"
python3 "$compare" "$dir/combined.jsonl" >"$dir/summary.md"
row=$(grep "the chosen combination" "$dir/summary.md") || fail "no row for the chosen combination"
echo "$row"
[[ $row == *"attention fused, split backward; dropout_mask kept; attention_fwd wgmma; layer_norm fold,shared"* ]] ||
  fail "the combination's settings"
[[ $row == *"(3 default, 2 chosen lines) | 11.8600 | 11.2000 | 1.06 |"* ]] || fail "the combination's medians"
grep -q -- "- flags: \`$expected\`" "$dir/summary.md" || fail "the summary does not list the chosen flags"
# The single-setting decisions still pair with the default step's median, not with a chosen line.
grep "the kept dropout mask in the B/16 step" "$dir/summary.md" | grep -q "| 11.8600 | 11.7000 |" ||
  fail "the kept-mask step against the default's median"
# The fp32 step: its attention chosen on the step lines (composite, the fused kernels without the
# padding's work, or the default), the LayerNorm and dropout parts on the fp32 kernel rows.
kernel32() {  # kernel shape impl median_ms
  echo "{\"kernel\": \"$1\", \"shape\": \"$2\", \"dtype\": \"fp32\", \"impl\": \"$3\", \"median_ms\": $4, \"rate\": 1.0, \"unit\": \"GB/s\", \"rel_err\": 3e-7}"
}
step32() {  # step_ms_median extra-json-fields
  echo "{\"impl\": \"vts\", \"mode\": \"train\", \"device\": \"cuda\", \"precision\": \"fp32\", \"gemm\": \"tf32\", \"config\": \"b16\", \"batch\": 32, \"steps\": 20, \"step_ms_median\": $1, \"imgs_per_s\": 1.0$2}"
}
{
  cat "$dir/run.jsonl"
  kernel32 layer_norm_fwd 6304x768 vts 0.0161
  kernel32 layer_norm_fwd 6304x768 vts_rows2 0.0150
  kernel32 layer_norm_bwd 6304x768 vts 0.0294
  kernel32 layer_norm_bwd 6304x768 vts_w8x3_g16_shared 0.0250
  kernel32 layer_norm_bwd 6304x768 vts_w8x2_g16_prefetch 0.0240   # no fp32 step ran it: left out
  kernel32 gelu_dropout_fwd 6304x3072 vts 0.055
  kernel32 gelu_dropout_bwd 6304x3072 vts 0.074
  kernel32 gelu_dropout_fwd 6304x3072 vts_keep 0.056
  kernel32 gelu_dropout_bwd 6304x3072 vts_keep 0.050
  step32 33.90 ""
  step32 30.00 ', "attention": "composite"'
  step32 31.00 ', "attention": "fused, skip padding"'
  step32 33.00 ', "layer_norm": "rows2,shared,fold", "dropout_mask": "kept"'
} >"$dir/fp32.jsonl"
flags=$(python3 "$compare" --choose --precision fp32 "$dir/fp32.jsonl" 2>"$dir/reasons32.txt")
cat "$dir/reasons32.txt"
[[ $flags == "--attention-f32 composite --keep-dropout-mask --layer-norm rows2,shared" ]] || fail "fp32: flags '$flags'"
# The bf16 choice of the same lines is unchanged by the fp32 ones.
flags=$(python3 "$compare" --choose "$dir/fp32.jsonl" 2>/dev/null)
[[ $flags == "$expected" ]] || fail "bf16 beside fp32 lines: flags '$flags'"

# A decision over a kernel pair is judged on the pair's summed times: the kept mask's forward is
# slower (it also writes the bits), its backward faster, the pair faster.
grep "the kept dropout mask (forward + backward)" "$dir/summary.md" |
  grep -q "gelu_dropout_fwd + gelu_dropout_bwd 6304x3072 bf16 | 0.1040 | 0.0840 | 1.24 | .* | faster everywhere" ||
  fail "the kept mask's pair against the default pair"
echo "ok"
