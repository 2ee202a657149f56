// The multiply-add peak of this CPU for one instruction set, in float: independent chains of
// acc = acc * m + c on one vector register each, as many as hide the FMA latency on two FMA
// ports (10: the 4-cycle latency x 2 ports of current x86 cores, plus slack), on every thread
// of an OpenMP team. Included once per instruction set by generic.cpp, avx2.cpp and avx512.cpp,
// each compiled with that set's flags (bench/CMakeLists.txt), so the loop is the instructions
// that set's fused passes run: FMA with AVX2 and AVX-512, a multiply and an add with the
// baseline SSE2. The benchmarks divide the fused kernels' counted FLOPs by it (bench/README.md).
#pragma once

#ifndef BENCH_ISA
#error "define BENCH_ISA and BENCH_VECTOR_BYTES before including"
#endif

#include <omp.h>

#include <chrono>
#include <cstring>

namespace bench_fma_peak::BENCH_ISA {

/// GFLOP/s of `threads` threads running the chains for about `seconds` (a multiply-add counts
/// two FLOPs per lane).
inline double gflops(int threads, double seconds) {
  typedef float vec __attribute__((vector_size(BENCH_VECTOR_BYTES)));
  constexpr int kLanes = BENCH_VECTOR_BYTES / 4, kChains = 10;
  constexpr long kInner = 1 << 16;
  double total_flops = 0.0, elapsed = 0.0;
  long rounds = 1;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      // m and c read through volatile: the compiler cannot fold the chains
      volatile float mv = 0.999999f, cv = 1e-7f;
      vec acc[kChains], m, c;
      for (int l = 0; l < kLanes; ++l) {
        m[l] = mv;
        c[l] = cv;
      }
      for (int i = 0; i < kChains; ++i)
        for (int l = 0; l < kLanes; ++l) acc[i][l] = 1.0f + 0.01f * static_cast<float>(i + l);
      for (long r = 0; r < rounds; ++r)
        for (long k = 0; k < kInner; ++k) {
          for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * m + c;
        }
      float s = 0.0f;
      for (int i = 0; i < kChains; ++i)
        for (int l = 0; l < kLanes; ++l) s += acc[i][l];
      sink += s;
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total_flops = 2.0 * kLanes * kChains * static_cast<double>(kInner) * static_cast<double>(rounds) *
                  threads;
    if (sink == 12345.0f) total_flops += 1.0;  // (uses the result)
    if (elapsed >= seconds) break;
    rounds = elapsed > 0.0 ? static_cast<long>(rounds * (1.2 * seconds / elapsed)) + 1 : rounds * 10;
  }
  return total_flops / elapsed / 1e9;
}

}  // namespace bench_fma_peak::BENCH_ISA
