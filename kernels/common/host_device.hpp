// BILEVEL_HOST_DEVICE: a function compiled for both the CPU loop and the CUDA kernel.
#pragma once

#if defined(__CUDACC__)
#define BILEVEL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define BILEVEL_HOST_DEVICE inline
#endif
