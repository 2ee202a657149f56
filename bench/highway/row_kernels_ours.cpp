// The library's passes per instruction set, behind the Isa switch of row_kernels.hpp.
#include "row_kernels.hpp"

namespace bilevel::bench::highway {
void logits_ours_avx2(const RowBatch& b, float* z);
void logits_ours_avx512(const RowBatch& b, float* z);
void back_product_ours_avx2(const RowBatch& b, float* out);
void back_product_ours_avx512(const RowBatch& b, float* out);

void logits_ours(Isa isa, const RowBatch& b, float* z) {
  (isa == Isa::avx2 ? logits_ours_avx2 : logits_ours_avx512)(b, z);
}
void back_product_ours(Isa isa, const RowBatch& b, float* out) {
  (isa == Isa::avx2 ? back_product_ours_avx2 : back_product_ours_avx512)(b, out);
}
}  // namespace bilevel::bench::highway
