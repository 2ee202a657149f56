#!/usr/bin/env bash
# Hyper-cleaning on Fashion-MNIST at the README protocol (20000 / 5000 / 10000, p = 0.5, the
# defaults of `bilevel hyperclean`): BO-REP, SOBA, MA-SOBA, SABA, SRBA, SPABA, MRBO, SUSTAIN, BSA,
# FSLA, BOME, V-PBGD, F2BA, stocBiO and AmIGO each
# beat the `plain` baseline, and at least one of them - and SABA, SRBA and F2BA themselves - reach
# both hyper-cleaning targets (test accuracy >= 82% and F1 >= 0.90); SPABA, V-PBGD and VRBO (with
# 3 Neumann terms and 3 inner steps, for the test's length) test within 2 points of the `oracle`
# baseline. PZOBO (Gaussian directions: hopeless in 20,000 dimensions, docs/algorithms.md) runs
# on 1,000 training and 1,000 validation images with 20 directions per iteration and tests within
# 2 points of that data's oracle. SOBA with the features stored as bf16 stays within 0.3 points of
# test accuracy and 0.01 of F1 of its float run; on all 60000 training images SOBA is within 2
# points of the oracle with F1 >= 0.90. A few minutes on two cores.
# Usage: hyperclean_presets_test.sh BILEVEL_EXE WORK_DIR
# Exits 77 (skipped) when Debian's dataset-fashion-mnist is not installed.
set -euo pipefail
exe=$1
work=$2
data=/usr/share/datasets/fashion-mnist
if [[ ! -d $data ]]; then
  echo "SKIP: $data not found (apt-get install dataset-fashion-mnist; scripts/setup.sh does)"
  exit 77
fi
mkdir -p "$work"

# number KEY FILE: the value of the top-level "KEY": in the summary line (the last line) of a
# metrics file; the baselines' object, which has keys of the same names, is cut out first
number() {
  tail -n 1 "$2" | sed 's/"baselines":{"[a-z]*":{[^}]*},"[a-z]*":{[^}]*}},//' |
    grep -o "\"$1\":[-0-9.eE+]*" | head -n 1 | cut -d: -f2
}

# baseline NAME FILE: the test accuracy of the `NAME` baseline (plain or oracle) in the summary
# line of a metrics file
baseline() {
  tail -n 1 "$2" | grep -o "\"$1\":{[^}]*}" | grep -o '"test_accuracy":[0-9.]*' | cut -d: -f2
}

status=0
plain=""
oracle=""
on_target=""
for algo in stocbio amigo soba ma-soba saba srba spaba mrbo sustain bsa fsla bome v-pbgd f2ba \
            vrbo bo-rep; do
  args=(--data fashion-mnist --train 20000 --validation 5000 --test 10000 --corruption 0.5
        --algo "$algo" --backend cpu --metrics "$work/$algo.jsonl")
  # (VRBO's 10 inner steps x 2 (Q + 3) oracle calls take 45 s with its defaults: shortened)
  [[ $algo == vrbo ]] && args+=(--neumann-terms 3 --inner-steps 3)
  # (BO-REP's normalized step takes its own default rule: 2 x sqrt(batch / 512))
  [[ -n $plain ]] && args+=(--no-baselines)
  "$exe" hyperclean "${args[@]}" > "$work/$algo.txt" 2>&1 || {
    echo "FAIL: $algo exited with $? (log: $work/$algo.txt)"
    cat "$work/$algo.txt"
    status=1
    continue
  }
  if [[ -z $plain ]]; then
    # "baselines":{"oracle":{...,"test_accuracy":A},"plain":{...,"test_accuracy":B}}
    plain=$(baseline plain "$work/$algo.jsonl")
    oracle=$(baseline oracle "$work/$algo.jsonl")
    echo "plain baseline: test accuracy $plain; oracle $oracle"
  fi
  acc=$(number test_accuracy "$work/$algo.jsonl")
  f1=$(number f1 "$work/$algo.jsonl")
  secs=$(number seconds "$work/$algo.jsonl")
  printf '%-8s test accuracy %s  F1 %s  %.1f s\n' "$algo" "$acc" "$f1" "$secs"
  if ! awk -v a="$acc" -v p="$plain" 'BEGIN { exit !(a > p) }'; then
    echo "FAIL: $algo ($acc) does not beat plain ($plain)"
    status=1
  fi
  if awk -v a="$acc" -v f="$f1" 'BEGIN { exit !(a >= 0.82 && f >= 0.90) }'; then
    on_target+=" $algo"
  fi
done
# the variance-reduced presets on their own: on both targets with the tool's defaults (measured
# on every ISA path of the AVX-512 VM: SABA 82.76%, F1 0.910; SRBA 82.66%, F1 0.904 with its
# epoch walk, 82.60% and 0.901 with draws with replacement)
for algo in saba srba f2ba; do
  if [[ " $on_target " != *" $algo "* ]]; then
    echo "FAIL: $algo is not on both targets (test accuracy >= 0.82, F1 >= 0.90)"
    status=1
  fi
done
# SPABA at PAGE's p = 512 / 20512 restarts less often than SRBA's period of 24 (measured: 82.23%,
# F1 0.865, oracle 83.33%): the oracle's accuracy band, not the F1 target
# V-PBGD (fixed gamma = 10: measured 81.75%, F1 0.879) and the shortened VRBO (81.71%, F1 0.899)
# likewise
for algo in spaba v-pbgd vrbo; do
  acc=$(number test_accuracy "$work/$algo.jsonl")
  if ! awk -v a="$acc" -v o="$oracle" 'BEGIN { exit !(a >= o - 0.02) }'; then
    echo "FAIL: $algo ($acc) is not within 2 points of the oracle ($oracle)"
    status=1
  fi
done

# PZOBO on 1,000 training images (dim x = 1,000), 20 directions, outer step 100 (measured on the
# AMD VM, AVX-512 path: this command 76.18% against its oracle's 77.56%, 216 s on one thread;
# with benchopt's 10 directions it stayed 0.44 points outside the band after 12,000)
"$exe" hyperclean --data fashion-mnist --train 1000 --validation 1000 --test 10000 \
  --corruption 0.5 --algo pzobo --backend cpu --iters 8000 --outer-step 100 \
  --set pzobo_directions=20 --metrics "$work/pzobo.jsonl" > "$work/pzobo.txt" 2>&1 || {
  echo "FAIL: pzobo exited with $? (log: $work/pzobo.txt)"
  status=1
}
if [[ -f $work/pzobo.jsonl ]]; then
  accz=$(number test_accuracy "$work/pzobo.jsonl")
  oraclez=$(baseline oracle "$work/pzobo.jsonl")
  printf 'pzobo on 1000 images: test accuracy %s (oracle %s)\n' "$accz" "$oraclez"
  if ! awk -v a="$accz" -v o="$oraclez" 'BEGIN { exit !(a >= o - 0.02) }'; then
    echo "FAIL: pzobo ($accz) is not within 2 points of the oracle ($oraclez) on 1000 images"
    status=1
  fi
fi

# SOBA with bf16 features against its float run above
"$exe" hyperclean --data fashion-mnist --train 20000 --validation 5000 --test 10000 \
  --corruption 0.5 --algo soba --backend cpu --data-precision bf16 --no-baselines \
  --metrics "$work/soba-bf16.jsonl" > "$work/soba-bf16.txt" 2>&1 || {
  echo "FAIL: soba --data-precision bf16 exited with $? (log: $work/soba-bf16.txt)"
  status=1
}
if [[ -f $work/soba-bf16.jsonl ]]; then
  acc16=$(number test_accuracy "$work/soba-bf16.jsonl")
  f116=$(number f1 "$work/soba-bf16.jsonl")
  acc32=$(number test_accuracy "$work/soba.jsonl")
  f132=$(number f1 "$work/soba.jsonl")
  printf 'soba bf16: test accuracy %s (float %s)  F1 %s (float %s)\n' "$acc16" "$acc32" "$f116" "$f132"
  if ! awk -v a="$acc16" -v b="$acc32" -v f="$f116" -v g="$f132" \
       'BEGIN { d = a - b; e = f - g; exit !(d <= 0.003 && d >= -0.003 && e <= 0.01 && e >= -0.01) }'; then
    echo "FAIL: bf16 features move SOBA by more than 0.3 points or 0.01 of F1"
    status=1
  fi
fi

# the second real protocol: all 60000 training images (50000 train / 10000 validation, the 10000
# test images), SOBA with the defaults: within 2 points of the oracle, F1 >= 0.90
"$exe" hyperclean --data fashion-mnist --train 50000 --validation 10000 --test 10000 \
  --corruption 0.5 --algo soba --backend cpu --metrics "$work/soba-60k.jsonl" \
  > "$work/soba-60k.txt" 2>&1 || { echo "FAIL: soba on 60000 images exited with $?"; status=1; }
if [[ -f $work/soba-60k.jsonl ]]; then
  acc60=$(number test_accuracy "$work/soba-60k.jsonl")
  f160=$(number f1 "$work/soba-60k.jsonl")
  oracle60=$(baseline oracle "$work/soba-60k.jsonl")
  printf 'soba on all 60000 images: test accuracy %s (oracle %s)  F1 %s\n' "$acc60" "$oracle60" "$f160"
  if ! awk -v a="$acc60" -v o="$oracle60" -v f="$f160" 'BEGIN { exit !(a >= o - 0.02 && f >= 0.90) }'; then
    echo "FAIL: on all 60000 images SOBA is not within 2 points of the oracle with F1 >= 0.90"
    status=1
  fi
fi

if [[ -z $on_target ]]; then
  echo "FAIL: no preset reaches both targets (test accuracy >= 0.82 and F1 >= 0.90)"
  status=1
else
  echo "on both targets (test accuracy >= 0.82, F1 >= 0.90):$on_target"
fi
exit $status
