// The library's row-form passes compiled for AVX-512 (flags in bench/CMakeLists.txt), in a
// namespace of their own (the library's avx512 copy is another instantiation).
#define BILEVEL_CPU_ISA bench_avx512
#define BILEVEL_CPU_VECTOR_BYTES 64
#define BILEVEL_CPU_VECTOR_REGISTERS 32
#include "../../kernels/cpu/linear_model_passes.hpp"
#include "row_kernels_ours.hpp"

namespace bilevel::bench::highway {
void logits_ours_avx512(const RowBatch& b, float* z) { kernels::cpu::bench_avx512::bench_logits(b, z); }
void back_product_ours_avx512(const RowBatch& b, float* out) {
  kernels::cpu::bench_avx512::bench_back_product(b, out);
}
}  // namespace bilevel::bench::highway
