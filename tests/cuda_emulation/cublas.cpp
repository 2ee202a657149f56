// cuBLAS on the emulated device: GEMMs by OpenBLAS's CBLAS, enqueued on the handle's stream (a
// captured GEMM is one node of the graph). alpha and beta are read at the call, as cuBLAS's
// host pointer mode does.
#include "cublas_v2.h"
#include "internal.hpp"

#include <cblas.h>

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace {
CBLAS_TRANSPOSE transpose(cublasOperation_t o) {
  return o == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}
}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t s) {
  handle->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void*, std::size_t) {
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    default: return "CUBLAS_STATUS_INVALID_VALUE";
  }
}
const char* cublasGetStatusString(cublasStatus_t status) { return cublasGetStatusName(status); }

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t a, cublasOperation_t b, int m,
                           int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *alpha, be = *beta;
  cuda_emulation::enqueue(handle->stream, [=] {
    cblas_sgemm(CblasColMajor, transpose(a), transpose(b), m, n, k, al, A, lda, B, ldb, be, C, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t a, cublasOperation_t b, int m,
                           int n, int k, const double* alpha, const double* A, int lda,
                           const double* B, int ldb, const double* beta, double* C, int ldc) {
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const double al = *alpha, be = *beta;
  cuda_emulation::enqueue(handle->stream, [=] {
    cblas_dgemm(CblasColMajor, transpose(a), transpose(b), m, n, k, al, A, lda, B, ldb, be, C, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t a,
                                         cublasOperation_t b, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long stride_a, const float* B, int ldb,
                                         long long stride_b, const float* beta, float* C,
                                         int ldc, long long stride_c, int count) {
  if (m < 0 || n < 0 || k < 0 || count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *alpha, be = *beta;
  cuda_emulation::enqueue(handle->stream, [=] {
    for (int i = 0; i < count; ++i)
      cblas_sgemm(CblasColMajor, transpose(a), transpose(b), m, n, k, al, A + i * stride_a, lda,
                  B + i * stride_b, ldb, be, C + i * stride_c, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t a,
                                         cublasOperation_t b, int m, int n, int k,
                                         const double* alpha, const double* A, int lda,
                                         long long stride_a, const double* B, int ldb,
                                         long long stride_b, const double* beta, double* C,
                                         int ldc, long long stride_c, int count) {
  if (m < 0 || n < 0 || k < 0 || count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const double al = *alpha, be = *beta;
  cuda_emulation::enqueue(handle->stream, [=] {
    for (int i = 0; i < count; ++i)
      cblas_dgemm(CblasColMajor, transpose(a), transpose(b), m, n, k, al, A + i * stride_a, lda,
                  B + i * stride_b, ldb, be, C + i * stride_c, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}
