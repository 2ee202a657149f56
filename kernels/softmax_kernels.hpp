// The weighted softmax cross-entropy kernels of the hyper-cleaning problem (one pass over the C
// logits of each sample and instance), declared once and implemented per backend:
// kernels/cpu/softmax_kernels.cpp and kernels/cuda/softmax_kernels.cu. Formulas in
// kernels/common/softmax.hpp.
//
// Layout: logits of s samples for B instances are an s x (C B) column-major matrix (ld >= s):
// sample i, instance b, class c is at z[i + (b C + c) ld]. Sample i is data sample idx[i]
// (idx == nullptr: sample i itself; with independent batches idx[i + b index_stride] for
// instance b); its label is labels[idx[i]]. The weight of (i, b) is
// scale * sigmoid(x[idx[i] + b ldx]), or just scale when x == nullptr.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <cstdint>
#include <memory>

namespace bilevel::kernels {

template <typename T>
struct SoftmaxBatch {
  index_t samples = 0;                      ///< s
  int classes = 0;                          ///< C
  index_t instances = 0;                    ///< B
  const std::int32_t* labels = nullptr;     ///< per data sample
  const sample_index_t* indices = nullptr;  ///< s entries, or nullptr for 0..s-1
  const T* x = nullptr;                     ///< weight logits (n x B, ld ldx), or nullptr
  index_t ldx = 0;
  T scale = T(1);
  index_t index_stride = 0;  ///< independent batches: instance b's indices at indices + b stride
};

template <typename T>
class SoftmaxKernels {
 public:
  virtual ~SoftmaxKernels() = default;
  /// z <- w (softmax(z) - e_label), in place.
  virtual void gradient(const SoftmaxBatch<T>& b, T* z, index_t ldz) = 0;
  /// u <- w (diag(p) - p p') u with p = softmax(z); if jv != nullptr also
  /// jv[idx[i] + b ldjv] += scale sigmoid'(x) (p - e_label) . u   (needs x).
  virtual void hvp_jvp(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* u, index_t ldu,
                       T* jv, index_t ldjv) = 0;
  /// gx[idx[i] + b ldgx] += scale sigmoid'(x) CE(z_ib, label)   (d g / d x_i; needs x)
  virtual void loss_cross(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* gx,
                          index_t ldgx) = 0;
  /// loss(i, b) <- w CE(z_ib, label)   (s x B, ld ldloss)
  virtual void loss(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* loss,
                    index_t ldloss) = 0;
  /// correct(i, b) <- 1 if argmax z_ib == label else 0   (s x B)
  virtual void correct(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* correct,
                       index_t ldc) = 0;
};

/// The implementation for `exec`'s backend, bound to its stream.
template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels(Executor& exec);

namespace cpu {
template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels();
}
namespace cuda {
template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels(void* stream);
}

}  // namespace bilevel::kernels
