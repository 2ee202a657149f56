// Element formulas of the batched kernels, shared by the CPU loops and the CUDA kernels so
// that each formula is written once.
#pragma once

#include "host_device.hpp"

namespace bilevel::kernels::common {

/// num / den, or 0 when den == 0 (a converged CG residual must not produce NaN).
template <typename T>
BILEVEL_HOST_DEVICE T safe_ratio(T num, T den) {
  return den == T(0) ? T(0) : num / den;
}

/// One Neumann term fused with its running sum: r -= eta * hr; v += r.
template <typename T>
BILEVEL_HOST_DEVICE void neumann_step(T eta, T hr, T& r, T& v) {
  r -= eta * hr;
  v += r;
}

/// min(max(v, lo), hi)
template <typename T>
BILEVEL_HOST_DEVICE T clamp(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace bilevel::kernels::common
