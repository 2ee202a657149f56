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

# 1b. a preset's own defaults reach the run where the command has no flag for them (AID-FP's M =
# 10 fixed-point steps, BO-REP's 100 init steps), and the command's flags win where it has one;
# the checkpoint's settings (describe_settings) say what ran
for spec in "aid-fp fixed_point.steps=10" "bo-rep loop.init_steps=100" "srba loop.epoch_sampling=1"; do
  algo=${spec%% *}; want=${spec#* }
  "$bin" quadratic --dx 6 --dy 9 --samples 120 --iters 4 --algo "$algo" --backend cpu \
    --inner-steps 7 --checkpoint "$work/p.ckpt" --checkpoint-every 2 >"$work/out" 2>&1
  check "$algo runs with its preset's $want" $(grep -aq "^$want\$" "$work/p.ckpt" &&
    grep -aq "^loop.inner_steps=7\$" "$work/p.ckpt"; echo $?) "$(grep -a '=' "$work/p.ckpt" | head -40)"
done

# 2. bad options name the option
# an x that cannot move (a float step of 1e-300 is 0) is warned about, not reported as a result
"$bin" quadratic --dx 6 --dy 9 --samples 120 --iters 20 --precision float --outer-step 1e-300 \
  --backend cpu >"$work/out" 2>&1
rc=$?
check "a step that leaves x where it was is warned about" $([ $rc -eq 0 ] && grep -q "warning: instance 0: x did not move in 20 iterations" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --batch -3 >"$work/out" 2>&1
rc=$?
check "negative batch rejected" $([ $rc -ne 0 ] && grep -q -- "--batch: must be >= 0, got -3" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --algo magic >"$work/out" 2>&1
rc=$?
check "unknown algorithm rejected" $([ $rc -ne 0 ] && grep -q -- "--algo: magic not in" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# benchopt's quadratics: SRBA reaches the closed-form x* of a synthetic instance; a file that is
# not one is refused by name
"$bin" quadratics --dx 4 --dy 6 --inner-samples 96 --outer-samples 64 --iters 3000 --eval-every 0 \
  --backend cpu --metrics "$work/qs.jsonl" >"$work/out" 2>&1
rc=$?
rel=$(tail -n1 "$work/qs.jsonl" | grep -o '"relative_distance":\[[^],]*' | cut -d[ -f2)
check "quadratics: srba reaches x*" $([ $rc -eq 0 ] && awk -v r="$rel" 'BEGIN{exit !(r < 1e-8)}'; echo $?) "rc=$rc rel=$rel: $(cat "$work/out")"
printf 'not a quadratics file at all, but longer than forty bytes of header' >"$work/bad.bin"
"$bin" quadratics --data "$work/bad.bin" --backend cpu >"$work/out" 2>&1
rc=$?
check "quadratics: a foreign file refused by name" $([ $rc -ne 0 ] && grep -q "bad.bin: not a quadratics file" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratics --data "$work/bad.bin" --dx 5 --backend cpu >"$work/out" 2>&1
rc=$?
check "quadratics: a synthetic-only option beside a file refused" $([ $rc -ne 0 ] && grep -q -- "--dx sets the synthetic instance" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# --set: any algorithm option by its key; bad keys and values name the argument
"$bin" quadratic --set fixed_point.nuu=0.1 --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "--set with an unknown key rejected" $([ $rc -ne 0 ] && grep -q -- "--set: unknown algorithm option 'fixed_point.nuu'" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --set neumann.terms=x --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "--set with a non-number rejected" $([ $rc -ne 0 ] && grep -q -- "'neumann.terms=x': 'x' is not a finite number" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --set neumann.terms=2.5 --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "--set with a fractional count rejected" $([ $rc -ne 0 ] && grep -q -- "option neumann.terms must be a whole number >= 0, got 2.5" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# it reaches the solver: stocBiO with 0 Neumann terms (v = eta fy) stops short of x*, with 30 it
# gets there (as run 1)
"$bin" quadratic --dx 6 --dy 9 --samples 120 --batch 0 --iters 150 --neumann-terms 30 \
  --set neumann.terms=0 --backend cpu --metrics "$work/set.jsonl" >"$work/out" 2>&1
rel=$(tail -n1 "$work/set.jsonl" | grep -o '"max_relative_distance":[^,}]*' | cut -d: -f2)
check "--set neumann.terms=0 overrides --neumann-terms 30" $(awk -v r="$rel" 'BEGIN{exit !(r > 1e-3)}'; echo $?) "max_relative_distance=$rel"
# a bool option by true/false: SRBA's epoch walk (its default) turned off changes its batches
for walk in true false; do
  "$bin" quadratic --dx 6 --dy 9 --samples 120 --batch 16 --iters 40 --algo srba \
    --set loop.epoch_sampling=$walk --backend cpu --metrics "$work/walk-$walk.jsonl" >"$work/out-$walk" 2>&1
  rc=$?
  check "--set loop.epoch_sampling=$walk runs" $([ $rc -eq 0 ]; echo $?) "rc=$rc: $(cat "$work/out-$walk")"
done
check "the epoch walk changes SRBA's run" $(! cmp -s <(tail -n1 "$work/walk-true.jsonl" | grep -o '"max_relative_distance":[^,}]*') \
  <(tail -n1 "$work/walk-false.jsonl" | grep -o '"max_relative_distance":[^,}]*'); echo $?) "$(tail -n1 "$work/walk-true.jsonl")"
"$bin" algorithms --options >"$work/out" 2>&1
check "algorithms --options lists the keys" $(grep -q "^srba_period *int" "$work/out"; echo $?) "$(cat "$work/out")"
"$bin" quadratic --instances 3 --outer-step 0.1,0.2 --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "step count mismatch rejected" $([ $rc -eq 1 ] && grep -q "outer_step (beta): expected 1 value or one per instance (3), got 2" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --metrics "$work/no/such/dir/m.jsonl" --iters 1 --backend cpu >"$work/out" 2>&1
rc=$?
check "unwritable metrics file named" $([ $rc -eq 1 ] && grep -q "cannot open metrics file '$work/no/such/dir/m.jsonl'" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 2b. options that used to saturate or mean something else (hardening)
bad_option() {  # bad_option NAME EXPECTED-TEXT ARGS...
  local name=$1 want=$2
  shift 2
  "$bin" "$@" >"$work/out" 2>&1
  local rc=$?
  check "$name" $([ $rc -ne 0 ] && grep -qF -- "$want" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
}
bad_option "seed -1 refused" "--seed: must be an integer in [0, 2^64), got '-1'" quadratic --seed -1
bad_option "seed 2^64 refused" "must be an integer in [0, 2^64), got '18446744073709551616'" quadratic --seed 18446744073709551616
bad_option "seed 1e23 refused" "got '1e23'" quadratic --seed 1e23
bad_option "empty step refused" "--outer-step: must be a finite number, got ''" quadratic --outer-step ""
bad_option "negative step refused" "--inner-step: must be > 0, got -0.1" quadratic --inner-step -0.1
bad_option "corruption 1 refused" "--corruption: must be in [0, 1), got 1 (with 1 no training label is clean" hyperclean --corruption 1
bad_option "wrapping split sizes refused" "--train + --validation: 9223372036854775807 + 5000 overflows" hyperclean --data synthetic --train 9223372036854775807
bad_option "batch beyond the data refused" "--batch 100000 is larger than the training set (300 samples)" hyperclean --data synthetic --samples 600 --features 5 --train 300 --validation 200 --test 100 --batch 100000 --backend cpu
bad_option "huge quadratic refused" "--samples 4000000000000 x --dy 100" quadratic --samples 4000000000000 --backend cpu
bad_option "zero threads refused" "--threads: must be > 0, got 0" quadratic --threads 0
bad_option "unknown option: the closest one named" "bilevel hyperclean: unknown option --iterations (did you mean --iters?)" hyperclean --iterations 10
bad_option "unknown option: a prefix named" "unknown option --instance (did you mean --instances?)" quadratic --instance 3
bad_option "unknown option: nothing close" "bilevel meta: unknown option --foo; \`bilevel meta --help\` lists the options" meta --foo

bad_option "too many threads refused" "--threads: must be at most" quadratic --threads 100000
# NaN passes every comparison: CLI11's Range and PositiveNumber let it through to a default
bad_option "hpo NaN step refused" "--outer-step: must be a finite number, got 'nan'" hpo --outer-step nan
bad_option "NaN mu refused" "--mu: must be a finite number, got 'nan'" quadratic --mu nan
bad_option "NaN reg refused" "--reg: must be a finite number, got 'nan'" hyperclean --reg nan
bad_option "NaN gamma refused" "--gamma: must be a finite number, got 'nan'" align --gamma nan
bad_option "an infinite damping refused" "--damping: must be a finite number, got 'inf'" meta --damping inf
BILEVEL_MEMORY_LIMIT=-1 "$bin" hyperclean --data synthetic --samples 600 --features 5 --train 300 --validation 200 --test 100 --backend cpu --iters 2 >"$work/out" 2>&1
rc=$?
check "BILEVEL_MEMORY_LIMIT=-1 refused, not 'no limit'" $([ $rc -eq 1 ] && grep -q "BILEVEL_MEMORY_LIMIT must be a number of bytes (digits, below 2^64), got '-1'" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
head -c 80000000 /dev/zero > "$work/zero.svm"
"$bin" hyperclean --data "$work/zero.svm" --backend cpu --iters 2 >"$work/out" 2>&1
rc=$?
check "a LIBSVM file without newlines refused by its line, early" $([ $rc -eq 1 ] && grep -q "zero.svm' line 1: longer than 64 MiB" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
rm -f "$work/zero.svm"
OMP_NUM_THREADS=100000 "$bin" quadratic --backend cpu --iters 2 >"$work/out" 2>&1
rc=$?
check "OMP_NUM_THREADS=100000 refused by name, no crash" $([ $rc -eq 1 ] && grep -q "OMP_NUM_THREADS=100000 asks for 100000 threads; this machine allows at most" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
BILEVEL_CPU_ISA=sse9 "$bin" quadratic --backend cpu --iters 2 >"$work/out" 2>&1
rc=$?
check "BILEVEL_CPU_ISA=sse9 refused by name" $([ $rc -eq 1 ] && grep -q "BILEVEL_CPU_ISA: unknown instruction set 'sse9' (expected generic, avx2 or avx512)" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
BILEVEL_CPU_ISA=generic "$bin" quadratic --backend cpu --iters 2 >"$work/out" 2>&1
check "BILEVEL_CPU_ISA=generic in the header" $(grep -q "CPU (.*, generic)" "$work/out"; echo $?) "$(head -2 "$work/out")"

# 2b'. with a core busy elsewhere and no --threads, one thread per idle core (said on stderr)
if [ "$(nproc)" -ge 2 ]; then
  taskset -c 0 sh -c 'while :; do :; done' &
  busy=$!
  sleep 0.3
  env -u OMP_NUM_THREADS taskset -c 0,1 "$bin" quadratic --backend cpu --iters 2 >"$work/out" 2>&1
  kill $busy
  check "a busy core: one thread fewer, said" $(grep -q "cores were busy with other work at start: 1 CPU thread" "$work/out" && grep -q "CPU (1 thread," "$work/out"; echo $?) "$(head -3 "$work/out")"
fi

# 2b''. --threads sets the CPU backend's threads, and the iterates do not depend on it
for t in 1 2; do
  "$bin" hyperclean --data synthetic --samples 900 --features 20 --train 500 --validation 250 \
    --test 150 --batch 64 --iters 30 --eval-every 0 --algo bo-rep --backend cpu --threads $t \
    --metrics "$work/t$t.jsonl" >"$work/t$t" 2>&1
  check "--threads $t runs" $? "$(cat "$work/t$t")"
done
check "--threads 1 in the header" $(grep -q "CPU (1 thread," "$work/t1"; echo $?) "$(head -3 "$work/t1")"
check "--threads 2 in the header" $(grep -q "CPU (2 threads," "$work/t2"; echo $?) "$(head -3 "$work/t2")"
same_result() {  # the summary's results, without times and the device
  tail -n1 "$1" | tr ',' '\n' | grep -E '"(f1|test_accuracy|validation_loss|precision|recall)"'
}
check "1 and 2 threads give the same result" $([ -n "$(same_result "$work/t1.jsonl")" ] && [ "$(same_result "$work/t1.jsonl")" = "$(same_result "$work/t2.jsonl")" ]; echo $?) "$(same_result "$work/t1.jsonl") vs $(same_result "$work/t2.jsonl")"

# 2c. a run that does not fit says so in words before allocating (a simulated 20 MB device)
BILEVEL_MEMORY_LIMIT=20000000 "$bin" hyperclean --data synthetic --samples 60000 --features 64 \
  --train 50000 --validation 5000 --test 5000 --instances 4 --backend cpu --data-residence device >"$work/out" 2>&1
rc=$?
check "a run that does not fit is refused in words" $([ $rc -eq 1 ] && grep -q "the run needs 22.4 MB on CPU .* but 20.0 MB are available; it would fit with --data-precision bf16" "$work/out" && grep -q "or --data-residence host (9.4 MB on the device, the training features in host memory)" "$work/out" && ! grep -q '\.cpp' "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# ... and with --data-residence auto (the default) the training features stay in host memory
BILEVEL_MEMORY_LIMIT=20000000 "$bin" hyperclean --data synthetic --samples 60000 --features 64 \
  --train 50000 --validation 5000 --test 5000 --instances 4 --backend cpu --iters 30 \
  --no-baselines --metrics "$work/host.jsonl" >"$work/out" 2>&1
rc=$?
check "auto: training features in host memory when they do not fit" $([ $rc -eq 0 ] && grep -q "the training features (13.0 MB) stay in host memory, read in place by the kernels (they do not fit" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
check "summary says host residence" $(tail -n1 "$work/host.jsonl" | grep -qF '"data_residence":"host"'; echo $?) "$(tail -n1 "$work/host.jsonl")"
BILEVEL_MEMORY_LIMIT=5000000 "$bin" hyperclean --data synthetic --samples 60000 --features 64 \
  --train 50000 --validation 5000 --test 5000 --instances 4 --backend cpu >"$work/out" 2>&1
rc=$?
check "nothing fits: refused, host residence named" $([ $rc -eq 1 ] && grep -q "but 5.0 MB are available" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# SABA's tables (one stored term per fixed batch) count in the plan: at batch 8 they are 1.3 GB,
# and the refusal names the batch size that fits
BILEVEL_MEMORY_LIMIT=200000000 "$bin" hyperclean --data synthetic --samples 60000 --features 64 \
  --train 50000 --validation 5000 --test 5000 --backend cpu --algo saba --batch 8 --iters 2 >"$work/out" 2>&1
rc=$?
check "SABA's tables planned and a batch that fits named" $([ $rc -eq 1 ] && grep -q "the run needs 1.30 GB on CPU .*solver state 1.29 GB) but 200.0 MB are available; it would fit with --batch 64 (fewer SABA tables" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 2d. run length in epochs, and the default that scales with the data
"$bin" hyperclean --data synthetic --samples 7000 --features 10 --train 5000 --validation 1000 \
  --test 1000 --batch 500 --epochs 2 --no-baselines --backend cpu >"$work/out" 2>&1
rc=$?
check "--epochs 2 of 5000 samples in batches of 500 is 20 iterations" $([ $rc -eq 0 ] && grep -q "run: 20 iterations = 2.0 epochs of batches of 500 over 5000 training samples (--epochs)" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
bad_option "--iters and --epochs refused together" "give --iters or --epochs, not both" hyperclean --data synthetic --samples 7000 --features 10 --train 5000 --validation 1000 --test 1000 --iters 5 --epochs 2 --backend cpu
# the scaled-down large-scale protocol (50,000 x 64, p = 0.5) with the default settings: test
# accuracy within 2 points of the oracle and F1 >= 0.90
"$bin" hyperclean --data synthetic --samples 60000 --features 64 --train 50000 --validation 5000 \
  --test 5000 --algo soba --backend cpu --metrics "$work/large.jsonl" >"$work/out" 2>&1
rc=$?
summary=$(tail -n 1 "$work/large.jsonl" | sed 's/"baselines":{"[a-z]*":{[^}]*},"[a-z]*":{[^}]*}},//')
acc=$(echo "$summary" | grep -o '"test_accuracy":[0-9.]*' | head -n1 | cut -d: -f2)
f1=$(echo "$summary" | grep -o '"f1":[0-9.]*' | cut -d: -f2)
oracle=$(tail -n 1 "$work/large.jsonl" | grep -o '"oracle":{[^}]*}' | grep -o '"test_accuracy":[0-9.]*' | cut -d: -f2)
check "50,000 x 64 with the defaults: within 2 points of the oracle, F1 >= 0.90" $([ $rc -eq 0 ] && awk -v a="$acc" -v o="$oracle" -v f="$f1" 'BEGIN { exit !(a >= o - 0.02 && f >= 0.90) }'; echo $?) "rc=$rc acc=$acc oracle=$oracle f1=$f1: $(tail -n 3 "$work/out")"
ttq=$(tail -n 1 "$work/large.jsonl" | grep -o '"time_to_quality_seconds":[-0-9.e]*' | cut -d: -f2)
check "the summary reports the time to quality" $(awk -v t="$ttq" 'BEGIN { exit !(t > 0) }' && grep -q "time to quality (F1 >= 0.90 and test accuracy within 2 points of oracle): [0-9.]* s of iterations, at iteration" "$work/out"; echo $?) "ttq=$ttq: $(tail -n 4 "$work/out")"

# 2e. a search over settings: every combination an instance, the best named with its reason
"$bin" hyperclean --data synthetic --samples 7000 --features 10 --train 5000 --validation 1000 \
  --test 1000 --iters 200 --grid outer-step=100,1000 --grid inner-step=0.5,1,2 --no-baselines \
  --backend cpu --metrics "$work/grid.jsonl" >"$work/out" 2>&1
rc=$?
check "--grid of 2 x 3 runs 6 instances and names the best" $([ $rc -eq 0 ] && grep -q "soba\|stocbio on cpu .*, 6 instances" "$work/out" && grep -q "search: best of 6 settings is instance [0-5] (outer-step [0-9]*, inner-step [0-9.]*): validation loss [0-9.]* against [0-9.]* for the next best" "$work/out" && tail -n1 "$work/grid.jsonl" | grep -q '"instance_settings":\["outer-step 100, inner-step 0.5","outer-step 100, inner-step 1","outer-step 100, inner-step 2","outer-step 1000, inner-step 0.5"'; echo $?) "rc=$rc: $(cat "$work/out")"
bad_option "--grid with a bad name refused" "--grid 'speed=1,2': unknown setting 'speed'" hyperclean --grid speed=1,2
bad_option "--grid and the same option refused" "--grid outer-step and --outer-step both given" hyperclean --grid outer-step=1,2 --outer-step 5
# --search: the x steps default x {1/4, 1, 4} as instances (BO-REP's normalized rule 2 x
# sqrt(batch / 512): 1 at batch 128), the pick named; refused beside what it sets
"$bin" hyperclean --data synthetic --samples 7000 --features 10 --train 5000 --validation 1000 \
  --test 1000 --iters 100 --batch 128 --algo bo-rep --search --no-baselines --backend cpu \
  --metrics "$work/search.jsonl" >"$work/out" 2>&1
rc=$?
check "--search runs three x steps around the default and names the pick" $([ $rc -eq 0 ] && grep -q "x step --search: normalized: 2 x sqrt(batch / 512) = 1 x {1/4, 1, 4}" "$work/out" && grep -q "search: best of 3 settings is instance [0-2] (outer-step [0-9.]*)" "$work/out" && tail -n1 "$work/search.jsonl" | grep -q '"instance_settings":\["outer-step 0.25","outer-step 1","outer-step 4"\]'; echo $?) "rc=$rc: $(cat "$work/out")"
bad_option "--search refused beside --outer-step" "--search tries x steps around the default: give it without --outer-step" hyperclean --search --outer-step 5
bad_option "--search refused beside --instances" "--search makes one instance per x step: give it without --instances" hyperclean --search --instances 2
bad_option "--search refused beside a --grid of x steps" "--search and --grid outer-step=1,2 both vary the x step" hyperclean --search --grid outer-step=1,2

# 3. divergence: one instance of two diverges - it is named, the other goes on (exit 0); when
# every instance diverges: exit 3, iteration and instance named, metrics so far readable
"$bin" quadratic --dx 5 --dy 5 --samples 50 --batch 0 --instances 2 --outer-step 0.1,50 \
  --iters 200 --eval-every 10 --backend cpu --metrics "$work/d.jsonl" >"$work/out" 2>&1
rc=$?
check "one diverging instance of two: exit 0" $([ $rc -eq 0 ]; echo $?) "rc=$rc: $(cat "$work/out")"
check "the diverged instance is named in the summary" $(grep -q "instance 1: diverged at iteration [0-9]*" "$work/out"; echo $?) "$(cat "$work/out")"
check "the healthy instance reached x*" $(grep -q "instance 0: ||x - x\*|| = .*(relative [0-9.]*e-0[6-9])" "$work/out"; echo $?) "$(grep 'instance 0' "$work/out")"
check "metrics stay JSON (null for the diverged instance)" $(! grep -qv '^{.*}$' "$work/d.jsonl" && grep -q '"upper_value":\[[-0-9.e]*,null\]' "$work/d.jsonl" && tail -n1 "$work/d.jsonl" | grep -q '"diverged_at":\[-1,[0-9]*\]'; echo $?) "$(tail -n 2 "$work/d.jsonl")"
"$bin" quadratic --dx 5 --dy 5 --samples 50 --batch 0 --outer-step 50 \
  --iters 200 --eval-every 10 --backend cpu --metrics "$work/d.jsonl" >"$work/out" 2>&1
rc=$?
check "divergence of every instance exits 3" $([ $rc -eq 3 ]; echo $?) "rc=$rc: $(cat "$work/out")"
check "divergence names iteration and instance" $(grep -q "diverged at iteration [0-9]*, instance 0" "$work/out"; echo $?) "$(cat "$work/out")"
check "metrics before divergence readable" $([ -s "$work/d.jsonl" ] && ! grep -qv '^{.*}$' "$work/d.jsonl"; echo $?) "$(cat "$work/d.jsonl")"

# 3b. checkpoints: a run resumed from its checkpoint ends where the uninterrupted run ends
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 40 --backend cpu \
  --checkpoint "$work/ck.bin" --checkpoint-every 20 >"$work/out" 2>&1
check "checkpoint written" $([ -s "$work/ck.bin" ]; echo $?) "$(cat "$work/out")"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu \
  --resume "$work/ck.bin" >"$work/resumed" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu >"$work/whole" 2>&1
check "resume says so" $(grep -q "resuming from '$work/ck.bin' at iteration 40" "$work/resumed"; echo $?) "$(cat "$work/resumed")"
check "resumed run ends as the whole run" $(diff <(grep "instance 0:" "$work/resumed") <(grep "instance 0:" "$work/whole") >/dev/null; echo $?) "$(grep "instance 0:" "$work/resumed" "$work/whole")"
# SOBA carries its warm-started v: the checkpoint holds it and the resumed run continues exactly
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 40 --backend cpu --algo soba \
  --checkpoint "$work/ck2.bin" --checkpoint-every 20 >"$work/out" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu --algo soba \
  --resume "$work/ck2.bin" >"$work/resumed" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu --algo soba >"$work/whole" 2>&1
check "resume names the carried state" $(grep -q "resuming from '$work/ck2.bin' at iteration 40 (with the algorithm's carried state)" "$work/resumed"; echo $?) "$(cat "$work/resumed")"
check "resumed SOBA ends as the whole run" $(diff <(grep "instance 0:" "$work/resumed") <(grep "instance 0:" "$work/whole") >/dev/null; echo $?) "$(grep "instance 0:" "$work/resumed" "$work/whole")"
"$bin" quadratic --dx 7 --dy 9 --iters 80 --backend cpu --resume "$work/ck.bin" >"$work/out" 2>&1
rc=$?
check "checkpoint of another problem rejected" $([ $rc -eq 1 ] && grep -q "checkpoint '$work/ck.bin' was written by a run with other settings: problem.dx: 6 in the checkpoint, 7 now; problem.samples: 200 in the checkpoint, 5000 now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu --seed 3 \
  --resume "$work/ck.bin" >"$work/out" 2>&1
rc=$?
check "checkpoint of another seed rejected" $([ $rc -eq 1 ] && grep -q "other settings: problem.data_seed: 0 in the checkpoint, 3 now;.* loop.seed: 0 in the checkpoint, 3 now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --dx 6 --dy 9 --samples 300 --batch 32 --iters 80 --backend cpu \
  --resume "$work/ck.bin" >"$work/out" 2>&1
rc=$?
check "checkpoint of other data rejected" $([ $rc -eq 1 ] && grep -q "other settings: problem.samples: 200 in the checkpoint, 300 now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# every setting that changes the iterates is compared: the batch (a step the user could leave
# alone), and mu far below what a 6-digit tag tells apart
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 16 --iters 80 --backend cpu \
  --resume "$work/ck.bin" >"$work/out" 2>&1
rc=$?
check "resume under another batch rejected" $([ $rc -eq 1 ] && grep -q "other settings: loop.lower_batch: 32 in the checkpoint, 16 now; loop.upper_batch: 32 in the checkpoint, 16 now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 20 --backend cpu --mu 1e-7 \
  --checkpoint "$work/ckmu.bin" --checkpoint-every 10 >"$work/out" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 40 --backend cpu --mu 2e-7 \
  --resume "$work/ckmu.bin" >"$work/out" 2>&1
rc=$?
check "resume under another tiny mu rejected" $([ $rc -eq 1 ] && grep -q "problem.mu: 9.9999999999999995e-08 in the checkpoint, 1.9999999999999999e-07 now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
# the header is in the CRC: a flipped bit in the iteration is caught
cp "$work/ck.bin" "$work/flip.bin"
python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[16] ^= 1; open(p, 'wb').write(b)" "$work/flip.bin"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu \
  --resume "$work/flip.bin" >"$work/out" 2>&1
rc=$?
check "a flipped iteration bit is caught" $([ $rc -eq 1 ] && grep -q "is damaged: its contents do not match their CRC-32" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --iters 5 --backend cpu --checkpoint "$work/no/dir/ck" >"$work/out" 2>&1
rc=$?
check "unwritable checkpoint named" $([ $rc -eq 1 ] && grep -q "cannot write checkpoint file '$work/no/dir/ck'" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 3b'. checkpoint paths: never a directory or a device, an existing PATH.tmp left alone;
# resuming with the same metrics file keeps the lines up to the checkpoint
mkdir -p "$work/adir"
"$bin" quadratic --iters 5 --backend cpu --checkpoint "$work/adir" >"$work/out" 2>&1
rc=$?
check "directory as checkpoint refused" $([ $rc -eq 1 ] && grep -q "'$work/adir' exists and is not a regular file" "$work/out" && [ -d "$work/adir" ]; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" quadratic --iters 5 --backend cpu --checkpoint /dev/null >"$work/out" 2>&1
rc=$?
check "device as checkpoint refused" $([ $rc -eq 1 ] && grep -q "'/dev/null' exists and is not a regular file" "$work/out" && [ -c /dev/null ]; echo $?) "rc=$rc: $(cat "$work/out")"
echo keep >"$work/ck3.bin.tmp"
"$bin" quadratic --iters 5 --backend cpu --checkpoint "$work/ck3.bin" --checkpoint-every 2 >"$work/out" 2>&1
check "writing leaves an existing PATH.tmp alone" $([ "$(cat "$work/ck3.bin.tmp")" = keep ] && [ -f "$work/ck3.bin" ]; echo $?) "$(ls -l "$work")"
check "writing leaves no temporary behind" $(ls "$work" | grep -q "ck3.bin.tmp-"; [ $? -ne 0 ]; echo $?) "$(ls "$work")"

# two runs writing one checkpoint path: each writes through a temporary of its own (one used to
# die with "cannot rename ... No such file" when the other had renamed the shared PATH.tmp)
"$bin" quadratic --iters 400 --backend cpu --checkpoint "$work/shared.bin" --checkpoint-every 1 >"$work/w1" 2>&1 &
w1=$!
"$bin" quadratic --iters 400 --backend cpu --checkpoint "$work/shared.bin" --checkpoint-every 1 >"$work/w2" 2>&1
rc2=$?
wait $w1
rc1=$?
check "two writers of one checkpoint both finish" $([ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; echo $?) "rc $rc1 $rc2: $(tail -n 2 "$work/w1" "$work/w2")"
# a full disk: a clear error naming the file, not a crash
"$bin" quadratic --iters 20 --eval-every 5 --backend cpu --metrics /dev/full >"$work/out" 2>&1
rc=$?
check "a full disk under the metrics is an error naming the file" $([ $rc -eq 1 ] && grep -q "writing metrics file '/dev/full' failed: No space left on device" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 3b''. outputs never destroy each other, and a refused resume leaves the metrics file alone
cp "$work/ck.bin" "$work/keep.bin"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu \
  --resume "$work/keep.bin" --metrics "$work/keep.bin" >"$work/out" 2>&1
rc=$?
check "--metrics naming the --resume file refused" $([ $rc -eq 1 ] && grep -q "\-\-metrics '$work/keep.bin' and --resume '$work/keep.bin' are one file" "$work/out" && cmp -s "$work/ck.bin" "$work/keep.bin"; echo $?) "rc=$rc: $(cat "$work/out")"
ln -sf "$work/keep.bin" "$work/alias.jsonl"
"$bin" quadratic --iters 4 --backend cpu --checkpoint "$work/keep.bin" --metrics "$work/alias.jsonl" >"$work/out" 2>&1
rc=$?
check "--metrics linked to the --checkpoint file refused" $([ $rc -eq 1 ] && grep -q "are one file" "$work/out" && cmp -s "$work/ck.bin" "$work/keep.bin"; echo $?) "rc=$rc: $(cat "$work/out")"
printf '{"iteration":60,"seconds":1}\n' > "$work/precious.jsonl"  # (after the checkpoint's 40)
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu --seed 5 \
  --resume "$work/ck.bin" --metrics "$work/precious.jsonl" >"$work/out" 2>&1
rc=$?
check "a refused resume leaves the metrics file alone" $([ $rc -eq 1 ] && [ "$(cat "$work/precious.jsonl")" = '{"iteration":60,"seconds":1}' ]; echo $?) "rc=$rc: $(cat "$work/precious.jsonl")"
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 40 --backend cpu --eval-every 10 \
  --checkpoint "$work/ck2.bin" --checkpoint-every 20 --metrics "$work/resume.jsonl" >"$work/out" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 32 --iters 80 --backend cpu --eval-every 10 \
  --resume "$work/ck2.bin" --metrics "$work/resume.jsonl" >"$work/out" 2>&1
rc=$?
iters=$(grep -o '"iteration":[0-9]*' "$work/resume.jsonl" | cut -d: -f2 | tr '\n' ' ')
check "resumed metrics keep the lines up to the checkpoint" $([ $rc -eq 0 ] && [ "$iters" = "10 20 30 40 50 60 70 80 " ] && [ "$(grep -c '"summary":true' "$work/resume.jsonl")" -eq 1 ]; echo $?) "rc=$rc iterations: $iters"

# 3b'. kill -9 in the middle of a run: the metrics file holds every evaluation up to the last
# checkpoint, each line whole, and the resumed run continues it with no gap and no repeat
"$bin" quadratic --dx 30 --dy 60 --samples 2000 --batch 64 --iters 100000000 --backend cpu \
  --threads 1 --eval-every 500 --checkpoint "$work/k9.bin" --checkpoint-every 1000 \
  --metrics "$work/k9.jsonl" >"$work/k9out" 2>&1 &
k9=$!
for _ in $(seq 1 300); do [ -s "$work/k9.bin" ] && break; sleep 0.1; done
sleep 0.5
kill -9 $k9
wait $k9 2>/dev/null
rc=$?
"$bin" quadratic --dx 30 --dy 60 --samples 2000 --batch 64 --iters 1 --backend cpu \
  --threads 1 --eval-every 500 --resume "$work/k9.bin" >"$work/k9probe" 2>&1
# (the probe is refused, naming the checkpoint's iteration)
at=$(grep -o "is at iteration [0-9]*" "$work/k9probe" | grep -o "[0-9]*$")
lines_ok=$(python3 -c "
import json, sys
its = [json.loads(l)['iteration'] for l in open(sys.argv[1])]
at = int(sys.argv[2])
print(int(its == list(range(500, 500 * len(its) + 1, 500)) and its[-1] >= at))
" "$work/k9.jsonl" "${at:-0}" 2>&1)
check "after kill -9 the metrics hold every evaluation up to the checkpoint, whole" $([ $rc -eq 137 ] && [ -n "$at" ] && [ "$lines_ok" = 1 ]; echo $?) "rc=$rc checkpoint at '$at': $lines_ok; $(tail -c 200 "$work/k9.jsonl")"
end=$((at + 2000))
"$bin" quadratic --dx 30 --dy 60 --samples 2000 --batch 64 --iters $end --backend cpu \
  --threads 1 --eval-every 500 --resume "$work/k9.bin" --metrics "$work/k9.jsonl" >"$work/out" 2>&1
rc=$?
lines_ok=$(python3 -c "
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
its = [l['iteration'] for l in lines if 'summary' not in l]
print(int(its == list(range(500, int(sys.argv[2]) + 1, 500)) and 'summary' in lines[-1]))
" "$work/k9.jsonl" "$end" 2>&1)
check "the resumed run continues the killed run's metrics with no gap and no repeat" $([ $rc -eq 0 ] && [ "$lines_ok" = 1 ]; echo $?) "rc=$rc: $lines_ok"

# 3c. independent batches: instance 0 is the shared-batch run, instance 1 another run
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 64 --iters 60 --backend cpu --instances 2 \
  --independent-batches >"$work/ind" 2>&1
"$bin" quadratic --dx 6 --dy 9 --samples 200 --batch 64 --iters 60 --backend cpu >"$work/one" 2>&1
i0=$(grep "instance 0:" "$work/ind" | sed 's/instance 0://'); s0=$(grep "instance 0:" "$work/one" | sed 's/instance 0://')
i1=$(grep "instance 1:" "$work/ind" | sed 's/instance 1://')
check "independent batches: instance 0 is the single run" $([ "$i0" = "$s0" ]; echo $?) "$i0 vs $s0"
check "independent batches: instance 1 differs" $([ "$i1" != "$i0" ]; echo $?) "$i1 vs $i0"

# 4. hyperclean on synthetic data: summary keys, baselines
small=(--data synthetic --samples 2500 --features 10 --classes 4 --train 1500 --validation 500
       --test 500 --batch 128 --backend cpu --baseline-steps 200)
"$bin" hyperclean "${small[@]}" --iters 200 --eval-every 100 --metrics "$work/h.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "hyperclean synthetic exits 0" $rc "rc=$rc: $(cat "$work/err")"
for key in '"summary":true' '"test_accuracy":' '"f1":' '"precision":' '"recall":' '"seconds":' \
           '"iterations_per_second":' '"backend":"cpu"' '"device":' '"algorithm":"soba"' '"plain":' '"oracle":'; do
  check "hyperclean summary has $key" $(tail -n1 "$work/h.jsonl" | grep -qF "$key"; echo $?) "$(tail -n1 "$work/h.jsonl")"
done
check "hyperclean prints the table" $(grep -q "oracle (clean samples only)" "$work/out"; echo $?) "$(cat "$work/out")"
check "hyperclean says why its default preset is SOBA" $(grep -q "soba (default: the preset on the quality line at every scale of docs/scaling.md)" "$work/err"; echo $?) "$(head -n 4 "$work/err")"
check "progress lines on a pipe" $(grep -q "^iter    100/200" "$work/err"; echo $?) "$(cat "$work/err")"

# 4b. hyperclean on a LIBSVM file: the summary names the data
awk 'BEGIN { srand(3); for (i = 0; i < 500; i++) { c = i % 2; printf "%d 1:%.3f 2:%.3f 3:%.3f\n", 2 * c - 1, c + rand(), rand() - c, rand() } }' >"$work/ok.svm"
"$bin" hyperclean --data "$work/ok.svm" --train 300 --validation 100 --test 100 --batch 64 \
  --iters 50 --eval-every 0 --backend cpu --baseline-steps 50 --metrics "$work/l.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "hyperclean LIBSVM exits 0" $rc "rc=$rc: $(cat "$work/err")"
check "summary names the LIBSVM file" $(tail -n1 "$work/l.jsonl" | grep -qF "\"data\":\"$work/ok.svm (LIBSVM)\""; echo $?) "$(tail -n1 "$work/l.jsonl")"

# 4c. benchopt's datacleaning protocol: no bias, its reg, x from -2, test error in the summary
"$bin" hyperclean --data "$work/ok.svm" --protocol benchopt --train 300 --validation 100 --test 100 \
  --batch 64 --iters 50 --eval-every 0 --backend cpu --baseline-steps 50 --metrics "$work/b.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "hyperclean --protocol benchopt exits 0" $rc "rc=$rc: $(cat "$work/err")"
check "benchopt protocol: 3 features, no bias" $(grep -q "test, 3 features (no bias), 2 classes" "$work/err"; echo $?) "$(head -n 3 "$work/err")"
check "benchopt protocol: its reg and start in the header" $(grep -q "protocol benchopt (benchmark_bilevel datacleaning): g = mean sigmoid(x_i) CE_i + 0.2 ||W||^2 (its reg), no bias, x starts at -2" "$work/err"; echo $?) "$(head -n 4 "$work/err")"
check "benchopt protocol: labels redrawn, the wrong ones counted" $(grep -q "each label redrawn with probability 0.5: [0-9]* wrong" "$work/err"; echo $?) "$(head -n 2 "$work/err")"
check "benchopt protocol: test error printed and in the summary" $(grep -q "test error (benchopt's value): 0\.[0-9]*" "$work/out" && tail -n1 "$work/b.jsonl" | grep -q '"protocol":"benchopt"' && tail -n1 "$work/b.jsonl" | grep -q '"test_error":'; echo $?) "$(cat "$work/out"; tail -n1 "$work/b.jsonl")"
grep -q "test, 3 features, 2 classes" <("$bin" hyperclean --data "$work/ok.svm" --train 300 --validation 100 --test 100 --batch 64 --iters 2 --eval-every 0 --backend cpu --no-baselines 2>&1)
check "bilevel protocol header: 3 features (and a bias: nothing said)" $? "(header of the default protocol)"
# a checkpoint of the benchopt protocol does not resume under ours (with --reg given: only the
# protocol differs)
"$bin" hyperclean --data "$work/ok.svm" --protocol benchopt --reg 0.2 --train 300 --validation 100 --test 100 \
  --batch 64 --iters 20 --eval-every 0 --backend cpu --no-baselines --checkpoint "$work/bo.ck" --checkpoint-every 10 >"$work/out" 2>&1
"$bin" hyperclean --data "$work/ok.svm" --reg 0.2 --train 300 --validation 100 --test 100 \
  --batch 64 --iters 30 --eval-every 0 --backend cpu --no-baselines --resume "$work/bo.ck" >"$work/out" 2>&1
rc=$?
check "a benchopt-protocol checkpoint is refused under the bilevel protocol" $([ $rc -eq 1 ] && grep -q "other settings: problem.protocol: benchopt in the checkpoint, (none) now" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
bad_option "benchopt protocol refuses synthetic data" "--protocol benchopt prepares a data file" hyperclean --data synthetic --protocol benchopt
bad_option "unknown protocol refused" "--protocol: jax not in {bilevel,benchopt}" hyperclean --protocol jax

# 4d. splits as given (another program's draws): labels as they are, so no F1 and no oracle;
# a checkpoint names the files; the options that split or corrupt one file are refused
head -n 300 "$work/ok.svm" >"$work/tr.svm"; sed -n 301,400p "$work/ok.svm" >"$work/va.svm"; tail -n 100 "$work/ok.svm" >"$work/te.svm"
"$bin" hyperclean --data "$work/tr.svm" --validation-data "$work/va.svm" --test-data "$work/te.svm" \
  --protocol benchopt --batch 64 --iters 20 --eval-every 10 --backend cpu --baseline-steps 50 \
  --checkpoint "$work/gs.ck" --checkpoint-every 10 --metrics "$work/g.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "hyperclean on given splits exits 0" $rc "rc=$rc: $(cat "$work/err")"
check "given splits: sizes from the files, labels as given" $(grep -q "300 train (labels as given) / 100 validation / 100 test, 3 features (no bias)" "$work/err"; echo $?) "$(head -n 2 "$work/err")"
check "given splits: no oracle, no F1" $(grep -q "no oracle (labels as given" "$work/err" && ! grep -q "oracle (clean" "$work/out" && grep -q "time to quality: not defined" "$work/out" && tail -n1 "$work/g.jsonl" | grep -q '"f1":null' && ! head -n1 "$work/g.jsonl" | grep -q '"f1"'; echo $?) "$(cat "$work/out"; cat "$work/g.jsonl")"
check "given splits: the checkpoint names the files" $(grep -aq "^problem.validation_data=$work/va.svm\$" "$work/gs.ck"; echo $?) "$(grep -a '=' "$work/gs.ck" | head -30)"
"$bin" hyperclean --data "$work/tr.svm" --validation-data "$work/te.svm" --test-data "$work/va.svm" \
  --protocol benchopt --batch 64 --iters 30 --eval-every 0 --backend cpu --no-baselines --resume "$work/gs.ck" >"$work/out" 2>&1
rc=$?
check "given splits: a checkpoint is refused on other files" $([ $rc -eq 1 ] && grep -q "problem.validation_data" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
bad_option "given splits: both files" "--validation-data and --test-data come together" hyperclean --data "$work/tr.svm" --validation-data "$work/va.svm"
bad_option "given splits: --corruption refused" "--corruption corrupts a split made here" hyperclean --data "$work/tr.svm" --validation-data "$work/va.svm" --test-data "$work/te.svm" --corruption 0.3
bad_option "given splits: --train refused" "--train, --validation and --test size a split of one file" hyperclean --data "$work/tr.svm" --validation-data "$work/va.svm" --test-data "$work/te.svm" --train 100
bad_option "given splits: synthetic refused" "'synthetic' is split here" hyperclean --data synthetic --validation-data "$work/va.svm" --test-data "$work/te.svm"
bad_option "--no-standardize only with given splits" "--no-standardize takes the splits as given" hyperclean --data "$work/ok.svm" --no-standardize
printf '1 1:0.5\n-1 x:1\n' >"$work/ok.svm.bad"
bad_option "given splits: a bad line named" "$work/ok.svm.bad" hyperclean --data "$work/tr.svm" --validation-data "$work/va.svm" --test-data "$work/ok.svm.bad"

# 5. hyperclean bad input
"$bin" hyperclean --data "$work/none.svm" >"$work/out" 2>&1
rc=$?
check "missing data file named" $([ $rc -eq 1 ] && grep -q "no such file or folder" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
mkdir -p "$work/idx"
"$bin" hyperclean --data "$work/idx" >"$work/out" 2>&1
rc=$?
check "IDX folder: missing file named" $([ $rc -eq 1 ] && grep -q "missing train-images-idx3-ubyte" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
printf '1 1:0.5\n2 1:oops\n' >"$work/bad.svm"
"$bin" hyperclean --data "$work/bad.svm" >"$work/out" 2>&1
rc=$?
check "LIBSVM line named" $([ $rc -eq 1 ] && grep -q "bad.svm' line 2: bad value after index 1" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" hyperclean --data synthetic --samples 2500 --features 10 --train 5000 --backend cpu >"$work/out" 2>&1
rc=$?
check "impossible split named" $([ $rc -eq 1 ] && grep -q "split sizes do not fit" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" hyperclean --corruption 1.5 >"$work/out" 2>&1
rc=$?
check "corruption out of range" $([ $rc -ne 0 ] && grep -q -- "--corruption" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"
"$bin" hyperclean "${small[@]}" --iters 50 --eval-every 10 --inner-step 1e6 --no-baselines \
  --metrics "$work/hd.jsonl" >"$work/out" 2>&1
rc=$?
check "hyperclean divergence exits 3" $([ $rc -eq 3 ] && grep -q "diverged at iteration [0-9]*, instance 0" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 6. meta-learning: a short MAML run on sinusoids writes metrics and a meta-test summary
"$bin" meta --algo maml --iters 200 --eval-every 100 --meta-batch 10 --test-tasks 50 --backend cpu \
  --metrics "$work/meta.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "meta exits 0" $rc "rc=$rc: $(cat "$work/err")"
lines=$(wc -l <"$work/meta.jsonl")
check "meta metrics: 2 evaluations + summary" $([ "$lines" -eq 3 ]; echo $?) "got $lines lines"
for key in '"summary":true' '"algorithm":"maml"' '"test_loss_after_adaptation"' '"test_loss_interval95"'; do
  check "meta summary has $key" $(tail -n1 "$work/meta.jsonl" | grep -qF "$key"; echo $?) "$(tail -n1 "$work/meta.jsonl")"
done
check "meta summary printed" $(grep -q "meta-test (50 new tasks, 10-shot): query MSE" "$work/out"; echo $?) "$(cat "$work/out")"
bad_option "meta unknown algorithm refused" "--algo: reptile not in" meta --algo reptile
bad_option "meta empty meta-batch refused" "--meta-batch: must be > 0, got 0" meta --meta-batch 0
bad_option "meta bad hidden width refused" "--hidden: must be > 0, got 0" meta --hidden 40,0
bad_option "meta episodes need IDX data" "--data '$work/none': no such file or folder" meta --task fashion-mnist --data "$work/none" --backend cpu
"$bin" meta --algo maml --iters 100 --eval-every 10 --inner-step 50 --meta-batch 4 --test-tasks 4 --backend cpu >"$work/out" 2>&1
rc=$?
check "meta divergence exits 3" $([ $rc -eq 3 ] && grep -q "diverged" "$work/out"; echo $?) "rc=$rc: $(cat "$work/out")"

# 7. policy alignment: A-PARL on the bandit approaches nu*, the baseline does not
"$bin" align --backend cpu --iters 300 --feedback 0 --metrics "$work/align.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "align exits 0" $rc "rc=$rc: $(cat "$work/err")"
err=$(tail -n1 "$work/align.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["relative_reward_error"][0])')
check "a-parl reaches nu* (exact feedback)" $(awk -v e="$err" 'BEGIN{exit !(e < 1e-3)}'; echo $?) "relative error $err"
"$bin" align --backend cpu --iters 300 --feedback 0 --algo reward-learning --metrics "$work/align0.jsonl" >"$work/out" 2>"$work/err"
err=$(tail -n1 "$work/align0.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["relative_reward_error"][0])')
check "reward learning without the score term does not" $(awk -v e="$err" 'BEGIN{exit !(e > 0.9)}'; echo $?) "relative error $err"
bad_option "align too many actions refused" "--actions: Value 100 not in range 2 to 64" align --actions 100
# gridworlds: utility feedback - A-PARL aligns the policy, reward learning (gradient 0) stays;
# preference feedback - reward learning aligns it
ratio_of() { tail -n1 "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["utility_ratio_mean"], sum(s["first_reward_utility_ratio"]) / len(s["first_reward_utility_ratio"]))'; }
"$bin" align --backend cpu --env gridworld --side 4 --horizon 10 --feedback-type utility --instances 4 \
  --iters 400 --metrics "$work/grid.jsonl" >"$work/out" 2>"$work/err"
rc=$?
check "align gridworld exits 0" $rc "rc=$rc: $(cat "$work/err")"
read -r ratio first <<<"$(ratio_of "$work/grid.jsonl")"
check "a-parl aligns gridworlds from utility feedback" $(awk -v r="$ratio" -v f="$first" 'BEGIN{exit !(r > 0.9 && f < 0.5)}'; echo $?) "ratio $ratio (first reward $first)"
check "gridworld summary printed" $(grep -q "reached 95% of the optimum" "$work/out"; echo $?) "$(cat "$work/out")"
check "gridworld header names the feedback" $(grep -q "pairs of reported utilities of 10-step trajectories" "$work/err"; echo $?) "$(cat "$work/err")"
"$bin" align --backend cpu --env gridworld --side 4 --horizon 10 --feedback-type utility --instances 4 \
  --iters 100 --algo reward-learning --metrics "$work/grid0.jsonl" >"$work/out" 2>"$work/err"
read -r ratio first <<<"$(ratio_of "$work/grid0.jsonl")"
check "reward learning cannot use utility feedback" $(awk -v r="$ratio" -v f="$first" 'BEGIN{d = r - f; exit !(d < 1e-9 && d > -1e-9)}'; echo $?) "ratio $ratio (first reward $first)"
"$bin" align --backend cpu --env gridworld --side 4 --horizon 10 --instances 4 --iters 400 \
  --algo reward-learning --metrics "$work/grid1.jsonl" >"$work/out" 2>"$work/err"
read -r ratio first <<<"$(ratio_of "$work/grid1.jsonl")"
check "reward learning aligns gridworlds from preferences" $(awk -v r="$ratio" 'BEGIN{exit !(r > 0.9)}'; echo $?) "ratio $ratio (first reward $first)"
# a decaying step on the reward: named in the header, and it slows the reward down
"$bin" align --backend cpu --env gridworld --side 4 --horizon 10 --instances 4 --iters 100 \
  --algo reward-learning --metrics "$work/grid2.jsonl" >/dev/null 2>&1
"$bin" align --backend cpu --env gridworld --side 4 --horizon 10 --instances 4 --iters 100 \
  --algo reward-learning --outer-decay 1 --metrics "$work/grid3.jsonl" >"$work/out" 2>"$work/err"
check "the decaying step is named" $(grep -q "upper level: SGD on the reward, step 0.1 (k + 1)^-1" "$work/err"; echo $?) "$(cat "$work/err")"
read -r constant first <<<"$(ratio_of "$work/grid2.jsonl")"
read -r decayed first <<<"$(ratio_of "$work/grid3.jsonl")"
check "a decaying step moves the reward less far in 100 iterations" $(awk -v c="$constant" -v d="$decayed" -v f="$first" 'BEGIN{exit !(d - f < 0.5 * (c - f))}'; echo $?) "constant $constant, decayed $decayed, first $first"
bad_option "outer decay bounded" "--outer-decay: must be in [0, 1], got 2" align --env gridworld --outer-decay 2
bad_option "gridworld options refused on the bandit" "--side does not apply to --env bandit" align --side 3
bad_option "gridworld needs two feedback pairs" "--feedback: gridworld alignment needs at least 2" align --env gridworld --feedback 1 --backend cpu
bad_option "gridworld side bounded" "--side: Value 9 not in range 2 to 8" align --env gridworld --side 9

# 8. bilevel plot: a valid PNG and SVG from recorded metrics, a malformed file refused by line
if command -v gnuplot >/dev/null 2>&1; then
  "$bin" plot "$work/large.jsonl" "$work/m.jsonl" -o "$work/c.png" >"$work/out" 2>&1
  rc=$?
  check "plot writes a PNG" $([ $rc -eq 0 ] && python3 -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(24)
assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (1100, 900), (w, h)
" "$work/c.png"; echo $?) "rc=$rc: $(cat "$work/out")"
  "$bin" plot "$work/large.jsonl" -o "$work/c.svg" --width 800 >"$work/out" 2>&1
  rc=$?
  check "plot writes an SVG that parses" $([ $rc -eq 0 ] && python3 -c "
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag.endswith('svg') and root.get('width').startswith('800'), root.attrib
" "$work/c.svg"; echo $?) "rc=$rc: $(cat "$work/out")"
  # the summary's time to quality: a dashed line at its iteration and its seconds; a value that
  # is not a finite number >= 0 draws nothing
  "$bin" plot "$work/large.jsonl" -o "$work/q.png" --script "$work/q.gp" >"$work/out" 2>&1
  it=$(tail -n 1 "$work/large.jsonl" | grep -o '"time_to_quality_iteration":[0-9]*' | cut -d: -f2)
  check "plot marks the time to quality" $(grep -q "^set arrow from $it, graph 0 to $it, graph 1 nohead dashtype 2" "$work/q.gp" && grep -q "(dashed: time to quality)" "$work/q.gp"; echo $?) "iteration $it: $(grep arrow "$work/q.gp")"
  # the legend goes below the plots, outside the axes, so it never covers a curve
  check "plot puts the legend outside the curves" $(grep -q '^set key outside below' "$work/q.gp" && ! grep -q '^set key inside' "$work/q.gp"; echo $?) "$(grep 'set key' "$work/q.gp")"
  printf '{"iteration": 1, "seconds": 0.1, "f1": [0.5]}\n{"summary": true, "time_to_quality_iteration": -1, "time_to_quality_seconds": "1e9"}\n' >"$work/noq.jsonl"
  "$bin" plot "$work/noq.jsonl" -o "$work/noq.png" --script "$work/noq.gp" >"$work/out" 2>&1
  check "plot draws no time to quality that is not a number >= 0" $(! grep -q "arrow from" "$work/noq.gp"; echo $?) "$(grep arrow "$work/noq.gp")"
  printf '{"iteration": 1, "seconds": 0.1, "f1": [0.5]}\n{"iteration": 2, "seconds"\n' >"$work/bad.jsonl"
  bad_option "plot refuses a malformed metrics file by line" "bad.jsonl' line 2 is not JSON" plot "$work/bad.jsonl" -o "$work/x.png"
  bad_option "plot wants .png or .svg" "-o must name a .png or .svg file" plot "$work/large.jsonl" -o "$work/x.gif"
  # nothing in a metrics file, its name or the output's name executes (gnuplot expands
  # backquotes in command text; the data travel in datablocks and no path reaches gnuplot)
  mkdir -p "$work/evil"
  printf '%s\n' '{"iteration":1,"seconds":0.1,"validation_loss":0.5}' \
    '{"iteration":1000001,"seconds":0.2,"validation_loss":1e-7}' \
    '{"iteration":1000000,"seconds":0.3,"validation_loss":3e-7}' \
    '{"summary":true,"algorithm":"x\"`touch '"$work"'/evil/by_algorithm`\\","backend":"cpu","device":"d\nBILEVEL_END_OF_DATA\nsystem(\"touch '"$work"'/evil/by_device\")"}' \
    > "$work/evil/m\`touch by_name\`.jsonl"
  (cd "$work/evil" && "$bin" plot m*.jsonl -o "o\`touch by_output\`.png") >"$work/out" 2>&1
  rc=$?
  check "plot of a hostile metrics file runs" $rc "$(cat "$work/out")"
  check "nothing from a metrics file executes" $(ls "$work/evil" | grep -q "^by_"; [ $? -ne 0 ]; echo $?) "$(ls "$work/evil")"
  (cd "$work/evil" && "$bin" plot m*.jsonl -o plot.png --script plot.gp) >"$work/out" 2>&1
  check "plot keeps small values and large iterations exact" $(grep -q "^1000001 0.20000000000000001 9.9999999999999995e-08$" "$work/evil/plot.gp" && grep -q "^1000000 " "$work/evil/plot.gp"; echo $?) "$(grep -E '^10000' "$work/evil/plot.gp")"
  bad_option "plot refuses -o naming an input" "is the metrics file" plot "$work/large.jsonl" -o "$work/large.jsonl.png" --script "$work/large.jsonl"
  cp "$work/large.jsonl" "$work/same.png"
  bad_option "plot refuses -o naming a metrics file" "(it would be overwritten by the picture)" plot "$work/same.png" -o "$work/same.png"
  PATH=/nonexistent "$bin" plot "$work/large.jsonl" -o "$work/y.png" >"$work/out" 2>&1
  check "plot without gnuplot says it is not installed" $(grep -q "gnuplot is not installed" "$work/out"; echo $?) "$(cat "$work/out")"
  printf 'set terminal pngcairo\nexit status 3\n' > /dev/null
  mkdir -p "$work/fakebin"
  printf '#!/bin/sh\necho "gnuplot: broken font" >&2\nexit 3\n' > "$work/fakebin/gnuplot"
  chmod +x "$work/fakebin/gnuplot"
  PATH="$work/fakebin:$PATH" "$bin" plot "$work/large.jsonl" -o "$work/y.png" >"$work/out" 2>&1
  check "plot names gnuplot's own failure" $(grep -q "gnuplot failed (exit status 3): gnuplot: broken font" "$work/out" && [ ! -e "$work/y.png" ]; echo $?) "$(cat "$work/out")"
else
  echo "skip plot tests: no gnuplot (scripts/setup.sh installs gnuplot-nox)"
fi

# 9. per-feature L2 tuning on a real LIBSVM file (heart_scale from Debian's liblinear-tools):
# it beats the best scalar L2 of the grid on validation loss; bad files and splits are named
heart=/usr/share/doc/liblinear-tools/examples/heart_scale
if [ -f "$heart" ]; then
  "$bin" hpo --backend cpu --metrics "$work/hpo.jsonl" >"$work/out" 2>"$work/err"
  rc=$?
  check "hpo exits 0" $rc "rc=$rc: $(cat "$work/err")"
  check "hpo summary printed" $(grep -q "per-feature L2 (retrained)" "$work/out"; echo $?) "$(cat "$work/out")"
  python3 - "$work/hpo.jsonl" <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
assert s["summary"] and len(s["feature_weights"]) == 13 and len(s["grid"]) == 13, s
assert s["validation_loss"] < s["scalar_validation_loss"] - 1e-3, (s["validation_loss"], s["scalar_validation_loss"])
assert min(s["grid_validation_loss"]) == s["scalar_validation_loss"]
print("ok   hpo: per-feature L2 %.4f below the best scalar %.4f on validation (test %.4f vs %.4f)" % (
    s["validation_loss"], s["scalar_validation_loss"], s["test_loss"], s["scalar_test_loss"]))
PY
  bad_option "hpo batch beyond the training split named" "--batch 1000 is larger than the training split (135 samples)" hpo --batch 1000 --backend cpu
  bad_option "hpo split too large named" "do not fit in the 270 samples of '$heart'" hpo --train 200 --validation 60 --test 20 --backend cpu
else
  echo "skip hpo tests: no $heart (scripts/setup.sh installs liblinear-tools)"
fi
# generated data in which 5 of 30 features matter: per-feature L2 lowers the test loss too
"$bin" hpo --backend cpu --data synthetic --samples 6000 --features 30 --informative 5 --train 300 \
  --validation 2000 --test 3000 --outer-step 10 --iters 300 --metrics "$work/hpo2.jsonl" >"$work/out" 2>&1
check "hpo synthetic exits 0" $? "$(cat "$work/out")"
python3 - "$work/hpo2.jsonl" <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
assert s["validation_loss"] < s["scalar_validation_loss"] - 0.01, s
assert s["test_loss"] < s["scalar_test_loss"] - 0.01, (s["test_loss"], s["scalar_test_loss"])
w = s["feature_weights"]
assert max(w[5:]) > 2 * max(w[:5]) or sum(w[5:]) / 25 > sum(w[:5]) / 5, w  # noise shrunk harder
print("ok   hpo synthetic: test loss %.4f below the best scalar's %.4f" % (s["test_loss"], s["scalar_test_loss"]))
PY
# the same data as benchopt's ijcnn1 model: binary logistic regression with one weight vector
# and no bias (--loss binary)
"$bin" hpo --backend cpu --data synthetic --samples 6000 --features 30 --informative 5 --train 300 \
  --validation 2000 --test 3000 --outer-step 10 --iters 300 --loss binary --no-bias \
  --metrics "$work/hpo4.jsonl" >"$work/out" 2>&1
check "hpo binary exits 0" $? "$(cat "$work/out")"
check "hpo binary header names the one-logit model" \
  $(grep -q "per-feature L2 of binary logistic regression (one logit) on .*2 classes, no bias" "$work/out"; echo $?) "$(cat "$work/out")"
python3 - "$work/hpo4.jsonl" <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
assert s["loss"] == "binary" and len(s["feature_weights"]) == 30, s
assert s["validation_loss"] < s["scalar_validation_loss"] - 0.01, s
print("ok   hpo binary: validation loss %.4f below the best scalar's %.4f" % (
    s["validation_loss"], s["scalar_validation_loss"]))
PY
bad_option "hpo binary per-class refused" "a per-class penalty has nothing to weigh" hpo --loss binary --penalty per-class --data synthetic --backend cpu
# covtype's shape (54 features, 7 classes) in a generated LIBSVM file (class 6's samples
# noisier than the others), covtype's map: one L2 weight per class, no bias (benchopt's covtype
# model); the per-class weights beat the best scalar one on validation
python3 - "$work/covtype_like.svm" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(3)
n, d, c = 4000, 54, 7
centers = rng.normal(size=(c, d))
labels = rng.integers(0, c, size=n)
noise = np.where(labels == 6, 4.0, 1.0)[:, None]
x = centers[labels] + noise * rng.normal(size=(n, d))
with open(sys.argv[1], "w") as out:
    for i in range(n):
        out.write(f"{labels[i] + 1} " + " ".join(f"{j + 1}:{x[i, j]:.5g}" for j in range(d)) + "\n")
PY
"$bin" hpo --backend cpu --data "$work/covtype_like.svm" --penalty per-class --no-bias --train 400 \
  --validation 1600 --test 2000 --outer-step 10 --iters 200 --metrics "$work/hpo3.jsonl" >"$work/out" 2>&1
check "hpo per-class exits 0" $? "$(cat "$work/out")"
check "hpo per-class header says the map and the bias" \
  $(grep -q "per-class L2 of logistic regression on .*54 features, 7 classes, no bias" "$work/out"; echo $?) "$(cat "$work/out")"
python3 - "$work/hpo3.jsonl" <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
assert s["penalty"] == "per-class" and s["bias"] is False, s
w = s["class_weights"]
assert len(w) == 7, w
assert s["validation_loss"] < s["scalar_validation_loss"], (s["validation_loss"], s["scalar_validation_loss"])
print("ok   hpo per-class: validation loss %.4f below the best scalar's %.4f; class weights %s" % (
    s["validation_loss"], s["scalar_validation_loss"], " ".join("%.3g" % v for v in w)))
PY
# benchopt's covtype splits (bench/compare/benchopt_l2_splits.py: its train_test_split twice
# with RandomState(2442)) of the same file, given to hpo as three files
script="$(dirname "$0")/../bench/compare/benchopt_l2_splits.py"
check_sklearn=()
python3 -c "import sklearn" 2>/dev/null && check_sklearn=(--check-sklearn)
python3 "$script" --data "$work/covtype_like.svm" --out "$work/covsplits" "${check_sklearn[@]}" >"$work/out" 2>&1
check "benchopt covtype splits written" $? "$(cat "$work/out")"
[[ ${#check_sklearn[@]} -eq 0 ]] && echo "skip the comparison with scikit-learn's train_test_split: scikit-learn is not installed"
check "benchopt covtype splits are 64/16/20 percent" \
  $([ "$(wc -l < "$work/covsplits/train.svm")" -eq 2560 ] && [ "$(wc -l < "$work/covsplits/validation.svm")" -eq 640 ] && [ "$(wc -l < "$work/covsplits/test.svm")" -eq 800 ]; echo $?) "$(cat "$work/out")"
"$bin" hpo --backend cpu --data "$work/covsplits/train.svm" --validation-data "$work/covsplits/validation.svm" \
  --test-data "$work/covsplits/test.svm" --penalty per-class --no-bias --outer-step 10 --iters 50 \
  --metrics "$work/hpo5.jsonl" >"$work/out" 2>&1
check "hpo given splits exit 0" $? "$(cat "$work/out")"
check "hpo given splits header says so" \
  $(grep -q "split 2560 train / 640 validation / 800 test (as given, standardized on train)" "$work/out"; echo $?) "$(cat "$work/out")"
bad_option "hpo given splits come together" "--validation-data and --test-data come together" \
  hpo --data "$work/covsplits/train.svm" --validation-data "$work/covsplits/validation.svm" --backend cpu
bad_option "hpo given splits take no sizes" "each split is its whole file" \
  hpo --data "$work/covsplits/train.svm" --validation-data "$work/covsplits/validation.svm" \
  --test-data "$work/covsplits/test.svm" --train 100 --backend cpu
bad_option "hpo no-standardize needs given splits" "--no-standardize takes the splits as given" \
  hpo --data "$work/covtype_like.svm" --no-standardize --backend cpu
bad_option "hpo unknown penalty map named" "--penalty: per-sample not in" hpo --penalty per-sample --backend cpu
bad_option "hpo missing file named" "$work/none.svm" hpo --data "$work/none.svm" --backend cpu
bad_option "hpo unknown algorithm named" "--algo: reptile not in" hpo --algo reptile --data "$work/none.svm" --backend cpu

exit $fail
