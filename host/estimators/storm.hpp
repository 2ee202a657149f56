// STORM's recursive momentum (Cutkosky & Orabona 2019), which MRBO, SUSTAIN and FSLA apply to
// their directions: d_k = q_k + (1 - eta_k) (d_k-1 - q_k-1(same batch at the previous point)).
#pragma once

#include <bilevel/ops.hpp>

#include <cmath>

namespace bilevel::detail {

/// 1 - eta_k with eta_k = eta (k + 1)^-decay; 0 at the first iteration (d_0 = q_0).
template <typename T>
T storm_keep(index_t iteration, double eta, double decay) {
  if (iteration == 0) return T(0);
  return static_cast<T>(1.0 - eta * std::pow(static_cast<double>(iteration + 1), -decay));
}

/// d = q + keep (d - q_old).
template <typename T>
void storm_update(Ops<T>& ops, T keep, ConstMatrixView<T> q, ConstMatrixView<T> q_old,
                  MatrixView<T> d) {
  // d <- d - q_old
  ops.axpby(T(-1), q_old, T(1), d);
  // d <- q + keep d
  ops.axpby(T(1), q, keep, d);
}

}  // namespace bilevel::detail
