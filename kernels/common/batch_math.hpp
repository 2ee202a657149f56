// Element formulas of the batched kernels, shared by the CPU loops and the CUDA kernels so
// that each formula is written once.
#pragma once

#include "host_device.hpp"

#include <cmath>
#include <cstdint>

namespace bilevel::kernels::common {

/// num / den, or 0 when den <= 0: a converged CG residual must not produce NaN, and a CG
/// direction of non-positive curvature p'Hp <= 0 (indefinite Hessians of neural networks)
/// must not make a step. Every denominator passed here is >= 0 where H is positive definite.
template <typename T>
BILEVEL_HOST_DEVICE T safe_ratio(T num, T den) {
  return den > T(0) ? num / den : T(0);
}

/// One Neumann term fused with its running sum: r -= eta * hr; v += r.
template <typename T>
BILEVEL_HOST_DEVICE void neumann_step(T eta, T hr, T& r, T& v) {
  r -= eta * hr;
  v += r;
}

/// (offset + slope k)^(-power): the factor of a schedule at iteration k (Ops::schedule).
BILEVEL_HOST_DEVICE double schedule_factor(std::uint32_t k, double offset, double slope,
                                           double power) {
  return power == 0.0 ? 1.0 : pow(offset + slope * static_cast<double>(k), -power);
}

/// The move of normalized momentum: a * beta / ||m||, or 0 when m = 0.
template <typename T>
BILEVEL_HOST_DEVICE T normalized_step(T a, T beta, double norm) {
  return norm == 0.0 ? T(0) : static_cast<T>(static_cast<double>(a * beta) / norm);
}

/// The lower-level part of the single-point step (Ops::single_point_step) at one entry:
/// g = gy + mu (fy - gy); y -= s g; v -= eta (hv - fy).
template <typename T>
BILEVEL_HOST_DEVICE void single_point_lower(T s, T eta, T mu, T gy, T fy, T hv, T& y, T& v) {
  const T g = gy + mu * (fy - gy);
  y -= s * g;
  v -= eta * (hv - fy);
}

/// min(max(v, lo), hi)
template <typename T>
BILEVEL_HOST_DEVICE T clamp(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace bilevel::kernels::common
