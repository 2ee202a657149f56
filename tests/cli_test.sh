#!/usr/bin/env bash
# The `bilevel` tool end to end: a deterministic run reaches x* and writes JSON-lines metrics
# with a summary; bad options and divergence give a message and a non-zero exit code, and the
# metrics written before a divergence stay readable.
set -uo pipefail
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() {  # check NAME CONDITION-RESULT MESSAGE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1: $3"; fail=1; fi
}

# 1. deterministic stocBiO reaches x*
"$bin" quadratic --dx 6 --dy 9 --samples 120 --batch 0 --iters 150 --neumann-terms 30 \
  --backend cpu --eval-every 50 --metrics "$work/m.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "deterministic run exits 0" $rc "rc=$rc: $(cat "$work/err")"
lines=$(wc -l <"$work/m.jsonl")
check "metrics has 3 evaluations + summary" $([ "$lines" -eq 4 ]; echo $?) "got $lines lines"
rel=$(tail -n1 "$work/m.jsonl" | grep -o '"max_relative_distance":[^,}]*' | cut -d: -f2)
check "summary distance < 1e-6" $(awk -v r="$rel" 'BEGIN{exit !(r < 1e-6)}'; echo $?) "max_relative_distance=$rel"
for key in '"summary":true' '"backend":"cpu"' '"iterations_per_second"' '"device"' '"algorithm":"stocbio"'; do
  check "summary has $key" $(tail -n1 "$work/m.jsonl" | grep -qF "$key"; echo $?) "$(tail -n1 "$work/m.jsonl")"
done
check "summary printed" $(grep -q "instance 0: ||x - x\*||" "$work/out"; echo $?) "$(cat "$work/out")"

# 2. bad options name the option
"$bin" quadratic --batch -3 >"$work/out" 2>&1
rc=$?
check "negative batch rejected" $([ $rc -ne 0 ] && grep -q -- "--batch: must be >= 0, got -3" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --algo magic >"$work/out" 2>&1
rc=$?
check "unknown algorithm rejected" $([ $rc -ne 0 ] && grep -q -- "--algo: magic not in" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --instances 3 --outer-step 0.1,0.2 --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "step count mismatch rejected" $([ $rc -eq 1 ] && grep -q "outer_step (beta): expected 1 value or one per instance (3), got 2" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --metrics "$work/no/such/dir/m.jsonl" --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "unwritable metrics file named" $([ $rc -eq 1 ] && grep -q "cannot open metrics file '$work/no/such/dir/m.jsonl'" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 3. divergence: exit 3, iteration and instance named, metrics so far readable
"$bin" quadratic --dx 5 --dy 5 --samples 50 --batch 0 --instances 2 --outer-step 0.1,50 \
  --iters 200 --eval-every 10 --backend cpu --metrics "$work/d.jsonl" >"$work/out" 2>&1
rc=$?
check "divergence exits 3" $([ $rc -eq 3 ]; echo $?) "rc=$rc: $(cat "$work/out")"
check "divergence names instance 1" $(grep -q "diverged at iteration [0-9]*, instance 1" "$work/out"; echo $?) "$(cat "$work/out")"
check "metrics before divergence readable" $([ -s "$work/d.jsonl" ] && ! grep -qv '^{.*}$' "$work/d.jsonl"; echo $?) "$(cat "$work/d.jsonl")"

exit $fail
