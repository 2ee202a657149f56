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
// no atomics, the same bits on every run. Extra blocks (blockIdx.x >= row tiles) scatter jv, a
// thread per sampled position: the first copy of a sample in the batch sums the terms of all
// its copies in batch order.
//
// Up to kMaxLinearModelCalls independent calls (a single-loop step's lower and upper batches)
// share the two launches: warps and blocks are dealt to the calls in order.
#include "../linear_model_kernels.hpp"

#include "../common/batch_math.hpp"
#include "../common/bf16.hpp"
#include "../common/linear_model.hpp"
#include "../common/philox.hpp"
#include "cuda_error.hpp"
#include "launch.cuh"
#include "elementwise.cuh"

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

/// Sample i of group g as a row of the call's data; -1: another rank's sample.
template <typename T>
__device__ __forceinline__ index_t data_sample(const LinearModelBatch<T>& b, index_t g,
                                               index_t i) {
  // a drawn batch: the index from the counter-based RNG, as the sampler would have written it
  const index_t k =
      b.drawn ? static_cast<index_t>(common::draw_index(
                    b.draw_seed, b.draw_stream,
                    b.draw_step + (b.draw_step_on_device ? *b.draw_step_on_device : 0u),
                    static_cast<std::uint32_t>(g), i, b.count, b.population, b.draw_epochs))
      : b.indices ? static_cast<index_t>(b.indices[i + g * b.index_stride])
                  : b.offset + i;
  return common::shard_row(k, b.shard_first, b.shard_samples);
}

/// The calls of one launch pair, passed by value as kernel parameters.
template <typename T>
struct CallSet {
  LinearModelCall<T> call[kMaxLinearModelCalls];
  int count = 0;
};

/// The call an index of a flattened space belongs to, and the index within that call's part:
/// parts are count(call) long, calls in order. Returns set.count past the end.
template <typename T, typename Count>
__device__ __forceinline__ int locate_call(const CallSet<T>& set, index_t& index, Count count) {
  int c = 0;
  for (; c < set.count; ++c) {
    const index_t n = count(set.call[c].batch);
    if (index < n) break;
    index -= n;
  }
  return c;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

/// logits[c] = m_c . a for the columns c < total of [W V] (W's `columns` first), a warp over
/// the row a (stored as D: T or bf16), kColumnTile columns per pass (the row stays in L1).
template <typename T, typename D>
__device__ void row_logits(const D* a, index_t rows, const T* w, const T* v, index_t columns,
                           index_t total, int lane, T* logits) {
  for (index_t c0 = 0; c0 < total; c0 += kColumnTile) {
    T acc[kColumnTile];
#pragma unroll
    for (int t = 0; t < kColumnTile; ++t) acc[t] = T(0);
    for (index_t j = lane; j < rows; j += 32) {
      const T aj = common::data_value<T>(a[j]);
#pragma unroll
      for (int t = 0; t < kColumnTile; ++t) {
        const index_t col = c0 + t;
        if (col < total) {
          const T* m = col < columns ? w + col * rows : v + (col - columns) * rows;
          acc[t] += aj * m[j];
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kColumnTile; ++t) {
      const T s = warp_sum(acc[t]);
      if (lane == 0 && c0 + t < total) logits[c0 + t] = s;
    }
  }
}

template <typename Loss, typename T>
__global__ void coefficient_kernel(CallSet<T> set) {
  BILEVEL_DYNAMIC_SHARED(unsigned char, smem_raw);
  T* smem = reinterpret_cast<T*>(smem_raw);
  // jv = 0 outside the batch (the back-product kernel, which runs after, writes the batch's)
  for (int c = 0; c < set.count; ++c) {
    const LinearModelOutputs<T>& o = set.call[c].outputs;
    if (o.jv == nullptr || o.accumulate) continue;
    const index_t n = o.jv_rows * set.call[c].batch.instances;
    for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
         e += static_cast<index_t>(gridDim.x) * blockDim.x)
      o.jv[e % o.jv_rows + (e / o.jv_rows) * o.ldjv] = T(0);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // this warp's (call, group, sample)
  index_t pair = blockIdx.x * static_cast<index_t>(kWarps) + warp;
  const int c = locate_call(set, pair, [](const LinearModelBatch<T>& bt) {
    return shape_of(bt).groups * bt.count;
  });
  if (c == set.count) return;
  const LinearModelBatch<T>& b = set.call[c].batch;
  const LinearModelOutputs<T>& o = set.call[c].outputs;
  const LinearModelWorkspace<T>& ws = set.call[c].workspace;
  const Shape<T> sh = shape_of(b);
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  const index_t total_cols = second ? 2 * sh.columns : sh.columns;
  const index_t g = pair / b.count, i = pair % b.count;
  const index_t own_k = data_sample(b, g, i);
  const bool own = own_k >= 0;  // else another rank's sample: row 0, weight 0, no J v term
  const index_t k = own ? own_k : 0;
  if (!own) {
    // another rank's sample (the whole warp's): zero coefficients, no logits
    for (index_t bi = lane; bi < sh.width; bi += 32) {
      const index_t inst = g * sh.width + bi;
      for (int c = 0; c < b.classes; ++c) {
        if (o.grad) ws.rg[i + (inst * b.classes + c) * ws.ld] = T(0);
        if (o.hv) ws.rh[i + (inst * b.classes + c) * ws.ld] = T(0);
      }
      if (o.jv) ws.cross[i + inst * ws.ld] = T(0);
    }
    return;
  }
  const T* w = o.w + g * sh.columns * b.rows;
  const T* v = second ? o.v + g * sh.columns * b.rows : nullptr;
  T* logits = smem + warp * 2 * kMaxColumns;  // [z | u] of this warp's sample
  // z = W' a, u = V' a from one read of the row
  if (b.data_bf16 != nullptr)
    row_logits(b.data_bf16 + k * b.rows, b.rows, w, v, sh.columns, total_cols, lane, logits);
  else
    row_logits(b.data + k * b.rows, b.rows, w, v, sh.columns, total_cols, lane, logits);
  __syncwarp();
  // coefficients of each instance of the group (in place: rg over z, rh over u)
  for (index_t bi = lane; bi < sh.width; bi += 32) {
    const index_t inst = g * sh.width + bi;
    T* z = logits + bi * b.classes;
    T* u = second ? logits + sh.columns + bi * b.classes : nullptr;
    const T weight = !own  ? T(0)
                     : b.x ? b.scale * common::sigmoid(b.x[k + inst * b.ldx])
                           : b.scale;
    // grad_x g's term: the sample's loss, before the coefficients overwrite z
    const T loss = o.jv_loss && own ? common::ce_loss(z, 1, b.classes, b.labels[k]) : T(0);
    const T cross = Loss::coefficients(z, u, b.classes, b.labels[k], weight,
                                       o.grad ? z : nullptr, o.hv ? u : nullptr) *
                    (own ? T(1) : T(0));
    for (int c = 0; c < b.classes; ++c) {
      if (o.grad) ws.rg[i + (inst * b.classes + c) * ws.ld] = z[c];
      if (o.hv) ws.rh[i + (inst * b.classes + c) * ws.ld] = u[c];
    }
    if (o.jv) ws.cross[i + inst * ws.ld] = o.jv_loss ? loss : cross;
  }
}

/// jv for one position `position` of the flattened (call, instance, sample) positions of the
/// calls that want jv: the first copy of a data sample in its batch writes the terms of all
/// its copies, summed in batch order (no atomics); the other copies write nothing. The scans
/// have no early exit, so the loads of the index set pipeline.
template <typename T>
__device__ void jv_scatter(const CallSet<T>& set, index_t position) {
  for (int c = 0; c < set.count; ++c) {
    const LinearModelBatch<T>& b = set.call[c].batch;
    const LinearModelOutputs<T>& o = set.call[c].outputs;
    if (o.jv == nullptr) continue;
    const index_t positions = b.instances * b.count;
    if (position >= positions) {
      position -= positions;
      continue;
    }
    const index_t inst = position / b.count, i = position % b.count;
    const index_t g = b.index_stride > 0 ? inst : 0;
    const index_t k = data_sample(b, g, i);
    if (k < 0) return;  // another rank's sample
    const T* cross = set.call[c].workspace.cross + inst * set.call[c].workspace.ld;
    T sum = cross[i];
    if (b.indices != nullptr || b.drawn) {  // a minibatch: a sample may come more than once
      int earlier = 0;
      for (index_t p = 0; p < i; ++p) earlier += data_sample(b, g, p) == k;
      if (earlier > 0) return;  // a later copy: the first one writes
      for (index_t p = i + 1; p < b.count; ++p)
        if (data_sample(b, g, p) == k) sum += cross[p];
    }
    T* out = o.jv + k + inst * o.ldjv;
    const T term = b.scale * common::sigmoid_derivative(b.x[k + inst * b.ldx]) * sum;
    *out = o.accumulate ? *out + term : term;
    return;
  }
}

/// acc[t] += a_i[j] R[i, t] over the m staged samples, in batch order (a stored as D).
template <typename T, typename D>
__device__ __forceinline__ void accumulate_rows(const D* data, index_t rows, index_t j,
                                                const index_t* rows_of, index_t m,
                                                const T (*r_tile)[kOutTile], T* acc) {
  for (int ii = 0; ii < m; ++ii) {
    const T a = common::data_value<T>(data[rows_of[ii] * rows + j]);
#pragma unroll
    for (int t = 0; t < kOutTile; ++t) acc[t] += a * r_tile[ii][t];
  }
}

template <typename T>
__global__ void back_product_kernel(CallSet<T> set, index_t row_tiles) {
  if (blockIdx.x >= row_tiles) {  // the jv blocks (those of blockIdx.y == 0, z == 0)
    if (blockIdx.y == 0 && blockIdx.z == 0)
      jv_scatter(set, (blockIdx.x - row_tiles) * static_cast<index_t>(kRowThreads) + threadIdx.x);
    return;
  }
  // this block's (call, group)
  index_t g = blockIdx.z;
  const int c = locate_call(set, g, [](const LinearModelBatch<T>& bt) { return shape_of(bt).groups; });
  if (c == set.count) return;
  const LinearModelBatch<T>& b = set.call[c].batch;
  const LinearModelOutputs<T>& o = set.call[c].outputs;
  const LinearModelWorkspace<T>& ws = set.call[c].workspace;
  const Shape<T> sh = shape_of(b);
  __shared__ T r_tile[kSampleTile][kOutTile];
  __shared__ index_t rows_of[kSampleTile];
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
      rows_of[ii] = ii < m ? max(data_sample(b, g, i0 + ii), index_t(0)) : 0;  // -1: zero R
    __syncthreads();
    if (j < b.rows) {
      if (b.data_bf16 != nullptr)
        accumulate_rows(b.data_bf16, b.rows, j, rows_of, m, r_tile, acc);
      else
        accumulate_rows(b.data, b.rows, j, rows_of, m, r_tile, acc);
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
    const T start = init[col * b.rows + j];
    const T base = o.accumulate ? *out : (o.reg2 != T(0) ? o.reg2 * start : T(0));
    const T product = base + acc[t];
    if (o.step == nullptr) {
      *out = product;
      continue;
    }
    // the fused step, in place (this thread read `start` before it writes): as
    // Ops::batch_axpy for y, as Ops::neumann_step for r and its sum
    const T s = o.step[col / b.classes];
    if (is_grad) {
      *out = start + T(-1) * s * product;
    } else {
      T r = start, v = o.sum[col * b.rows + j];
      common::neumann_step(s, product, r, v);
      *out = r;
      o.sum[col * b.rows + j] = v;
    }
  }
}

template <typename T>
class CudaLinearModelKernels final : public LinearModelKernels<T> {
 public:
  explicit CudaLinearModelKernels(cudaStream_t stream) : stream_(stream) {}

  using LinearModelKernels<T>::softmax_cross_entropy;
  void softmax_cross_entropy(const LinearModelCall<T>* calls, int count) override {
    BILEVEL_EXPECTS(count >= 1 && count <= kMaxLinearModelCalls,
                    "linear model oracle: 1 to " << kMaxLinearModelCalls << " calls, got " << count);
    CallSet<T> set;
    index_t pairs = 0, row_tiles = 0, col_tiles = 1, groups = 0, jv_positions = 0, jv_fill = 0;
    bool back_product = false;
    for (int c = 0; c < count; ++c) {
      const LinearModelBatch<T>& b = calls[c].batch;
      const LinearModelOutputs<T>& o = calls[c].outputs;
      if (b.count == 0 || b.instances == 0) continue;
      const Shape<T> sh = shape_of(b);
      BILEVEL_EXPECTS(sh.columns <= kMaxColumns && b.classes <= kMaxClasses,
                      "linear model oracle (CUDA): " << sh.columns << " columns of C x B and "
                                                     << b.classes << " classes; the fused path "
                                                     << "takes at most " << kMaxColumns << " and "
                                                     << kMaxClasses);
      BILEVEL_EXPECTS(o.w != nullptr, "linear model oracle: no weights");
      BILEVEL_EXPECTS((o.hv == nullptr && (o.jv == nullptr || o.jv_loss)) || o.v != nullptr,
                      "linear model oracle: H v and J v need v");
      BILEVEL_EXPECTS(!o.jv_loss || (o.grad == nullptr && o.hv == nullptr),
                      "linear model oracle: the loss terms of grad_x g go alone");
      BILEVEL_EXPECTS(o.jv == nullptr || b.x != nullptr,
                      "linear model oracle: J v needs the weight logits x");
      BILEVEL_EXPECTS(o.step == nullptr ||
                          (!o.accumulate && o.jv == nullptr && (o.grad == nullptr || o.grad == o.w) &&
                           (o.hv == nullptr || (o.hv == o.v && o.sum != nullptr))),
                      "linear model oracle: a fused step updates w or v in place, one call, no jv");
      set.call[set.count++] = calls[c];
      detail::note_fused_flops(linear_model_flops(calls[c]));
      pairs += sh.groups * b.count;
      groups += sh.groups;
      const int outputs = (o.grad ? 1 : 0) + (o.hv ? 1 : 0);
      row_tiles = std::max(row_tiles, (b.rows + kRowThreads - 1) / kRowThreads);
      col_tiles = std::max(col_tiles, (outputs * sh.columns + kOutTile - 1) / kOutTile);
      back_product = back_product || outputs > 0 || o.jv != nullptr;
      if (o.jv != nullptr) jv_positions += b.instances * b.count;
      if (o.jv != nullptr && !o.accumulate) jv_fill += o.jv_rows * b.instances;
    }
    if (set.count == 0) return;
    // pass 1: coefficients (and jv = 0: enough blocks that the fill of a long jv, one entry
    // per training sample and instance, is spread over the device; the extra blocks only fill)
    const index_t fill_blocks = std::min<index_t>((jv_fill + kWarps * 32 * 8 - 1) / (kWarps * 32 * 8), 4096);
    const index_t blocks1 = std::max((pairs + kWarps - 1) / kWarps, fill_blocks);
    const std::size_t smem = sizeof(T) * kWarps * 2 * kMaxColumns;
    BILEVEL_LAUNCH(static_cast<unsigned>(blocks1), kWarps * 32, smem, stream_,
                   coefficient_kernel<common::SoftmaxCrossEntropy, T>)(set);
    BILEVEL_CHECK_LAUNCH(stream_, "linear_model_coefficients");
    detail::note_launches();
    if (!back_product) return;
    // pass 2: grad, hv back-products; jv scatter (extra blocks along x, a thread a position)
    const index_t jv_blocks = (jv_positions + kRowThreads - 1) / kRowThreads;
    const dim3 grid(static_cast<unsigned>(row_tiles + jv_blocks), static_cast<unsigned>(col_tiles),
                    static_cast<unsigned>(groups));
    BILEVEL_LAUNCH(grid, kRowThreads, 0, stream_, back_product_kernel<T>)(set, row_tiles);
    BILEVEL_CHECK_LAUNCH(stream_, "linear_model_back_product");
    detail::note_launches();
  }
  void expand_bf16_columns(const std::uint16_t* src, index_t rows, const sample_index_t* idx,
                           index_t offset, index_t count, T* dst) override {
    launch_elementwise(
        stream_, rows, count,
        [=] __device__(index_t j, index_t i) {
          const index_t k = idx ? static_cast<index_t>(idx[i]) : offset + i;
          dst[j + i * rows] = common::data_value<T>(src[j + k * rows]);
        },
        "expand_bf16_columns");
    detail::note_launches();
  }
  void round_to_bf16(const T* src, index_t n, std::uint16_t* dst) override {
    launch_elementwise(
        stream_, n, 1,
        [=] __device__(index_t e, index_t) {
          dst[e] = common::float_to_bf16(static_cast<float>(src[e]));
        },
        "round_to_bf16");
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
