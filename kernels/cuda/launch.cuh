// Kernel launches that build for a GPU (nvcc) and for the emulated CUDA device
// (BILEVEL_CUDA_EMULATION builds: the host compiler, tests/cuda_emulation):
//
//   BILEVEL_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...);
//       is kernel<<<grid, block, shared_bytes, stream>>>(args...)
//   BILEVEL_DYNAMIC_SHARED(type, name);
//       is extern __shared__ type name[];
//
// (The kernel comes last so that a template's arguments may hold commas.)
#pragma once

#if defined(BILEVEL_CUDA_EMULATION)
#include "cuda_emulation.hpp"

#include <cstddef>

#define BILEVEL_LAUNCH(grid, block, shared_bytes, stream, ...)                                  \
  ::cuda_emulation::Launcher{                                                                  \
      {dim3(grid), dim3(block), static_cast<std::size_t>(shared_bytes), (stream)},             \
      #__VA_ARGS__}([](auto&&... bilevel_launch_args_) { __VA_ARGS__(bilevel_launch_args_...); })
#define BILEVEL_DYNAMIC_SHARED(type, name) \
  type* name = static_cast<type*>(::cuda_emulation::dynamic_shared_memory())
#else
#define BILEVEL_LAUNCH(grid, block, shared_bytes, stream, ...) \
  __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define BILEVEL_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif
