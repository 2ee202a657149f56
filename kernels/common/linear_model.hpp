// Per-sample math of the fused linear-model oracles (kernels/linear_model_kernels.hpp), written
// once for the CPU loops and the CUDA kernels. A linear model with a pointwise loss sees a
// sample only through its logits z = W' a (C values per instance) and, for second-order
// oracles, u = V' a; everything the back-product A R needs is a per-sample coefficient vector.
// A loss is a functor with
//
//   coefficients(z, u, classes, label, w, rg, rh) -> cross
//     rg = w d loss / d z                      (gradient: grad_W += a rg')
//     rh = w (d^2 loss / d z^2) u              (Hessian-vector product: H v += a rh')
//     cross = (d loss / d z) . u               (J v before the weight's derivative)
//
// z is scratch: the functor may overwrite it (softmax stores p there). rg or rh may be null
// (not wanted); u may be null when rh is. rg may alias z and rh may alias u (each entry is read
// before it is written). Logits are a small local array (registers or shared memory).
#pragma once

#include "host_device.hpp"
#include "softmax.hpp"

#include <cstdint>

namespace bilevel::kernels::common {

/// Softmax cross-entropy (hyper-cleaning, multinomial logistic regression):
/// p = softmax(z); rg = w (p - e_l); rh = w (p * u - p (p . u)); cross = p . u - u_l.
struct SoftmaxCrossEntropy {
  template <typename T>
  BILEVEL_HOST_DEVICE static T coefficients(T* z, const T* u, int classes, int label, T w, T* rg,
                                            T* rh) {
    T zmax = z[0];
    for (int c = 1; c < classes; ++c) zmax = z[c] > zmax ? z[c] : zmax;
    // p = softmax(z), in place (one exp per class)
    T sum = T(0);
    for (int c = 0; c < classes; ++c) {
      z[c] = exp(z[c] - zmax);
      sum += z[c];
    }
    const T inv = T(1) / sum;
    T pu = T(0);
    for (int c = 0; c < classes; ++c) {
      z[c] *= inv;
      if (u != nullptr) pu += z[c] * u[c];
    }
    const T cross = u != nullptr ? pu - u[label] : T(0);
    for (int c = 0; c < classes; ++c) {
      const T p = z[c];
      if (rh != nullptr) rh[c] = w * p * (u[c] - pu);
      if (rg != nullptr) rg[c] = w * (p - (c == label ? T(1) : T(0)));
    }
    return cross;
  }
};

/// Data sample k's row in a call's data: k itself, or with a shard (samples >= 0) k - first
/// inside [first, first + samples) and -1 outside (another rank's sample, which contributes
/// nothing).
template <typename I>
BILEVEL_HOST_DEVICE I shard_row(I k, I first, I samples) {
  if (samples < 0) return k;
  const I r = k - first;
  return r >= 0 && r < samples ? r : I(-1);
}

/// d sigmoid(x) / dx = sigmoid(x) (1 - sigmoid(x)): the weight's derivative in J v.
template <typename T>
BILEVEL_HOST_DEVICE T sigmoid_derivative(T x) {
  const T s = sigmoid(x);
  return s * (T(1) - s);
}

}  // namespace bilevel::kernels::common
