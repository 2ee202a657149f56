#include "cuda_ops.hpp"

#include "batch_kernels.cuh"
#include "cuda_error.hpp"

#include <climits>
#include <type_traits>

namespace bilevel::kernels::cuda {
namespace {

cublasOperation_t to_cublas(Op op) { return op == Op::none ? CUBLAS_OP_N : CUBLAS_OP_T; }

}  // namespace

template <typename T>
void CudaOps<T>::do_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha,
                         const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
                         index_t ldc) {
  BILEVEL_EXPECTS(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
                      ldb <= INT_MAX && ldc <= INT_MAX,
                  "gemm: dimensions above 2^31 are not supported by the CUDA backend");
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  // Host pointer mode: alpha and beta are constants of the algorithm, never data.
  if constexpr (std::is_same_v<T, float>) {
    BILEVEL_CUBLAS_TRY(cublasSgemm(blas_, to_cublas(op_a), to_cublas(op_b), mi, ni, ki, &alpha,
                                   a, static_cast<int>(lda), b, static_cast<int>(ldb), &beta, c,
                                   static_cast<int>(ldc)));
  } else {
    BILEVEL_CUBLAS_TRY(cublasDgemm(blas_, to_cublas(op_a), to_cublas(op_b), mi, ni, ki, &alpha,
                                   a, static_cast<int>(lda), b, static_cast<int>(ldb), &beta, c,
                                   static_cast<int>(ldc)));
  }
}

template <typename T>
void CudaOps<T>::do_gemm_strided_batched(Op op_a, Op op_b, index_t m, index_t n, index_t k,
                                         T alpha, const T* a, index_t lda, index_t stride_a,
                                         const T* b, index_t ldb, index_t stride_b, T beta, T* c,
                                         index_t ldc, index_t stride_c, index_t count) {
  BILEVEL_EXPECTS(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
                      ldb <= INT_MAX && ldc <= INT_MAX && count <= INT_MAX,
                  "gemm_strided_batched: dimensions above 2^31 are not supported by the CUDA "
                  "backend");
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const long long sa = stride_a, sb = stride_b, sc = stride_c;
  if constexpr (std::is_same_v<T, float>) {
    BILEVEL_CUBLAS_TRY(cublasSgemmStridedBatched(
        blas_, to_cublas(op_a), to_cublas(op_b), mi, ni, ki, &alpha, a, static_cast<int>(lda), sa,
        b, static_cast<int>(ldb), sb, &beta, c, static_cast<int>(ldc), sc, static_cast<int>(count)));
  } else {
    BILEVEL_CUBLAS_TRY(cublasDgemmStridedBatched(
        blas_, to_cublas(op_a), to_cublas(op_b), mi, ni, ki, &alpha, a, static_cast<int>(lda), sa,
        b, static_cast<int>(ldb), sb, &beta, c, static_cast<int>(ldc), sc, static_cast<int>(count)));
  }
}

template <typename T>
void CudaOps<T>::do_fill(MatrixView<T> x, T value) { launch_fill(stream_, x, value); }
template <typename T>
void CudaOps<T>::do_copy(ConstMatrixView<T> x, MatrixView<T> y) { launch_copy(stream_, x, y); }
template <typename T>
void CudaOps<T>::do_axpby(T a, ConstMatrixView<T> x, T b, MatrixView<T> y) {
  launch_axpby(stream_, a, x, b, y);
}
template <typename T>
void CudaOps<T>::do_batch_axpy(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y) {
  launch_batch_axpy(stream_, a, alpha, x, y);
}
template <typename T>
void CudaOps<T>::do_batch_axpy_and_advance(T a, const T* alpha, ConstMatrixView<T> x,
                                           MatrixView<T> y, std::uint32_t* counter) {
  launch_batch_axpy_and_advance(stream_, a, alpha, x, y, counter);
}

template <typename T>
void CudaOps<T>::do_batch_scale(T a, const T* alpha, MatrixView<T> x) {
  launch_batch_scale(stream_, a, alpha, x);
}
template <typename T>
void CudaOps<T>::do_batch_dot(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
  launch_batch_dot(stream_, x, y, out, scratch_);
}
template <typename T>
void CudaOps<T>::do_batch_nrm2(ConstMatrixView<T> x, T* out) {
  launch_batch_nrm2(stream_, x, out, scratch_);
}
template <typename T>
void CudaOps<T>::do_batch_count_below(ConstMatrixView<T> x, T threshold, const T* weights,
                                      T* out) {
  launch_batch_count_below(stream_, x, threshold, weights, out, scratch_);
}
template <typename T>
void CudaOps<T>::do_neumann_step(const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                                 MatrixView<T> v) {
  launch_neumann_step(stream_, eta, hr, r, v);
}
template <typename T>
void CudaOps<T>::do_batch_axpy_ratio(T sign, const T* num, const T* den, ConstMatrixView<T> x,
                                     MatrixView<T> y) {
  launch_batch_axpy_ratio(stream_, sign, num, den, x, y);
}
template <typename T>
void CudaOps<T>::do_batch_xpay_ratio(const T* num, const T* den, ConstMatrixView<T> x,
                                     MatrixView<T> y) {
  launch_batch_xpay_ratio(stream_, num, den, x, y);
}
template <typename T>
void CudaOps<T>::do_sample_indices(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                                   const std::uint32_t* step_on_device, std::uint32_t instance,
                                   index_t population, index_t count, index_t sets, bool epochs,
                                   sample_index_t* out) {
  launch_sample_indices(stream_, seed, stream, step, step_on_device, instance, population, count,
                        sets, epochs, out);
}
template <typename T>
void CudaOps<T>::do_advance_counter(std::uint32_t* counter) {
  launch_advance_counter(stream_, counter);
}
template <typename T>
void CudaOps<T>::do_schedule(const T* base, index_t count, Schedule s,
                             const std::uint32_t* counter, T* out) {
  launch_schedule(stream_, base, count, s, counter, out);
}
template <typename T>
void CudaOps<T>::do_single_point_step(const T* s, const T* eta, const T* mu,
                                      ConstMatrixView<T> gy, ConstMatrixView<T> fy,
                                      ConstMatrixView<T> hv, ConstMatrixView<T> fx,
                                      MatrixView<T> y, MatrixView<T> v, MatrixView<T> h) {
  launch_single_point_step(stream_, s, eta, mu, gy, fy, hv, fx, y, v, h);
}

template <typename T>
void CudaOps<T>::do_normalized_momentum_step(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                             const T* beta, MatrixView<T> x) {
  launch_normalized_momentum_step(stream_, mu, h, m, a, beta, x, scratch_);
}
template <typename T>
void CudaOps<T>::do_normalized_axpy(T a, const T* beta, const T* sq, ConstMatrixView<T> m,
                                    MatrixView<T> x) {
  launch_normalized_axpy(stream_, a, beta, sq, m, x);
}
template <typename T>
void CudaOps<T>::do_hadamard(T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                             MatrixView<T> out) {
  launch_hadamard(stream_, alpha, a, b, beta, out);
}
template <typename T>
void CudaOps<T>::do_exp(ConstMatrixView<T> a, MatrixView<T> out) {
  launch_exp(stream_, a, out);
}
template <typename T>
void CudaOps<T>::do_clamp(MatrixView<T> x, T lo, T hi) {
  launch_clamp(stream_, x, lo, hi);
}
template <typename T>
void CudaOps<T>::do_add_normal(std::uint64_t seed, std::uint32_t stream, T scale,
                               MatrixView<T> x, std::int64_t first) {
  launch_add_normal(stream_, seed, stream, scale, x, first);
}
template <typename T>
void CudaOps<T>::do_gather_rows(ConstMatrixView<T> src, const sample_index_t* idx,
                                MatrixView<T> dst, index_t first) {
  launch_gather_rows(stream_, src, idx, dst, first);
}

template <typename T>
void CudaOps<T>::do_gather_columns(ConstMatrixView<T> src, const sample_index_t* idx,
                                   MatrixView<T> dst) {
  launch_gather_columns(stream_, src, idx, dst);
}

template class CudaOps<float>;
template class CudaOps<double>;

}  // namespace bilevel::kernels::cuda
