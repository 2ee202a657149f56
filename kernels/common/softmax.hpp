// Formulas of the weighted softmax cross-entropy (hyper-cleaning), written once for the CPU
// loops and the CUDA kernels. One sample's C logits of one instance are read at z[c * stride].
//
// With p = softmax(z), label l and weight w:
//   loss      w (logsumexp(z) - z_l)
//   gradient  w (p - e_l)                              (d loss / d z)
//   HVP       w (p * u - p (p . u))                    ((diag p - p p') u, times w)
//   cross     (p - e_l) . u                            (d/dw of <gradient, u>, before dw/dx)
#pragma once

#include "host_device.hpp"

#include <cmath>
#include <cstdint>

namespace bilevel::kernels::common {

template <typename T>
BILEVEL_HOST_DEVICE T sigmoid(T x) {
  return x >= T(0) ? T(1) / (T(1) + exp(-x)) : exp(x) / (T(1) + exp(x));
}

/// max and sum of exp(z - max) over the C logits.
template <typename T>
BILEVEL_HOST_DEVICE void softmax_stats(const T* z, std::int64_t stride, int classes, T& zmax,
                                       T& sum) {
  zmax = z[0];
  for (int c = 1; c < classes; ++c) zmax = z[c * stride] > zmax ? z[c * stride] : zmax;
  sum = T(0);
  for (int c = 0; c < classes; ++c) sum += exp(z[c * stride] - zmax);
}

/// z <- w (softmax(z) - e_label), in place.
template <typename T>
BILEVEL_HOST_DEVICE void ce_gradient(T* z, std::int64_t stride, int classes, int label, T w) {
  T zmax, sum;
  softmax_stats(z, stride, classes, zmax, sum);
  for (int c = 0; c < classes; ++c) {
    const T p = exp(z[c * stride] - zmax) / sum;
    z[c * stride] = w * (p - (c == label ? T(1) : T(0)));
  }
}

/// u <- w (p * u - p (p . u)); returns (p - e_label) . u (for the cross term J v).
template <typename T>
BILEVEL_HOST_DEVICE T ce_hvp(const T* z, std::int64_t zstride, T* u, std::int64_t ustride,
                             int classes, int label, T w) {
  T zmax, sum;
  softmax_stats(z, zstride, classes, zmax, sum);
  T pu = T(0);
  for (int c = 0; c < classes; ++c) pu += exp(z[c * zstride] - zmax) / sum * u[c * ustride];
  const T cross = pu - u[label * ustride];
  for (int c = 0; c < classes; ++c) {
    const T p = exp(z[c * zstride] - zmax) / sum;
    u[c * ustride] = w * (p * u[c * ustride] - p * pu);
  }
  return cross;
}

/// logsumexp(z) - z_label.
template <typename T>
BILEVEL_HOST_DEVICE T ce_loss(const T* z, std::int64_t stride, int classes, int label) {
  T zmax, sum;
  softmax_stats(z, stride, classes, zmax, sum);
  return log(sum) + zmax - z[label * stride];
}

/// Index of the largest logit (the first on ties).
template <typename T>
BILEVEL_HOST_DEVICE int argmax(const T* z, std::int64_t stride, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (z[c * stride] > z[best * stride]) best = c;
  return best;
}

}  // namespace bilevel::kernels::common
