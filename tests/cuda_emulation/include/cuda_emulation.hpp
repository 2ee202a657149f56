// The CUDA execution model on the CPU, for the project's own kernels (kernels/cuda/*.cu, compiled
// by the host compiler as C++ with this header force-included; BILEVEL_CUDA_EMULATION=ON).
//
// A launch runs its blocks one after another on the calling thread (one launch at a time in the
// process: launches from several host threads take turns); the threads of a block are
// fibers, scheduled cooperatively: a thread runs until it reaches a sync point (__syncthreads,
// __syncwarp, a *_sync warp intrinsic) or returns, and the scheduler releases a barrier when
// every live thread of the block has reached it, a warp operation when every lane of its mask
// has. Misuse that CUDA leaves undefined is an error that names the kernel, the block and the
// thread: a warp operation whose mask names an exited lane or a lane elsewhere, threads waiting
// at different __syncthreads, a deadlock, an invalid launch configuration.
// BILEVEL_CUDA_EMULATION_ORDER=forward|reverse|random:SEED resumes the runnable threads of a
// block, and the blocks of a grid, in that order: a missing barrier shows as a result that
// depends on the order. Fresh device memory and dynamic shared memory hold 0xff bytes (NaN).
// What it cannot see: docs/design.md, "The emulated CUDA device".
#pragma once

#include "cuda_runtime_api.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers --------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
// Blocks run one at a time on the launching thread, so a function-local static is the block's
// shared memory (and gets AddressSanitizer's redzones, unlike thread_local).
#define __shared__ static
#define BILEVEL_CUDA_EMULATED 1

// ---- built-in variables (set by the scheduler before it resumes a thread; one launch runs at a
// time in the process, so they are plain globals: thread_local ones cost a __tls_get_addr call
// per read from a shared library, which AddressSanitizer intercepts) ---------------------------
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
constexpr int warpSize = 32;

namespace cuda_emulation {

/// A launch's geometry and stream.
struct LaunchConfig {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
};

/// Runs body() once per thread of every block of `config` (the launch of `kernel`), now or,
/// while the stream is being captured, when the graph is launched.
void launch(const LaunchConfig& config, const char* kernel, std::function<void()> body);

/// A block-wide barrier (__syncthreads at file:line).
void sync_threads(const char* file, int line);
/// A warp-level sync point over the lanes of `mask`: kind 0 a barrier (__syncwarp); 1 a
/// shuffle, returning the `bits` lane `source` passed; 2 a ballot, returning the lanes whose
/// bits are not 0. `op` names the intrinsic in reports.
std::uint64_t warp_operation(unsigned mask, const char* op, int kind, std::uint64_t bits,
                             int source);
/// The block's dynamic shared memory (extern __shared__).
void* dynamic_shared_memory();
/// The calling thread's lane in its warp.
unsigned lane();

/// K<<<grid, block, shared, stream>>>(args...): the arguments are evaluated once and every
/// thread calls the kernel with its own copy (a kernel's parameters are per-thread values).
struct Launcher {
  LaunchConfig config;
  const char* kernel;
  template <typename K>
  struct Bound {
    LaunchConfig config;
    const char* kernel;
    K call;
    template <typename... Args>
    void operator()(Args&&... args) const {
      std::tuple<std::decay_t<Args>...> params(std::forward<Args>(args)...);
      const K k = call;
      // (each thread's kernel takes its parameters by value: copies of these)
      launch(config, kernel, [k, params]() { std::apply(k, params); });
    }
  };
  template <typename K>
  Bound<K> operator()(K call) const {
    return Bound<K>{config, kernel, call};
  }
};

template <typename T>
T shuffle(unsigned mask, T v, int offset, int width, const char* op, int mode) {
  static_assert(sizeof(T) <= 8, "emulated shuffles of types wider than 8 bytes");
  const int me = static_cast<int>(lane());
  const int base = me - me % width;
  int source = me;
  switch (mode) {
    case 0: source = base + (offset % width); break;                                   // idx
    case 1: source = me % width + offset < width ? me + offset : me; break;             // down
    case 2: source = me % width - offset >= 0 ? me - offset : me; break;                // up
    case 3: source = base + ((me % width) ^ offset); break;                             // xor
  }
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_operation(mask, op, 1, bits, source);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace cuda_emulation

// ---- synchronisation and warp intrinsics -------------------------------------------------------
#define __syncthreads() ::cuda_emulation::sync_threads(__FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)cuda_emulation::warp_operation(mask, "__syncwarp", 0, 0, 0);
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int source, int width = 32) {
  return cuda_emulation::shuffle(mask, v, source, width, "__shfl_sync", 0);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return cuda_emulation::shuffle(mask, v, static_cast<int>(delta), width, "__shfl_down_sync", 1);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return cuda_emulation::shuffle(mask, v, static_cast<int>(delta), width, "__shfl_up_sync", 2);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return cuda_emulation::shuffle(mask, v, lane_mask, width, "__shfl_xor_sync", 3);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return static_cast<unsigned>(
      cuda_emulation::warp_operation(mask, "__ballot_sync", 2, predicate != 0, 0));
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) {
  return __ballot_sync(mask, predicate) == mask;
}

// Atomics: the threads of a launch interleave only at sync points, so a read-modify-write is
// atomic as written (and no race between blocks can show: they run one after another).
template <typename T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <typename T>
T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <typename T>
T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <typename T>
T atomicCAS(T* p, T expected, T v) {
  const T old = *p;
  if (old == expected) *p = v;
  return old;
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- bit casts and math --------------------------------------------------------------------------
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
template <typename T>
T __ldg(const T* p) {
  return *p;
}
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }

// CUDA's device min and max (also for mixed integer types), found by unqualified calls.
template <typename A, typename B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}
template <typename A, typename B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
