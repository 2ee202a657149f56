// Per-feature L2 tuning of logistic regression (problems/l2_tuning.hpp): every oracle against
// finite differences of g and f in double (B = 2 instances with different weights), the CUDA
// oracles against the CPU twin (skips without a device), and a short AID-CG run that lowers the
// validation loss below the best scalar weight it starts from.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

HypercleanData l2_data(std::uint64_t seed = 4) {
  const Dataset pool = make_synthetic(60 + 25 + 25, 5, 3, seed, 2.0);
  return prepare_hyperclean(pool, std::nullopt, SplitSizes{60, 25, 25}, 0.0, seed);
}

struct Point {
  std::vector<double> x, y, v;
};

Point point(const L2TuningProblem<double>& p, index_t nb) {
  return {random_vector<double>(p.dim_x() * nb, 1, -3, 0.5), random_vector<double>(p.dim_y() * nb, 2, -0.5, 0.5),
          random_vector<double>(p.dim_y() * nb, 3)};
}

/// g and f of every instance at (x, y), full batches.
std::pair<std::vector<double>, std::vector<double>> fg(L2TuningProblem<double>& p, const std::vector<double>& x,
                                                       const std::vector<double>& y, index_t nb) {
  auto exec = p.executor();
  Array<double> xa(exec, p.dim_x(), nb, x), ya(exec, p.dim_y(), nb, y), out(exec, nb, 2);
  p.values(Batch{nullptr, p.lower_samples()}, Batch{nullptr, p.upper_samples()}, xa.cview(), ya.cview(),
           out.data(), out.data() + nb);
  const std::vector<double> h = out.to_host();
  return {std::vector<double>(h.begin(), h.begin() + nb), std::vector<double>(h.begin() + nb, h.end())};
}

std::vector<double> gy_at(L2TuningProblem<double>& p, const std::vector<double>& x, const std::vector<double>& y,
                          index_t nb) {
  auto exec = p.executor();
  Array<double> xa(exec, p.dim_x(), nb, x), ya(exec, p.dim_y(), nb, y), gy(exec, p.dim_y(), nb);
  p.grad_y_g(Batch{nullptr, p.lower_samples()}, xa.cview(), ya.cview(), gy.view());
  return gy.to_host();
}

TEST(L2Tuning, OraclesMatchFiniteDifferences) {
  auto exec = cpu();
  L2TuningProblem<double> p(exec, l2_data());
  const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
  p.reserve(nb, 0);
  const Point at = point(p, nb);
  Array<double> x(exec, dx, nb, at.x), y(exec, dy, nb, at.y), v(exec, dy, nb, at.v), gy(exec, dy, nb),
      hv(exec, dy, nb), jv(exec, dx, nb), fx(exec, dx, nb), fy(exec, dy, nb);
  const Batch lower{nullptr, p.lower_samples()}, upper{nullptr, p.upper_samples()};
  p.grad_y_g(lower, x.cview(), y.cview(), gy.view());
  p.hvp_jvp(lower, x.cview(), y.cview(), v.cview(), hv.view(), jv.view());
  p.grad_f(upper, x.cview(), y.cview(), fx.view(), fy.view());
  const double h = 1e-5;
  std::vector<double> gy_fd(static_cast<std::size_t>(dy * nb)), fy_fd(gy_fd.size()), jv_fd(static_cast<std::size_t>(dx * nb));
  for (index_t k = 0; k < dy; ++k) {
    std::vector<double> up = at.y, down = at.y;
    for (index_t b = 0; b < nb; ++b) up[k + b * dy] += h, down[k + b * dy] -= h;
    const auto [f1, g1] = fg(p, at.x, up, nb);
    const auto [f0, g0] = fg(p, at.x, down, nb);
    for (index_t b = 0; b < nb; ++b) {
      gy_fd[k + b * dy] = (g1[b] - g0[b]) / (2 * h);
      fy_fd[k + b * dy] = (f1[b] - f0[b]) / (2 * h);
    }
  }
  // H v = d/dt gy(y + t v); J v = d/dlambda_j <gy, v>
  std::vector<double> up = at.y, down = at.y;
  for (std::size_t e = 0; e < up.size(); ++e) up[e] += h * at.v[e], down[e] -= h * at.v[e];
  const std::vector<double> g_up = gy_at(p, at.x, up, nb), g_down = gy_at(p, at.x, down, nb);
  std::vector<double> hv_fd(g_up.size());
  for (std::size_t e = 0; e < hv_fd.size(); ++e) hv_fd[e] = (g_up[e] - g_down[e]) / (2 * h);
  for (index_t j = 0; j < dx; ++j) {
    std::vector<double> xu = at.x, xd = at.x;
    for (index_t b = 0; b < nb; ++b) xu[j + b * dx] += h, xd[j + b * dx] -= h;
    const std::vector<double> gu = gy_at(p, xu, at.y, nb), gd = gy_at(p, xd, at.y, nb);
    for (index_t b = 0; b < nb; ++b) {
      double s = 0;
      for (index_t k = 0; k < dy; ++k) s += (gu[k + b * dy] - gd[k + b * dy]) / (2 * h) * at.v[k + b * dy];
      jv_fd[j + b * dx] = s;
    }
  }
  EXPECT_LT(relative_error(gy.to_host(), gy_fd), 1e-7);
  EXPECT_LT(relative_error(fy.to_host(), fy_fd), 1e-7);
  EXPECT_LT(relative_error(hv.to_host(), hv_fd), 1e-7);
  EXPECT_LT(relative_error(jv.to_host(), jv_fd), 1e-7);
  EXPECT_GT(norm(jv_fd), 1e-4);
  EXPECT_EQ(fx.to_host(), std::vector<double>(static_cast<std::size_t>(dx * nb), 0.0));
}

TEST(L2Tuning, WeightsAreBoundedWhenAsked) {
  auto exec = cpu();
  L2TuningProblem<double> p(exec, l2_data());
  Array<double> x(exec, p.dim_x(), 1, std::vector<double>{-3.0, 0.0, 1.0, 5.0, -20.0});
  p.project_x(x.view());  // no bound by default
  EXPECT_EQ(x.to_host(), (std::vector<double>{-3.0, 0.0, 1.0, 5.0, -20.0}));
  p.set_max_weight(2.0);
  p.project_x(x.view());
  const double cap = std::log(2.0);
  EXPECT_EQ(x.to_host(), (std::vector<double>{-3.0, 0.0, cap, cap, -20.0}));
  EXPECT_THROW(p.set_max_weight(0.0), InvalidArgument);
}

TEST(L2TuningParity, CudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = l2_data();
  std::vector<std::vector<double>> outs[2];
  int k = 0;
  for (const auto& exec : {cpu(), gpu}) {
    L2TuningProblem<double> p(exec, data);
    const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
    p.reserve(nb, 0);
    const Point at = point(p, nb);
    Array<double> x(exec, dx, nb, at.x), y(exec, dy, nb, at.y), v(exec, dy, nb, at.v),
        gy(exec, dy, nb), hv(exec, dy, nb), jv(exec, dx, nb), fy(exec, dy, nb), vals(exec, nb, 2);
    const Batch lower{nullptr, p.lower_samples()}, upper{nullptr, p.upper_samples()};
    p.grad_y_g(lower, x.cview(), y.cview(), gy.view());
    p.hvp_jvp(lower, x.cview(), y.cview(), v.cview(), hv.view(), jv.view());
    p.grad_f(upper, x.cview(), y.cview(), MatrixView<double>(), fy.view());
    p.values(lower, upper, x.cview(), y.cview(), vals.data(), vals.data() + nb);
    outs[k++] = {gy.to_host(), hv.to_host(), jv.to_host(), fy.to_host(), vals.to_host()};
  }
  for (std::size_t e = 0; e < outs[0].size(); ++e)
    EXPECT_LT(relative_error(outs[1][e], outs[0][e]), 1e-10) << "output " << e;
}

// From the best of three scalar weights (and its W), AID-CG on the per-feature weights lowers
// the validation loss of W retrained at the weights found.
TEST(L2Tuning, AidCgLowersTheValidationLossBelowTheBestScalar) {
  auto exec = cpu();
  L2TuningProblem<double> p(exec, l2_data(7));
  const index_t dx = p.dim_x(), dy = p.dim_y();
  p.reserve(3, 0);
  const auto fit = [&](const std::vector<double>& lambdas, index_t nb) {
    Array<double> x(exec, dx, nb, lambdas), y(exec, dy, nb);
    exec->ops<double>().fill(y.view(), 0.0);
    train_lower_level(p, x.cview(), y.view(), LowerLevelOptions{4000, {0.5}, 0, 0});
    return std::make_pair(p.mean_loss(DataSplit::validation, y.cview()), y.to_host());
  };
  std::vector<double> grid;
  for (double r : {1e-3, 1e-2, 1e-1}) grid.insert(grid.end(), static_cast<std::size_t>(dx), std::log(r));
  const auto [losses, ys] = fit(grid, 3);
  const std::size_t best = static_cast<std::size_t>(std::min_element(losses.begin(), losses.end()) - losses.begin());
  AlgorithmOptions o = default_options("aid-cg");
  o.loop.iterations = 200;
  o.loop.inner_steps = 20;
  o.loop.inner_step = {0.5};
  o.loop.outer_step = {1.0};
  o.cg = CgOptions{20, true};
  const std::vector<double> x0(grid.begin() + best * dx, grid.begin() + (best + 1) * dx),
      y0(ys.begin() + best * dy, ys.begin() + (best + 1) * dy);
  const SolveResult<double> r = make_solver(p, o)->run(x0, y0);
  const double tuned = fit(r.x, 1).first[0];
  EXPECT_LT(tuned, losses[best] - 1e-3) << "scalar " << losses[best] << ", per-feature " << tuned;
}

}  // namespace
}  // namespace bilevel::test
