// The linear-model family's bundled calls: gy, H v and J v from one read of each sampled row
// (lower_oracles), with fy of the upper batch in the same two kernels (single_point_oracles),
// and the SGD step and the Neumann term in the back-product's epilogue (lower_step,
// neumann_term); each falls back to the single oracles of linear_model.cpp where the fused
// path does not take the call.
#include <bilevel/problems/linear_model.hpp>

#include "../../kernels/linear_model_kernels.hpp"
#include "l2_penalty.hpp"

namespace bilevel {

template <typename T>
bool LinearModelProblem<T>::lower_outputs(ConstMatrixView<T> y, ConstMatrixView<T> v,
                                         MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv,
                                         kernels::LinearModelOutputs<T>& o) const {
  const bool contiguous = (gy.empty() || gy.ld == gy.rows) && (hv.empty() || hv.ld == hv.rows) &&
                          (jv.empty() || jv.rows == dim_x());
  if (!contiguous) return false;
  // gy = 2 reg W + A_b Rg; hv = 2 reg V + A_b Rh; jv = sigmoid'(x) (J v terms), zero elsewhere
  o = kernels::LinearModelOutputs<T>{};
  o.w = y.data;
  o.v = v.data;
  o.grad = gy.empty() ? nullptr : gy.data;
  o.hv = hv.empty() ? nullptr : hv.data;
  // (L2 maps: the loss's J v is 0, the penalty's comes after the kernels)
  o.jv = jv.empty() || penalty_ ? nullptr : jv.data;
  o.ldjv = jv.ld;
  o.jv_rows = dim_x();
  o.reg2 = reg2();
  return true;
}

template <typename T>
void LinearModelProblem<T>::lower_step(const Batch& batch, ConstMatrixView<T> x, MatrixView<T> y,
                                      const T* steps, MatrixView<T> work) {
  check("lower_step", x, y);
  // (L2 maps: the penalty's term is not in the kernels' epilogue; binary logistic: y is
  // widened first; both take the default step)
  if (!penalty_ && !one_logit_ && !sharded() && !batch.full() && y.ld == y.rows) {
    // y <- y - steps gy, gy = 2 reg W + A_b Rg: the step in the back-product's epilogue
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.grad = y.data;
    o.reg2 = reg2();
    o.step = steps;
    if (fused_oracle(train_, batch, x.cols, sample_weights(x), sample_weights_ld(x), o)) return;
  }
  Problem<T>::lower_step(batch, x, y, steps, work);
}

template <typename T>
void LinearModelProblem<T>::neumann_term(const Batch& batch, ConstMatrixView<T> x,
                                        ConstMatrixView<T> y, const T* eta, MatrixView<T> r,
                                        MatrixView<T> sum, MatrixView<T> work) {
  check("neumann_term", x, y);
  if (!penalty_ && !one_logit_ && !sharded() && !batch.full() && r.ld == r.rows && sum.ld == sum.rows) {
    // r <- r - eta H r, sum <- sum + r: the term in the back-product's epilogue
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.v = r.data;
    o.hv = r.data;
    o.reg2 = reg2();
    o.step = eta;
    o.sum = sum.data;
    if (fused_oracle(train_, batch, x.cols, sample_weights(x), sample_weights_ld(x), o)) return;
  }
  Problem<T>::neumann_term(batch, x, y, eta, r, sum, work);
}

template <typename T>
bool LinearModelProblem<T>::lower_fused(const Batch& batch, ConstMatrixView<T> x,
                                       ConstMatrixView<T> y, ConstMatrixView<T> v,
                                       MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv) {
  kernels::LinearModelOutputs<T> o;
  return lower_outputs(y, v, gy, hv, jv, o) &&
         fused_oracle(train_, batch, x.cols, sample_weights(x), sample_weights_ld(x), o);
}

template <typename T>
void LinearModelProblem<T>::lower_oracles(const Batch& batch, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y, ConstMatrixView<T> v,
                                         MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv) {
  check("lower_oracles", x, y, v);
  if (narrow_call()) {
    const WideCall wide(*this);
    lower_oracles(batch, x, widen(y, 0), widen(v, 1), wide_output(gy, 0), wide_output(hv, 1), jv);
    narrow(0, gy);
    narrow(1, hv);
    return;
  }
  const bool fused = lower_fused(batch, x, y, v, gy, hv, jv);
  require_fused(fused, "lower_oracles");
  if (fused) {
    if (!gy.empty()) reduce(gy.data, gy.rows * gy.cols);
    if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
    add_penalty_terms(x, y, v, gy, hv, jv);
    return;
  }
  Problem<T>::lower_oracles(batch, x, y, v, gy, hv, jv);
}

template <typename T>
void LinearModelProblem<T>::single_point_oracles(const Batch& lower, const Batch& upper,
                                                ConstMatrixView<T> x, ConstMatrixView<T> y,
                                                ConstMatrixView<T> v, MatrixView<T> gy,
                                                MatrixView<T> hv, MatrixView<T> jv,
                                                MatrixView<T> fx, MatrixView<T> fy) {
  check("single_point_oracles", x, y, v);
  if (narrow_call()) {
    const WideCall wide(*this);
    single_point_oracles(lower, upper, x, widen(y, 0), widen(v, 1), wide_output(gy, 0),
                         wide_output(hv, 1), jv, fx, wide_output(fy, 2));
    narrow(0, gy);
    narrow(1, hv);
    narrow(2, fy);
    return;
  }
  const index_t nb = x.cols;
  kernels::LinearModelCall<T> calls[2];
  kernels::LinearModelOutputs<T> lo;
  // lower: gy, hv, jv as lower_oracles
  if (fy.ld == fy.rows && lower_outputs(y, v, gy, hv, jv, lo)) {
    // upper: fy = A_b' Rg' (unweighted validation loss)
    kernels::LinearModelOutputs<T> up;
    up.w = y.data;
    up.grad = fy.data;
    const kernels::LinearModelWorkspace<T> lower_ws{z_.data(), u_.data(), per_sample_.data(),
                                                    chunk_};
    const kernels::LinearModelWorkspace<T> upper_ws{upper_rg_.data(), nullptr, nullptr,
                                                    upper_rg_.rows()};
    if (fused_minibatch_call(train_, lower, nb, sample_weights(x), sample_weights_ld(x), lo,
                             lower_ws, calls[0]) &&
        fused_minibatch_call(validation_, upper, nb, nullptr, 0, up, upper_ws, calls[1]) &&
        calls[0].batch.indices != nullptr && calls[1].batch.indices != nullptr &&
        calls[1].batch.count <= upper_rg_.rows()) {
      // fx = 0: f does not depend on the sample weights
      if (!fx.empty()) exec_->ops<T>().fill(fx, T(0));
      fused_->softmax_cross_entropy(calls, 2);
      if (!gy.empty()) reduce(gy.data, gy.rows * gy.cols);
      if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
      reduce(fy.data, fy.rows * fy.cols);
      add_penalty_terms(x, y, v, gy, hv, jv);
      return;
    }
  }
  // (sharded: grad_f and lower_oracles reduce their own sums)
  Problem<T>::single_point_oracles(lower, upper, x, y, v, gy, hv, jv, fx, fy);
}

// The members defined above, for both precisions (linear_model.cpp instantiates the class and
// the members defined there).
#define BILEVEL_LINEAR_MODEL_BUNDLED(T)                                                          \
  template bool LinearModelProblem<T>::lower_outputs(ConstMatrixView<T>, ConstMatrixView<T>,     \
                                                     MatrixView<T>, MatrixView<T>,               \
                                                     MatrixView<T>,                              \
                                                     kernels::LinearModelOutputs<T>&) const;     \
  template void LinearModelProblem<T>::lower_step(const Batch&, ConstMatrixView<T>,              \
                                                  MatrixView<T>, const T*, MatrixView<T>);       \
  template void LinearModelProblem<T>::neumann_term(const Batch&, ConstMatrixView<T>,            \
                                                    ConstMatrixView<T>, const T*, MatrixView<T>, \
                                                    MatrixView<T>, MatrixView<T>);               \
  template bool LinearModelProblem<T>::lower_fused(const Batch&, ConstMatrixView<T>,             \
                                                   ConstMatrixView<T>, ConstMatrixView<T>,       \
                                                   MatrixView<T>, MatrixView<T>, MatrixView<T>); \
  template void LinearModelProblem<T>::lower_oracles(const Batch&, ConstMatrixView<T>,           \
                                                     ConstMatrixView<T>, ConstMatrixView<T>,     \
                                                     MatrixView<T>, MatrixView<T>,               \
                                                     MatrixView<T>);                             \
  template void LinearModelProblem<T>::single_point_oracles(                                     \
      const Batch&, const Batch&, ConstMatrixView<T>, ConstMatrixView<T>, ConstMatrixView<T>,    \
      MatrixView<T>, MatrixView<T>, MatrixView<T>, MatrixView<T>, MatrixView<T>);
BILEVEL_LINEAR_MODEL_BUNDLED(float)
BILEVEL_LINEAR_MODEL_BUNDLED(double)
#undef BILEVEL_LINEAR_MODEL_BUNDLED

}  // namespace bilevel
