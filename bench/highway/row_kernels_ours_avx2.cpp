// The library's row-form passes compiled for AVX2 (flags in bench/CMakeLists.txt), in a
// namespace of their own (the library's avx2 copy is another instantiation).
#define BILEVEL_CPU_ISA bench_avx2
#define BILEVEL_CPU_VECTOR_BYTES 32
#define BILEVEL_CPU_VECTOR_REGISTERS 16
#include "../../kernels/cpu/linear_model_passes.hpp"
#include "row_kernels_ours.hpp"

namespace bilevel::bench::highway {
void logits_ours_avx2(const RowBatch& b, float* z) { kernels::cpu::bench_avx2::bench_logits(b, z); }
void back_product_ours_avx2(const RowBatch& b, float* out) {
  kernels::cpu::bench_avx2::bench_back_product(b, out);
}
}  // namespace bilevel::bench::highway
