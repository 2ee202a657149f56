#!/usr/bin/env bash
# Builds the `bilevel` tool and runs the main job: data hyper-cleaning on Fashion-MNIST
# (Debian's dataset-fashion-mnist), 20000 train / 5000 validation / 10000 test, half of the
# training labels corrupted, with stocBiO for 3000 iterations (the main job of every round, so
# its time and output compare across rounds; the tool's own defaults are SOBA for 30 epochs,
# docs/scaling.md); prints the summary next to the two baselines and writes the metrics as JSON
# lines. Extra arguments go to `bilevel hyperclean`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bilevel_cli
build/release/host/cli/bilevel hyperclean --data fashion-mnist \
  --train 20000 --validation 5000 --test 10000 --corruption 0.5 --algo stocbio --iters 3000 \
  --metrics build/release/hyperclean_metrics.jsonl "$@"
echo "metrics: build/release/hyperclean_metrics.jsonl"
