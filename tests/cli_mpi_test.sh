#!/usr/bin/env bash
# `mpirun -np P bilevel quadratic` and `... hyperclean`: the data-parallel run gives the
# one-process answer (same metrics), only rank 0 reports, what is not sharded yet is refused by
# name, and a rank that fails ends every rank with a message naming it (no rank left waiting).
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

# hyper-cleaning on a LIBSVM file, each rank streaming it and keeping only its shard: 3 ranks
# (2 with SOBA and F2SA) give the one-process metrics
python3 - "$work/small.svm" <<'PY'
import random, sys
random.seed(5)
means = [[random.gauss(0, 1) for _ in range(12)] for _ in range(3)]
with open(sys.argv[1], "w") as f:
    for i in range(900):
        c = i % 3
        f.write(str(c) + " " + " ".join("%d:%.4f" % (j + 1, means[c][j] + random.gauss(0, 1)) for j in range(12)) + "\n")
PY
hargs=(hyperclean --data "$work/small.svm" --train 500 --validation 200 --test 200 --batch 64
       --iters 90 --eval-every 30 --baseline-steps 100 --backend cpu --precision double)
for algo in stocbio soba f2sa; do
  ranks=$([ $algo = stocbio ] && echo 3 || echo 2)
  "$bin" "${hargs[@]}" --algo $algo --metrics "$work/h1.jsonl" >"$work/h1.out" 2>&1
  check "hyperclean $algo: one process exits 0" $? "$(cat "$work/h1.out")"
  timeout 120 "$mpiexec" --oversubscribe -np $ranks "$bin" "${hargs[@]}" --algo $algo \
    --metrics "$work/hp.jsonl" >"$work/hp.out" 2>&1
  rc=$?
  check "hyperclean $algo: $ranks ranks exit 0" $rc "rc=$rc: $(cat "$work/hp.out")"
  check "hyperclean $algo: header names the ranks, each keeping its shard of the file" $(grep -q "distributed: mpi ($ranks ranks); rank 0 holds training samples .*each rank kept its shard of the file" "$work/hp.out"; echo $?) "$(head -6 "$work/hp.out")"
  check "hyperclean $algo: one summary" $([ "$(grep -c '^summary:' "$work/hp.out")" -eq 1 ]; echo $?) "$(cat "$work/hp.out")"
  python3 - "$work/h1.jsonl" "$work/hp.jsonl" $ranks <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 4, (len(a), len(b))
for x, y in zip(a[:-1], b[:-1]):
    for key in ("validation_loss", "test_accuracy", "f1", "hypergradient_norm"):
        for u, v in zip(x[key], y[key]):
            assert abs(u - v) <= 1e-9 * max(1.0, abs(u)), (key, u, v)
assert b[-1]["ranks"] == int(sys.argv[3]) and a[-1]["ranks"] == 1
assert b[-1]["f1"] == a[-1]["f1"] and b[-1]["test_accuracy"] == a[-1]["test_accuracy"]
print("ok   hyperclean: %s ranks give the one-process metrics (F1 %.3f, test accuracy %.3f)" % (
    sys.argv[3], b[-1]["f1"], b[-1]["test_accuracy"]))
PY
done
# generated data: each rank generates its shard; 2 ranks give the one-process metrics
sargs=(hyperclean --data synthetic --samples 1500 --features 20 --train 800 --validation 300 --test 400
       --batch 64 --iters 60 --eval-every 30 --baseline-steps 50 --backend cpu --precision double)
"$bin" "${sargs[@]}" --metrics "$work/s1.jsonl" >"$work/s1.out" 2>&1
check "synthetic: one process exits 0" $? "$(cat "$work/s1.out")"
timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" "${sargs[@]}" --metrics "$work/s2.jsonl" >"$work/s2.out" 2>&1
rc=$?
check "synthetic: 2 ranks exit 0, each generating its shard" $([ $rc -eq 0 ] && grep -q "each rank generated its shard" "$work/s2.out"; echo $?) "rc=$rc: $(cat "$work/s2.out")"
python3 - "$work/s1.jsonl" "$work/s2.jsonl" <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 3, (len(a), len(b))
for x, y in zip(a[:-1], b[:-1]):
    for key in ("validation_loss", "test_accuracy", "f1"):
        for u, v in zip(x[key], y[key]):
            assert abs(u - v) <= 1e-9 * max(1.0, abs(u)), (key, u, v)
print("ok   synthetic: 2 ranks give the one-process metrics (F1 %.3f)" % b[-1]["f1"])
PY
# a run that does not fit on a rank says what would, for the whole run (a simulated 9 MB device)
BILEVEL_MEMORY_LIMIT=9000000 timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" hyperclean \
  --data synthetic --samples 60000 --features 64 --train 50000 --validation 5000 --test 5000 \
  --instances 4 --backend cpu --data-residence device >"$work/mem.out" 2>&1
rc=$?
check "memory refusal on 2 ranks: --train said for the whole run" $([ $rc -ne 0 ] && grep -q "rank 0 of 2: error: the run needs .* it would fit with --train 25000 (12500 per rank" "$work/mem.out"; echo $?) "rc=$rc: $(head -3 "$work/mem.out")"
# per-rank checkpoints: BO-REP on 2 ranks stopped at 60 and resumed to 90 ends where the
# uninterrupted run at 2 ranks ends, bit for bit (each rank's file holds its shard of x and of
# the momentum m, and the warm-started v); another world size is refused
hshort=("${hargs[@]}")
hshort[12]=60  # --iters 60
timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" "${hshort[@]}" --algo bo-rep --checkpoint "$work/c.ckpt" \
  --checkpoint-every 30 >"$work/ck.out" 2>&1
check "hyperclean: one checkpoint file per rank" $([ -s "$work/c.ckpt.rank-0-of-2" ] && [ -s "$work/c.ckpt.rank-1-of-2" ] && [ ! -e "$work/c.ckpt" ]; echo $?) "$(ls "$work"; cat "$work/ck.out")"
timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" "${hargs[@]}" --algo bo-rep --resume "$work/c.ckpt" \
  --metrics "$work/resumed.jsonl" >"$work/resumed.out" 2>&1
check "hyperclean: resumed on 2 ranks with the carried state" $(grep -q "resuming from '$work/c.ckpt.rank-0-of-2' at iteration 60 (with the algorithm's carried state)" "$work/resumed.out"; echo $?) "$(cat "$work/resumed.out")"
timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" "${hargs[@]}" --algo bo-rep \
  --metrics "$work/whole.jsonl" >"$work/whole.out" 2>&1
python3 - "$work/whole.jsonl" "$work/resumed.jsonl" <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])][-1]
b = [json.loads(l) for l in open(sys.argv[2])][-1]
for key in ("validation_loss", "test_accuracy", "f1"):
    assert a[key] == b[key], (key, a[key], b[key])
print("ok   hyperclean: resumed from per-rank checkpoints, the uninterrupted run's end (F1 %.3f)" % b["f1"])
PY
timeout 60 "$mpiexec" --oversubscribe -np 3 "$bin" "${hargs[@]}" --algo bo-rep --resume "$work/c.ckpt" >"$work/bad.out" 2>&1
check "hyperclean: another world size cannot resume" $(grep -q "rank [0-9] of 3: error: cannot open checkpoint file '$work/c.ckpt.rank-[0-9]-of-3'" "$work/bad.out"; echo $?) "$(cat "$work/bad.out")"
# a run stopped while the ranks were writing: rank 1's file one checkpoint behind rank 0's (its
# predecessor, kept as .previous); the run resumes at the common iteration, 30, from rank 0's
# .previous, and still ends where the uninterrupted run ends
check "hyperclean: each rank keeps its previous checkpoint" $([ -s "$work/c.ckpt.rank-0-of-2.previous" ] && [ -s "$work/c.ckpt.rank-1-of-2.previous" ]; echo $?) "$(ls "$work")"
cp "$work/c.ckpt.rank-1-of-2.previous" "$work/c.ckpt.rank-1-of-2"
timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" "${hargs[@]}" --algo bo-rep --resume "$work/c.ckpt" \
  --metrics "$work/behind.jsonl" >"$work/behind.out" 2>&1
rc=$?
check "hyperclean: ranks one checkpoint apart resume at their common iteration" $([ $rc -eq 0 ] && grep -q "resuming from '$work/c.ckpt.rank-0-of-2.previous' at iteration 30" "$work/behind.out"; echo $?) "rc=$rc: $(cat "$work/behind.out")"
python3 - "$work/whole.jsonl" "$work/behind.jsonl" <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])][-1]
b = [json.loads(l) for l in open(sys.argv[2])][-1]
for key in ("validation_loss", "test_accuracy", "f1"):
    assert a[key] == b[key], (key, a[key], b[key])
print("ok   hyperclean: resumed at the common iteration, the uninterrupted run's end")
PY
# ranks started with different arguments refuse to start (they would wait for each other
# forever, or finish with a wrong answer), and --distributed off under mpirun is refused
timeout 60 "$mpiexec" --oversubscribe -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then n=40; else n=80; fi; exec "$0" quadratic --backend cpu --iters $n' \
  "$bin" >"$work/mixed.out" 2>&1
rc=$?
check "ranks with different --iters refused, no hang" $([ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "the MPI ranks were not started alike: rank(s) 1 differ from rank 0" "$work/mixed.out"; echo $?) "rc=$rc: $(cat "$work/mixed.out")"
timeout 60 "$mpiexec" --oversubscribe -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then s=1; else s=2; fi; exec "$0" quadratic --backend cpu --iters 20 --seed $s' \
  "$bin" >"$work/mixed.out" 2>&1
rc=$?
check "ranks with different --seed refused" $([ $rc -ne 0 ] && grep -q "not started alike" "$work/mixed.out"; echo $?) "rc=$rc: $(cat "$work/mixed.out")"
timeout 60 "$mpiexec" --oversubscribe -np 2 "$bin" quadratic --backend cpu --iters 20 --distributed off >"$work/off.out" 2>&1
rc=$?
check "--distributed off under mpirun refused" $([ $rc -ne 0 ] && grep -q "\-\-distributed off, but an MPI launcher started 2 ranks" "$work/off.out"; echo $?) "rc=$rc: $(cat "$work/off.out")"
exit $fail
