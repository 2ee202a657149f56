#!/usr/bin/env bash
# One mutant of the mutation check: runs the CUDA parity tests of the test program built around a
# deliberately broken kernel (tests/cuda_emulation/mutate.py) on the emulated device, in the
# thread order of the environment (the test presets: random), and passes when the break is
# caught: by a parity test failing, by the emulator's report, or by AddressSanitizer's (the
# mutant says which it expects; the output says which it was).
# usage: mutation_check.sh NAME TEST_PROGRAM CAUGHT_BY
set -uo pipefail
name=$1 program=$2 caught_by=$3
filter='FusedOraclesParity*:HypercleanParity*:L2TuningParity*:Bf16Data*Cuda*'
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# (the emulator and the sanitizer abort: their reports are what is looked for)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:abort_on_error=0" "$program" --gtest_filter="$filter" >"$out" 2>&1
rc=$?
# what may catch a break: a parity test's comparison, the emulator's report, the sanitizer's
# (a missing barrier can let a thread read another tile's row index: out of bounds, not wrong)
pattern='\[  FAILED  \]|^cuda_emulation: .*(has exited|divergent|deadlock|returned)|AddressSanitizer: [a-z-]+'
case $caught_by in
  parity*|"the emulator"*|AddressSanitizer*) ;;
  *) echo "mutation_check.sh: unknown expectation '$caught_by'"; exit 2 ;;
esac
if [ $rc -ne 0 ] && grep -Eq "$pattern" "$out"; then
  echo "mutant $name caught (expected: $caught_by; exit $rc, order ${BILEVEL_CUDA_EMULATION_ORDER:-forward}):"
  grep -E "$pattern" "$out" | head -3
  exit 0
fi
echo "mutant $name NOT caught (expected: $caught_by; exit $rc, order ${BILEVEL_CUDA_EMULATION_ORDER:-forward}); last output:"
tail -20 "$out"
exit 1
