// The quadratic test problem: closed forms against independent checks, oracles against host
// formulas, and minibatch oracles averaging to the full-batch ones.
#include "test_support.hpp"

#include "../host/linalg/dense.hpp"

namespace bilevel::test {
namespace {

TEST(QuadraticData, IdentityProblemHasHalfOnes) {
  const QuadraticData q = QuadraticData::identity(7);
  const std::vector<double> xs = q.solution_x();
  for (double v : xs) EXPECT_NEAR(v, 0.5, 1e-14);
  const std::vector<double> g = q.hypergradient(xs);
  EXPECT_LT(norm(g), 1e-14);
}

TEST(QuadraticData, HypergradientMatchesFiniteDifferencesOfF) {
  const QuadraticData q = QuadraticData::random(5, 8, 40, 3);
  const std::vector<double> a = q.lower_hessian();
  // F(x) = f(x, y*(x)) = 0.5 y*' A y* + 0.5 d ||x - xh||^2
  const auto big_f = [&](const std::vector<double>& x) {
    const std::vector<double> y = q.solution_y(x);
    const std::vector<double> ay = linalg::matmul(a, y, q.dy, 1, q.dy);
    double s = 0.0;
    for (index_t i = 0; i < q.dy; ++i) s += 0.5 * y[i] * ay[i];
    for (index_t i = 0; i < q.dx; ++i) s += 0.5 * q.d * (x[i] - q.xh[i]) * (x[i] - q.xh[i]);
    return s;
  };
  const std::vector<double> x = random_vector<double>(5, 11);
  const std::vector<double> g = q.hypergradient(x);
  for (index_t i = 0; i < q.dx; ++i) {
    std::vector<double> xp = x, xm = x;
    const double h = 1e-5;
    xp[i] += h;
    xm[i] -= h;
    EXPECT_NEAR((big_f(xp) - big_f(xm)) / (2 * h), g[i], 1e-7);
  }
  // and x* zeroes it
  EXPECT_LT(norm(q.hypergradient(q.solution_x())), 1e-12);
}

TEST(QuadraticData, SpectrumBoundsTheRayleighQuotient) {
  const QuadraticData q = QuadraticData::random(3, 6, 30, 5);
  const auto [lo, hi] = q.lower_hessian_spectrum();
  EXPECT_GT(lo, q.mu - 1e-12);
  const std::vector<double> a = q.lower_hessian();
  for (int t = 0; t < 20; ++t) {
    const std::vector<double> v = random_vector<double>(6, 100 + t);
    const std::vector<double> av = linalg::matmul(a, v, 6, 1, 6);
    double vav = 0, vv = 0;
    for (int i = 0; i < 6; ++i) vav += v[i] * av[i], vv += v[i] * v[i];
    EXPECT_GE(vav / vv, lo - 1e-12);
    EXPECT_LE(vav / vv, hi + 1e-12);
  }
}

TEST(QuadraticData, RejectsInconsistentData) {
  QuadraticData q = QuadraticData::random(3, 4, 10, 1);
  q.xh.pop_back();
  try {
    q.validate();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("xh must hold dx = 3 values, has 2"), std::string::npos);
  }
  EXPECT_THROW(QuadraticData::random(0, 4, 10, 1), InvalidArgument);
}

/// Full-batch oracles of the problem against host formulas, for B = 3 instances.
TEST(QuadraticProblem, FullBatchOraclesMatchHostFormulas) {
  const QuadraticData q = QuadraticData::random(4, 6, 50, 9);
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  const index_t nb = 3;
  p.reserve(nb, 0);
  const std::vector<double> xh = random_vector<double>(4 * nb, 1), yh = random_vector<double>(6 * nb, 2),
                            vh = random_vector<double>(6 * nb, 3);
  Array<double> x(exec, 4, nb, xh), y(exec, 6, nb, yh), v(exec, 6, nb, vh);
  Array<double> gy(exec, 6, nb), fx(exec, 4, nb), fy(exec, 6, nb), hv(exec, 6, nb), jv(exec, 4, nb),
      gx(exec, 4, nb), fval(exec, nb, 1), gval(exec, nb, 1);
  const Batch full{nullptr, q.n};
  p.grad_y_g(full, x.view(), y.view(), gy.view());
  p.grad_x_g(full, x.view(), y.view(), gx.view());
  p.grad_f(full, x.view(), y.view(), fx.view(), fy.view());
  p.hvp_jvp(full, x.view(), y.view(), v.view(), hv.view(), jv.view());
  p.values(full, full, x.view(), y.view(), fval.data(), gval.data());
  const std::vector<double> a = q.lower_hessian();
  for (index_t b = 0; b < nb; ++b) {
    const auto xb = column(xh, 4, b), yb = column(yh, 6, b), vb = column(vh, 6, b);
    const auto ay = linalg::matmul(a, yb, 6, 1, 6), av = linalg::matmul(a, vb, 6, 1, 6);
    const auto btx = linalg::matmul(q.b, xb, 6, 1, 4, true);
    const auto by = linalg::matmul(q.b, yb, 4, 1, 6), bv = linalg::matmul(q.b, vb, 4, 1, 6);
    std::vector<double> gy_want(6), fx_want(4), gx_want(4), jv_want(4);
    double f_want = 0, g_want = 0;
    for (int i = 0; i < 6; ++i) {
      gy_want[i] = ay[i] - btx[i];
      f_want += 0.5 * yb[i] * ay[i];
      g_want += 0.5 * yb[i] * ay[i];
    }
    for (int i = 0; i < 4; ++i) {
      fx_want[i] = q.d * (xb[i] - q.xh[i]);
      gx_want[i] = -by[i];
      jv_want[i] = -bv[i];
      f_want += 0.5 * q.d * (xb[i] - q.xh[i]) * (xb[i] - q.xh[i]);
      g_want -= xb[i] * by[i];
    }
    EXPECT_LT(relative_error(column(gy.to_host(), 6, b), gy_want), 1e-13);
    EXPECT_LT(relative_error(column(gx.to_host(), 4, b), gx_want), 1e-13);
    EXPECT_LT(relative_error(column(fx.to_host(), 4, b), fx_want), 1e-13);
    EXPECT_LT(relative_error(column(fy.to_host(), 6, b), ay), 1e-13);
    EXPECT_LT(relative_error(column(hv.to_host(), 6, b), av), 1e-13);
    EXPECT_LT(relative_error(column(jv.to_host(), 4, b), jv_want), 1e-13);
    EXPECT_NEAR(fval.to_host()[b], f_want, 1e-12 * std::abs(f_want) + 1e-14);
    EXPECT_NEAR(gval.to_host()[b], g_want, 1e-12 * std::abs(g_want) + 1e-14);
  }
}

/// A minibatch HVP is (1/s) M_b' M_b v + mu v for the drawn rows; averaged over many draws it
/// approaches the full-batch HVP (unbiasedness).
TEST(QuadraticProblem, MinibatchHessianIsUnbiased) {
  const QuadraticData q = QuadraticData::random(2, 5, 64, 4);
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  p.reserve(1, 8);
  const std::vector<double> vh = random_vector<double>(5, 8);
  Array<double> x(exec, 2, 1, random_vector<double>(2, 1)), y(exec, 5, 1, random_vector<double>(5, 2)),
      v(exec, 5, 1, vh), hv(exec, 5, 1);
  MinibatchSampler<double> sampler(exec, 77, q.n, 8);
  std::vector<double> mean(5, 0.0);
  const int draws = 4000;
  for (int t = 0; t < draws; ++t) {
    p.hvp_jvp(sampler.draw(SampleStream::second_order, 0, t), x.view(), y.view(), v.view(),
              hv.view(), MatrixView<double>());
    const std::vector<double> h = hv.to_host();
    for (int i = 0; i < 5; ++i) mean[i] += h[i] / draws;
  }
  const std::vector<double> want = linalg::matmul(q.lower_hessian(), vh, 5, 1, 5);
  // sampling error of a mean of 4000 draws: a few percent at most
  EXPECT_LT(relative_error(mean, want), 0.03);
  EXPECT_GT(relative_error(hv.to_host(), want), 1e-3) << "one minibatch should differ from the full batch";
}

}  // namespace
}  // namespace bilevel::test
