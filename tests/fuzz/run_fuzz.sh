#!/usr/bin/env bash
# Builds the reader fuzz targets (IDX, LIBSVM, checkpoint, the metrics files of bilevel plot) with clang's libFuzzer (AddressSanitizer + UBSan) and runs each
# for SECONDS (default 15) from the seed corpus in tests/fuzz/corpus (copied: new inputs stay in
# the build folder). Exits 77 (skipped) when clang or libFuzzer is missing; non-zero on a
# finding, whose input is left in WORK_DIR.
# Usage: run_fuzz.sh SOURCE_DIR WORK_DIR [SECONDS]
set -uo pipefail
src=$1
work=$2
seconds=${3:-15}
mkdir -p "$work"
cxx=$(command -v clang++ || true)
if [[ -z $cxx ]]; then echo "SKIP: clang++ not found (apt-get install clang)"; exit 77; fi
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  > "$work/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer "$work/probe.cpp" -o "$work/probe" 2>/dev/null; then
  echo "SKIP: $cxx has no libFuzzer (apt-get install libclang-rt-dev)"; exit 77
fi
readers=("$src/host/data/idx_reader.cpp" "$src/host/data/libsvm_reader.cpp"
         "$src/host/data/dataset.cpp" "$src/host/data/data_source.cpp"
         "$src/host/data/hyperclean_split.cpp" "$src/host/distributed/shard.cpp"
         "$src/host/solvers/checkpoint.cpp" "$src/host/common/errors.cpp")
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/include")
status=0
for target in idx libsvm checkpoint plot; do
  sources=("${readers[@]}")
  # the plot reader and script builder of the CLI (nlohmann-json, header-only)
  [[ $target == plot ]] && sources=("$src/host/cli/plot_data.cpp" "$src/host/common/errors.cpp")
  if ! "$cxx" "${flags[@]}" "$src/tests/fuzz/fuzz_$target.cpp" "${sources[@]}" -lz \
       -o "$work/fuzz_$target" 2> "$work/build_$target.log"; then
    echo "FAIL: building fuzz_$target"; cat "$work/build_$target.log"; status=1; continue
  fi
  corpus="$work/corpus_$target"
  rm -rf "$corpus"; mkdir -p "$corpus"
  cp "$src/tests/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null
  ( cd "$work" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
      "./fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=65536 -print_final_stats=1 "$corpus" > "fuzz_$target.log" 2>&1 )
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz_$target.log" | grep -o '[0-9]*$')
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: fuzz_$target found a crash (rc $rc); input and log in $work"
    grep -E "ERROR|SUMMARY|==[0-9]+==" "$work/fuzz_$target.log" | head -n 20
    status=1
  else
    echo "ok   fuzz_$target: ${runs:-?} inputs in ${seconds} s, no finding"
  fi
done
rm -rf /tmp/bilevel_fuzz_*  # the targets' input files and folders
exit $status
