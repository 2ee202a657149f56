// Custom batched kernels: one launch per call, column j = instance j, per-instance scalars read
// from device arrays (nothing comes back to the host). The element formulas are shared with the
// CPU backend through kernels/common.
#include "batch_kernels.cuh"

#include "../common/batch_math.hpp"
#include "../common/philox.hpp"
#include "cuda_error.hpp"
#include "launch.cuh"
#include "elementwise.cuh"

#include <cub/block/block_reduce.cuh>

#include <algorithm>

namespace bilevel::kernels::cuda {
namespace {

constexpr int kBlock = kElementwiseBlock;

/// out[j] = finish(sum_i term(i, j)): one block per column, accumulated in double.
template <typename Term, typename Finish, typename T>
__global__ void column_reduce_kernel(index_t rows, index_t cols, Term term, Finish finish,
                                     T* out) {
  using BlockReduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (index_t j = blockIdx.x; j < cols; j += gridDim.x) {
    double s = 0.0;
    for (index_t i = threadIdx.x; i < rows; i += kBlock) s += term(i, j);
    const double total = BlockReduce(temp).Sum(s);
    if (threadIdx.x == 0) out[j] = static_cast<T>(finish(total));
    __syncthreads();  // temp is reused by the next column
  }
}

/// Long columns are split over several blocks: this many elements per block at least.
constexpr index_t kReduceSlice = 8192;

/// Blocks per column of a split reduction (1: one block per column is enough, or the scratch
/// or the grid cannot hold more).
index_t reduce_parts(index_t rows, index_t cols) {
  if (rows <= kReduceSlice || cols > 65535) return 1;
  const index_t wanted = (rows + kReduceSlice - 1) / kReduceSlice;
  return std::max<index_t>(1, std::min<index_t>({wanted, kReduceScratchDoubles / cols, 1024}));
}

/// The rows of part p of `parts`: [begin, end).
__device__ inline void part_range(index_t rows, index_t parts, index_t p, index_t& begin,
                                  index_t& end) {
  const index_t per = (rows + parts - 1) / parts;
  begin = p * per;
  end = begin + per < rows ? begin + per : rows;
}

/// Split reduction, first pass: block (p, j) sums term(i, j) over part p of column j into
/// partial[j parts + p]. Each element is visited exactly once (term may update it).
template <typename Term>
__global__ void partial_reduce_kernel(index_t rows, index_t parts, Term term, double* partial) {
  using BlockReduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  const index_t j = blockIdx.y, p = blockIdx.x;
  index_t begin, end;
  part_range(rows, parts, p, begin, end);
  double s = 0.0;
  for (index_t i = begin + threadIdx.x; i < end; i += kBlock) s += term(i, j);
  const double total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) partial[j * parts + p] = total;
}

/// Sum of column j's partials, in a fixed order (deterministic).
__device__ inline double sum_parts(const double* partial, index_t parts, index_t j) {
  double s = 0.0;
  for (index_t p = 0; p < parts; ++p) s += partial[j * parts + p];
  return s;
}

/// Split reduction, second pass: out[j] = finish(sum of column j's partials).
template <typename Finish, typename T>
__global__ void finish_reduce_kernel(index_t cols, index_t parts, const double* partial,
                                     Finish finish, T* out) {
  for (index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; j < cols;
       j += static_cast<index_t>(gridDim.x) * blockDim.x)
    out[j] = static_cast<T>(finish(sum_parts(partial, parts, j)));
}

/// out[j] = finish(sum_i term(i, j)): one block per column, or, for long columns, several
/// blocks per column and a second pass over their partial sums (`scratch`).
template <typename Term, typename Finish, typename T>
void launch_column_reduce(cudaStream_t s, index_t rows, index_t cols, Term term, Finish finish,
                          T* out, double* scratch, const char* name) {
  const index_t parts = reduce_parts(rows, cols);
  if (parts == 1) {
    const unsigned grid = static_cast<unsigned>(std::min<index_t>(cols, 1 << 16));
    BILEVEL_LAUNCH(grid, kBlock, 0, s, column_reduce_kernel)(rows, cols, term, finish, out);
    BILEVEL_CHECK_LAUNCH(s, name);
    return;
  }
  BILEVEL_LAUNCH(dim3(static_cast<unsigned>(parts), static_cast<unsigned>(cols)), kBlock, 0, s,
                 partial_reduce_kernel)(rows, parts, term, scratch);
  BILEVEL_CHECK_LAUNCH(s, name);
  const unsigned grid = static_cast<unsigned>(std::min<index_t>((cols + kBlock - 1) / kBlock, 4096));
  BILEVEL_LAUNCH(grid, kBlock, 0, s, finish_reduce_kernel)(cols, parts, scratch, finish, out);
  BILEVEL_CHECK_LAUNCH(s, name);
}

struct Identity {
  __device__ double operator()(double v) const { return v; }
};
struct Sqrt {
  __device__ double operator()(double v) const { return sqrt(v); }
};

__global__ void sample_indices_kernel(std::uint64_t seed, std::uint32_t stream,
                                      std::uint32_t step, const std::uint32_t* step_on_device,
                                      std::uint32_t instance, index_t population, index_t count,
                                      index_t sets, bool epochs, sample_index_t* out) {
  const std::uint32_t s = step + (step_on_device != nullptr ? *step_on_device : 0u);
  for (index_t b = blockIdx.y; b < sets; b += gridDim.y)
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<index_t>(gridDim.x) * blockDim.x)
      out[i + b * count] = common::draw_index(seed, stream, s,
                                              instance + static_cast<std::uint32_t>(b), i, count,
                                              population, epochs);
}

__global__ void advance_counter_kernel(std::uint32_t* counter) { ++*counter; }

template <typename T>
__global__ void schedule_kernel(const T* base, index_t count, Schedule s,
                                const std::uint32_t* counter, T* out) {
  const double factor = common::schedule_factor(*counter, s.offset, s.slope, s.power);
  for (index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; j < count;
       j += static_cast<index_t>(gridDim.x) * blockDim.x)
    out[j] = static_cast<T>(base[j] * factor);
}

/// One block per instance j: m_j = mu m_j + (1 - mu) h_j with ||m_j||^2 reduced in the same
/// pass, then x_j += a beta_j m_j / ||m_j|| (m_j read back from L2). One launch instead of
/// three (axpby, nrm2, axpy_ratio) and no norm array round trip.
template <typename T>
__global__ void normalized_momentum_kernel(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                           const T* beta, MatrixView<T> x) {
  using BlockReduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ T step;
  for (index_t j = blockIdx.x; j < x.cols; j += gridDim.x) {
    double sq = 0.0;
    for (index_t i = threadIdx.x; i < m.rows; i += kBlock) {
      T& mi = m.data[i + j * m.ld];
      mi = mu * mi + (T(1) - mu) * h.data[i + j * h.ld];
      sq += static_cast<double>(mi) * static_cast<double>(mi);
    }
    const double total = BlockReduce(temp).Sum(sq);
    if (threadIdx.x == 0) step = common::normalized_step(a, beta[j], sqrt(total));
    __syncthreads();
    for (index_t i = threadIdx.x; i < x.rows; i += kBlock)
      x.data[i + j * x.ld] += step * m.data[i + j * m.ld];
    __syncthreads();  // temp and step are reused by the next column
  }
}

/// Second pass of the split normalized momentum: block (p, j) moves part p of x_j by
/// a beta_j m_j / ||m_j||, with ||m_j||^2 the sum of column j's partials.
template <typename T>
__global__ void normalized_move_kernel(index_t parts, const double* partial, T a, const T* beta,
                                       ConstMatrixView<T> m, MatrixView<T> x) {
  const index_t j = blockIdx.y, p = blockIdx.x;
  const T step = common::normalized_step(a, beta[j], sqrt(sum_parts(partial, parts, j)));
  index_t begin, end;
  part_range(x.rows, parts, p, begin, end);
  for (index_t i = begin + threadIdx.x; i < end; i += kBlock)
    x.data[i + j * x.ld] += step * m.data[i + j * m.ld];
}

}  // namespace

template <typename T>
void launch_fill(cudaStream_t s, MatrixView<T> x, T value) {
  launch_elementwise(
      s, x.rows, x.cols, [=] __device__(index_t i, index_t j) { x.data[i + j * x.ld] = value; },
      "fill");
}

template <typename T>
void launch_copy(cudaStream_t s, ConstMatrixView<T> x, MatrixView<T> y) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) { y.data[i + j * y.ld] = x.data[i + j * x.ld]; },
      "copy");
}

template <typename T>
void launch_axpby(cudaStream_t s, T a, ConstMatrixView<T> x, T b, MatrixView<T> y) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        T& yi = y.data[i + j * y.ld];
        yi = a * x.data[i + j * x.ld] + (b == T(0) ? T(0) : b * yi);
      },
      "axpby");
}

template <typename T>
void launch_batch_axpy(cudaStream_t s, T a, const T* alpha, ConstMatrixView<T> x,
                       MatrixView<T> y) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        y.data[i + j * y.ld] += a * alpha[j] * x.data[i + j * x.ld];
      },
      "batch_axpy");
}

template <typename T>
void launch_batch_axpy_and_advance(cudaStream_t s, T a, const T* alpha, ConstMatrixView<T> x,
                                   MatrixView<T> y, std::uint32_t* counter) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        y.data[i + j * y.ld] += a * alpha[j] * x.data[i + j * x.ld];
        if (i == 0 && j == 0) *counter += 1u;  // exactly one thread visits (0, 0)
      },
      "batch_axpy_and_advance");
}

template <typename T>
void launch_batch_scale(cudaStream_t s, T a, const T* alpha, MatrixView<T> x) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) { x.data[i + j * x.ld] *= a * alpha[j]; },
      "batch_scale");
}

template <typename T>
void launch_batch_dot(cudaStream_t s, ConstMatrixView<T> x, ConstMatrixView<T> y, T* out,
                      double* scratch) {
  launch_column_reduce(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        return static_cast<double>(x.data[i + j * x.ld]) *
               static_cast<double>(y.data[i + j * y.ld]);
      },
      Identity{}, out, scratch, "batch_dot");
}

template <typename T>
void launch_batch_nrm2(cudaStream_t s, ConstMatrixView<T> x, T* out, double* scratch) {
  launch_column_reduce(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        const double v = x.data[i + j * x.ld];
        return v * v;
      },
      Sqrt{}, out, scratch, "batch_nrm2");
}

template <typename T>
void launch_batch_count_below(cudaStream_t s, ConstMatrixView<T> x, T threshold,
                              const T* weights, T* out, double* scratch) {
  launch_column_reduce(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        return x.data[i + j * x.ld] < threshold
                   ? (weights != nullptr ? static_cast<double>(weights[i]) : 1.0)
                   : 0.0;
      },
      Identity{}, out, scratch, "batch_count_below");
}

template <typename T>
void launch_neumann_step(cudaStream_t s, const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                         MatrixView<T> v) {
  launch_elementwise(
      s, r.rows, r.cols,
      [=] __device__(index_t i, index_t j) {
        common::neumann_step(eta[j], hr.data[i + j * hr.ld], r.data[i + j * r.ld],
                             v.data[i + j * v.ld]);
      },
      "neumann_step");
}

template <typename T>
void launch_batch_axpy_ratio(cudaStream_t s, T sign, const T* num, const T* den,
                             ConstMatrixView<T> x, MatrixView<T> y) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        y.data[i + j * y.ld] += sign * common::safe_ratio(num[j], den[j]) * x.data[i + j * x.ld];
      },
      "batch_axpy_ratio");
}

template <typename T>
void launch_batch_xpay_ratio(cudaStream_t s, const T* num, const T* den, ConstMatrixView<T> x,
                             MatrixView<T> y) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        T& yi = y.data[i + j * y.ld];
        yi = x.data[i + j * x.ld] + common::safe_ratio(num[j], den[j]) * yi;
      },
      "batch_xpay_ratio");
}

template <typename T>
void launch_normalized_axpy(cudaStream_t s, T a, const T* beta, const T* sq,
                            ConstMatrixView<T> m, MatrixView<T> x) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        x.data[i + j * x.ld] += common::normalized_step(a, beta[j], sqrt(static_cast<double>(sq[j]))) *
                                m.data[i + j * m.ld];
      },
      "normalized_axpy");
}

template <typename T>
void launch_hadamard(cudaStream_t s, T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                     MatrixView<T> out) {
  launch_elementwise(
      s, out.rows, out.cols,
      [=] __device__(index_t i, index_t j) {
        T& o = out.data[i + j * out.ld];
        const T p = alpha * a.data[i + j * a.ld] * b.data[i + j * b.ld];
        o = beta == T(0) ? p : p + beta * o;
      },
      "hadamard");
}

template <typename T>
void launch_exp(cudaStream_t s, ConstMatrixView<T> a, MatrixView<T> out) {
  launch_elementwise(
      s, out.rows, out.cols,
      [=] __device__(index_t i, index_t j) { out.data[i + j * out.ld] = exp(a.data[i + j * a.ld]); },
      "exp");
}

template <typename T>
void launch_clamp(cudaStream_t s, MatrixView<T> x, T lo, T hi) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        T& v = x.data[i + j * x.ld];
        v = common::clamp(v, lo, hi);
      },
      "clamp");
}

template <typename T>
void launch_add_normal(cudaStream_t s, std::uint64_t seed, std::uint32_t stream, T scale,
                       MatrixView<T> x, std::int64_t first) {
  launch_elementwise(
      s, x.rows, x.cols,
      [=] __device__(index_t i, index_t j) {
        x.data[i + j * x.ld] +=
            scale * static_cast<T>(common::standard_normal(seed, stream, first + i + j * x.rows));
      },
      "add_normal");
}

template <typename T>
void launch_gather_rows(cudaStream_t s, ConstMatrixView<T> src, const sample_index_t* idx,
                        MatrixView<T> dst, index_t first) {
  launch_elementwise(
      s, dst.rows, dst.cols,
      [=] __device__(index_t i, index_t j) {
        const index_t r = static_cast<index_t>(idx[i]) - first;
        dst.data[i + j * dst.ld] = r >= 0 && r < src.rows ? src.data[r + j * src.ld] : T(0);
      },
      "gather_rows");
}

template <typename T>
void launch_gather_columns(cudaStream_t s, ConstMatrixView<T> src, const sample_index_t* idx,
                           MatrixView<T> dst) {
  launch_elementwise(
      s, dst.rows, dst.cols,
      [=] __device__(index_t i, index_t j) {
        dst.data[i + j * dst.ld] = src.data[i + static_cast<index_t>(idx[j]) * src.ld];
      },
      "gather_columns");
}

void launch_sample_indices(cudaStream_t s, std::uint64_t seed, std::uint32_t stream,
                           std::uint32_t step, const std::uint32_t* step_on_device,
                           std::uint32_t instance, index_t population, index_t count,
                           index_t sets, bool epochs, sample_index_t* out) {
  const dim3 grid(static_cast<unsigned>(std::min<index_t>((count + kBlock - 1) / kBlock, 4096)),
                  static_cast<unsigned>(std::min<index_t>(sets, 65535)));
  BILEVEL_LAUNCH(grid, kBlock, 0, s, sample_indices_kernel)(seed, stream, step, step_on_device,
                                                            instance, population, count, sets,
                                                            epochs, out);
  BILEVEL_CHECK_LAUNCH(s, "sample_indices");
}

void launch_advance_counter(cudaStream_t s, std::uint32_t* counter) {
  BILEVEL_LAUNCH(1, 1, 0, s, advance_counter_kernel)(counter);
  BILEVEL_CHECK_LAUNCH(s, "advance_counter");
}

template <typename T>
void launch_schedule(cudaStream_t s, const T* base, index_t count, Schedule schedule,
                     const std::uint32_t* counter, T* out) {
  const unsigned grid =
      static_cast<unsigned>(std::min<index_t>((count + kBlock - 1) / kBlock, 4096));
  BILEVEL_LAUNCH(grid, kBlock, 0, s, schedule_kernel)(base, count, schedule, counter, out);
  BILEVEL_CHECK_LAUNCH(s, "schedule");
}

template <typename T>
void launch_single_point_step(cudaStream_t s, const T* step, const T* eta, const T* mu,
                              ConstMatrixView<T> gy, ConstMatrixView<T> fy, ConstMatrixView<T> hv,
                              ConstMatrixView<T> fx, MatrixView<T> y, MatrixView<T> v,
                              MatrixView<T> h) {
  launch_elementwise(
      s, y.rows > h.rows ? y.rows : h.rows, y.cols,
      [=] __device__(index_t i, index_t j) {
        if (i < y.rows)
          common::single_point_lower(step[j], eta[j], mu ? mu[j] : T(0), gy.data[i + j * gy.ld],
                                     fy.data[i + j * fy.ld], hv.data[i + j * hv.ld],
                                     y.data[i + j * y.ld], v.data[i + j * v.ld]);
        if (i < h.rows) {
          T& hi = h.data[i + j * h.ld];
          hi = (fx.data == nullptr ? T(0) : fx.data[i + j * fx.ld]) - hi;
        }
      },
      "single_point_step");
}

template <typename T>
void launch_normalized_momentum_step(cudaStream_t s, T mu, ConstMatrixView<T> h, MatrixView<T> m,
                                     T a, const T* beta, MatrixView<T> x, double* scratch) {
  const index_t parts = reduce_parts(x.rows, x.cols);
  if (parts == 1) {
    const unsigned grid = static_cast<unsigned>(std::min<index_t>(x.cols, 1 << 16));
    BILEVEL_LAUNCH(grid, kBlock, 0, s, normalized_momentum_kernel)(mu, h, m, a, beta, x);
    BILEVEL_CHECK_LAUNCH(s, "normalized_momentum_step");
    return;
  }
  // long columns: m update with partial norms over (parts x cols) blocks, then x moved by
  // the same blocks, each summing its column's partials first
  const dim3 grid(static_cast<unsigned>(parts), static_cast<unsigned>(x.cols));
  BILEVEL_LAUNCH(grid, kBlock, 0, s, partial_reduce_kernel)(
      m.rows, parts,
      [=] __device__(index_t i, index_t j) {
        T& mi = m.data[i + j * m.ld];
        mi = mu * mi + (T(1) - mu) * h.data[i + j * h.ld];
        return static_cast<double>(mi) * static_cast<double>(mi);
      },
      scratch);
  BILEVEL_CHECK_LAUNCH(s, "normalized_momentum_step (norms)");
  BILEVEL_LAUNCH(grid, kBlock, 0, s, normalized_move_kernel)(parts, scratch, a, beta,
                                                             ConstMatrixView<T>(m), x);
  BILEVEL_CHECK_LAUNCH(s, "normalized_momentum_step (move)");
}

#define BILEVEL_INSTANTIATE_BATCH_KERNELS(T)                                                    \
  template void launch_batch_axpy_and_advance<T>(cudaStream_t, T, const T*, ConstMatrixView<T>,  \
                                                 MatrixView<T>, std::uint32_t*);                \
  template void launch_single_point_step<T>(cudaStream_t, const T*, const T*, const T*,          \
                                            ConstMatrixView<T>, ConstMatrixView<T>,             \
                                            ConstMatrixView<T>, ConstMatrixView<T>, MatrixView<T>, \
                                            MatrixView<T>, MatrixView<T>);                      \
  template void launch_fill<T>(cudaStream_t, MatrixView<T>, T);                                 \
  template void launch_copy<T>(cudaStream_t, ConstMatrixView<T>, MatrixView<T>);                \
  template void launch_axpby<T>(cudaStream_t, T, ConstMatrixView<T>, T, MatrixView<T>);         \
  template void launch_batch_axpy<T>(cudaStream_t, T, const T*, ConstMatrixView<T>,             \
                                     MatrixView<T>);                                            \
  template void launch_batch_scale<T>(cudaStream_t, T, const T*, MatrixView<T>);                \
  template void launch_batch_dot<T>(cudaStream_t, ConstMatrixView<T>, ConstMatrixView<T>, T*,   \
                                    double*);                                                   \
  template void launch_batch_nrm2<T>(cudaStream_t, ConstMatrixView<T>, T*, double*);            \
  template void launch_batch_count_below<T>(cudaStream_t, ConstMatrixView<T>, T, const T*, T*,  \
                                            double*);                                           \
  template void launch_neumann_step<T>(cudaStream_t, const T*, ConstMatrixView<T>,              \
                                       MatrixView<T>, MatrixView<T>);                           \
  template void launch_batch_axpy_ratio<T>(cudaStream_t, T, const T*, const T*,                 \
                                           ConstMatrixView<T>, MatrixView<T>);                  \
  template void launch_batch_xpay_ratio<T>(cudaStream_t, const T*, const T*,                    \
                                           ConstMatrixView<T>, MatrixView<T>);                  \
  template void launch_clamp<T>(cudaStream_t, MatrixView<T>, T, T);                              \
  template void launch_hadamard<T>(cudaStream_t, T, ConstMatrixView<T>, ConstMatrixView<T>, T,  \
                                   MatrixView<T>);                                             \
  template void launch_exp<T>(cudaStream_t, ConstMatrixView<T>, MatrixView<T>);                 \
  template void launch_normalized_axpy<T>(cudaStream_t, T, const T*, const T*,                  \
                                          ConstMatrixView<T>, MatrixView<T>);                              \
  template void launch_add_normal<T>(cudaStream_t, std::uint64_t, std::uint32_t, T,             \
                                     MatrixView<T>, std::int64_t);                              \
  template void launch_gather_rows<T>(cudaStream_t, ConstMatrixView<T>, const sample_index_t*,  \
                                      MatrixView<T>, index_t);                                  \
  template void launch_gather_columns<T>(cudaStream_t, ConstMatrixView<T>,                      \
                                         const sample_index_t*, MatrixView<T>);                 \
  template void launch_schedule<T>(cudaStream_t, const T*, index_t, Schedule,                   \
                                  const std::uint32_t*, T*);                                    \
  template void launch_normalized_momentum_step<T>(cudaStream_t, T, ConstMatrixView<T>,         \
                                                   MatrixView<T>, T, const T*, MatrixView<T>,   \
                                                   double*);

BILEVEL_INSTANTIATE_BATCH_KERNELS(float)
BILEVEL_INSTANTIATE_BATCH_KERNELS(double)

}  // namespace bilevel::kernels::cuda
