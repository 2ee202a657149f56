#!/usr/bin/env bash
# The Python package: installs the library from the build tree into a temporary prefix, builds
# and installs python/ (scikit-build-core + nanobind, from PyPI) into a virtual environment
# against it, and runs the pytest suite in python/tests (the same-seed comparisons call this
# build's CLI). The interpreter: Debian's python3 when it has PyTorch (so the DLPack test with
# torch tensors runs), else python3. Skipped (77) when the build dependencies cannot be fetched.
set -uo pipefail
build_dir=$1
source_dir=$2
cli=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=python3
if /usr/bin/python3 -c "import torch, numpy, venv" 2>/dev/null; then python=/usr/bin/python3; fi
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null || exit 1
"$python" -m venv --system-site-packages "$work/venv" || { echo "no venv for $python"; exit 1; }
pip=("$work/venv/bin/python" -m pip --disable-pip-version-check -q)
if ! "${pip[@]}" download --no-deps -d "$work/probe" scikit-build-core nanobind >/dev/null 2>&1; then
  echo "SKIP: scikit-build-core / nanobind cannot be fetched from PyPI here"
  exit 77
fi
"$work/venv/bin/python" -c "import pytest, numpy" 2>/dev/null || "${pip[@]}" install pytest numpy || exit 1
"${pip[@]}" install "$source_dir/python" \
  --config-settings=cmake.define.CMAKE_PREFIX_PATH="$work/prefix" \
  --config-settings=build-dir="$work/build" || { echo "FAIL: pip install python/"; exit 1; }
cd "$work"  # not the source folder: import the installed package
BILEVEL_CLI=$cli "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$source_dir/python/tests"
