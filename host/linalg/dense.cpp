#include "dense.hpp"

#include <bilevel/error.hpp>

#include <algorithm>
#include <cmath>

namespace bilevel::linalg {

std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b,
                           index_t m, index_t n, index_t k, bool trans_a, bool trans_b) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (index_t j = 0; j < n; ++j)
    for (index_t p = 0; p < k; ++p) {
      const double bpj = trans_b ? b[j + p * n] : b[p + j * k];
      if (bpj == 0.0) continue;
      for (index_t i = 0; i < m; ++i) c[i + j * m] += (trans_a ? a[p + i * k] : a[i + p * m]) * bpj;
    }
  return c;
}

std::vector<double> spd_solve(std::vector<double> s, std::vector<double> r, index_t n,
                              index_t nrhs) {
  // In-place Cholesky: lower triangle of s becomes L with S = L L'.
  for (index_t j = 0; j < n; ++j) {
    double diag = s[j + j * n];
    for (index_t p = 0; p < j; ++p) diag -= s[j + p * n] * s[j + p * n];
    BILEVEL_EXPECTS(diag > 0.0, "spd_solve: matrix is not positive definite (pivot " << j << ")");
    const double l = std::sqrt(diag);
    s[j + j * n] = l;
    for (index_t i = j + 1; i < n; ++i) {
      double v = s[i + j * n];
      for (index_t p = 0; p < j; ++p) v -= s[i + p * n] * s[j + p * n];
      s[i + j * n] = v / l;
    }
  }
  for (index_t c = 0; c < nrhs; ++c) {
    double* x = r.data() + c * n;
    for (index_t i = 0; i < n; ++i) {  // L z = r
      double v = x[i];
      for (index_t p = 0; p < i; ++p) v -= s[i + p * n] * x[p];
      x[i] = v / s[i + i * n];
    }
    for (index_t i = n - 1; i >= 0; --i) {  // L' x = z
      double v = x[i];
      for (index_t p = i + 1; p < n; ++p) v -= s[p + i * n] * x[p];
      x[i] = v / s[i + i * n];
    }
  }
  return r;
}

std::vector<double> symmetric_eigenvalues(std::vector<double> s, index_t n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i < j; ++i) off += s[i + j * n] * s[i + j * n];
    if (off < 1e-30) break;
    for (index_t p = 0; p < n; ++p)
      for (index_t q = p + 1; q < n; ++q) {
        const double apq = s[p + q * n];
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (s[q + q * n] - s[p + p * n]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), sn = t * c;
        for (index_t k = 0; k < n; ++k) {  // columns p, q
          const double skp = s[k + p * n], skq = s[k + q * n];
          s[k + p * n] = c * skp - sn * skq;
          s[k + q * n] = sn * skp + c * skq;
        }
        for (index_t k = 0; k < n; ++k) {  // rows p, q
          const double spk = s[p + k * n], sqk = s[q + k * n];
          s[p + k * n] = c * spk - sn * sqk;
          s[q + k * n] = sn * spk + c * sqk;
        }
      }
  }
  std::vector<double> ev(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) ev[i] = s[i + i * n];
  std::sort(ev.begin(), ev.end());
  return ev;
}

std::vector<double> identity(index_t n) {
  std::vector<double> e(static_cast<std::size_t>(n * n), 0.0);
  for (index_t i = 0; i < n; ++i) e[i + i * n] = 1.0;
  return e;
}

}  // namespace bilevel::linalg
