# Sourced by the stop-and-resume scripts.
# expect_info_position STOP_OUTPUT INFO_OUTPUT STAGE: when the run's stop line in STOP_OUTPUT ("in
# [classifier pretraining ]epoch N/M before its batch B/K", batches counted from 1) fell after some
# batches of an epoch, `vts info`'s output INFO_OUTPUT must say so ("stopped inside [pretraining
# ]epoch N after B-1 of its batches"). STAGE: "" for the hash stage, "pretraining" for the
# classifier pretraining. Fails (status 1, the info shown) when it does not.
expect_info_position() {
  local stop_output=$1 info_output=$2 stage=$3
  local stop_words=epoch info_words=epoch
  [[ -z $stage ]] || { stop_words="classifier $stage epoch"; info_words="$stage epoch"; }
  local inside=".* in $stop_words \\([0-9]*\\)/[0-9]* before its batch \\([0-9]*\\)/.*"
  local epoch batch
  epoch=$(sed -n "s|$inside|\\1|p" "$stop_output")
  batch=$(sed -n "s|$inside|\\2|p" "$stop_output")
  ((${batch:-0} > 1)) || return 0
  grep -q "stopped inside $info_words $epoch after $((batch - 1)) of its batches" "$info_output" && return 0
  cat "$info_output"
  echo "FAIL: vts info does not say where inside $info_words $epoch the run stopped (before its batch $batch)"
  return 1
}
