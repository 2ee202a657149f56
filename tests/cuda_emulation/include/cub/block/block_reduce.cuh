// cub::BlockReduce (Sum, Reduce) on the emulated device: CUB's default algorithm's order
// (BLOCK_REDUCE_WARP_REDUCTIONS: within each warp a tree over lane offsets 1, 2, ..., 16, then
// the warp aggregates combined in warp order). As in CUB only thread 0's result is defined; the
// other threads get NaN (or T{}), so that a caller that reads it shows. The temporary storage is
// the caller's __shared__ TempStorage, reused only after a __syncthreads, as CUB requires: a
// kernel that reuses it without one reads the next use's values in some thread orders.
#pragma once

#include "../../cuda_emulation.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace cub {

template <typename T, int BLOCK_DIM_X, int ALGORITHM = 0, int BLOCK_DIM_Y = 1,
          int BLOCK_DIM_Z = 1>
class BlockReduce {
  static constexpr int kThreads = BLOCK_DIM_X * BLOCK_DIM_Y * BLOCK_DIM_Z;

 public:
  struct TempStorage {
    T slot[kThreads];
  };
  explicit BlockReduce(TempStorage& storage) : storage_(storage) {}

  template <typename Op>
  T Reduce(T x, Op op) {
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    if (threads != static_cast<unsigned>(kThreads)) {
      std::fprintf(stderr, "cuda_emulation: cub::BlockReduce<%d threads> in a block of %u\n",
                   kThreads, threads);
      std::abort();
    }
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    storage_.slot[t] = x;
    __syncthreads();
    if (t != 0) {
      if constexpr (std::numeric_limits<T>::has_quiet_NaN)
        return std::numeric_limits<T>::quiet_NaN();
      else
        return T{};
    }
    T block{};
    for (int w = 0; w * 32 < kThreads; ++w) {
      const int lanes = std::min(32, kThreads - w * 32);
      T v[32];
      for (int l = 0; l < lanes; ++l) v[l] = storage_.slot[w * 32 + l];
      for (int offset = 1; offset < lanes; offset <<= 1)
        for (int l = 0; l + offset < lanes; l += 2 * offset) v[l] = op(v[l], v[l + offset]);
      block = w == 0 ? v[0] : op(block, v[0]);
    }
    return block;
  }
  T Sum(T x) {
    return Reduce(x, [](const T& a, const T& b) { return a + b; });
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
