// The last step every AID estimator shares: given v ~ H^{-1} fy, h = fx - J v, with J v on the
// "cross" batch of the iteration.
#pragma once

#include <bilevel/estimators.hpp>

namespace bilevel::detail {

template <typename T>
void aid_hypergradient(const EstimateContext<T>& ctx, ConstMatrixView<T> x, ConstMatrixView<T> y,
                       ConstMatrixView<T> v, ConstMatrixView<T> fx, MatrixView<T> h) {
  // h = J v
  ctx.problem.hvp_jvp(ctx.lower.draw(SampleStream::cross, 0, ctx.iteration), x, y, v,
                      MatrixView<T>(), h);
  // h = fx - J v
  ctx.problem.executor()->template ops<T>().axpby(T(1), fx, T(-1), h);
}

}  // namespace bilevel::detail
