#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build bilevel (needs root or sudo for apt-get).
# The CUDA toolkit (nvcc, cuBLAS, CCCL; CUDA 13) must already be installed: Debian's own
# nvidia-cuda-toolkit is too old.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libopenblas-openmp-dev libgtest-dev libgmock-dev
          libbenchmark-dev libhwy-dev libcli11-dev nlohmann-json3-dev zlib1g-dev dataset-fashion-mnist
          clang libclang-rt-14-dev libopenmpi-dev openmpi-bin gnuplot-nox
          python3-dev python3-venv python3-numpy python3-pytest liblinear-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13*/bin; do
    [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
  done
fi
if ! command -v nvcc >/dev/null 2>&1; then
  echo "setup: nvcc not found: install the CUDA 13 toolkit (nvcc, cuBLAS, CCCL) and put it on PATH" >&2
  exit 1
fi
