#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, with build/gpu-bundle carried
# (scripts/gpu_bundle.sh): the whole test suite (CUDA parity included), compute-sanitizer
# memcheck on the CUDA tests, and both benchmark programs. Everything goes to $OUT; a short
# summary is printed last. `gpu_run.sh tests` or `gpu_run.sh bench` does half of it, for a
# device call's 10-minute limit.
set -uo pipefail
what=${1:-all}
bundle=build/gpu-bundle
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
# cuBLAS 13 (the binaries link the CUDA runtime statically): the toolkit's, or PyTorch's wheel
cuda_lib=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         "$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)"; do
  if [[ -n $d && -e $d/libcublas.so.13 ]]; then cuda_lib=$d; break; fi
done
[[ -z $cuda_lib ]] && cuda_lib=$(dirname "$(find / -name 'libcublas.so.13' -print -quit 2>/dev/null)")
export LD_LIBRARY_PATH="$PWD/$bundle/lib:$cuda_lib:${LD_LIBRARY_PATH:-}"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(cat $bundle/commit)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
} | tee "$out/device.txt"
ldd "$bundle/bin/bilevel_tests" | grep "not found" && echo "missing libraries" && exit 1

if [[ $what == all || $what == tests ]]; then
  "$bundle/bin/bilevel_tests" --gtest_output="json:$out/tests.json" > "$out/tests.txt" 2>&1
  tests_rc=$?
  compute-sanitizer --tool memcheck --error-exitcode 9 "$bundle/bin/bilevel_tests" \
    --gtest_filter='*Cuda*:*Parity*:*CudaGraphs*:*Device*' > "$out/memcheck.txt" 2>&1
  memcheck_rc=$?
fi
if [[ $what == all || $what == bench ]]; then
  "$bundle/bin/bench_hyperclean" --benchmark_out="$out/bench_hyperclean.json" \
    --benchmark_out_format=json > "$out/bench_hyperclean.txt" 2>&1
  "$bundle/bin/bench_core" --benchmark_out="$out/bench_core.json" --benchmark_out_format=json \
    > "$out/bench_core.txt" 2>&1
  "$bundle/bin/bilevel" hyperclean --data synthetic --samples 26000 --features 784 --train 20000 \
    --validation 5000 --test 1000 --algo soba --backend cuda --metrics "$out/soba.jsonl" \
    > "$out/hyperclean_soba.txt" 2>&1
fi

echo "== summary"
cat "$out/device.txt"
if [[ $what == all || $what == tests ]]; then
  echo "tests: rc $tests_rc; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/tests.txt" | tr '\n' ' ')"
  echo "memcheck: rc $memcheck_rc; $(grep -E 'ERROR SUMMARY' "$out/memcheck.txt")"
fi
if [[ $what == all || $what == bench ]]; then
  grep -E "_graph|/cuda/" "$out/bench_hyperclean.txt" | grep -E "B:1/|B:64/" | cut -c1-130
  tail -n 4 "$out/hyperclean_soba.txt"
fi
