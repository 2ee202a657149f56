// Shared helpers of the test suite.
#pragma once

#include <bilevel/bilevel.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace bilevel::test {

/// The CUDA executor, or nullptr with `reason` set when no device exists.
inline std::shared_ptr<Executor> cuda_or_null(std::string& reason) {
  if (cuda_device_count(&reason) == 0) return nullptr;
  return make_executor(Backend::cuda);
}

inline std::shared_ptr<Executor> cpu() { return make_executor(Backend::cpu); }

template <typename T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double lo = -1.0,
                             double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

/// ||a - b|| / max(||b||, tiny)
template <typename A, typename B>
double relative_error(const std::vector<A>& a, const std::vector<B>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

template <typename A, typename B>
double distance(const std::vector<A>& a, const std::vector<B>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return std::sqrt(s);
}

inline double norm(const std::vector<double>& a) {
  double s = 0.0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}

/// Column b (length rows) of a column-major host matrix.
template <typename T>
std::vector<T> column(const std::vector<T>& m, std::size_t rows, std::size_t b) {
  return std::vector<T>(m.begin() + b * rows, m.begin() + (b + 1) * rows);
}

/// Tolerance of a backend comparison: relative error of one precision's rounding, scaled.
template <typename T>
constexpr double parity_tolerance() {
  return std::is_same_v<T, float> ? 1e-4 : 1e-11;
}

}  // namespace bilevel::test

/// Skips a test that needs a CUDA device, saying why.
#define BILEVEL_REQUIRE_CUDA(exec_var)                                              \
  std::string bilevel_skip_reason_;                                                 \
  auto exec_var = ::bilevel::test::cuda_or_null(bilevel_skip_reason_);              \
  if (!exec_var) GTEST_SKIP() << "no CUDA device (" << bilevel_skip_reason_         \
                              << "): CUDA-vs-CPU parity runs only where a GPU exists"
