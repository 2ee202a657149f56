#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run the tests, compute-sanitizer and the benchmarks
# into build/gpu-bundle (about 45 MB): the device image has nvcc, cuBLAS and CMake but not
# OpenBLAS, GoogleTest, Google Benchmark or CLI11, so the binaries are built here (sm_90) and
# carried with the shared libraries they need that the device lacks. Then, with the device tool:
#   run(command="bash scripts/gpu_run.sh tests", carry=["build/gpu-bundle"]), then ... bench
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build --preset release --target bilevel_tests bench_core bench_hyperclean bench_meta bench_alignment bilevel_cli
out=build/gpu-bundle
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cp build/release/tests/bilevel_tests build/release/bench/bench_core \
   build/release/bench/bench_hyperclean build/release/bench/bench_meta build/release/bench/bench_alignment build/release/host/cli/bilevel "$out/bin/"
# shared libraries other than glibc and CUDA's (the device has those; libstdc++ goes along
# in case the image's is older)
for lib in $(ldd "$out"/bin/* | awk '/=> \// {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
    libcublas*|libcudart*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
git rev-parse --short HEAD > "$out/commit"
git status --porcelain | grep -q . && echo "(with uncommitted changes)" >> "$out/commit"
du -sh "$out"
