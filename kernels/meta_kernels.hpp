// The element-wise kernels of the meta-learning MLPs and the device-side task sampler, declared
// once and implemented per backend: kernels/cpu/meta_kernels.cpp and kernels/cuda/
// meta_kernels.cu (formulas in kernels/common/activation.hpp and philox.hpp). The GEMMs of the
// networks are Ops::gemm_strided_batched.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <cstdint>
#include <memory>

namespace bilevel::kernels {

/// Sinusoid regression tasks: task b of (seed, stream, step) has amplitude A and phase p drawn
/// uniformly, K support and Q query inputs t uniform in [input_min, input_max] and targets
/// A sin(t - p). Uniform number k of task b is common::uniform_open01(seed, stream, step, b, k):
/// k = 0 amplitude, 1 phase, 4 + j input j (support first, then query). With step_on_device
/// the step is step + *step_on_device (the solver's counter).
template <typename T>
struct SinusoidDraw {
  std::uint64_t seed = 0;
  std::uint32_t stream = 0;
  std::uint32_t step = 0;
  const std::uint32_t* step_on_device = nullptr;
  index_t tasks = 0, support = 0, query = 0;
  double amplitude_min = 0, amplitude_max = 0, phase_min = 0, phase_max = 0, input_min = 0,
         input_max = 0;
  T* support_x = nullptr;  ///< K x tasks
  T* support_y = nullptr;
  T* query_x = nullptr;    ///< Q x tasks
  T* query_y = nullptr;
};

/// N-way episodes from a labelled data set: task b of (seed, stream, step) takes `ways` of the
/// split's classes in a random order (way j gets label j) and, from each, shots + queries
/// distinct samples of that class; their indices go to support_index (ways x shots per task,
/// way-major) and query_index (ways x queries), their one-hot labels to support_y and query_y
/// (ways rows per sample). Uniform number k of task b is
/// common::uniform_open01(seed, stream, step, b, k): k < ways for the class order, then
/// 64 + (j * (shots + queries) + i) * 16 + attempt for sample i of way j.
template <typename T>
struct EpisodeDraw {
  std::uint64_t seed = 0;
  std::uint32_t stream = 0;
  std::uint32_t step = 0;
  const std::uint32_t* step_on_device = nullptr;
  index_t tasks = 0, ways = 0, shots = 0, queries = 0;
  int split_classes = 0;                    ///< classes of the split (>= ways)
  const std::int32_t* class_start = nullptr;  ///< split class c's samples: members[start[c] ..
  const std::int32_t* class_count = nullptr;  ///<   start[c] + count[c])
  const std::int32_t* members = nullptr;
  std::int32_t* support_index = nullptr;
  std::int32_t* query_index = nullptr;
  T* support_y = nullptr;
  T* query_y = nullptr;
};

template <typename T>
class MetaKernels {
 public:
  virtual ~MetaKernels() = default;
  virtual void sample_sinusoid(const SinusoidDraw<T>& d) = 0;
  virtual void sample_episodes(const EpisodeDraw<T>& d) = 0;
  /// out[:, i] = scale * data[:, index[i]] for the `count` columns i (rows values each), the
  /// episode's inputs gathered from the data set (data: rows x samples, column-major).
  virtual void gather_columns(index_t rows, index_t count, const float* data,
                              const std::int32_t* index, T scale, T* out) = 0;
  /// Softmax cross-entropy on `samples` columns of `classes` logits z (column-major, one
  /// sample per column) against one-hot targets y:
  ///   out = scale (softmax(z) - y)                          (ce_gradient)
  ///   out = scale (diag(p) - p p') rz,  p = softmax(z)      (ce_rop: the R-operator)
  ///   loss[i] = logsumexp(z_i) - z_i[label_i]; correct[i] = [argmax z_i == label_i]
  virtual void ce_gradient(index_t samples, int classes, const T* z, const T* y, T scale,
                           T* out) = 0;
  virtual void ce_rop(index_t samples, int classes, const T* z, const T* rz, T scale,
                      T* out) = 0;
  virtual void ce_loss(index_t samples, int classes, const T* z, const T* y, T* loss,
                       T* correct) = 0;
  /// The bias and the activation of a layer in one pass, for w x n blocks of `tasks` tasks:
  /// z[r + w i + w n b] += bias[r + b bias_stride], then out = sigma(z) (mode kForward),
  /// out = sigma'(zref) z (mode kSlope: the R-operator's forward pass), or nothing (kBiasOnly,
  /// the output layer; out may be null).
  enum BiasMode : int { kBiasOnly = 0, kForward = 1, kSlope = 2 };
  virtual void add_bias(int activation, int mode, index_t w, index_t n, index_t tasks, T* z,
                        const T* bias, index_t bias_stride, const T* zref, T* out) = 0;
  /// out[i] = d[i] sigma'(z[i])  (back-propagation).
  virtual void activation_backward(int activation, index_t n, const T* z, const T* d,
                                   T* out) = 0;
  /// out[i] = rd[i] sigma'(z[i]) + d[i] sigma''(z[i]) rz[i]  (the R-operator's backward pass).
  virtual void activation_rop_backward(int activation, index_t n, const T* z, const T* d,
                                       const T* rz, const T* rd, T* out) = 0;
};

/// The implementation for `exec`'s backend, bound to its stream.
template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels(Executor& exec);

namespace cpu {
template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels();
}
namespace cuda {
template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels(void* stream);
}

}  // namespace bilevel::kernels
