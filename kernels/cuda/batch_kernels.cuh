// Launchers of the custom batched kernels (implemented in batch_kernels.cu). Declared with
// plain types so that the cuBLAS-side code (cuda_ops.cpp) compiles with the host compiler.
#pragma once

#include <bilevel/ops.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace bilevel::kernels::cuda {

template <typename T>
void launch_fill(cudaStream_t s, MatrixView<T> x, T value);
template <typename T>
void launch_copy(cudaStream_t s, ConstMatrixView<T> x, MatrixView<T> y);
template <typename T>
void launch_axpby(cudaStream_t s, T a, ConstMatrixView<T> x, T b, MatrixView<T> y);
template <typename T>
void launch_batch_axpy(cudaStream_t s, T a, const T* alpha, ConstMatrixView<T> x,
                       MatrixView<T> y);
template <typename T>
void launch_batch_axpy_and_advance(cudaStream_t s, T a, const T* alpha, ConstMatrixView<T> x,
                                   MatrixView<T> y, std::uint32_t* counter);
template <typename T>
void launch_batch_scale(cudaStream_t s, T a, const T* alpha, MatrixView<T> x);
/// Doubles of the scratch that column reductions of long columns split their partial sums into
/// (allocated once per executor, so that no reduction allocates).
constexpr index_t kReduceScratchDoubles = index_t{1} << 16;

template <typename T>
void launch_batch_dot(cudaStream_t s, ConstMatrixView<T> x, ConstMatrixView<T> y, T* out,
                      double* scratch);
template <typename T>
void launch_batch_nrm2(cudaStream_t s, ConstMatrixView<T> x, T* out, double* scratch);
template <typename T>
void launch_batch_count_below(cudaStream_t s, ConstMatrixView<T> x, T threshold,
                              const T* weights, T* out, double* scratch);
template <typename T>
void launch_neumann_step(cudaStream_t s, const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                         MatrixView<T> v);
template <typename T>
void launch_batch_axpy_ratio(cudaStream_t s, T sign, const T* num, const T* den,
                             ConstMatrixView<T> x, MatrixView<T> y);
template <typename T>
void launch_batch_xpay_ratio(cudaStream_t s, const T* num, const T* den, ConstMatrixView<T> x,
                             MatrixView<T> y);
template <typename T>
void launch_normalized_axpy(cudaStream_t s, T a, const T* beta, const T* sq,
                            ConstMatrixView<T> m, MatrixView<T> x);
template <typename T>
void launch_hadamard(cudaStream_t s, T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                     MatrixView<T> out);
template <typename T>
void launch_exp(cudaStream_t s, ConstMatrixView<T> a, MatrixView<T> out);
template <typename T>
void launch_clamp(cudaStream_t s, MatrixView<T> x, T lo, T hi);
template <typename T>
void launch_add_normal(cudaStream_t s, std::uint64_t seed, std::uint32_t stream, T scale,
                       MatrixView<T> x, std::int64_t first);
template <typename T>
void launch_gather_rows(cudaStream_t s, ConstMatrixView<T> src, const sample_index_t* idx,
                        MatrixView<T> dst, index_t first);
template <typename T>
void launch_gather_columns(cudaStream_t s, ConstMatrixView<T> src, const sample_index_t* idx,
                           MatrixView<T> dst);
template <typename T>
void launch_schedule(cudaStream_t s, const T* base, index_t count, Schedule schedule,
                     const std::uint32_t* counter, T* out);
template <typename T>
void launch_single_point_step(cudaStream_t s, const T* step, const T* eta, const T* mu,
                              ConstMatrixView<T> gy, ConstMatrixView<T> fy, ConstMatrixView<T> hv,
                              ConstMatrixView<T> fx, MatrixView<T> y, MatrixView<T> v,
                              MatrixView<T> h);
template <typename T>
void launch_normalized_momentum_step(cudaStream_t s, T mu, ConstMatrixView<T> h, MatrixView<T> m,
                                     T a, const T* beta, MatrixView<T> x, double* scratch);
void launch_sample_indices(cudaStream_t s, std::uint64_t seed, std::uint32_t stream,
                           std::uint32_t step, const std::uint32_t* step_on_device,
                           std::uint32_t instance, index_t population, index_t count,
                           index_t sets, bool epochs, sample_index_t* out);
void launch_advance_counter(cudaStream_t s, std::uint32_t* counter);

}  // namespace bilevel::kernels::cuda
