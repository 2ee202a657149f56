#include "cuda_error.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace bilevel::kernels::cuda {
namespace {

bool debug_sync_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("BILEVEL_DEBUG_SYNC");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return enabled;
}

}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  std::ostringstream os;
  os << "CUDA error " << cudaGetErrorName(status) << " (" << cudaGetErrorString(status)
     << ") in " << call << " at " << file << ":" << line;
  throw CudaError(os.str());
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  std::ostringstream os;
  os << "cuBLAS error " << cublasGetStatusName(status) << " (" << cublasGetStatusString(status)
     << ") in " << call << " at " << file << ":" << line;
  throw CublasError(os.str());
}

void report_cuda_error_no_throw(cudaError_t status, const char* call, const char* file,
                                int line) noexcept {
  std::fprintf(stderr, "bilevel: CUDA error %s in %s at %s:%d (ignored in a destructor)\n",
               cudaGetErrorName(status), call, file, line);
}

void check_launch(cudaStream_t stream, const char* kernel, const char* file, int line) {
  cudaError_t status = cudaGetLastError();
  if (status == cudaSuccess && debug_sync_enabled()) {
    // a stream being captured into a graph cannot synchronise: the check waits for the replay
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    status = cudaStreamIsCapturing(stream, &capturing);
    if (status == cudaSuccess && capturing == cudaStreamCaptureStatusNone)
      status = cudaStreamSynchronize(stream);
  }
  if (status != cudaSuccess) {
    const std::string what = std::string("launch of ") + kernel;
    throw_cuda_error(status, what.c_str(), file, line);
  }
}

}  // namespace bilevel::kernels::cuda
