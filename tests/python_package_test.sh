#!/usr/bin/env bash
# The Python package: installs the library from the build tree into a temporary prefix, builds
# and installs python/ (scikit-build-core + nanobind, from PyPI) into a virtual environment
# against it, and runs the pytest suite in python/tests (the same-seed comparisons call this
# build's CLI; JAX is installed from PyPI when missing, for the autodiff problems). The interpreter: Debian's python3 when it has PyTorch (so the DLPack test with
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
# JAX for the g-and-f-only problems (bilevel.jax_problem; the ridge example's JAX half): the
# version bench/compare measures; where it cannot be installed those tests skip and say so.
"$work/venv/bin/python" -c "import jax" 2>/dev/null || "${pip[@]}" install "jax==0.10.2" ||
  echo "note: JAX could not be installed: the jax_problem tests will skip"
# as a user would (no build-dir): the build goes to a temporary folder and the checkout is
# left as it was - checked by listing python/ before and after
before=$(cd "$source_dir/python" && find . -path ./tests/__pycache__ -prune -o -print | sort)
"${pip[@]}" install "$source_dir/python" \
  --config-settings=cmake.define.CMAKE_PREFIX_PATH="$work/prefix" || { echo "FAIL: pip install python/"; exit 1; }
after=$(cd "$source_dir/python" && find . -path ./tests/__pycache__ -prune -o -print | sort)
if [ "$before" != "$after" ]; then
  echo "FAIL: pip install ./python wrote into the checkout:"
  diff <(echo "$before") <(echo "$after")
  exit 1
fi
cd "$work"  # not the source folder: import the installed package
BILEVEL_CLI=$cli "$work/venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$source_dir/python/tests"
