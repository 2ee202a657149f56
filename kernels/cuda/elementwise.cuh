// The launch shape shared by the elementwise kernels: f(i, j) over a rows x cols index space,
// x covering rows (grid-stride), y covering columns (instances).
#pragma once

#include <bilevel/types.hpp>

#include "cuda_error.hpp"
#include "launch.cuh"

#include <cuda_runtime_api.h>

#include <algorithm>

namespace bilevel::kernels::cuda {

constexpr int kElementwiseBlock = 256;

template <typename F>
__global__ void elementwise_kernel(index_t rows, index_t cols, F f) {
  for (index_t j = blockIdx.y; j < cols; j += gridDim.y)
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < rows;
         i += static_cast<index_t>(gridDim.x) * blockDim.x)
      f(i, j);
}

/// Launches f(i, j) for i < rows, j < cols on `s` and checks the launch (named `name`).
template <typename F>
void launch_elementwise(cudaStream_t s, index_t rows, index_t cols, F f, const char* name) {
  if (rows == 0 || cols == 0) return;
  const index_t bx = std::min<index_t>((rows + kElementwiseBlock - 1) / kElementwiseBlock, 8192);
  const dim3 grid(static_cast<unsigned>(bx), static_cast<unsigned>(std::min<index_t>(cols, 65535)));
  BILEVEL_LAUNCH(grid, kElementwiseBlock, 0, s, elementwise_kernel)(rows, cols, f);
  BILEVEL_CHECK_LAUNCH(s, name);
}

}  // namespace bilevel::kernels::cuda
