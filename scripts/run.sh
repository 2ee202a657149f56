#!/usr/bin/env bash
# Builds the `bilevel` tool and runs the main job: stocBiO on a quadratic bilevel problem with a
# known solution, first deterministic (full batches: it reaches x*), then stochastic with four
# instances of different outer step sizes solved at once (each ends in a noise ball whose size
# follows its step). Extra arguments go to the stochastic run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bilevel_cli
bin=build/release/host/cli/bilevel
"$bin" quadratic --algo stocbio --batch 0 --iters 200 --eval-every 50 --neumann-terms 30
echo
"$bin" quadratic --algo stocbio --batch 256 --iters 400 --instances 4 \
  --outer-step 0.4,0.2,0.1,0.05 --metrics build/release/quadratic_metrics.jsonl "$@"
echo "metrics: build/release/quadratic_metrics.jsonl"
