// CUDA fused linear-model oracles (kernels/linear_model_kernels.hpp): two kernels per call.
//
// coefficient_kernel: one warp per (group, sample). The warp reads the sample's row by index
// (lanes over features: coalesced), accumulates the dot products with 8 columns of [W V] at a
// time (the row stays in L1 between column tiles), reduces them with shuffles into shared
// memory, and lanes over the group's instances turn the logits into the loss's coefficients
// (rg, rh, cross) with the functor the CPU twin uses. It also zeroes jv when not accumulating.
//
// back_product_kernel: a thread per (feature row, 8 output columns) sums R[i, col] a_i[j] over
// the batch in batch order (R staged in shared memory, rows read coalesced across threads):
// no atomics, the same bits on every run. Extra blocks (blockIdx.x == row tiles) scatter jv:
// the first copy of a sample in the batch sums the terms of all its copies in batch order.
#include "../linear_model_kernels.hpp"

#include "../common/linear_model.hpp"
#include "cuda_error.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>

namespace bilevel::kernels::cuda {
namespace {

constexpr int kWarps = 8;               // warps per block of the coefficient kernel
constexpr int kColumnTile = 8;          // columns of [W V] per pass over a row
constexpr int kRowThreads = 64;         // threads (feature rows) per back-product block
constexpr int kOutTile = 8;             // output columns per back-product thread
constexpr int kSampleTile = 32;         // samples of R staged per shared-memory tile
constexpr index_t kMaxColumns = 256;    // C x B of the fused path (larger: cuBLAS GEMMs)
constexpr int kMaxClasses = 64;

template <typename T>
struct Shape {
  index_t groups, width, columns;
};

template <typename T>
__host__ __device__ Shape<T> shape_of(const LinearModelBatch<T>& b) {
  const bool independent = b.index_stride > 0;
  const index_t width = independent ? 1 : b.instances;
  return {independent ? b.instances : 1, width, width * b.classes};
}

template <typename T>
__device__ __forceinline__ index_t data_sample(const LinearModelBatch<T>& b, index_t g,
                                               index_t i) {
  return b.indices ? static_cast<index_t>(b.indices[i + g * b.index_stride]) : b.offset + i;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

template <typename Loss, typename T>
__global__ void coefficient_kernel(LinearModelBatch<T> b, LinearModelOutputs<T> o,
                                   LinearModelWorkspace<T> ws) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const Shape<T> sh = shape_of(b);
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  const index_t total_cols = second ? 2 * sh.columns : sh.columns;
  // jv = 0 outside the batch (the back-product kernel, which runs after, writes the batch's)
  if (o.jv != nullptr && !o.accumulate) {
    const index_t n = o.jv_rows * b.instances;
    for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
         e += static_cast<index_t>(gridDim.x) * blockDim.x)
      o.jv[e % o.jv_rows + (e / o.jv_rows) * o.ldjv] = T(0);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const index_t pair = blockIdx.x * static_cast<index_t>(kWarps) + warp;
  if (pair >= sh.groups * b.count) return;
  const index_t g = pair / b.count, i = pair % b.count;
  const index_t k = data_sample(b, g, i);
  const T* a = b.data + k * b.rows;
  const T* w = o.w + g * sh.columns * b.rows;
  const T* v = second ? o.v + g * sh.columns * b.rows : nullptr;
  T* logits = smem + warp * 2 * kMaxColumns;  // [z | u] of this warp's sample
  // z = W' a, u = V' a: kColumnTile columns per pass over the row
  for (index_t c0 = 0; c0 < total_cols; c0 += kColumnTile) {
    T acc[kColumnTile];
#pragma unroll
    for (int t = 0; t < kColumnTile; ++t) acc[t] = T(0);
    for (index_t j = lane; j < b.rows; j += 32) {
      const T aj = a[j];
#pragma unroll
      for (int t = 0; t < kColumnTile; ++t) {
        const index_t col = c0 + t;
        if (col < total_cols) {
          const T* m = col < sh.columns ? w + col * b.rows : v + (col - sh.columns) * b.rows;
          acc[t] += aj * m[j];
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kColumnTile; ++t) {
      const T s = warp_sum(acc[t]);
      if (lane == 0 && c0 + t < total_cols) logits[c0 + t] = s;
    }
  }
  __syncwarp();
  // coefficients of each instance of the group (in place: rg over z, rh over u)
  for (index_t bi = lane; bi < sh.width; bi += 32) {
    const index_t inst = g * sh.width + bi;
    T* z = logits + bi * b.classes;
    T* u = second ? logits + sh.columns + bi * b.classes : nullptr;
    const T weight =
        b.x ? b.scale * common::sigmoid(b.x[k + inst * b.ldx]) : b.scale;
    const T cross = Loss::coefficients(z, u, b.classes, b.labels[k], weight,
                                       o.grad ? z : nullptr, o.hv ? u : nullptr);
    for (int c = 0; c < b.classes; ++c) {
      if (o.grad) ws.rg[i + (inst * b.classes + c) * ws.ld] = z[c];
      if (o.hv) ws.rh[i + (inst * b.classes + c) * ws.ld] = u[c];
    }
    if (o.jv) ws.cross[i + inst * ws.ld] = cross;
  }
}

template <typename T>
__device__ void jv_scatter(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                           const LinearModelWorkspace<T>& ws) {
  for (index_t inst = 0; inst < b.instances; ++inst) {
    const index_t g = b.index_stride > 0 ? inst : 0;
    for (index_t i = threadIdx.x; i < b.count; i += blockDim.x) {
      const index_t k = data_sample(b, g, i);
      bool first = true;
      if (b.indices)
        for (index_t p = 0; p < i && first; ++p) first = data_sample(b, g, p) != k;
      if (!first) continue;
      // the terms of all copies of sample k, in batch order
      T sum = T(0);
      for (index_t p = i; p < b.count; ++p)
        if (p == i || (b.indices && data_sample(b, g, p) == k)) sum += ws.cross[p + inst * ws.ld];
      T* out = o.jv + k + inst * o.ldjv;
      const T term = b.scale * common::sigmoid_derivative(b.x[k + inst * b.ldx]) * sum;
      *out = o.accumulate ? *out + term : term;
    }
  }
}

template <typename T>
__global__ void back_product_kernel(LinearModelBatch<T> b, LinearModelOutputs<T> o,
                                    LinearModelWorkspace<T> ws, index_t row_tiles) {
  const Shape<T> sh = shape_of(b);
  if (blockIdx.x == row_tiles) {  // the jv blocks: one (blockIdx.y == 0) does the work
    if (blockIdx.y == 0 && blockIdx.z == 0 && o.jv != nullptr) jv_scatter(b, o, ws);
    return;
  }
  __shared__ T r_tile[kSampleTile][kOutTile];
  __shared__ index_t rows_of[kSampleTile];
  const index_t g = blockIdx.z;
  // output columns: [grad columns (Rg) | hv columns (Rh)] of this group
  const int outputs = (o.grad ? 1 : 0) + (o.hv ? 1 : 0);
  const index_t out_cols = outputs * sh.columns;
  const index_t oc0 = blockIdx.y * static_cast<index_t>(kOutTile);
  if (oc0 >= out_cols) return;
  const index_t j = blockIdx.x * static_cast<index_t>(kRowThreads) + threadIdx.x;
  T acc[kOutTile];
#pragma unroll
  for (int t = 0; t < kOutTile; ++t) acc[t] = T(0);
  for (index_t i0 = 0; i0 < b.count; i0 += kSampleTile) {
    const index_t m = b.count - i0 < kSampleTile ? b.count - i0 : kSampleTile;
    // stage R[i0 .. i0 + m, oc0 .. oc0 + kOutTile) and the rows' data samples
    for (int e = threadIdx.x; e < kSampleTile * kOutTile; e += kRowThreads) {
      const int ii = e % kSampleTile, t = e / kSampleTile;
      const index_t oc = oc0 + t;
      T r = T(0);
      if (ii < m && oc < out_cols) {
        const bool is_grad = o.grad != nullptr && oc < sh.columns;
        const index_t col = g * sh.columns + (oc < sh.columns ? oc : oc - sh.columns);
        r = (is_grad ? ws.rg : ws.rh)[i0 + ii + col * ws.ld];
      }
      r_tile[ii][t] = r;
    }
    for (int ii = threadIdx.x; ii < kSampleTile; ii += kRowThreads)
      rows_of[ii] = ii < m ? data_sample(b, g, i0 + ii) : 0;
    __syncthreads();
    if (j < b.rows)
      for (int ii = 0; ii < m; ++ii) {
        const T a = b.data[rows_of[ii] * b.rows + j];
#pragma unroll
        for (int t = 0; t < kOutTile; ++t) acc[t] += a * r_tile[ii][t];
      }
    __syncthreads();
  }
  if (j >= b.rows) return;
#pragma unroll
  for (int t = 0; t < kOutTile; ++t) {
    const index_t oc = oc0 + t;
    if (oc >= out_cols) break;
    const bool is_grad = o.grad != nullptr && oc < sh.columns;
    const index_t col = g * sh.columns + (oc < sh.columns ? oc : oc - sh.columns);
    T* out = (is_grad ? o.grad : o.hv) + col * b.rows + j;
    const T* init = is_grad ? o.w : o.v;
    const T base = o.accumulate ? *out : (o.reg2 != T(0) ? o.reg2 * init[col * b.rows + j] : T(0));
    *out = base + acc[t];
  }
}

template <typename T>
class CudaLinearModelKernels final : public LinearModelKernels<T> {
 public:
  explicit CudaLinearModelKernels(cudaStream_t stream) : stream_(stream) {}

  void softmax_cross_entropy(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                             const LinearModelWorkspace<T>& ws) override {
    if (b.count == 0 || b.instances == 0) return;
    const Shape<T> sh = shape_of(b);
    BILEVEL_EXPECTS(sh.columns <= kMaxColumns && b.classes <= kMaxClasses,
                    "linear model oracle (CUDA): " << sh.columns << " columns of C x B and "
                                                   << b.classes << " classes; the fused path "
                                                   << "takes at most " << kMaxColumns << " and "
                                                   << kMaxClasses);
    BILEVEL_EXPECTS(o.w != nullptr, "linear model oracle: no weights");
    BILEVEL_EXPECTS((o.hv == nullptr && o.jv == nullptr) || o.v != nullptr,
                    "linear model oracle: H v and J v need v");
    BILEVEL_EXPECTS(o.jv == nullptr || b.x != nullptr,
                    "linear model oracle: J v needs the weight logits x");
    // pass 1: coefficients (and jv = 0)
    const index_t pairs = sh.groups * b.count;
    const index_t blocks1 = (pairs + kWarps - 1) / kWarps;
    const std::size_t smem = sizeof(T) * kWarps * 2 * kMaxColumns;
    coefficient_kernel<common::SoftmaxCrossEntropy, T>
        <<<static_cast<unsigned>(blocks1), kWarps * 32, smem, stream_>>>(b, o, ws);
    BILEVEL_CHECK_LAUNCH(stream_, "linear_model_coefficients");
    detail::note_launches();
    // pass 2: grad, hv back-products; jv scatter (one extra column of blocks)
    const int outputs = (o.grad ? 1 : 0) + (o.hv ? 1 : 0);
    const index_t row_tiles = (b.rows + kRowThreads - 1) / kRowThreads;
    const index_t col_tiles = std::max<index_t>(1, (outputs * sh.columns + kOutTile - 1) / kOutTile);
    if (outputs == 0 && o.jv == nullptr) return;
    const dim3 grid(static_cast<unsigned>(row_tiles + 1), static_cast<unsigned>(col_tiles),
                    static_cast<unsigned>(sh.groups));
    back_product_kernel<T><<<grid, kRowThreads, 0, stream_>>>(b, o, ws, row_tiles);
    BILEVEL_CHECK_LAUNCH(stream_, "linear_model_back_product");
    detail::note_launches();
  }
  index_t max_columns() const override { return kMaxColumns; }

 private:
  cudaStream_t stream_;
};

}  // namespace

template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels(void* stream) {
  return std::make_unique<CudaLinearModelKernels<T>>(static_cast<cudaStream_t>(stream));
}

template std::unique_ptr<LinearModelKernels<float>> make_linear_model_kernels<float>(void*);
template std::unique_ptr<LinearModelKernels<double>> make_linear_model_kernels<double>(void*);

}  // namespace bilevel::kernels::cuda
