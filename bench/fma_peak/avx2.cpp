// The multiply-add peak loop of fma_peak.hpp compiled for avx2 (flags in bench/CMakeLists.txt).
#define BENCH_ISA avx2
#define BENCH_VECTOR_BYTES 32
#include "fma_peak.hpp"

namespace bench_fma_peak {
double avx2_gflops(int threads, double seconds) { return avx2::gflops(threads, seconds); }
}  // namespace bench_fma_peak
