#!/usr/bin/env bash
# `mpirun -np P bilevel quadratic`: the data-parallel run gives the one-process answer (same
# summary numbers), only rank 0 reports, and a rank that fails ends every rank with a message
# naming it (no rank left waiting).
set -uo pipefail
bin=$1
mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() {  # check NAME CONDITION-RESULT MESSAGE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1: $3"; fail=1; fi
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
args=(quadratic --backend cpu --iters 120 --instances 2 --eval-every 40 --precision double)
"$bin" "${args[@]}" --metrics "$work/one.jsonl" >"$work/one.out" 2>&1
check "one process exits 0" $? "$(cat "$work/one.out")"
timeout 120 "$mpiexec" --oversubscribe -np 3 "$bin" "${args[@]}" --metrics "$work/three.jsonl" \
  >"$work/three.out" 2>&1
rc=$?
check "three ranks exit 0" $rc "rc=$rc: $(cat "$work/three.out")"
check "header names the transport" $(grep -q "distributed: mpi (3 ranks); rank 0 holds samples \[0, 1667)" "$work/three.out"; echo $?) "$(head -5 "$work/three.out")"
check "one summary (rank 0 only)" $([ "$(grep -c '^summary:' "$work/three.out")" -eq 1 ]; echo $?) "$(cat "$work/three.out")"
python3 - "$work/one.jsonl" "$work/three.jsonl" <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 4, (len(a), len(b))
for x, y in zip(a[:-1], b[:-1]):
    for u, v in zip(x["relative_distance"], y["relative_distance"]):
        assert abs(u - v) <= 1e-9 * max(1.0, abs(u)), (u, v)
assert b[-1]["ranks"] == 3 and a[-1]["ranks"] == 1
print("ok   three ranks give the one-process iterates (relative distance to 1e-9)")
PY
# a rank that fails: every rank stops, the message names the rank
timeout 60 "$mpiexec" --oversubscribe -np 3 "$bin" quadratic --backend cpu --samples 2 >"$work/bad.out" 2>&1
rc=$?
check "a failing run ends (no hang), non-zero" $([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?) "rc=$rc"
check "the message names the rank" $(grep -q "rank [0-9] of 3: error: quadratic: 2 samples cannot be shared by 3 ranks" "$work/bad.out"; echo $?) "$(cat "$work/bad.out")"
exit $fail
