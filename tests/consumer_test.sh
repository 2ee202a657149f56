#!/usr/bin/env bash
# Installs the library from the build tree into a temporary prefix, then configures, builds and
# runs the example project examples/EXAMPLE (its program PROGRAM) against the installed package
# (find_package(bilevel CONFIG)). Usage: consumer_test.sh BUILD_DIR SOURCE_DIR EXAMPLE PROGRAM
set -euo pipefail
build_dir=$1
source_dir=$2
example=${3:-consumer}
program=${4:-consumer}
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source_dir/examples/$example" -B "$work" "${generator[@]}" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work" >/dev/null
"$work/$program"
