// CPU implementations of the kernel set (OpenMP loops, CBLAS GEMM).
#pragma once

#include <bilevel/ops.hpp>

namespace bilevel::kernels::cpu {

template <typename T>
class CpuOps final : public Ops<T> {
 protected:
  void do_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) override;
  void do_gemm_strided_batched(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha,
                               const T* a, index_t lda, index_t stride_a, const T* b, index_t ldb,
                               index_t stride_b, T beta, T* c, index_t ldc, index_t stride_c,
                               index_t count) override;
  void do_fill(MatrixView<T> x, T value) override;
  void do_copy(ConstMatrixView<T> x, MatrixView<T> y) override;
  void do_axpby(T a, ConstMatrixView<T> x, T b, MatrixView<T> y) override;
  void do_batch_axpy(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y) override;
  void do_batch_axpy_and_advance(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y,
                                 std::uint32_t* counter) override;
  void do_batch_scale(T a, const T* alpha, MatrixView<T> x) override;
  void do_batch_dot(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;
  void do_batch_nrm2(ConstMatrixView<T> x, T* out) override;
  void do_batch_count_below(ConstMatrixView<T> x, T threshold, const T* weights,
                            T* out) override;
  void do_neumann_step(const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                       MatrixView<T> v) override;
  void do_batch_axpy_ratio(T sign, const T* num, const T* den, ConstMatrixView<T> x,
                           MatrixView<T> y) override;
  void do_batch_xpay_ratio(const T* num, const T* den, ConstMatrixView<T> x,
                           MatrixView<T> y) override;
  void do_sample_indices(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                         const std::uint32_t* step_on_device, std::uint32_t instance,
                         index_t population, index_t count, index_t sets, bool epochs,
                         sample_index_t* out) override;
  void do_advance_counter(std::uint32_t* counter) override;
  void do_schedule(const T* base, index_t count, Schedule s, const std::uint32_t* counter,
                   T* out) override;
  void do_single_point_step(const T* s, const T* eta, const T* mu, ConstMatrixView<T> gy,
                            ConstMatrixView<T> fy, ConstMatrixView<T> hv, ConstMatrixView<T> fx,
                            MatrixView<T> y, MatrixView<T> v, MatrixView<T> h) override;
  void do_normalized_momentum_step(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                   const T* beta, MatrixView<T> x) override;
  void do_normalized_axpy(T a, const T* beta, const T* sq, ConstMatrixView<T> m,
                          MatrixView<T> x) override;
  void do_hadamard(T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                   MatrixView<T> out) override;
  void do_exp(ConstMatrixView<T> a, MatrixView<T> out) override;
  void do_clamp(MatrixView<T> x, T lo, T hi) override;
  void do_add_normal(std::uint64_t seed, std::uint32_t stream, T scale,
                     MatrixView<T> x, std::int64_t first) override;
  void do_gather_rows(ConstMatrixView<T> src, const sample_index_t* idx,
                      MatrixView<T> dst, index_t first) override;
  void do_gather_columns(ConstMatrixView<T> src, const sample_index_t* idx,
                         MatrixView<T> dst) override;
};

extern template class CpuOps<float>;
extern template class CpuOps<double>;

}  // namespace bilevel::kernels::cpu
