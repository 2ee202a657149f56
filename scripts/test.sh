#!/usr/bin/env bash
# Builds bilevel (release preset, sm_90) and runs the whole test suite. Tests that need a GPU
# skip with their reason where none exists.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cmake --preset release
cmake --build --preset release
ctest --preset release "$@"
