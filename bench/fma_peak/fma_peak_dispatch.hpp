// The multiply-add peak (fma_peak.hpp) of the instruction set the CPU backend runs now
// (bilevel::cpu_isa(): the best the processor has, or BILEVEL_CPU_ISA's cap).
#pragma once

#include <string>

namespace bench_fma_peak {
double generic_gflops(int threads, double seconds);
double avx2_gflops(int threads, double seconds);
double avx512_gflops(int threads, double seconds);

/// GFLOP/s of `threads` threads for the instruction set named `isa` ("generic", "avx2",
/// "avx512"), in float.
inline double gflops(const std::string& isa, int threads, double seconds = 0.2) {
  if (isa == "avx512") return avx512_gflops(threads, seconds);
  if (isa == "avx2") return avx2_gflops(threads, seconds);
  return generic_gflops(threads, seconds);
}
}  // namespace bench_fma_peak
