// The multiply-add peak loop of fma_peak.hpp compiled for generic (flags in bench/CMakeLists.txt).
#define BENCH_ISA generic
#define BENCH_VECTOR_BYTES 16
#include "fma_peak.hpp"

namespace bench_fma_peak {
double generic_gflops(int threads, double seconds) { return generic::gflops(threads, seconds); }
}  // namespace bench_fma_peak
