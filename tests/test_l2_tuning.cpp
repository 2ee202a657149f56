// L2 tuning of logistic regression (problems/l2_tuning.hpp): every oracle against finite
// differences of g and f in double (B = 2 instances with different weights), for both penalty
// maps with and without a bias; g and f against benchopt's covtype formula; the two-class
// per-feature problem against benchopt's ijcnn1 (binary logistic) at lambda - log 2; the CUDA
// oracles against the CPU twin (skips without a device); and a short AID-CG run that lowers the
// validation loss below the best scalar weight it starts from.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

HypercleanData l2_data(std::uint64_t seed = 4, bool bias = true, int classes = 3) {
  const Dataset pool = make_synthetic(60 + 25 + 25, 5, classes, seed, 2.0);
  HypercleanData data = prepare_hyperclean(pool, std::nullopt, SplitSizes{60, 25, 25}, 0.0, seed);
  data.bias = bias;
  return data;
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

void expect_oracles_match_finite_differences(L2TuningProblem<double>& p) {
  auto exec = p.executor();
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
  // grad_x g = d/dlambda_j g
  std::vector<double> gx_fd(static_cast<std::size_t>(dx * nb));
  for (index_t j = 0; j < dx; ++j) {
    std::vector<double> xu = at.x, xd = at.x;
    for (index_t b = 0; b < nb; ++b) xu[j + b * dx] += h, xd[j + b * dx] -= h;
    const auto [f1, g1] = fg(p, xu, at.y, nb);
    const auto [f0, g0] = fg(p, xd, at.y, nb);
    for (index_t b = 0; b < nb; ++b) gx_fd[j + b * dx] = (g1[b] - g0[b]) / (2 * h);
  }
  Array<double> gx(exec, dx, nb);
  p.grad_x_g(lower, x.cview(), y.cview(), gx.view());
  EXPECT_LT(relative_error(gy.to_host(), gy_fd), 1e-7);
  EXPECT_LT(relative_error(fy.to_host(), fy_fd), 1e-7);
  EXPECT_LT(relative_error(hv.to_host(), hv_fd), 1e-7);
  EXPECT_LT(relative_error(jv.to_host(), jv_fd), 1e-7);
  EXPECT_LT(relative_error(gx.to_host(), gx_fd), 1e-7);
  EXPECT_GT(norm(jv_fd), 1e-4);
  EXPECT_GT(norm(gx_fd), 1e-4);
  EXPECT_EQ(fx.to_host(), std::vector<double>(static_cast<std::size_t>(dx * nb), 0.0));
}

TEST(L2Tuning, OraclesMatchFiniteDifferences) {
  L2TuningProblem<double> p(cpu(), l2_data(), L2Penalty::per_feature);
  EXPECT_EQ(p.dim_x(), 5);
  EXPECT_EQ(p.dim_y(), 6 * 3);
  expect_oracles_match_finite_differences(p);
}

TEST(L2Tuning, OraclesMatchFiniteDifferencesWithoutABias) {
  L2TuningProblem<double> p(cpu(), l2_data(4, false), L2Penalty::per_feature);
  EXPECT_FALSE(p.has_bias());
  EXPECT_EQ(p.dim_y(), 5 * 3);
  expect_oracles_match_finite_differences(p);
}

TEST(L2Tuning, PerClassOraclesMatchFiniteDifferences) {
  for (const bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with a bias" : "without a bias");
    L2TuningProblem<double> p(cpu(), l2_data(5, bias), L2Penalty::per_class);
    EXPECT_EQ(p.dim_x(), 3);
    expect_oracles_match_finite_differences(p);
  }
}

/// The calls that bundle oracles (lower_oracles, single_point_oracles, lower_step,
/// neumann_term), which hyper-cleaning fuses, carry the penalty's terms too: on a minibatch,
/// each equals the single oracles it stands for, for both maps and the binary logistic loss.
TEST(L2Tuning, BundledOraclesCarryThePenalty) {
  for (const auto [map, loss] : {std::pair{L2Penalty::per_feature, LinearModelLoss::softmax},
                                 std::pair{L2Penalty::per_class, LinearModelLoss::softmax},
                                 std::pair{L2Penalty::per_feature, LinearModelLoss::binary_logistic}}) {
    const bool binary = loss == LinearModelLoss::binary_logistic;
    SCOPED_TRACE(to_string(map) + (binary ? ", binary logistic" : ""));
    auto exec = cpu();
    L2TuningProblem<double> p(exec, l2_data(6, true, binary ? 2 : 3), map, loss);
    EXPECT_EQ(p.outer_map(), map == L2Penalty::per_feature ? OuterMap::per_feature_l2
                                                           : OuterMap::per_class_l2);
    const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
    p.reserve(nb, 16);
    const Point at = point(p, nb);
    MinibatchSampler<double> lower_sampler(exec, 5, p.lower_samples(), 16);
    MinibatchSampler<double> upper_sampler(exec, 6, p.upper_samples(), 16);
    const Batch lower = lower_sampler.draw(SampleStream::lower_step, 0, 0);
    const Batch upper = upper_sampler.draw(SampleStream::upper, 0, 0);
    Array<double> x(exec, dx, nb, at.x), y(exec, dy, nb, at.y), v(exec, dy, nb, at.v);
    const auto zeros = [&](index_t rows) { return Array<double>(exec, rows, nb); };
    // the single oracles
    Array<double> gy = zeros(dy), hv = zeros(dy), jv = zeros(dx), fx = zeros(dx), fy = zeros(dy);
    p.grad_y_g(lower, x.cview(), y.cview(), gy.view());
    p.hvp_jvp(lower, x.cview(), y.cview(), v.cview(), hv.view(), jv.view());
    p.grad_f(upper, x.cview(), y.cview(), fx.view(), fy.view());
    EXPECT_GT(norm(jv.to_host()), 1e-4);
    // lower_oracles
    Array<double> gy2 = zeros(dy), hv2 = zeros(dy), jv2 = zeros(dx);
    p.lower_oracles(lower, x.cview(), y.cview(), v.cview(), gy2.view(), hv2.view(), jv2.view());
    EXPECT_LT(relative_error(gy2.to_host(), gy.to_host()), 1e-12);
    EXPECT_LT(relative_error(hv2.to_host(), hv.to_host()), 1e-12);
    EXPECT_LT(relative_error(jv2.to_host(), jv.to_host()), 1e-12);
    // single_point_oracles
    Array<double> gy3 = zeros(dy), hv3 = zeros(dy), jv3 = zeros(dx), fx3 = zeros(dx), fy3 = zeros(dy);
    p.single_point_oracles(lower, upper, x.cview(), y.cview(), v.cview(), gy3.view(), hv3.view(),
                           jv3.view(), fx3.view(), fy3.view());
    EXPECT_LT(relative_error(gy3.to_host(), gy.to_host()), 1e-12);
    EXPECT_LT(relative_error(hv3.to_host(), hv.to_host()), 1e-12);
    EXPECT_LT(relative_error(jv3.to_host(), jv.to_host()), 1e-12);
    EXPECT_LT(relative_error(fy3.to_host(), fy.to_host()), 1e-12);
    // lower_step: y - alpha gy; neumann_term: r - eta H r and sum + that
    const std::vector<double> steps{0.3, 0.7};
    Array<double> alpha(exec, nb, 1, steps), stepped(exec, dy, nb, at.y), work = zeros(dy);
    p.lower_step(lower, x.cview(), stepped.view(), alpha.data(), work.view());
    std::vector<double> want = at.y;
    const std::vector<double> g = gy.to_host(), h = hv.to_host();
    for (index_t b = 0; b < nb; ++b)
      for (index_t k = 0; k < dy; ++k) want[k + b * dy] -= steps[b] * g[k + b * dy];
    EXPECT_LT(relative_error(stepped.to_host(), want), 1e-12);
    Array<double> r(exec, dy, nb, at.v), sum(exec, dy, nb, std::vector<double>(dy * nb, 1.0));
    p.neumann_term(lower, x.cview(), y.cview(), alpha.data(), r.view(), sum.view(), work.view());
    std::vector<double> r_want = at.v, sum_want(static_cast<std::size_t>(dy * nb), 1.0);
    for (index_t b = 0; b < nb; ++b)
      for (index_t k = 0; k < dy; ++k) {
        const std::size_t e = static_cast<std::size_t>(k + b * dy);
        r_want[e] -= steps[b] * h[e];
        sum_want[e] += r_want[e];
      }
    EXPECT_LT(relative_error(r.to_host(), r_want), 1e-12);
    EXPECT_LT(relative_error(sum.to_host(), sum_want), 1e-12);
  }
}

/// One family: hyper-cleaning and L2 tuning are the same class, told apart by the outer map.
TEST(L2Tuning, SharesTheLinearModelFamilyWithHyperclean) {
  static_assert(std::is_same_v<L2TuningProblem<double>, HypercleanProblem<double>>);
  auto exec = cpu();
  const HypercleanData data = l2_data(8);
  HypercleanProblem<double> weights(exec, data, 0.0);
  L2TuningProblem<double> l2(exec, data, L2Penalty::per_feature);
  EXPECT_EQ(weights.outer_map(), OuterMap::sample_weights);
  EXPECT_EQ(weights.name(), "hyperclean");
  EXPECT_EQ(l2.name(), "l2-tuning");
  EXPECT_EQ(weights.dim_x(), 60);
  EXPECT_EQ(l2.dim_x(), 5);
  EXPECT_EQ(weights.dim_y(), l2.dim_y());
  EXPECT_THROW(weights.penalty_map(), InvalidArgument);
  EXPECT_THROW(weights.set_max_weight(1.0), InvalidArgument);
  EXPECT_THROW(l2.set_detection_truth(std::vector<std::uint8_t>(60, 0)), InvalidArgument);
  // with every sample weight at sigmoid(40) = 1 and reg 0, hyper-cleaning's g is the L2 map's
  // at lambda = -inf (no penalty): the same cross-entropy oracles
  const index_t nb = 1;
  weights.reserve(nb, 0);
  l2.reserve(nb, 0);
  const std::vector<double> w = random_vector<double>(l2.dim_y(), 9, -0.5, 0.5);
  Array<double> xw(exec, 60, nb, std::vector<double>(60, 40.0)), xl(exec, 5, nb, std::vector<double>(5, -800.0)),
      y(exec, l2.dim_y(), nb, w), gw(exec, l2.dim_y(), nb), gl(exec, l2.dim_y(), nb);
  const Batch full{nullptr, 60};
  weights.grad_y_g(full, xw.cview(), y.cview(), gw.view());
  l2.grad_y_g(full, xl.cview(), y.cview(), gl.view());
  EXPECT_LT(relative_error(gl.to_host(), gw.to_host()), 1e-14);
  EXPECT_GT(norm(gw.to_host()), 1e-3);
}

TEST(L2Tuning, PenaltyMapsByName) {
  EXPECT_EQ(parse_l2_penalty("per-class"), L2Penalty::per_class);
  EXPECT_EQ(to_string(parse_l2_penalty("per-feature")), "per-feature");
  try {
    parse_l2_penalty("per-sample");
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown L2 penalty map 'per-sample'"), std::string::npos)
        << e.what();
  }
}

/// The standardized features of a split as the problem holds them: sample i's d values.
std::vector<std::vector<double>> samples_of(const Dataset& split) {
  std::vector<std::vector<double>> out(static_cast<std::size_t>(split.samples));
  for (index_t i = 0; i < split.samples; ++i)
    for (index_t j = 0; j < split.features; ++j)
      out[static_cast<std::size_t>(i)].push_back(split.x[static_cast<std::size_t>(i * split.features + j)]);
  return out;
}

// benchopt's covtype objective (datasets/covtype.py at 3ad65dc), written out here from its
// formula: inner_var reshaped (n_features, n_classes), no bias,
//   g = mean_i (logsumexp(x_i W) - x_i W[:, y_i]) + 0.5 exp(lambda) @ (W * W).sum(axis=0),
//   f = the same mean over validation, no penalty.
TEST(L2Tuning, PerClassWithoutABiasIsBenchoptsCovtypeObjective) {
  const HypercleanData data = l2_data(6, false, 3);
  L2TuningProblem<double> p(cpu(), data, L2Penalty::per_class);
  const index_t d = 5, c = 3;
  const std::vector<double> lambda = {-1.0, 0.3, -2.5};
  const std::vector<double> w = random_vector<double>(d * c, 9, -0.8, 0.8);  // W(j, c) = w[j + c d]
  const auto mean_ce = [&](const Dataset& split) {
    const auto a = samples_of(split);
    double total = 0;
    for (index_t i = 0; i < split.samples; ++i) {
      std::vector<double> z(static_cast<std::size_t>(c), 0.0);
      for (index_t k = 0; k < c; ++k)
        for (index_t j = 0; j < d; ++j) z[k] += a[i][j] * w[j + k * d];
      const double m = *std::max_element(z.begin(), z.end());
      double se = 0;
      for (double zk : z) se += std::exp(zk - m);
      total += m + std::log(se) - z[static_cast<std::size_t>(split.labels[i])];
    }
    return total / static_cast<double>(split.samples);
  };
  double penalty = 0;
  for (index_t k = 0; k < c; ++k)
    for (index_t j = 0; j < d; ++j) penalty += 0.5 * std::exp(lambda[k]) * w[j + k * d] * w[j + k * d];
  p.reserve(1, 0);
  const auto [f, g] = fg(p, lambda, w, 1);
  EXPECT_NEAR(g[0], mean_ce(data.train) + penalty, 1e-12);
  EXPECT_NEAR(f[0], mean_ce(data.validation), 1e-12);
}

// benchopt's ijcnn1 (datasets/ijcnn1.py at 3ad65dc): binary logistic regression, one weight
// vector w, no bias, g = mean softplus(-s_i w'a_i) + (1/2) sum_j exp(lambda_j) w_j^2 with
// s = +-1. The two-class per-feature problem without a bias has F(lambda) = benchopt's
// F(lambda - log 2), and W_1 - W_0 = w* at the lower solutions (the header's argument): both
// lower problems solved here to convergence by gradient descent, benchopt's on the host.
TEST(L2Tuning, TwoClassPerFeatureIsBenchoptsIjcnn1ShiftedByLog2) {
  const HypercleanData data = l2_data(8, false, 2);
  auto exec = cpu();
  L2TuningProblem<double> p(exec, data, L2Penalty::per_feature);
  const index_t d = 5;
  ASSERT_EQ(p.classes(), 2);
  const std::vector<double> lambda = {-2.0, -0.5, -3.0, 0.2, -1.2};
  p.reserve(1, 0);
  Array<double> x(exec, d, 1, lambda), y(exec, 2 * d, 1);
  exec->ops<double>().fill(y.view(), 0.0);
  train_lower_level(p, x.cview(), y.view(), LowerLevelOptions{20000, {0.5}, 0, 0});
  const std::vector<double> wy = y.to_host();
  // benchopt's lower problem at lambda - log 2, by gradient descent from 0
  const auto a = samples_of(data.train);
  const auto sign = [](std::int32_t label) { return label == 1 ? 1.0 : -1.0; };
  std::vector<double> w(static_cast<std::size_t>(d), 0.0);
  for (int step = 0; step < 20000; ++step) {
    std::vector<double> grad(static_cast<std::size_t>(d), 0.0);
    for (index_t i = 0; i < data.train.samples; ++i) {
      double z = 0;
      for (index_t j = 0; j < d; ++j) z += w[j] * a[i][j];
      const double s = sign(data.train.labels[i]);
      const double coef = -s / (1.0 + std::exp(s * z)) / static_cast<double>(data.train.samples);
      for (index_t j = 0; j < d; ++j) grad[j] += coef * a[i][j];
    }
    for (index_t j = 0; j < d; ++j) w[j] -= 0.5 * (grad[j] + std::exp(lambda[j] - std::log(2.0)) * w[j]);
  }
  for (index_t j = 0; j < d; ++j) EXPECT_NEAR(wy[j + d] - wy[j], w[j], 1e-9) << "feature " << j;
  const auto val = samples_of(data.validation);
  double F_benchopt = 0;
  for (index_t i = 0; i < data.validation.samples; ++i) {
    double z = 0;
    for (index_t j = 0; j < d; ++j) z += w[j] * val[i][j];
    F_benchopt += std::log1p(std::exp(-sign(data.validation.labels[i]) * z));
  }
  F_benchopt /= static_cast<double>(data.validation.samples);
  const auto [f, g] = fg(p, lambda, wy, 1);
  EXPECT_NEAR(f[0], F_benchopt, 1e-10);
}

// The same task exactly (LinearModelLoss::binary_logistic): y is the one vector w, and g and f
// are benchopt's formulas at the same lambda, to rounding.
TEST(L2Tuning, BinaryLogisticIsBenchoptsIjcnn1Objective) {
  const HypercleanData data = l2_data(8, false, 2);
  L2TuningProblem<double> p(cpu(), data, L2Penalty::per_feature, LinearModelLoss::binary_logistic);
  const index_t d = 5;
  EXPECT_EQ(p.dim_y(), d);
  EXPECT_EQ(p.loss(), LinearModelLoss::binary_logistic);
  const std::vector<double> lambda = {-2.0, -0.5, -3.0, 0.2, -1.2};
  const std::vector<double> w = random_vector<double>(d, 9, -0.8, 0.8);
  const auto sign = [](std::int32_t label) { return label == 1 ? 1.0 : -1.0; };
  // benchopt's loss: mean -log_sigmoid(s w'a)
  const auto mean_loss = [&](const Dataset& split) {
    const auto a = samples_of(split);
    double total = 0;
    for (index_t i = 0; i < split.samples; ++i) {
      double z = 0;
      for (index_t j = 0; j < d; ++j) z += w[j] * a[i][j];
      total += std::log1p(std::exp(-sign(split.labels[i]) * z));
    }
    return total / static_cast<double>(split.samples);
  };
  double penalty = 0;
  for (index_t j = 0; j < d; ++j) penalty += 0.5 * std::exp(lambda[j]) * w[j] * w[j];
  p.reserve(1, 0);
  const auto [f, g] = fg(p, lambda, w, 1);
  EXPECT_NEAR(g[0], mean_loss(data.train) + penalty, 1e-12);
  EXPECT_NEAR(f[0], mean_loss(data.validation), 1e-12);
  // and the test accuracy is that of sign(w'a)
  const auto a = samples_of(data.test);
  double correct = 0;
  for (index_t i = 0; i < data.test.samples; ++i) {
    double z = 0;
    for (index_t j = 0; j < d; ++j) z += w[j] * a[i][j];
    correct += (z > 0) == (data.test.labels[i] == 1) ? 1.0 : 0.0;
  }
  Array<double> y(p.executor(), d, 1, w);
  EXPECT_NEAR(p.accuracy(DataSplit::test, y.cview())[0], correct / static_cast<double>(data.test.samples), 1e-12);
}

TEST(L2Tuning, BinaryLogisticOraclesMatchFiniteDifferences) {
  for (const bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with a bias" : "without a bias");
    L2TuningProblem<double> p(cpu(), l2_data(9, bias, 2), L2Penalty::per_feature,
                              LinearModelLoss::binary_logistic);
    EXPECT_EQ(p.dim_y(), bias ? 6 : 5);
    expect_oracles_match_finite_differences(p);
  }
  // three classes cannot be one logit; the loss by name
  EXPECT_THROW(L2TuningProblem<double>(cpu(), l2_data(9, false, 3), L2Penalty::per_feature,
                                       LinearModelLoss::binary_logistic),
               InvalidArgument);
  EXPECT_THROW(L2TuningProblem<double>(cpu(), l2_data(9, false, 2), L2Penalty::per_class,
                                       LinearModelLoss::binary_logistic),
               InvalidArgument);
  EXPECT_EQ(parse_linear_model_loss("binary"), LinearModelLoss::binary_logistic);
  EXPECT_THROW(parse_linear_model_loss("hinge"), InvalidArgument);
}

TEST(L2Tuning, WeightsAreBoundedWhenAsked) {
  auto exec = cpu();
  L2TuningProblem<double> p(exec, l2_data(), L2Penalty::per_feature);
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
  struct Case {
    L2Penalty penalty;
    bool bias;
    LinearModelLoss loss;
  };
  for (const Case& c : {Case{L2Penalty::per_feature, true, LinearModelLoss::softmax},
                        Case{L2Penalty::per_class, false, LinearModelLoss::softmax},
                        Case{L2Penalty::per_feature, false, LinearModelLoss::binary_logistic}}) {
    const bool binary = c.loss == LinearModelLoss::binary_logistic;
    SCOPED_TRACE(to_string(c.penalty) + (binary ? ", binary logistic" : ""));
    const HypercleanData data = l2_data(4, c.bias, binary ? 2 : 3);
    std::vector<std::vector<double>> outs[2];
    int k = 0;
    for (const auto& exec : {cpu(), gpu}) {
      L2TuningProblem<double> p(exec, data, c.penalty, c.loss);
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
}

// From the best of three scalar weights (and its W), AID-CG on the per-feature weights lowers
// the validation loss of W retrained at the weights found.
TEST(L2Tuning, AidCgLowersTheValidationLossBelowTheBestScalar) {
  auto exec = cpu();
  L2TuningProblem<double> p(exec, l2_data(7), L2Penalty::per_feature);
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
