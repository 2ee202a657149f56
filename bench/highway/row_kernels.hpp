// The two loops that bound a hyper-cleaning oracle at B = 1 (the row form: the minibatch's rows
// read where they are stored), written twice per instruction set for bench_highway: with the
// library's register blocks (GCC vector types, kernels/cpu/linear_model_passes.hpp) and with
// Google Highway's portable vectors, the same blocking, to judge whether Highway would serve
// (issue 24, "judge the libraries by measurement"). Single-threaded: the kernels, not OpenMP.
#pragma once

#include <bilevel/ops.hpp>

namespace bilevel::bench::highway {

/// A minibatch of rows of a data set and the columns the passes multiply them with.
struct RowBatch {
  const float* data = nullptr;               ///< samples x rows, one row per sample
  index_t rows = 0;                          ///< features per sample
  const sample_index_t* indices = nullptr;   ///< count samples of the data set
  index_t count = 0;
  int columns = 0;                           ///< C
  const float* w = nullptr;                  ///< column c at w + c rows (pass 1)
  const float* r = nullptr;                  ///< coefficient (i, c) at r[c count + i] (pass 2)
};

enum class Isa { avx2, avx512 };

/// The coefficients of samples i0 <= i < i1 packed sample-major per block of `block` columns, as
/// the library's pass 2 reads them (its pack_coefficients, which our side calls):
/// panels[(cb range + i - i0) block + c] = r[(cb block + c) count + i]. The Highway side reads
/// the same panel.
inline void pack_range(const RowBatch& b, index_t i0, index_t i1, int block, index_t range,
                       float* panels) {
  for (int c0 = 0; c0 < b.columns; c0 += block)
    for (index_t i = i0; i < i1; ++i)
      for (int c = 0; c < block && c0 + c < b.columns; ++c)
        panels[((c0 / block) * range + i - i0) * block + c] = b.r[(c0 + c) * b.count + i];
}

/// Pass 1, the logits: z[c count + i] = a_i . w_c.
void logits_ours(Isa isa, const RowBatch& b, float* z);
void logits_highway(Isa isa, const RowBatch& b, float* z);

/// Pass 2, the back-product: out[c rows + j] = sum_i r[c count + i] a_i[j].
void back_product_ours(Isa isa, const RowBatch& b, float* out);
void back_product_highway(Isa isa, const RowBatch& b, float* out);

/// Makes Highway dispatch to `isa`'s target; its name as Highway says it ("AVX2", "AVX3").
const char* select_highway_target(Isa isa);

}  // namespace bilevel::bench::highway
