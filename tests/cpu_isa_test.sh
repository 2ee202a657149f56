#!/usr/bin/env bash
# Runs the test program's suites FILTER with the CPU kernels' instruction set ISA
# (BILEVEL_CPU_ISA), or skips (77) where this CPU does not have it or where it is the CPU's
# best (the plain test run covers that one).
# usage: cpu_isa_test.sh ISA TESTS FILTER
set -euo pipefail
isa=$1 tests=$2 filter=$3
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
best=generic
has avx2 fma && best=avx2
has avx512f avx512vl avx512bw avx512dq && best=avx512
rank() { case $1 in generic) echo 0 ;; avx2) echo 1 ;; avx512) echo 2 ;; *) echo 9 ;; esac; }
[ "$(rank "$isa")" != 9 ] || { echo "cpu_isa_test.sh: unknown instruction set '$isa'" >&2; exit 2; }
if [ "$(rank "$isa")" -gt "$(rank "$best")" ]; then
  echo "this CPU's best path is $best: the $isa path is not run"; exit 77
fi
if [ "$isa" = "$best" ]; then
  echo "$isa is this CPU's best path: the plain test run covers it"; exit 77
fi
BILEVEL_CPU_ISA=$isa exec "$tests" --gtest_filter="$filter"
