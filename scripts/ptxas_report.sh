#!/usr/bin/env bash
# Register, shared-memory and spill report of every CUDA kernel for sm_90 (nvcc -Xptxas -v),
# demangled, into bench/results/ptxas-sm90.txt. Needs nvcc only (no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/ptxas-sm90.txt
{
  echo "# nvcc -Xptxas -v, sm_90, $(nvcc --version | tail -1), commit $(git rev-parse --short HEAD), $(date -u +%F)"
  for f in kernels/cuda/*.cu; do
    echo "## $f"
    nvcc -std=c++17 -O3 -arch=sm_90 --extended-lambda --expt-relaxed-constexpr -Iinclude \
         -c "$f" -o /dev/null -Xptxas -v 2>&1 | c++filt |
      grep -E "Compiling entry|registers|spill" | sed -E 's/^ptxas info *: //'
  done
} >"$out"
echo "wrote $out"
