// Checking of every CUDA and cuBLAS call: failures become CudaError / CublasError naming the
// call, the file and the line. The *_NO_THROW forms are for destructors.
#pragma once

#include <bilevel/error.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

namespace bilevel::kernels::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);
void report_cuda_error_no_throw(cudaError_t status, const char* call, const char* file,
                                int line) noexcept;
/// After a kernel launch: reports a launch error; with BILEVEL_DEBUG_SYNC=1 in the environment
/// also synchronises the stream so that an execution error names the launch that caused it.
void check_launch(cudaStream_t stream, const char* kernel, const char* file, int line);

}  // namespace bilevel::kernels::cuda

#define BILEVEL_CUDA_TRY(call)                                                                \
  do {                                                                                        \
    const cudaError_t bilevel_status_ = (call);                                               \
    if (bilevel_status_ != cudaSuccess)                                                       \
      ::bilevel::kernels::cuda::throw_cuda_error(bilevel_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define BILEVEL_CUDA_TRY_NO_THROW(call)                                                \
  do {                                                                                 \
    const cudaError_t bilevel_status_ = (call);                                        \
    if (bilevel_status_ != cudaSuccess)                                                \
      ::bilevel::kernels::cuda::report_cuda_error_no_throw(bilevel_status_, #call,     \
                                                           __FILE__, __LINE__);        \
  } while (0)

#define BILEVEL_CUBLAS_TRY(call)                                                        \
  do {                                                                                  \
    const cublasStatus_t bilevel_status_ = (call);                                      \
    if (bilevel_status_ != CUBLAS_STATUS_SUCCESS)                                       \
      ::bilevel::kernels::cuda::throw_cublas_error(bilevel_status_, #call, __FILE__,    \
                                                   __LINE__);                           \
  } while (0)

#define BILEVEL_CHECK_LAUNCH(stream, kernel) \
  ::bilevel::kernels::cuda::check_launch((stream), (kernel), __FILE__, __LINE__)
