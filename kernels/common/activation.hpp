// Activations of the meta-learning MLPs and their first two derivatives, written once for both
// backends: sigma(z), sigma'(z), sigma''(z).
#pragma once

#include "host_device.hpp"

#include <cmath>

namespace bilevel::kernels::common {

enum ActivationCode : int { kRelu = 0, kTanh = 1 };

template <typename T>
BILEVEL_HOST_DEVICE T activate(int code, T z) {
  using std::tanh;
  return code == kRelu ? (z > T(0) ? z : T(0)) : tanh(z);
}
template <typename T>
BILEVEL_HOST_DEVICE T activation_slope(int code, T z) {
  using std::tanh;
  if (code == kRelu) return z > T(0) ? T(1) : T(0);
  const T t = tanh(z);
  return T(1) - t * t;
}
/// sigma''(z): 0 for ReLU (almost everywhere), -2 tanh (1 - tanh^2) for tanh.
template <typename T>
BILEVEL_HOST_DEVICE T activation_curvature(int code, T z) {
  using std::tanh;
  if (code == kRelu) return T(0);
  const T t = tanh(z);
  return T(-2) * t * (T(1) - t * t);
}

/// One element of MetaKernels::add_bias (z += bias, then the mode's output).
template <typename T>
BILEVEL_HOST_DEVICE void bias_activation(int code, int mode, T* z, T bias, const T* zref,
                                         T* out) {
  const T v = *z + bias;
  *z = v;
  if (mode == 1) *out = activate(code, v);
  if (mode == 2) *out = activation_slope(code, *zref) * v;
}

}  // namespace bilevel::kernels::common
