// Closed forms of the quadratic test problem (double, host). See problems/quadratic.hpp.
#include <bilevel/problems/quadratic.hpp>

#include "../linalg/dense.hpp"

#include <cmath>
#include <random>

namespace bilevel {

QuadraticData QuadraticData::random(index_t dx, index_t dy, index_t n, std::uint64_t seed,
                                    double mu, double d) {
  QuadraticData q;
  q.dx = dx;
  q.dy = dy;
  q.n = n;
  q.mu = mu;
  q.d = d;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  q.m.resize(static_cast<std::size_t>(n * dy));
  for (auto& v : q.m) v = normal(rng);
  q.b.resize(static_cast<std::size_t>(dx * dy));
  const double scale = 1.0 / std::sqrt(static_cast<double>(std::max<index_t>(dy, 1)));
  for (auto& v : q.b) v = scale * normal(rng);
  q.xh.resize(static_cast<std::size_t>(dx));
  for (auto& v : q.xh) v = normal(rng);
  q.validate();
  return q;
}

QuadraticData QuadraticData::identity(index_t dim) {
  QuadraticData q;
  q.dx = q.dy = dim;
  q.n = 0;
  q.mu = 1.0;
  q.d = 1.0;
  q.b = linalg::identity(dim);
  q.xh.assign(static_cast<std::size_t>(dim), 1.0);
  q.validate();
  return q;
}

void QuadraticData::validate() const {
  BILEVEL_EXPECTS(dx > 0 && dy > 0, "quadratic: dx and dy must be positive, got dx = "
                                        << dx << ", dy = " << dy);
  BILEVEL_EXPECTS(n >= 0, "quadratic: n must be >= 0, got " << n);
  BILEVEL_EXPECTS(static_cast<index_t>(m.size()) == n * dy,
                  "quadratic: M must hold n * dy = " << n * dy << " values, has " << m.size());
  BILEVEL_EXPECTS(static_cast<index_t>(b.size()) == dx * dy,
                  "quadratic: B must hold dx * dy = " << dx * dy << " values, has " << b.size());
  BILEVEL_EXPECTS(static_cast<index_t>(xh.size()) == dx,
                  "quadratic: xh must hold dx = " << dx << " values, has " << xh.size());
  BILEVEL_EXPECTS(mu >= 0.0 && std::isfinite(mu), "quadratic: mu must be finite and >= 0, got " << mu);
  BILEVEL_EXPECTS(d > 0.0 && std::isfinite(d), "quadratic: d must be finite and > 0, got " << d);
  BILEVEL_EXPECTS(n > 0 || mu > 0.0, "quadratic: with n = 0 samples, mu must be > 0");
}

std::vector<double> QuadraticData::lower_hessian() const {
  std::vector<double> a = linalg::identity(dy);
  for (auto& v : a) v *= mu;
  if (n > 0) {
    const std::vector<double> mtm = linalg::matmul(m, m, dy, dy, n, /*trans_a=*/true);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += mtm[i] / static_cast<double>(n);
  }
  return a;
}

std::vector<double> QuadraticData::solution_x() const {
  // (B A^{-1} B' + d I) x* = d xh
  const std::vector<double> ainv_bt =
      linalg::spd_solve(lower_hessian(), linalg::matmul(b, linalg::identity(dx), dy, dx, dx, true),
                        dy, dx);
  std::vector<double> s = linalg::matmul(b, ainv_bt, dx, dx, dy);
  for (index_t i = 0; i < dx; ++i) s[i + i * dx] += d;
  std::vector<double> rhs(xh);
  for (auto& v : rhs) v *= d;
  return linalg::spd_solve(std::move(s), std::move(rhs), dx, 1);
}

std::vector<double> QuadraticData::solution_y(const std::vector<double>& x) const {
  BILEVEL_EXPECTS(static_cast<index_t>(x.size()) == dx, "solution_y: x must have dx values");
  return linalg::spd_solve(lower_hessian(), linalg::matmul(b, x, dy, 1, dx, true), dy, 1);
}

std::vector<double> QuadraticData::hypergradient(const std::vector<double>& x) const {
  std::vector<double> g = linalg::matmul(b, solution_y(x), dx, 1, dy);
  for (index_t i = 0; i < dx; ++i) g[i] += d * (x[i] - xh[i]);
  return g;
}

std::vector<double> QuadraticData::itd_hypergradient(const std::vector<double>& x, double alpha,
                                                     index_t steps) const {
  const std::vector<double> a = lower_hessian();
  // P = (I - alpha A)^steps
  std::vector<double> step = linalg::identity(dy);
  for (std::size_t i = 0; i < step.size(); ++i) step[i] -= alpha * a[i];
  std::vector<double> p = linalg::identity(dy);
  for (index_t t = 0; t < steps; ++t) p = linalg::matmul(step, p, dy, dy, dy);
  std::vector<double> i_minus_p = linalg::identity(dy);
  for (std::size_t i = 0; i < p.size(); ++i) i_minus_p[i] -= p[i];
  // y_D = (I - P) A^{-1} B' x; fy = A y_D; grad = d (x - xh) + B A^{-1} (I - P) fy
  const std::vector<double> y_d = linalg::matmul(i_minus_p, solution_y(x), dy, 1, dy);
  const std::vector<double> fy = linalg::matmul(a, y_d, dy, 1, dy);
  const std::vector<double> w =
      linalg::spd_solve(a, linalg::matmul(i_minus_p, fy, dy, 1, dy), dy, 1);
  std::vector<double> g = linalg::matmul(b, w, dx, 1, dy);
  for (index_t i = 0; i < dx; ++i) g[i] += d * (x[i] - xh[i]);
  return g;
}

std::pair<double, double> QuadraticData::lower_hessian_spectrum() const {
  const std::vector<double> ev = linalg::symmetric_eigenvalues(lower_hessian(), dy);
  return {ev.front(), ev.back()};
}

}  // namespace bilevel
