#!/usr/bin/env bash
# The scale study of docs/scaling.md: `bilevel hyperclean` given only data and sizes (the
# defaults' run length, step rules and baselines), for each preset at each scale, one metrics
# file per run, then the table (scripts/scale_study_table.py) and one plot per scale.
#
# Scales (CPU; the GPU scales 1e6 x 1024 and 1e7 wait for a device):
#   fmnist20k   Fashion-MNIST, 20000 / 5000 / 10000 (the README protocol)
#   fmnist50k   Fashion-MNIST, all 60000 training images: 50000 / 10000 / 10000
#   synth2e5    generated, 200000 / 20000 / 40000, 256 features, scales 10, correlation 2
#   synth1e6    generated, 1000000 / 50000 / 50000, 64 features, scales 10, correlation 2
#
# Usage: scripts/scale_study.sh OUT_DIR [SCALE ...] [-- extra hyperclean arguments]
#   (STUDY_ALGOS="soba bo-rep" runs only those presets; the table covers every run in OUT_DIR)
# Needs build/release/host/cli/bilevel (scripts/run.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scale_study.sh OUT_DIR [SCALE ...] [-- hyperclean arguments]}
shift
scales=()
while [[ $# -gt 0 && $1 != -- ]]; do scales+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
extra=("$@")
[[ ${#scales[@]} -eq 0 ]] && scales=(fmnist20k fmnist50k synth2e5 synth1e6)
exe=build/release/host/cli/bilevel
read -r -a algos <<< "${STUDY_ALGOS:-soba stocbio ma-soba bo-rep amigo}"
mkdir -p "$out"

scale_args() {
  local synth=(--data synthetic --feature-scales 10 --correlation 2)
  case $1 in
    fmnist20k) echo --data fashion-mnist --train 20000 --validation 5000 --test 10000 ;;
    fmnist50k) echo --data fashion-mnist --train 50000 --validation 10000 --test 10000 ;;
    synth2e5) echo "${synth[@]}" --samples 260000 --features 256 --train 200000 --validation 20000 --test 40000 ;;
    synth1e6) echo "${synth[@]}" --samples 1100000 --features 64 --train 1000000 --validation 50000 --test 50000 ;;
    *) echo "unknown scale '$1' (fmnist20k, fmnist50k, synth2e5, synth1e6)" >&2; return 1 ;;
  esac
}

{
  lscpu | grep -E "Model name|^CPU\(s\)"
  echo "GPU: $(nvidia-smi -L 2>/dev/null | head -n 1 | grep . || echo 'none (the runs use the CPU backend)')"
  echo "widest vectors: $(grep -o -m1 -w -E 'avx512f' /proc/cpuinfo || grep -o -m1 -w avx2 /proc/cpuinfo || echo none)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/machine.txt"
for scale in "${scales[@]}"; do
  read -r -a args <<< "$(scale_args "$scale")"
  for algo in "${algos[@]}"; do
    name=$scale-$algo
    echo "== $name"
    start=$(date +%s.%N)
    "$exe" hyperclean "${args[@]}" --algo "$algo" --metrics "$out/$name.jsonl" "${extra[@]}" \
      > "$out/$name.txt" 2>&1 || echo "   exited with $? (see $out/$name.txt)"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' > "$out/$name.wall"
    tr '\r' '\n' < "$out/$name.txt" | grep -E "baselines|^  $algo |time to quality" || true
  done
  "$exe" plot -o "$out/$scale.svg" "$out/$scale"-*.jsonl > /dev/null 2>&1 ||
    echo "   (no plot: bilevel plot failed)"
done
python3 scripts/scale_study_table.py "$out" > "$out/table.md"
cat "$out/table.md"
