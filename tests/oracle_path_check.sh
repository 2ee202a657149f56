#!/usr/bin/env bash
# The oracle path smoke check (bench/oracle_path_check.cpp) once per instruction-set path this
# CPU has: generic, avx2, avx512. Below the CPU's best path, OpenBLAS is held to kernels of the
# same instruction set (OPENBLAS_CORETYPE: Nehalem for SSE, Haswell for AVX2, SkylakeX for
# AVX-512), so that each path is compared with what the composed path would run on such a CPU.
# usage: oracle_path_check.sh PROGRAM
set -uo pipefail
check=$1
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
paths=(generic)
has avx2 fma && paths+=(avx2)
has avx512f avx512vl avx512bw avx512dq && paths+=(avx512)
best=${paths[-1]}
declare -A core=([generic]=Nehalem [avx2]=Haswell [avx512]=SkylakeX)
status=0
# A path over the limit is measured once more, with more rounds, before it fails: a load that
# comes and goes (another process on one of the two cores makes the OpenMP barriers wait) can
# tip one ratio of one measurement; a real regression stays over the limit.
run_path() {  # ISA [ARGS...]
  local isa=$1
  shift
  if [ "$isa" = "$best" ]; then
    BILEVEL_CPU_ISA=$isa "$check" "$@"
  else
    BILEVEL_CPU_ISA=$isa OPENBLAS_CORETYPE=${core[$isa]} "$check" "$@"
  fi
}
for isa in "${paths[@]}"; do
  echo "== $isa"
  if ! run_path "$isa"; then
    echo "== $isa again, 9 rounds"
    run_path "$isa" --repeats 9 || status=1
  fi
done
exit $status
