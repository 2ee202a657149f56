#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, with build/gpu-bundle carried
# (scripts/gpu_bundle.sh): the whole test suite (CUDA parity included), compute-sanitizer
# memcheck on the CUDA tests, and both benchmark programs. Everything goes to $OUT; a short
# summary is printed last. `gpu_run.sh tests` (tests, memcheck over the whole suite),
# `gpu_run.sh sanitize` (racecheck, synccheck) or `gpu_run.sh bench` (both benchmark programs'
# CUDA cases, the JAX/PyTorch comparison, a SOBA run) each fit a device call's 10 minutes;
# `gpu_run.sh meta` runs the meta-learning benchmark and its JAX/PyTorch MAML (same call), the
# policy-alignment benchmark (1,000 gridworlds at once) and an A-PARL run on them;
# `gpu_run.sh large` the large-scale protocol (1M and 10M x 1024, host-resident data).
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
# NCCL (loaded at run time by the library): the toolkit's, or PyTorch's wheel
if [[ -z ${BILEVEL_NCCL_LIBRARY:-} ]]; then
  for f in /usr/local/cuda/lib64/libnccl.so.2 /usr/local/cuda/lib/libnccl.so.2 \
           "$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) + "/lib/libnccl.so.2")' 2>/dev/null)"; do
    if [[ -n $f && -e $f ]]; then export BILEVEL_NCCL_LIBRARY=$f; break; fi
  done
fi
echo "NCCL: ${BILEVEL_NCCL_LIBRARY:-not found}"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(cat $bundle/commit)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
} | tee "$out/device.txt"
ldd "$bundle/bin/bilevel_tests" | grep "not found" && echo "missing libraries" && exit 1

if [[ $what == all || $what == tests ]]; then
  "$bundle/bin/bilevel_tests" --gtest_output="json:$out/tests.json" > "$out/tests.txt" 2>&1
  tests_rc=$?
  # the whole suite under memcheck (the CPU tests run too: they share the library's code)
  compute-sanitizer --tool memcheck --error-exitcode 9 "$bundle/bin/bilevel_tests" \
    > "$out/memcheck.txt" 2>&1
  memcheck_rc=$?
fi
if [[ $what == all || $what == sanitize ]]; then
  compute-sanitizer --tool racecheck --error-exitcode 9 "$bundle/bin/bilevel_tests" \
    --gtest_filter='*Cuda*:*Parity*:*CudaGraphs*:*Device*:*Fused*' > "$out/racecheck.txt" 2>&1
  racecheck_rc=$?
  compute-sanitizer --tool synccheck --error-exitcode 9 "$bundle/bin/bilevel_tests" \
    --gtest_filter='*Fused*:*Hyperclean*' > "$out/synccheck.txt" 2>&1
  synccheck_rc=$?
fi
if [[ $what == all || $what == bench ]]; then
  # CUDA cases only (the CPU ones are measured on the development machine); each case is one
  # timed run of fixed length, the whole program a few minutes
  "$bundle/bin/bench_hyperclean" --benchmark_filter=/cuda/ --benchmark_out="$out/bench_hyperclean.json" \
    --benchmark_out_format=json > "$out/bench_hyperclean.txt" 2>&1
  "$bundle/bin/bench_core" --benchmark_filter=/cuda/ --benchmark_out="$out/bench_core.json" \
    --benchmark_out_format=json > "$out/bench_core.txt" 2>&1
  # the same iterations in JAX (jit + fori_loop, vmap) and PyTorch (eager, CUDA graphs), same run
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/compare/compare.py --bench "$bundle/bin/bench_hyperclean" \
    --device cuda --out "$out/compare" > "$out/compare.txt" 2>&1
  "$bundle/bin/bilevel" hyperclean --data synthetic --samples 26000 --features 784 --train 20000 \
    --validation 5000 --test 1000 --algo soba --backend cuda --metrics "$out/soba.jsonl" \
    > "$out/hyperclean_soba.txt" 2>&1
fi

if [[ $what == large ]]; then
  # the large-scale protocol (p = 0.5, 1024 features): time-to-quality curves (metrics every
  # 100 iterations: seconds, F1, test accuracy) for SOBA, BO-REP and stocBiO at 1M; SOBA at
  # 10M (bf16 on the device) and at 10M with the training features in host memory
  big=(hyperclean --data synthetic --features 1024 --validation 20000 --test 20000 --backend cuda)
  for algo in soba bo-rep stocbio; do
    timeout 150 "$bundle/bin/bilevel" "${big[@]}" --samples 1040000 --train 1000000 --algo $algo \
      --eval-every 100 --metrics "$out/large_1M_$algo.jsonl" > "$out/large_1M_$algo.txt" 2>&1
  done
  timeout 150 "$bundle/bin/bilevel" "${big[@]}" --samples 10040000 --train 10000000 --algo soba \
    --data-precision bf16 --eval-every 500 --metrics "$out/large_10M_soba.jsonl" > "$out/large_10M_soba.txt" 2>&1
  timeout 150 "$bundle/bin/bilevel" "${big[@]}" --samples 10040000 --train 10000000 --algo soba \
    --data-residence host --iters 3000 --eval-every 500 --no-baselines \
    --metrics "$out/large_10M_host.jsonl" > "$out/large_10M_host.txt" 2>&1
  # 25M x 1024 (51 GB in bf16): larger than the device; bf16 in host memory, generated in chunks
  timeout 200 "$bundle/bin/bilevel" "${big[@]}" --samples 25040000 --train 25000000 --algo soba \
    --data-precision bf16 --iters 2000 --eval-every 500 --no-baselines \
    --metrics "$out/large_25M_host.jsonl" > "$out/large_25M_host.txt" 2>&1
fi
if [[ $what == meta ]]; then
  "$bundle/bin/bench_meta" --benchmark_filter=/cuda/ --benchmark_out="$out/bench_meta.json" \
    --benchmark_out_format=json > "$out/bench_meta.txt" 2>&1
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/compare/maml_jax.py --iters 500 > "$out/maml_jax.jsonl" 2>&1
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/compare/maml_torch.py --iters 50 --device cuda \
    > "$out/maml_torch.jsonl" 2>&1
  "$bundle/bin/bench_alignment" --benchmark_filter=/cuda/ --benchmark_out="$out/bench_alignment.json" \
    --benchmark_out_format=json > "$out/bench_alignment.txt" 2>&1
  timeout 120 "$bundle/bin/bilevel" align --env gridworld --feedback-type utility --instances 1000 \
    --iters 500 --eval-every 50 --backend cuda --metrics "$out/align_gridworld_1000.jsonl" \
    > "$out/align_gridworld_1000.txt" 2>&1
fi

echo "== summary"
cat "$out/device.txt"
if [[ $what == all || $what == tests ]]; then
  echo "tests: rc $tests_rc; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/tests.txt" | tr '\n' ' ')"
  echo "memcheck: rc $memcheck_rc; $(grep -E 'ERROR SUMMARY' "$out/memcheck.txt")"
fi
if [[ $what == all || $what == sanitize ]]; then
  echo "racecheck: rc $racecheck_rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/racecheck.txt" | tr '\n' ' ')"
  echo "synccheck: rc $synccheck_rc; $(grep -E 'ERROR SUMMARY' "$out/synccheck.txt")"
fi
if [[ $what == all || $what == bench ]]; then
  grep -E "_graph|/cuda/" "$out/bench_hyperclean.txt" | grep -E "B:1/|B:64/" | cut -c1-150
  cat "$out/compare/table.md" 2>/dev/null || tail -n 20 "$out/compare.txt"
  tail -n 4 "$out/hyperclean_soba.txt"
fi
if [[ $what == large ]]; then
  for f in "$out"/large_*.txt; do echo "== $f"; tail -n 8 "$f"; done
fi
if [[ $what == meta ]]; then
  grep -E "/cuda/" "$out/bench_meta.txt" | cut -c1-160
  grep -h us_per_iteration "$out/maml_jax.jsonl" "$out/maml_torch.jsonl"
  grep -E "/cuda/" "$out/bench_alignment.txt" | cut -c1-160
  tail -n 4 "$out/align_gridworld_1000.txt"
fi
