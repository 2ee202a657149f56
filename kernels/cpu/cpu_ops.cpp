#include "cpu_ops.hpp"

#include "../common/batch_math.hpp"
#include "../common/philox.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace bilevel::kernels::cpu {
namespace {

// Elementwise loops are parallel only when there is enough work to pay for the threads.
constexpr index_t kParallelThreshold = 1 << 15;

CBLAS_TRANSPOSE to_cblas(Op op) { return op == Op::none ? CblasNoTrans : CblasTrans; }

/// The blocks of C that do_gemm computes with one BLAS call each. The partition depends on the
/// shape alone, so every entry's sum does not depend on the thread count: columns in nearly
/// equal blocks of at most kGemmBlockCols, rows in blocks of a multiple of 64 (at most 2048)
/// that make about kGemmBlocks blocks in all - a skinny product (the logits of a batch,
/// 512 x 10) still spreads over the threads, and a wide one is not cut into more calls than
/// that (64-column blocks re-packed A ten times at B = 64: the composed oracles 5-8% slower).
constexpr index_t kGemmBlockCols = 256, kGemmBlocks = 8;
inline index_t gemm_block_rows(index_t m, index_t col_blocks) {
  const index_t row_blocks = std::max<index_t>(1, kGemmBlocks / col_blocks);
  const index_t rows = (m + row_blocks - 1) / row_blocks;
  return std::clamp<index_t>((rows + 63) / 64 * 64, 64, 2048);
}
/// Products (m n k) that run on the calling thread alone: a parallel region would cost more
/// than they save (with a limit of 65536, a per-task quadratic's B = 1 H v - 512 x 1 x 256
/// products - took 100x longer at 2 threads on the AMD VM).
constexpr double kSerialGemm = 1 << 20;

/// f(i, j) over the rows x cols index space. The inner loop runs over i with j fixed, so that
/// f's accesses (contiguous in i) vectorise; a collapsed (j, i) loop does not, and made these
/// loops about 10x slower. With enough work, columns (long ones in pieces) spread over the
/// threads. Every element is computed alike whatever the split.
template <typename F>
void for_each_element(index_t rows, index_t cols, F f) {
  const auto run = [&f](index_t j, index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) f(i, j);
  };
  if (rows * cols <= kParallelThreshold) {
    for (index_t j = 0; j < cols; ++j) run(j, 0, rows);
    return;
  }
  constexpr index_t kPiece = 2048;  // (long columns: pieces enough to balance the threads)
  const index_t pieces = (rows + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static)
  for (index_t item = 0; item < cols * pieces; ++item) {
    const index_t j = item / pieces, p = item % pieces;
    run(j, p * kPiece, std::min(rows, (p + 1) * kPiece));
  }
}

/// Per-column sum of f(i, j), accumulated in double in one order whatever the thread count:
/// blocks of kSumBlock rows, each summed in kSumLanes interleaved partial sums (row i into
/// lane i mod kSumLanes) added pairwise at the block's end, then the blocks' sums in order (the
/// blocks spread over the threads when there is enough work). An OpenMP reduction combines the
/// threads' partial sums in the order they finish: with 3 or more threads its last bits change
/// from run to run, and they change with the thread count. (One running sum was one dependent
/// double add per row, 4 cycles each: the normalized-momentum norm of BO-REP at 20000 x 64 took
/// 2 ms of a 43 ms iteration. The lanes vectorize and keep the order fixed.)
template <typename F>
double column_sum(index_t rows, index_t j, F f) {
  constexpr index_t kSumBlock = 4096;
  constexpr index_t kSumLanes = 8;
  const auto block_sum = [&](index_t blk) {
    double lane[kSumLanes] = {};
    const index_t begin = blk * kSumBlock, end = std::min(rows, (blk + 1) * kSumBlock);
    index_t i = begin;
    for (; i + kSumLanes <= end; i += kSumLanes)
      for (index_t l = 0; l < kSumLanes; ++l) lane[l] += f(i + l, j);
    for (index_t l = 0; i < end; ++i, ++l) lane[l] += f(i, j);
    for (index_t width = kSumLanes / 2; width > 0; width /= 2)
      for (index_t l = 0; l < width; ++l) lane[l] += lane[l + width];
    return lane[0];
  };
  const index_t blocks = (rows + kSumBlock - 1) / kSumBlock;
  if (blocks <= 1) return blocks == 1 ? block_sum(0) : 0.0;
  // the calling thread's scratch, kept from call to call (no allocation once the size is seen)
  thread_local std::vector<double> partial;
  if (static_cast<index_t>(partial.size()) < blocks) partial.resize(static_cast<std::size_t>(blocks));
  double* p = partial.data();
#pragma omp parallel for schedule(static) if (rows > kParallelThreshold)
  for (index_t blk = 0; blk < blocks; ++blk) p[blk] = block_sum(blk);
  double s = 0.0;
  for (index_t blk = 0; blk < blocks; ++blk) s += p[blk];
  return s;
}

}  // namespace

template <typename T>
void CpuOps<T>::do_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                        index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  const auto bi = [](index_t v) { return static_cast<blasint>(v); };
  if (k == 0) {  // C = beta * C; BLAS may read A and B even when k == 0.
    if (beta == T(0))
      for_each_element(m, n, [&](index_t i, index_t j) { c[i + j * ldc] = T(0); });
    else
      for_each_element(m, n, [&](index_t i, index_t j) { c[i + j * ldc] *= beta; });
    return;
  }
  // C in blocks of a fixed size, one single-threaded BLAS call each, the blocks spread over
  // the threads: every entry is summed by the same call whatever the thread count. (Threaded,
  // OpenBLAS splits the sum of a matrix-vector or skinny product over its threads - A x, A' x,
  // x' B', 512 x 10 x 784 - and the hyper-cleaning metrics changed in their last bits between
  // --threads 1 and 2.) Each call runs on one thread: the OpenMP build of OpenBLAS takes one
  // inside an active parallel region, and is set to one around the calls made outside one.
  const index_t col_blocks = (n + kGemmBlockCols - 1) / kGemmBlockCols;
  const index_t cols_per_block = ((n + col_blocks - 1) / col_blocks + 15) / 16 * 16;
  const index_t rows_per_block = gemm_block_rows(m, col_blocks);
  const index_t row_blocks = (m + rows_per_block - 1) / rows_per_block;
  const auto block = [&](index_t blk) {
    const index_t i0 = (blk % row_blocks) * rows_per_block;
    const index_t j0 = (blk / row_blocks) * cols_per_block;
    const index_t mm = std::min(rows_per_block, m - i0), nn = std::min(cols_per_block, n - j0);
    const T* ab = op_a == Op::none ? a + i0 : a + i0 * lda;  // op(A)'s rows from i0
    const T* bb = op_b == Op::none ? b + j0 * ldb : b + j0;  // op(B)'s columns from j0
    T* cb = c + i0 + j0 * ldc;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasColMajor, to_cblas(op_a), to_cblas(op_b), bi(mm), bi(nn), bi(k), alpha,
                  ab, bi(lda), bb, bi(ldb), beta, cb, bi(ldc));
    else
      cblas_dgemm(CblasColMajor, to_cblas(op_a), to_cblas(op_b), bi(mm), bi(nn), bi(k), alpha,
                  ab, bi(lda), bb, bi(ldb), beta, cb, bi(ldc));
  };
  const index_t blocks = row_blocks * col_blocks;
  const double mnk = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const bool nested = omp_in_parallel();  // (OpenBLAS runs one thread in an active region)
  if (nested || blocks == 1 || mnk <= kSerialGemm || omp_get_max_threads() == 1) {
    // on this thread; outside a parallel region OpenBLAS is held to one thread for the call,
    // both counts put back after (openblas_set_num_threads sets the calling thread's OpenMP
    // count too: set around the parallel loop below, it had run the blocks of B = 64 products
    // on one thread)
    const int omp_threads = omp_get_max_threads();
    const int blas_threads = nested ? 1 : openblas_get_num_threads();
    if (blas_threads != 1) openblas_set_num_threads(1);
    for (index_t blk = 0; blk < blocks; ++blk) block(blk);
    if (blas_threads != 1) {
      openblas_set_num_threads(blas_threads);
      omp_set_num_threads(omp_threads);
    }
    return;
  }
  // (OpenBLAS runs one thread inside an active parallel region; the blocks are taken as
  // threads come free - the partition, not the schedule, fixes the bits)
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t blk = 0; blk < blocks; ++blk) block(blk);
}

template <typename T>
void CpuOps<T>::do_gemm_strided_batched(Op op_a, Op op_b, index_t m, index_t n, index_t k,
                                        T alpha, const T* a, index_t lda, index_t stride_a,
                                        const T* b, index_t ldb, index_t stride_b, T beta, T* c,
                                        index_t ldc, index_t stride_c, index_t count) {
  // one do_gemm per matrix (OpenBLAS has no strided-batched GEMM). Large matrices: one after
  // the other, each spreading its blocks over the threads; small ones (per-task networks, m n k
  // up to 64^3): the matrices spread over the threads, each do_gemm then on its own thread -
  // the same blocks, so the same result per matrix, as one after the other.
  const bool small = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <=
                     262144.0;
#pragma omp parallel for schedule(static) if (small && count > 1)
  for (index_t i = 0; i < count; ++i)
    do_gemm(op_a, op_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
            c + i * stride_c, ldc);
}

template <typename T>
void CpuOps<T>::do_fill(MatrixView<T> x, T value) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) { x.data[i + j * x.ld] = value; });
}

template <typename T>
void CpuOps<T>::do_copy(ConstMatrixView<T> x, MatrixView<T> y) {
  for_each_element(x.rows, x.cols,
                   [&](index_t i, index_t j) { y.data[i + j * y.ld] = x.data[i + j * x.ld]; });
}

template <typename T>
void CpuOps<T>::do_axpby(T a, ConstMatrixView<T> x, T b, MatrixView<T> y) {
  // (the branch outside the loops: a test inside one keeps it from vectorising)
  if (b == T(0))
    for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
      y.data[i + j * y.ld] = a * x.data[i + j * x.ld];
    });
  else
    for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
      T& yi = y.data[i + j * y.ld];
      yi = a * x.data[i + j * x.ld] + b * yi;
    });
}

template <typename T>
void CpuOps<T>::do_batch_axpy(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
    y.data[i + j * y.ld] += a * alpha[j] * x.data[i + j * x.ld];
  });
}

template <typename T>
void CpuOps<T>::do_batch_axpy_and_advance(T a, const T* alpha, ConstMatrixView<T> x,
                                          MatrixView<T> y, std::uint32_t* counter) {
  do_batch_axpy(a, alpha, x, y);
  ++*counter;
}

template <typename T>
void CpuOps<T>::do_batch_scale(T a, const T* alpha, MatrixView<T> x) {
  for_each_element(x.rows, x.cols,
                   [&](index_t i, index_t j) { x.data[i + j * x.ld] *= a * alpha[j]; });
}

template <typename T>
void CpuOps<T>::do_batch_dot(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
  for (index_t j = 0; j < x.cols; ++j) {
    out[j] = static_cast<T>(column_sum(x.rows, j, [&](index_t i, index_t c) {
      return static_cast<double>(x.data[i + c * x.ld]) * static_cast<double>(y.data[i + c * y.ld]);
    }));
  }
}

template <typename T>
void CpuOps<T>::do_batch_nrm2(ConstMatrixView<T> x, T* out) {
  for (index_t j = 0; j < x.cols; ++j) {
    out[j] = static_cast<T>(std::sqrt(column_sum(x.rows, j, [&](index_t i, index_t c) {
      const double v = x.data[i + c * x.ld];
      return v * v;
    })));
  }
}

template <typename T>
void CpuOps<T>::do_batch_count_below(ConstMatrixView<T> x, T threshold, const T* weights, T* out) {
  for (index_t j = 0; j < x.cols; ++j) {
    out[j] = static_cast<T>(column_sum(x.rows, j, [&](index_t i, index_t c) {
      return x.data[i + c * x.ld] < threshold ? (weights ? static_cast<double>(weights[i]) : 1.0)
                                              : 0.0;
    }));
  }
}

template <typename T>
void CpuOps<T>::do_neumann_step(const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                                MatrixView<T> v) {
  for_each_element(r.rows, r.cols, [&](index_t i, index_t j) {
    common::neumann_step(eta[j], hr.data[i + j * hr.ld], r.data[i + j * r.ld],
                         v.data[i + j * v.ld]);
  });
}

template <typename T>
void CpuOps<T>::do_batch_axpy_ratio(T sign, const T* num, const T* den, ConstMatrixView<T> x,
                                    MatrixView<T> y) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
    y.data[i + j * y.ld] += sign * common::safe_ratio(num[j], den[j]) * x.data[i + j * x.ld];
  });
}

template <typename T>
void CpuOps<T>::do_batch_xpay_ratio(const T* num, const T* den, ConstMatrixView<T> x,
                                    MatrixView<T> y) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
    T& yi = y.data[i + j * y.ld];
    yi = x.data[i + j * x.ld] + common::safe_ratio(num[j], den[j]) * yi;
  });
}

template <typename T>
void CpuOps<T>::do_sample_indices(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                                  const std::uint32_t* step_on_device, std::uint32_t instance,
                                  index_t population, index_t count, index_t sets, bool epochs,
                                  sample_index_t* out) {
  const std::uint32_t s = step + (step_on_device != nullptr ? *step_on_device : 0u);
#pragma omp parallel for collapse(2) schedule(static) if (count * sets > kParallelThreshold)
  for (index_t b = 0; b < sets; ++b)
    for (index_t i = 0; i < count; ++i)
      out[i + b * count] = common::draw_index(seed, stream, s,
                                              instance + static_cast<std::uint32_t>(b), i, count,
                                              population, epochs);
}

template <typename T>
void CpuOps<T>::do_advance_counter(std::uint32_t* counter) {
  ++*counter;
}

template <typename T>
void CpuOps<T>::do_schedule(const T* base, index_t count, Schedule s,
                            const std::uint32_t* counter, T* out) {
  const double factor = common::schedule_factor(*counter, s.offset, s.slope, s.power);
  for (index_t j = 0; j < count; ++j) out[j] = static_cast<T>(base[j] * factor);
}

template <typename T>
void CpuOps<T>::do_single_point_step(const T* s, const T* eta, const T* mu,
                                     ConstMatrixView<T> gy, ConstMatrixView<T> fy,
                                     ConstMatrixView<T> hv, ConstMatrixView<T> fx, MatrixView<T> y,
                                     MatrixView<T> v, MatrixView<T> h) {
  for_each_element(y.rows, y.cols, [&](index_t i, index_t j) {
    common::single_point_lower(s[j], eta[j], mu ? mu[j] : T(0), gy.data[i + j * gy.ld],
                               fy.data[i + j * fy.ld], hv.data[i + j * hv.ld],
                               y.data[i + j * y.ld], v.data[i + j * v.ld]);
  });
  // h = fx - h (fx empty: -h)
  if (fx.empty())
    for_each_element(h.rows, h.cols, [&](index_t i, index_t j) {
      T& hi = h.data[i + j * h.ld];
      hi = T(0) - hi;
    });
  else
    for_each_element(h.rows, h.cols, [&](index_t i, index_t j) {
      T& hi = h.data[i + j * h.ld];
      hi = fx.data[i + j * fx.ld] - hi;
    });
}

template <typename T>
void CpuOps<T>::do_normalized_momentum_step(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                            const T* beta, MatrixView<T> x) {
  const T keep = mu, take = T(1) - mu;  // (copies: a store to m cannot change them)
  for (index_t j = 0; j < x.cols; ++j) {
    // m_j = mu m_j + (1 - mu) h_j, and ||m_j||^2 in the same pass
    T* __restrict mj = m.data + j * m.ld;
    const T* __restrict hj = h.data + j * h.ld;
    const double sq = column_sum(m.rows, j, [mj, hj, keep, take](index_t i, index_t) {
      const T mi = keep * mj[i] + take * hj[i];
      mj[i] = mi;
      return static_cast<double>(mi) * static_cast<double>(mi);
    });
    // x_j += a beta_j m_j / ||m_j||
    const T step = common::normalized_step(a, beta[j], std::sqrt(sq));
    for_each_element(x.rows, 1, [&](index_t i, index_t) {
      x.data[i + j * x.ld] += step * m.data[i + j * m.ld];
    });
  }
}

template <typename T>
void CpuOps<T>::do_normalized_axpy(T a, const T* beta, const T* sq, ConstMatrixView<T> m,
                                   MatrixView<T> x) {
  for (index_t j = 0; j < x.cols; ++j) {
    // x_j += a beta_j m_j / sqrt(sq_j)
    const T step = common::normalized_step(a, beta[j], std::sqrt(static_cast<double>(sq[j])));
    for_each_element(x.rows, 1, [&](index_t i, index_t) {
      x.data[i + j * x.ld] += step * m.data[i + j * m.ld];
    });
  }
}

template <typename T>
void CpuOps<T>::do_hadamard(T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                            MatrixView<T> out) {
  if (beta == T(0))
    for_each_element(out.rows, out.cols, [&](index_t i, index_t j) {
      out.data[i + j * out.ld] = alpha * a.data[i + j * a.ld] * b.data[i + j * b.ld];
    });
  else
    for_each_element(out.rows, out.cols, [&](index_t i, index_t j) {
      T& o = out.data[i + j * out.ld];
      o = alpha * a.data[i + j * a.ld] * b.data[i + j * b.ld] + beta * o;
    });
}

template <typename T>
void CpuOps<T>::do_exp(ConstMatrixView<T> a, MatrixView<T> out) {
  for_each_element(out.rows, out.cols, [&](index_t i, index_t j) {
    out.data[i + j * out.ld] = std::exp(a.data[i + j * a.ld]);
  });
}

template <typename T>
void CpuOps<T>::do_clamp(MatrixView<T> x, T lo, T hi) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
    T& v = x.data[i + j * x.ld];
    v = common::clamp(v, lo, hi);
  });
}

template <typename T>
void CpuOps<T>::do_add_normal(std::uint64_t seed, std::uint32_t stream, T scale,
                              MatrixView<T> x, std::int64_t first) {
  for_each_element(x.rows, x.cols, [&](index_t i, index_t j) {
    x.data[i + j * x.ld] +=
        scale * static_cast<T>(common::standard_normal(seed, stream, first + i + j * x.rows));
  });
}

template <typename T>
void CpuOps<T>::do_gather_rows(ConstMatrixView<T> src, const sample_index_t* idx,
                               MatrixView<T> dst, index_t first) {
  for_each_element(dst.rows, dst.cols, [&](index_t i, index_t j) {
    const index_t r = static_cast<index_t>(idx[i]) - first;
    dst.data[i + j * dst.ld] = r >= 0 && r < src.rows ? src.data[r + j * src.ld] : T(0);
  });
}

template <typename T>
void CpuOps<T>::do_gather_columns(ConstMatrixView<T> src, const sample_index_t* idx,
                                  MatrixView<T> dst) {
  for_each_element(dst.rows, dst.cols, [&](index_t i, index_t j) {
    dst.data[i + j * dst.ld] = src.data[i + static_cast<index_t>(idx[j]) * src.ld];
  });
}

template class CpuOps<float>;
template class CpuOps<double>;

}  // namespace bilevel::kernels::cpu
