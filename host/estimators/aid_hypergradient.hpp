// The last step every AID estimator shares: given v ~ H^{-1} fy, h = fx - J v, with J v on the
// "cross" batch of the iteration.
#pragma once

#include <bilevel/estimators.hpp>

namespace bilevel::detail {

/// The fx to ask grad_f for: `fx` itself, or an empty view (not wanted) when f does not depend
/// on x. (Hyper-cleaning at 20000 x 64: filling an fx of zeros and reading it back in
/// aid_hypergradient were two of the iteration's x-sized passes, about 1 ms each on one core.)
template <typename T>
MatrixView<T> wanted_fx(const Problem<T>& problem, MatrixView<T> fx) {
  return problem.upper_depends_on_x() ? fx : MatrixView<T>();
}

template <typename T>
void aid_hypergradient(const EstimateContext<T>& ctx, ConstMatrixView<T> x, ConstMatrixView<T> y,
                       ConstMatrixView<T> v, ConstMatrixView<T> fx, MatrixView<T> h) {
  // h = J v
  ctx.problem.hvp_jvp(ctx.draw_lower(SampleStream::cross, 0), x, y, v,
                      MatrixView<T>(), h);
  Ops<T>& ops = ctx.problem.executor()->template ops<T>();
  if (fx.empty())
    // h = -J v   (fx = 0: f does not depend on x)
    ops.axpby(T(-1), h, T(0), h);
  else
    // h = fx - J v
    ops.axpby(T(1), fx, T(-1), h);
}

}  // namespace bilevel::detail
