// A multi-layer perceptron evaluated for B tasks at once, each with its own parameters and
// data: every layer is one strided-batched GEMM over the tasks (plus one for the bias), every
// activation one element-wise kernel over all tasks. Back-propagation gives the gradient of
// the squared loss, Pearlmutter's R-operator (forward over reverse) the exact Hessian-vector
// product, on both backends (kernels/meta_kernels.hpp). Internal to the meta-learning problem.
//
// Shapes: parameters phi are P x B (column b = task b, layout of MlpSpec); inputs of task b are
// w_0 x n at x + b w_0 n, targets w_L x n at y + b w_L n. Loss of task b: squared,
// L_b = (1 / (w_L n)) sum ||out - target||^2, or cross-entropy against one-hot targets,
// L_b = (1 / n) sum_i (logsumexp(out_i) - out_i[label_i]).
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problems/mlp.hpp>

#include "../../kernels/meta_kernels.hpp"

#include <memory>
#include <vector>

namespace bilevel {

template <typename T>
class BatchedMlp {
 public:
  BatchedMlp(std::shared_ptr<Executor> exec, MlpSpec spec);

  /// Workspaces for `tasks` tasks of up to `samples` samples each (no allocation afterwards).
  void reserve(index_t tasks, index_t samples);

  /// Z_l, A_l of every layer at phi on inputs x (n samples per task); kept for the calls below.
  void forward(ConstMatrixView<T> phi, const T* x, index_t n);
  /// After forward: out[b] = L_b against targets y (length B on the executor).
  void loss(const T* y, T* out);
  /// After forward (cross-entropy networks): out[b] = fraction of task b's samples whose
  /// largest logit is their label.
  void accuracy(const T* y, T* out);
  /// After forward: grad (P x B) = d L / d phi. Layers below `first_layer` are not
  /// back-propagated into and their rows of grad are left untouched (ANIL's inner loop).
  void gradient(ConstMatrixView<T> phi, const T* y, MatrixView<T> grad, index_t first_layer = 1);
  /// After forward: out (P x B) = grad^2 L(phi) d. Rows of d for layers below
  /// `first_direction_layer` must be zero and are not read (ANIL: d lives on the head).
  void hvp(ConstMatrixView<T> phi, const T* y, ConstMatrixView<T> d, MatrixView<T> out,
           index_t first_direction_layer = 1);

  const MlpSpec& spec() const { return spec_; }

 private:
  /// The per-task block of layer l's weights (or bias) inside a P x B matrix.
  template <typename U>
  MatrixView<U> weights(MatrixView<U> m, index_t l) const;
  template <typename U>
  MatrixView<U> bias(MatrixView<U> m, index_t l) const;
  /// C_b = alpha op(A_b) op(B_b) + beta C_b over the tasks.
  void gemm(Op oa, Op ob, T alpha, ConstMatrixView<T> a, index_t sa, ConstMatrixView<T> b,
            index_t sb, T beta, MatrixView<T> c, index_t sc);
  /// Layer l's activations (w_l x n per task) as one view of task 0.
  MatrixView<T> act(Array<T>& buffer, index_t l) const;
  ConstMatrixView<T> input(index_t l) const;  ///< A_{l-1} (the inputs for l = 1)
  index_t width(index_t l) const { return spec_.widths[static_cast<std::size_t>(l)]; }
  /// out = dL/dZ_L as a flat w_L n B vector: (2 / (w_L n)) (Z_L - y), or
  /// (1 / n) (softmax(Z_L) - y).
  void output_residual(const T* y, T* out);
  /// out_b = (1 / n) sum_i per_sample[i + b n] (per_sample: n x B).
  void mean_over_samples(const T* per_sample, T* out);

  std::shared_ptr<Executor> exec_;
  MlpSpec spec_;
  std::unique_ptr<kernels::MetaKernels<T>> kernels_;
  int activation_ = 0;
  index_t tasks_ = 0, samples_ = 0;  // reserved
  index_t b_ = 0, n_ = 0;              // tasks and samples of the last forward pass
  const T* x_ = nullptr;
  std::vector<Array<T>> z_, a_, rz_, ra_;  // per layer (index l = 1..L; 0 unused)
  Array<T> dz_[2], rdz_[2], da_, rda_, ones_;
};

extern template class BatchedMlp<float>;
extern template class BatchedMlp<double>;

}  // namespace bilevel
