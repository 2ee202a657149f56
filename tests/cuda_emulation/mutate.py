#!/usr/bin/env python3
"""Deliberately broken copies of the project's CUDA kernels, for the mutation check.

  mutate.py NAME SOURCE_DIR OUT    writes kernels/cuda/<file of NAME>, broken as NAME says, to OUT
  mutate.py --list                 prints each mutant's name, file, expectation

Each mutant is one exact edit of the current source (the edit must match exactly once, so a
mutant that no longer applies fails the build instead of testing nothing). The mutation check
(tests/cuda_emulation/mutation_check.sh) links each broken kernel file into the test program in
place of the real one and runs the CUDA parity tests on the emulated device: every mutant must
be caught, by the parity tests' comparison or by the emulator or AddressSanitizer.
"""
import sys
from pathlib import Path

# name: (file, original, broken, what catches it)
MUTANTS = {
    # the lanes of a warp read the sample's logits from shared memory before lane 0 wrote them
    "no_syncwarp": (
        "linear_model_kernels.cu",
        "  __syncwarp();\n  // coefficients of each instance",
        "  // coefficients of each instance",
        "parity (in reverse or random thread order)"),
    # the back-product reads the staged R tile while other threads still write it
    "no_syncthreads": (
        "linear_model_kernels.cu",
        "      rows_of[ii] = ii < m ? max(data_sample(b, g, i0 + ii), index_t(0)) : 0;  // -1: zero R\n"
        "    __syncthreads();\n",
        "      rows_of[ii] = ii < m ? max(data_sample(b, g, i0 + ii), index_t(0)) : 0;  // -1: zero R\n",
        "parity (or AddressSanitizer: a thread reads a row index of the next tile)"),
    # threads past the last feature row write past the output
    "oob_write": (
        "linear_model_kernels.cu",
        "  if (j >= b.rows) return;\n#pragma unroll\n  for (int t = 0; t < kOutTile; ++t) {",
        "#pragma unroll\n  for (int t = 0; t < kOutTile; ++t) {",
        "AddressSanitizer (heap-buffer-overflow)"),
    # every tile of 32 samples after the first reads the first tile's rows
    "wrong_index": (
        "linear_model_kernels.cu",
        "max(data_sample(b, g, i0 + ii), index_t(0))",
        "max(data_sample(b, g, ii), index_t(0))",
        "parity"),
    # one lane skips the warp's shuffles (it reaches the __syncwarp while the others shuffle)
    "lane_skips_shuffles": (
        "linear_model_kernels.cu",
        "  for (index_t c0 = 0; c0 < total; c0 += kColumnTile) {\n    T acc[kColumnTile];",
        "  if (lane == 31) return;\n  for (index_t c0 = 0; c0 < total; c0 += kColumnTile) {\n"
        "    T acc[kColumnTile];",
        "the emulator (lanes of a warp in different warp operations)"),
}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        for name, (file, _, _, caught) in MUTANTS.items():
            print(f"{name}\t{file}\t{caught}")
        return 0
    if len(sys.argv) != 4 or sys.argv[1] not in MUTANTS:
        print(__doc__, file=sys.stderr)
        return 2
    name, source_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    file, original, broken, _ = MUTANTS[name]
    text = (source_dir / "kernels" / "cuda" / file).read_text()
    found = text.count(original)
    if found != 1:
        print(f"mutate.py: mutant {name}: the original text occurs {found} times in "
              f"kernels/cuda/{file} (expected once): update the mutant", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    # a #line directive keeps compiler and sanitizer reports pointing at the real file
    out.write_text(f'#line 1 "{source_dir / "kernels" / "cuda" / file}"\n' +
                   text.replace(original, broken))
    return 0


if __name__ == "__main__":
    sys.exit(main())
