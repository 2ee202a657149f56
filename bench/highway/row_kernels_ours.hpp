// The library's row-form passes (kernels/cpu/linear_model_passes.hpp) driven over a RowBatch
// the way the library drives them at B = 1: blocks of kRowBlock rows x at most kDotColumns columns
// for the logits (the next block's rows prefetched), ranges of kInPlaceSamples samples x row tiles x
// column blocks for the back-product. Included by row_kernels_ours_{avx2,avx512}.cpp after
// linear_model_passes.hpp (and the per-concern headers it includes), inside that file's
// instruction-set namespace.
#pragma once

#include "row_kernels.hpp"

#include <algorithm>
#include <vector>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {

inline LinearModelBatch<float> batch_of(const bench::highway::RowBatch& rb) {
  LinearModelBatch<float> b;
  b.data = rb.data;
  b.rows = rb.rows;
  b.indices = rb.indices;
  b.count = rb.count;
  b.classes = rb.columns;
  b.instances = 1;
  return b;
}

inline void bench_logits(const bench::highway::RowBatch& rb, float* z) {
  const index_t n = rb.rows, count = rb.count;
  const int C = rb.columns;
  const auto row = [&](index_t i) { return rb.data + rb.indices[std::min(i, count - 1)] * n; };
  thread_local std::vector<float> logits;  // (kept from call to call)
  logits.resize(static_cast<std::size_t>(kRowBlock * C));
  for (index_t i0 = 0; i0 < count; i0 += kRowBlock) {
    const index_t m = std::min(kRowBlock, count - i0);
    const float *a[kRowBlock], *next[kRowBlock];
    for (index_t r = 0; r < kRowBlock; ++r) a[r] = row(i0 + std::min(r, m - 1));
    const bool ahead = i0 + kRowBlock < count;
    for (index_t r = 0; r < kRowBlock; ++r) next[r] = row(i0 + kRowBlock + r);
    row_block_logits(a, n, C, [&](index_t col) { return rb.w + col * n; },
                     ahead ? next : nullptr, logits.data());
    for (index_t r = 0; r < m; ++r)
      for (int c = 0; c < C; ++c) z[c * count + i0 + r] = logits[c * kRowBlock + r];
  }
}

inline void bench_back_product(const bench::highway::RowBatch& rb, float* out) {
  const LinearModelBatch<float> b = batch_of(rb);
  constexpr index_t RT = 2 * Simd<float>::lanes;
  const index_t col_blocks = (rb.columns + kBlockColumns - 1) / kBlockColumns;
  thread_local std::vector<float> panels, tail;  // (kept from call to call, as the library's)
  panels.resize(static_cast<std::size_t>(col_blocks * kInPlaceSamples * kBlockColumns));
  tail.resize(static_cast<std::size_t>(kInPlaceSamples * RT));
  const float* rows[kInPlaceSamples];
  for (index_t i0 = 0; i0 < b.count; i0 += kInPlaceSamples) {
    const index_t i1 = std::min(b.count, i0 + kInPlaceSamples);
    for (index_t i = i0; i < i1; ++i) rows[i - i0] = rb.data + rb.indices[i] * b.rows;
    for (index_t c0 = 0; c0 < rb.columns; c0 += kBlockColumns)
      pack_coefficients(rb.r + c0 * b.count, b.count, i0, i1,
                        std::min<index_t>(kBlockColumns, rb.columns - c0),
                        panels.data() + (c0 / kBlockColumns) * kInPlaceSamples * kBlockColumns);
    for (index_t j0 = 0; j0 < b.rows; j0 += RT) {
      const index_t n = std::min(RT, b.rows - j0);
      if (n < RT) copy_tail_pieces(rows, i0, i1, j0, n, tail.data());
      for (index_t c0 = 0; c0 < rb.columns; c0 += kBlockColumns) {
        const index_t nc = std::min<index_t>(kBlockColumns, rb.columns - c0);
        const float* panel = panels.data() + (c0 / kBlockColumns) * kInPlaceSamples * kBlockColumns;
        if (n == RT)
          back_product_any(static_cast<int>(nc), RangeRows<float, float>{rows, i0, j0}, i0, i1,
                           b.rows, j0, n, c0, panel, static_cast<const float*>(nullptr), 0.0f,
                           i0 > 0, out);
        else
          back_product_any(static_cast<int>(nc), PackedRowTile<float>{tail.data(), i0}, i0, i1,
                           b.rows, j0, n, c0, panel, static_cast<const float*>(nullptr), 0.0f,
                           i0 > 0, out);
      }
    }
  }
}

}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
