// N-way K-shot episodes and the softmax cross-entropy of one sample stored as a column, one
// formula for both backends (kernels/meta_kernels.hpp describes the draws).
#pragma once

#include "../meta_kernels.hpp"
#include "host_device.hpp"
#include "philox.hpp"
#include "softmax.hpp"

namespace bilevel::kernels::common {

/// The class (index into the split's classes) that way j of task b takes: entry j of a
/// Fisher-Yates shuffle of 0..split_classes-1 driven by the task's first uniforms.
template <typename T>
BILEVEL_HOST_DEVICE int episode_class(const EpisodeDraw<T>& d, std::uint32_t step, index_t b,
                                      index_t j) {
  int order[64];
  const int n = d.split_classes;
  for (int c = 0; c < n; ++c) order[c] = c;
  for (int c = 0; c <= static_cast<int>(j); ++c) {
    const double u = uniform_open01(d.seed, d.stream, step, static_cast<std::uint32_t>(b), c);
    const int pick = c + static_cast<int>(u * (n - c));
    const int t = order[c];
    order[c] = order[pick < n ? pick : n - 1];
    order[pick < n ? pick : n - 1] = t;
  }
  return order[j];
}

/// Way j of task b: its class's shots + queries distinct samples (rejection among earlier
/// picks, at most 16 attempts each; a class smaller than shots + queries repeats samples) and
/// their one-hot targets.
template <typename T>
BILEVEL_HOST_DEVICE void episode_way(const EpisodeDraw<T>& d, std::uint32_t step, index_t b,
                                     index_t j) {
  const int c = episode_class(d, step, b, j);
  const std::int32_t start = d.class_start[c], count = d.class_count[c];
  const index_t per_way = d.shots + d.queries;
  std::int32_t picked[128];
  for (index_t i = 0; i < per_way; ++i) {
    std::int32_t s = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
      const double u = uniform_open01(d.seed, d.stream, step, static_cast<std::uint32_t>(b),
                                      64 + (j * per_way + i) * 16 + attempt);
      s = static_cast<std::int32_t>(u * count);
      if (s >= count) s = count - 1;
      bool seen = false;
      for (index_t q = 0; q < i && q < 128; ++q) seen = seen || picked[q] == s;
      if (!seen) break;
    }
    if (i < 128) picked[i] = s;
    const std::int32_t sample = d.members[start + s];
    T* y;
    if (i < d.shots) {
      const index_t col = j * d.shots + i;
      d.support_index[col + b * d.ways * d.shots] = sample;
      y = d.support_y + (col + b * d.ways * d.shots) * d.ways;
    } else {
      const index_t col = j * d.queries + (i - d.shots);
      d.query_index[col + b * d.ways * d.queries] = sample;
      y = d.query_y + (col + b * d.ways * d.queries) * d.ways;
    }
    for (index_t w = 0; w < d.ways; ++w) y[w] = w == j ? T(1) : T(0);
  }
}

/// The label of a one-hot column (its largest entry).
template <typename T>
BILEVEL_HOST_DEVICE int one_hot_label(const T* y, int classes) {
  return argmax(y, 1, classes);
}

}  // namespace bilevel::kernels::common
