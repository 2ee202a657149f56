#!/usr/bin/env bash
# Installs the library from the build tree into a temporary prefix, then configures, builds and
# runs examples/consumer against the installed package (find_package(bilevel CONFIG)).
set -euo pipefail
build_dir=$1
source_dir=$2
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source_dir/examples/consumer" -B "$work" "${generator[@]}" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work" >/dev/null
"$work/consumer"
