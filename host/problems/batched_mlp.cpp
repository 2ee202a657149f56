// Batched MLP passes (problems/batched_mlp.hpp). Formulas, for layer l = 1..L with A_0 = X:
//   forward   Z_l = W_l A_{l-1} + b_l 1',  A_l = sigma(Z_l)  (l < L; the output is Z_L; bias and
//             activation in one kernel)
//   backward  dZ_L = (2 / (w_L n)) (Z_L - Y)  (cross-entropy: (1 / n) (softmax(Z_L) - Y));  dW_l = dZ_l A_{l-1}';  db_l = dZ_l 1;
//             dA_{l-1} = W_l' dZ_l;  dZ_{l-1} = dA_{l-1} o sigma'(Z_{l-1})
//   R-op      (direction V): RZ_l = V_W,l A_{l-1} + V_b,l 1' + W_l RA_{l-1};  RA_l = sigma'(Z_l) o RZ_l;
//             RdZ_L = (2 / (w_L n)) RZ_L  (cross-entropy: (1 / n) (diag(p) - p p') RZ_L);  H V = (RdZ_l A_{l-1}' + dZ_l RA_{l-1}', RdZ_l 1);
//             RdA_{l-1} = W_l' RdZ_l + V_W,l' dZ_l;
//             RdZ_{l-1} = RdA_{l-1} o sigma'(Z_{l-1}) + dA_{l-1} o sigma''(Z_{l-1}) o RZ_{l-1}
#include "batched_mlp.hpp"

#include "../../kernels/common/activation.hpp"

#include <algorithm>
#include <cmath>

namespace bilevel {

template <typename T>
BatchedMlp<T>::BatchedMlp(std::shared_ptr<Executor> exec, MlpSpec spec)
    : exec_(std::move(exec)), spec_(std::move(spec)) {
  BILEVEL_EXPECTS(exec_ != nullptr, "BatchedMlp needs an executor");
  spec_.validate();
  kernels_ = kernels::make_meta_kernels<T>(*exec_);
  activation_ = spec_.activation == Activation::relu ? kernels::common::kRelu
                                                     : kernels::common::kTanh;
}

template <typename T>
void BatchedMlp<T>::reserve(index_t tasks, index_t samples) {
  BILEVEL_EXPECTS(tasks >= 1 && samples >= 1,
                  "mlp: tasks and samples must be >= 1, got " << tasks << " and " << samples);
  if (tasks <= tasks_ && samples <= samples_) return;
  tasks_ = std::max(tasks, tasks_);
  samples_ = std::max(samples, samples_);
  const index_t layers = spec_.layers();
  const auto buffer = [&](index_t w) { return Array<T>(exec_, w * samples_, tasks_); };
  z_.clear(), a_.clear(), rz_.clear(), ra_.clear();
  z_.resize(static_cast<std::size_t>(layers + 1));
  a_.resize(z_.size()), rz_.resize(z_.size()), ra_.resize(z_.size());
  index_t widest = 1;
  for (index_t l = 1; l <= layers; ++l) {
    const std::size_t i = static_cast<std::size_t>(l);
    z_[i] = buffer(width(l));
    rz_[i] = buffer(width(l));
    if (l < layers) {
      a_[i] = buffer(width(l));
      ra_[i] = buffer(width(l));
    }
    widest = std::max(widest, width(l));
  }
  widest = std::max(widest, width(0));
  for (int k = 0; k < 2; ++k) {
    dz_[k] = buffer(widest);
    rdz_[k] = buffer(widest);
  }
  da_ = buffer(widest);
  rda_ = buffer(widest);
  ones_ = Array<T>(exec_, samples_, 1, std::vector<T>(static_cast<std::size_t>(samples_), T(1)));
}

template <typename T>
template <typename U>
MatrixView<U> BatchedMlp<T>::weights(MatrixView<U> m, index_t l) const {
  return MatrixView<U>(m.data + spec_.weight_offset(l), width(l), width(l - 1), width(l));
}

template <typename T>
template <typename U>
MatrixView<U> BatchedMlp<T>::bias(MatrixView<U> m, index_t l) const {
  return MatrixView<U>(m.data + spec_.bias_offset(l), width(l), 1, width(l));
}

template <typename T>
MatrixView<T> BatchedMlp<T>::act(Array<T>& buffer, index_t l) const {
  return MatrixView<T>(buffer.data(), width(l), n_, width(l));
}

template <typename T>
ConstMatrixView<T> BatchedMlp<T>::input(index_t l) const {
  if (l == 1) return ConstMatrixView<T>(x_, width(0), n_, width(0));
  return ConstMatrixView<T>(a_[static_cast<std::size_t>(l - 1)].data(), width(l - 1), n_,
                            width(l - 1));
}

template <typename T>
void BatchedMlp<T>::gemm(Op oa, Op ob, T alpha, ConstMatrixView<T> a, index_t sa,
                         ConstMatrixView<T> b, index_t sb, T beta, MatrixView<T> c, index_t sc) {
  exec_->template ops<T>().gemm_strided_batched(oa, ob, alpha, a, sa, b, sb, beta, c, sc, b_);
}


template <typename T>
void BatchedMlp<T>::forward(ConstMatrixView<T> phi, const T* x, index_t n) {
  const index_t layers = spec_.layers();
  BILEVEL_EXPECTS(phi.rows == spec_.parameters() && phi.cols >= 1 && phi.cols <= tasks_ &&
                      n >= 1 && n <= samples_,
                  "mlp forward: parameters " << phi.rows << " x " << phi.cols << " and " << n
                                             << " samples for a network of " << spec_.parameters()
                                             << " parameters reserved for " << tasks_
                                             << " tasks of " << samples_ << " samples");
  b_ = phi.cols, n_ = n, x_ = x;
  for (index_t l = 1; l <= layers; ++l) {
    const std::size_t i = static_cast<std::size_t>(l);
    MatrixView<T> z = act(z_[i], l);
    // Z_l = W_l A_{l-1}
    gemm(Op::none, Op::none, T(1), weights(phi, l), phi.ld, input(l), width(l - 1) * n_, T(0), z,
         width(l) * n_);
    // Z_l += b_l 1';  A_l = sigma(Z_l)   (one kernel; the output layer: the bias only)
    kernels_->add_bias(activation_, l < layers ? kernels::MetaKernels<T>::kForward
                                               : kernels::MetaKernels<T>::kBiasOnly,
                       width(l), n_, b_, z.data, phi.data + spec_.bias_offset(l), phi.ld,
                       nullptr, l < layers ? a_[i].data() : nullptr);
  }
}

template <typename T>
void BatchedMlp<T>::output_residual(const T* y, T* out) {
  const index_t layers = spec_.layers();
  if (spec_.loss == OutputLoss::cross_entropy) {
    // dZ_L = (1 / n) (softmax(Z_L) - Y)
    kernels_->ce_gradient(n_ * b_, static_cast<int>(width(layers)),
                          z_[static_cast<std::size_t>(layers)].data(), y,
                          T(1) / static_cast<T>(n_), out);
    return;
  }
  const index_t count = width(layers) * n_ * b_;
  const T scale = T(2) / static_cast<T>(width(layers) * n_);
  Ops<T>& ops = exec_->template ops<T>();
  const MatrixView<T> r(out, count, 1);
  // r = scale Z_L - scale Y
  ops.axpby(scale, ConstMatrixView<T>(z_[static_cast<std::size_t>(layers)].data(), count, 1), T(0), r);
  ops.axpby(-scale, ConstMatrixView<T>(y, count, 1), T(1), r);
}

template <typename T>
void BatchedMlp<T>::mean_over_samples(const T* per_sample, T* out) {
  // out = (1 / n) S' 1 with S the n x B per-sample values
  exec_->template ops<T>().gemm(Op::transpose, Op::none, T(1) / static_cast<T>(n_),
                                ConstMatrixView<T>(per_sample, n_, b_),
                                ConstMatrixView<T>(ones_.data(), n_, 1), T(0),
                                MatrixView<T>(out, b_, 1));
}

template <typename T>
void BatchedMlp<T>::accuracy(const T* y, T* out) {
  const index_t layers = spec_.layers();
  BILEVEL_EXPECTS(spec_.loss == OutputLoss::cross_entropy,
                  "mlp accuracy: only classification (cross-entropy) networks have one");
  // per sample: loss and [argmax = label]
  kernels_->ce_loss(n_ * b_, static_cast<int>(width(layers)),
                    z_[static_cast<std::size_t>(layers)].data(), y, dz_[0].data(), dz_[1].data());
  mean_over_samples(dz_[1].data(), out);
}

template <typename T>
void BatchedMlp<T>::loss(const T* y, T* out) {
  const index_t layers = spec_.layers();
  if (spec_.loss == OutputLoss::cross_entropy) {
    // per-sample cross-entropy, then the mean of each task
    kernels_->ce_loss(n_ * b_, static_cast<int>(width(layers)),
                      z_[static_cast<std::size_t>(layers)].data(), y, dz_[0].data(), nullptr);
    mean_over_samples(dz_[0].data(), out);
    return;
  }
  const index_t per_task = width(layers) * n_;
  Ops<T>& ops = exec_->template ops<T>();
  // r = (Z_L - Y) / sqrt(w_L n), so that <r_b, r_b> = L_b
  const T scale = T(1) / std::sqrt(static_cast<T>(per_task));
  const MatrixView<T> r(dz_[0].data(), per_task, b_);
  ops.axpby(scale, ConstMatrixView<T>(z_[static_cast<std::size_t>(layers)].data(), per_task, b_),
            T(0), r);
  ops.axpby(-scale, ConstMatrixView<T>(y, per_task, b_), T(1), r);
  // out_b = <r_b, r_b>
  ops.batch_dot(r, r, out);
}

template <typename T>
void BatchedMlp<T>::gradient(ConstMatrixView<T> phi, const T* y, MatrixView<T> grad,
                             index_t first_layer) {
  const index_t layers = spec_.layers();
  BILEVEL_EXPECTS(grad.rows == phi.rows && grad.cols == b_ && first_layer >= 1 &&
                      first_layer <= layers,
                  "mlp gradient: output " << grad.rows << " x " << grad.cols << " for "
                                          << phi.rows << " x " << b_ << " parameters");
  ConstMatrixView<T> ones_col(ones_.data(), n_, 1, n_);
  int cur = 0;
  // dZ_L = (2 / (w_L n)) (Z_L - Y)
  output_residual(y, dz_[cur].data());
  for (index_t l = layers; l >= first_layer; --l) {
    const ConstMatrixView<T> dz(dz_[cur].data(), width(l), n_, width(l));
    // dW_l = dZ_l A_{l-1}'
    gemm(Op::none, Op::transpose, T(1), dz, width(l) * n_, input(l), width(l - 1) * n_, T(0),
         weights(grad, l), grad.ld);
    // db_l = dZ_l 1
    gemm(Op::none, Op::none, T(1), dz, width(l) * n_, ones_col, 0, T(0), bias(grad, l), grad.ld);
    if (l == first_layer) break;
    // dA_{l-1} = W_l' dZ_l
    const MatrixView<T> da(da_.data(), width(l - 1), n_, width(l - 1));
    gemm(Op::transpose, Op::none, T(1), weights(phi, l), phi.ld, dz, width(l) * n_, T(0), da,
         width(l - 1) * n_);
    // dZ_{l-1} = dA_{l-1} o sigma'(Z_{l-1})
    kernels_->activation_backward(activation_, width(l - 1) * n_ * b_,
                                  z_[static_cast<std::size_t>(l - 1)].data(), da.data,
                                  dz_[1 - cur].data());
    cur = 1 - cur;
  }
}

template <typename T>
void BatchedMlp<T>::hvp(ConstMatrixView<T> phi, const T* y, ConstMatrixView<T> d,
                        MatrixView<T> out, index_t first_direction_layer) {
  const index_t layers = spec_.layers();
  const index_t fd = first_direction_layer;
  BILEVEL_EXPECTS(out.rows == phi.rows && out.cols == b_ && d.rows == phi.rows && d.cols == b_ &&
                      fd >= 1 && fd <= layers,
                  "mlp hvp: direction " << d.rows << " x " << d.cols << " and output " << out.rows
                                        << " x " << out.cols << " for " << phi.rows << " x "
                                        << b_ << " parameters");
  Ops<T>& ops = exec_->template ops<T>();
  ConstMatrixView<T> ones_col(ones_.data(), n_, 1, n_);
  // --- R forward pass (RZ_l, RA_l are zero below the first direction layer) ---
  for (index_t l = fd; l <= layers; ++l) {
    const std::size_t i = static_cast<std::size_t>(l);
    MatrixView<T> rz = act(rz_[i], l);
    // RZ_l = V_W,l A_{l-1}
    gemm(Op::none, Op::none, T(1), weights(d, l), d.ld, input(l), width(l - 1) * n_, T(0), rz,
         width(l) * n_);
    // RZ_l += W_l RA_{l-1}
    if (l > fd)
      gemm(Op::none, Op::none, T(1), weights(phi, l), phi.ld, act(ra_[i - 1], l - 1),
           width(l - 1) * n_, T(1), rz, width(l) * n_);
    // RZ_l += V_b,l 1';  RA_l = sigma'(Z_l) o RZ_l   (one kernel)
    kernels_->add_bias(activation_, l < layers ? kernels::MetaKernels<T>::kSlope
                                               : kernels::MetaKernels<T>::kBiasOnly,
                       width(l), n_, b_, rz.data, d.data + spec_.bias_offset(l), d.ld,
                       z_[i].data(), l < layers ? ra_[i].data() : nullptr);
  }
  // --- backward pass and its R ---
  int cur = 0;
  // dZ_L = c (Z_L - Y); RdZ_L = c RZ_L   (cross-entropy: RdZ_L = (1/n) (diag(p) - p p') RZ_L)
  output_residual(y, dz_[cur].data());
  if (spec_.loss == OutputLoss::cross_entropy) {
    kernels_->ce_rop(n_ * b_, static_cast<int>(width(layers)),
                     z_[static_cast<std::size_t>(layers)].data(),
                     rz_[static_cast<std::size_t>(layers)].data(), T(1) / static_cast<T>(n_),
                     rdz_[cur].data());
  } else {
    const index_t count = width(layers) * n_ * b_;
    ops.axpby(T(2) / static_cast<T>(width(layers) * n_),
              ConstMatrixView<T>(rz_[static_cast<std::size_t>(layers)].data(), count, 1), T(0),
              MatrixView<T>(rdz_[cur].data(), count, 1));
  }
  for (index_t l = layers; l >= 1; --l) {
    const ConstMatrixView<T> dz(dz_[cur].data(), width(l), n_, width(l));
    const ConstMatrixView<T> rdz(rdz_[cur].data(), width(l), n_, width(l));
    // (H V)_W,l = RdZ_l A_{l-1}' + dZ_l RA_{l-1}'
    gemm(Op::none, Op::transpose, T(1), rdz, width(l) * n_, input(l), width(l - 1) * n_, T(0),
         weights(out, l), out.ld);
    if (l - 1 >= fd)
      gemm(Op::none, Op::transpose, T(1), dz, width(l) * n_,
           act(ra_[static_cast<std::size_t>(l - 1)], l - 1), width(l - 1) * n_, T(1),
           weights(out, l), out.ld);
    // (H V)_b,l = RdZ_l 1
    gemm(Op::none, Op::none, T(1), rdz, width(l) * n_, ones_col, 0, T(0), bias(out, l), out.ld);
    if (l == 1) break;
    const index_t below = width(l - 1) * n_ * b_;
    const T* z_below = z_[static_cast<std::size_t>(l - 1)].data();
    // dA_{l-1} = W_l' dZ_l
    const MatrixView<T> da(da_.data(), width(l - 1), n_, width(l - 1));
    gemm(Op::transpose, Op::none, T(1), weights(phi, l), phi.ld, dz, width(l) * n_, T(0), da,
         width(l - 1) * n_);
    // RdA_{l-1} = W_l' RdZ_l + V_W,l' dZ_l
    const MatrixView<T> rda(rda_.data(), width(l - 1), n_, width(l - 1));
    gemm(Op::transpose, Op::none, T(1), weights(phi, l), phi.ld, rdz, width(l) * n_, T(0), rda,
         width(l - 1) * n_);
    if (l >= fd)
      gemm(Op::transpose, Op::none, T(1), weights(d, l), d.ld, dz, width(l) * n_, T(1), rda,
           width(l - 1) * n_);
    // RdZ_{l-1} = RdA_{l-1} o sigma'(Z_{l-1}) + dA_{l-1} o sigma''(Z_{l-1}) o RZ_{l-1}
    if (l - 1 >= fd)
      kernels_->activation_rop_backward(activation_, below, z_below, da.data,
                                        rz_[static_cast<std::size_t>(l - 1)].data(), rda.data,
                                        rdz_[1 - cur].data());
    else
      kernels_->activation_backward(activation_, below, z_below, rda.data, rdz_[1 - cur].data());
    // dZ_{l-1} = dA_{l-1} o sigma'(Z_{l-1})
    kernels_->activation_backward(activation_, below, z_below, da.data, dz_[1 - cur].data());
    cur = 1 - cur;
  }
}

template class BatchedMlp<float>;
template class BatchedMlp<double>;

}  // namespace bilevel
