// The multiply-add peak loop of fma_peak.hpp compiled for avx512 (flags in bench/CMakeLists.txt).
#define BENCH_ISA avx512
#define BENCH_VECTOR_BYTES 64
#include "fma_peak.hpp"

namespace bench_fma_peak {
double avx512_gflops(int threads, double seconds) { return avx512::gflops(threads, seconds); }
}  // namespace bench_fma_peak
