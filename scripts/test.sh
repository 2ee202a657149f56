#!/usr/bin/env bash
# Builds bilevel and runs the whole test suite twice:
#  1. the release preset (nvcc, sm_90): every test, the CLI and package tests, the reader fuzz
#     targets (libFuzzer, ASan + UBSan, 15 s each), the long Fashion-MNIST tests, the CPU
#     kernels once per instruction-set path the machine has (cpu_isa_*) and the oracle path
#     smoke check (oracle_path_check); the CUDA-vs-CPU parity tests skip where no GPU exists;
#  2. the asan preset: the whole suite again built with AddressSanitizer and
#     UndefinedBehaviorSanitizer, with the CUDA backend on the emulated device
#     (BILEVEL_CUDA_EMULATION, tests/cuda_emulation) in seeded random thread and block order:
#     every CUDA kernel and parity test runs, under the sanitizers, and the mutation check shows
#     each deliberately broken kernel caught (the long, fuzz and package tests left out; the MPI
#     tests run with leak detection off: OpenMPI's own allocations would drown LeakSanitizer's
#     report).
# The MPI tests run `mpirun --oversubscribe` with 1, 2 and 3 ranks (Debian's OpenMPI, installed
# by setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cmake --preset release
cmake --build --preset release
ctest --preset release "$@"
echo "== the suite under AddressSanitizer + UndefinedBehaviorSanitizer (preset asan)"
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan "$@"
