// Fused minibatch oracles of linear models with a pointwise loss (hyper-cleaning's weighted
// softmax regression; the loss is a functor of kernels/common/linear_model.hpp), declared once
// and implemented per backend: kernels/cpu/linear_model_kernels*.cpp and
// kernels/cuda/linear_model_kernels.cu. One call is two passes ("kernels") over the batch:
//
//   1. coefficients: every sampled row a is read by index straight from the data set (no
//      gathered copy); all logits z = W' a and u = V' a of all instances in one pass over it;
//      the loss's per-sample coefficients rg, rh and the J v term in registers;
//   2. back-product: grad = reg2 W + A_b Rg and hv = reg2 V + A_b Rh as a reduction over the
//      batch in a fixed order (no atomics: the same bits on every run, repeated indices
//      included), and jv scattered with the copies of a repeated sample summed in batch order.
//
// Layouts. Data: rows x n, one column per sample (bias row included), ld = rows; stored as T or
// as bf16 (data_bf16: half the bytes of every pass, arithmetic in T). W, V, grad,
// hv: rows x (C B) contiguous, instance b's C columns side by side (y of hyper-cleaning). jv:
// n x B (ld ldjv). Sample i of the call is data sample indices[i] (indices == nullptr: offset
// + i); with independent batches (index_stride > 0) instance b's samples are
// indices[i + b index_stride]. A drawn batch (drawn = true) computes those indices itself
// from the counter-based RNG, in the kernels that read the samples: no draw launch. The weight of (i, b) is scale sigmoid(x[k + b ldx]) for data
// sample k, or scale when x == nullptr.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <cstdint>
#include <memory>

namespace bilevel::kernels {

template <typename T>
struct LinearModelBatch {
  const T* data = nullptr;                  ///< rows x n features, one column per sample
  const std::uint16_t* data_bf16 = nullptr; ///< the same stored as bf16 (then data == nullptr)
  index_t rows = 0;                         ///< features + 1 (bias)
  const std::int32_t* labels = nullptr;     ///< per data sample
  const sample_index_t* indices = nullptr;  ///< count entries (per instance), or nullptr
  index_t offset = 0;                       ///< first data sample when indices == nullptr
  index_t count = 0;                        ///< samples in this call
  index_t index_stride = 0;                 ///< > 0: independent batches
  int classes = 0;                          ///< C
  index_t instances = 0;                    ///< B
  const T* x = nullptr;                     ///< weight logits (n x B, ld ldx), or nullptr
  index_t ldx = 0;
  T scale = T(1);                           ///< 1 / |batch|
  /// A rank's shard of a data set split over processes (shard_samples < 0: none): the data,
  /// labels and x hold samples [shard_first, shard_first + shard_samples) of the whole set,
  /// the indices are the whole set's, and a sample outside the shard (another rank's)
  /// contributes nothing: no coefficients, no J v term (its row is not needed).
  index_t shard_first = 0;
  index_t shard_samples = -1;
  /// Indices drawn inside the kernels (a deferred minibatch, Batch::draw): sample i of group g
  /// is common::sample_index(draw_seed, draw_stream, draw_step + *draw_step_on_device, g, i,
  /// population), or common::reshuffled_index of batches of `count` with draw_epochs (the
  /// epoch walk); `indices` is then not read.
  bool drawn = false;
  bool draw_epochs = false;
  std::uint64_t draw_seed = 0;
  std::uint32_t draw_stream = 0, draw_step = 0;
  const std::uint32_t* draw_step_on_device = nullptr;
  index_t population = 0;
};

/// What one call computes. Null outputs are not computed; v is needed for hv and jv.
/// accumulate = false: grad = reg2 w + A_b Rg, hv = reg2 v + A_b Rh, jv = 0 outside the batch;
/// accumulate = true (later chunks of a full pass): grad += A_b Rg, hv += A_b Rh, jv += ... .
template <typename T>
struct LinearModelOutputs {
  const T* w = nullptr;  ///< the point: rows x (C B)
  const T* v = nullptr;  ///< the direction of H v and J v: rows x (C B), or nullptr
  T* grad = nullptr;     ///< rows x (C B)
  T* hv = nullptr;       ///< rows x (C B)
  T* jv = nullptr;       ///< n x B
  index_t ldjv = 0;
  index_t jv_rows = 0;   ///< n: the rows of jv set to 0 when !accumulate
  T reg2 = T(0);         ///< 2 x the L2 weight (the regularizer's gradient and Hessian)
  bool accumulate = false;
  /// jv gets scale sigmoid'(x_k) CE(z_k, label_k) instead of the J v terms: grad_x g, the
  /// sample weights' gradient (v is not read; grad and hv must be null in such a call).
  bool jv_loss = false;
  /// A step fused after the back-product (a minibatch call, accumulate = false, no jv; CUDA:
  /// in the back-product kernel's epilogue, no launch of its own). With `step` (per instance,
  /// B values): grad == w, updated in place as y <- y + (-step_b) gy (one SGD step on the lower
  /// level, as Ops::batch_axpy); hv == v, updated in place as r <- r - step_b (H r) and
  /// sum <- sum + r (one Neumann term with its running sum, as Ops::neumann_step).
  const T* step = nullptr;
  T* sum = nullptr;  ///< rows x (C B): the Neumann terms' sum (with hv)
};

/// Workspace of one call: the coefficients Rg, Rh (count x C B each) and the J v terms
/// (count x B), on the executor.
template <typename T>
struct LinearModelWorkspace {
  T* rg = nullptr;
  T* rh = nullptr;
  T* cross = nullptr;
  index_t ld = 0;  ///< leading dimension of rg, rh, cross (>= count)
};

/// One oracle call: a batch, what to compute, where its coefficients go.
template <typename T>
struct LinearModelCall {
  LinearModelBatch<T> batch;
  LinearModelOutputs<T> outputs;
  LinearModelWorkspace<T> workspace;
};

/// Floating-point operations of a call's two passes (a multiply-add counts two): the logits of
/// W, and of V when H v or J v is asked for, and one back-product per output (grad, hv), each
/// rows x C x B multiply-adds per sample. Both backends add it to fused_flop_count().
template <typename T>
std::uint64_t linear_model_flops(const LinearModelCall<T>& call) {
  const LinearModelBatch<T>& b = call.batch;
  const LinearModelOutputs<T>& o = call.outputs;
  const bool second = !o.jv_loss && o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  const std::uint64_t passes =
      1u + (second ? 1u : 0u) + (o.grad ? 1u : 0u) + (o.hv ? 1u : 0u);
  return 2u * passes * static_cast<std::uint64_t>(b.rows) * static_cast<std::uint64_t>(b.count) *
         static_cast<std::uint64_t>(b.classes) * static_cast<std::uint64_t>(b.instances);
}

/// Calls one launch pair may carry (a single-loop step: the lower batch's gy, H v, J v and
/// the upper batch's fy).
constexpr int kMaxLinearModelCalls = 2;

template <typename T>
class LinearModelKernels {
 public:
  virtual ~LinearModelKernels() = default;
  /// The weighted softmax cross-entropy oracles (see the file comment) of `count` (1 or 2)
  /// independent calls, in the same two kernels. Their outputs must not overlap.
  virtual void softmax_cross_entropy(const LinearModelCall<T>* calls, int count) = 0;
  void softmax_cross_entropy(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                             const LinearModelWorkspace<T>& ws) {
    const LinearModelCall<T> call{b, o, ws};
    softmax_cross_entropy(&call, 1);
  }
  /// dst (rows x count) = the columns of bf16 data src (rows x n) of samples idx[i] (idx ==
  /// nullptr: offset + i), widened to T: what the composed GEMM path reads of bf16 data.
  virtual void expand_bf16_columns(const std::uint16_t* src, index_t rows,
                                   const sample_index_t* idx, index_t offset, index_t count,
                                   T* dst) = 0;
  /// dst[e] = the nearest bf16 of src[e] (ties to even), e < n.
  virtual void round_to_bf16(const T* src, index_t n, std::uint16_t* dst) = 0;
  /// Largest C x B the fused path handles on this backend (larger shapes: the composed
  /// GEMM path). The CPU twin handles every shape.
  virtual index_t max_columns() const = 0;
};

/// The implementation for `exec`'s backend, bound to its stream.
template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels(Executor& exec);

namespace cpu {
template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels();
}
namespace cuda {
template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels(void* stream);
}

}  // namespace bilevel::kernels
