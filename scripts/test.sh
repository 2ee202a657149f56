#!/usr/bin/env bash
# Builds bilevel (release preset, sm_90) and runs the whole test suite: every test, the CLI and
# package tests, the reader fuzz targets (libFuzzer, ASan + UBSan, 15 s each) and the long
# Fashion-MNIST test; then the whole suite once more built with AddressSanitizer and
# UndefinedBehaviorSanitizer (the `asan` preset; CPU backend; the long, fuzz and package tests
# left out; the MPI tests run with leak detection off: OpenMPI's own allocations would drown
# LeakSanitizer's report). The MPI tests run
# `mpirun --oversubscribe` with 1, 2 and 3 ranks (Debian's OpenMPI, installed by setup.sh).
# Tests that need a GPU skip with their reason where none exists.
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
