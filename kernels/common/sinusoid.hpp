// Sinusoid regression tasks (the MAML paper's toy), one formula for both backends: point j of
// task b (support points first, then query points) of a SinusoidDraw.
#pragma once

#include "../meta_kernels.hpp"
#include "host_device.hpp"
#include "philox.hpp"

#include <cmath>

namespace bilevel::kernels::common {

/// Writes input and target of point j (j < K: support j; else query j - K) of task b.
template <typename T>
BILEVEL_HOST_DEVICE void sinusoid_point(const SinusoidDraw<T>& d, std::uint32_t step, index_t j,
                                        index_t b) {
  using std::sin;
  const auto u = [&](std::int64_t k) {
    return uniform_open01(d.seed, d.stream, step, static_cast<std::uint32_t>(b), k);
  };
  const double amplitude = d.amplitude_min + (d.amplitude_max - d.amplitude_min) * u(0);
  const double phase = d.phase_min + (d.phase_max - d.phase_min) * u(1);
  const double t = d.input_min + (d.input_max - d.input_min) * u(4 + j);
  const double target = amplitude * sin(t - phase);
  if (j < d.support) {
    d.support_x[j + b * d.support] = static_cast<T>(t);
    d.support_y[j + b * d.support] = static_cast<T>(target);
  } else {
    const index_t q = j - d.support;
    d.query_x[q + b * d.query] = static_cast<T>(t);
    d.query_y[q + b * d.query] = static_cast<T>(target);
  }
}

}  // namespace bilevel::kernels::common
