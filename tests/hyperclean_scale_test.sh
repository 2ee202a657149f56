#!/usr/bin/env bash
# Hyper-cleaning at scale with only data and sizes given (the defaults of `bilevel hyperclean`):
# 100000 generated training samples, 128 features spread over scales 1/10..10 with correlated
# noise (the realistic generator of docs/scaling.md). The default preset must reach the quality
# line - F1 >= 0.90 and test accuracy within 2 points of the oracle - and say why it was chosen;
# `--search` (three x steps as instances of one run) must name its pick and stay on the line.
# On the 2-core development VM about 15 s; sized for a slow 2-core AVX2 machine under load.
# Usage: hyperclean_scale_test.sh BILEVEL_EXE WORK_DIR
set -euo pipefail
exe=$1
work=$2
mkdir -p "$work"
data=(--data synthetic --samples 130000 --features 128 --feature-scales 10 --correlation 2
      --train 100000 --validation 10000 --test 20000 --backend cpu)

# number KEY FILE: the top-level "KEY" of the summary line (the baselines' object cut out first)
number() {
  tail -n 1 "$2" | sed 's/"baselines":{"[a-z]*":{[^}]*},"[a-z]*":{[^}]*}},//' |
    grep -o "\"$1\":[-0-9.eE+]*" | head -n 1 | cut -d: -f2
}
oracle_of() {
  tail -n 1 "$1" | grep -o '"oracle":{[^}]*}' | grep -o '"test_accuracy":[0-9.]*' | cut -d: -f2
}
status=0
check_line() {  # NAME METRICS
  local acc f1 oracle
  acc=$(number test_accuracy "$2")
  f1=$(number f1 "$2")
  oracle=$(oracle_of "$2")
  printf '%s: test accuracy %s (oracle %s)  F1 %s\n' "$1" "$acc" "$oracle" "$f1"
  if ! awk -v a="$acc" -v o="$oracle" -v f="$f1" 'BEGIN { exit !(a >= o - 0.02 && f >= 0.90) }'; then
    echo "FAIL: $1 is not on the quality line (F1 >= 0.90, within 2 points of the oracle)"
    status=1
  fi
}

"$exe" hyperclean "${data[@]}" --metrics "$work/default.jsonl" > "$work/default.txt" 2>&1 ||
  { echo "FAIL: the default run exited with $?"; cat "$work/default.txt"; exit 1; }
check_line "defaults" "$work/default.jsonl"
grep -q "soba (default: the preset on the quality line at every scale" "$work/default.txt" ||
  { echo "FAIL: the header does not say why the default preset was chosen"; status=1; }
grep -q "(default: 30 epochs, at least 500 iterations)" "$work/default.txt" ||
  { echo "FAIL: the header does not give the run length's rule"; status=1; }
grep -q "baselines ($(number iterations "$work/default.jsonl") SGD steps)" "$work/default.txt" ||
  { echo "FAIL: the baselines did not train as long as the run"; status=1; }
# a sixth of the run, rounded up: no evaluation one iteration before the final one
evals=$(grep -c '"validation_loss"' "$work/default.jsonl")
[[ $evals -eq 7 ]] || { echo "FAIL: $evals metrics lines, expected 6 evaluations and the summary"; status=1; }

"$exe" hyperclean "${data[@]}" --search --no-baselines --metrics "$work/search.jsonl" \
  > "$work/search.txt" 2>&1 || { echo "FAIL: --search exited with $?"; cat "$work/search.txt"; exit 1; }
grep -q "search: best of 3 settings is instance" "$work/search.txt" ||
  { echo "FAIL: --search does not name its pick"; status=1; }
f1=$(number f1 "$work/search.jsonl")
printf -- '--search: %s; F1 %s\n' "$(grep -o 'search: best.*' "$work/search.txt" | cut -c1-120)" "$f1"
awk -v f="$f1" 'BEGIN { exit !(f >= 0.90) }' || { echo "FAIL: --search's pick has F1 $f1 < 0.90"; status=1; }
exit $status
