// Policy alignment on the entropy-regularised bandit: the oracles against finite differences,
// the hypergradient against the derivative of F(nu) = KL(softmax(nu / tau) || p) (and the
// bias of dropping the score-function term), the feedback estimators' means, and runs: A-PARL
// reaches nu* = tau log p + const, reward learning without the score term does not.
#include "test_support.hpp"

#include <cmath>
#include <numeric>

namespace bilevel {
namespace {

using test::cpu;

BanditAlignmentSpec spec(index_t actions, bool score = true) {
  BanditAlignmentSpec s;
  s.actions = actions;
  s.tau = 0.5;
  s.seed = 3;
  s.score_function_term = score;
  return s;
}

std::vector<double> centred(std::vector<double> v) {
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  for (double& x : v) x -= mean;
  return v;
}

// gy, H v, J v and the exact fy against central differences (double, B = 2 instances).
TEST(BanditAlignment, OraclesMatchFiniteDifferences) {
  const index_t a = 6, nb = 2;
  BanditAlignmentProblem<double> p(cpu(), spec(a));
  auto exec = p.executor();
  const std::vector<double> nu0 = test::random_vector<double>(a * nb, 1, -1, 1),
                            th0 = test::random_vector<double>((a - 1) * nb, 2, -1, 1),
                            v0 = test::random_vector<double>((a - 1) * nb, 3, -1, 1);
  Array<double> nu(exec, a, nb, nu0), th(exec, a - 1, nb, th0), v(exec, a - 1, nb, v0),
      gy(exec, a - 1, nb), hv(exec, a - 1, nb), jv(exec, a, nb), fy(exec, a - 1, nb),
      f(exec, nb, 1), g(exec, nb, 1);
  const Batch full{};
  p.grad_y_g(full, nu.view(), th.view(), gy.view());
  p.hvp_jvp(full, nu.view(), th.view(), v.view(), hv.view(), jv.view());
  p.grad_f(full, nu.view(), th.view(), MatrixView<double>(), fy.view());
  const auto value = [&](const std::vector<double>& n, const std::vector<double>& t, bool upper) {
    nu.upload(n), th.upload(t);
    p.values(full, full, nu.view(), th.view(), f.data(), g.data());
    return upper ? f.to_host() : g.to_host();
  };
  const auto gradient = [&](const std::vector<double>& n, const std::vector<double>& t) {
    nu.upload(n), th.upload(t);
    Array<double> out(exec, a - 1, nb);
    p.grad_y_g(full, nu.view(), th.view(), out.view());
    return out.to_host();
  };
  const double eps = 1e-6;
  std::vector<double> fd_gy(th0.size()), fd_fy(th0.size());
  for (index_t i = 0; i < a - 1; ++i) {
    std::vector<double> tp = th0, tm = th0;
    for (index_t b = 0; b < nb; ++b) tp[i + b * (a - 1)] += eps, tm[i + b * (a - 1)] -= eps;
    const std::vector<double> gp = value(nu0, tp, false), gm = value(nu0, tm, false),
                              fp = value(nu0, tp, true), fm = value(nu0, tm, true);
    for (index_t b = 0; b < nb; ++b) {
      fd_gy[i + b * (a - 1)] = (gp[b] - gm[b]) / (2 * eps);
      fd_fy[i + b * (a - 1)] = (fp[b] - fm[b]) / (2 * eps);
    }
  }
  EXPECT_LT(test::relative_error(gy.to_host(), fd_gy), 1e-7);
  EXPECT_LT(test::relative_error(fy.to_host(), fd_fy), 1e-7);
  // H v = (gy(theta + e v) - gy(theta - e v)) / 2e; J v = (gy . v)(nu +- e e_i)
  std::vector<double> tp = th0, tm = th0;
  for (std::size_t i = 0; i < th0.size(); ++i) tp[i] += eps * v0[i], tm[i] -= eps * v0[i];
  const std::vector<double> gp = gradient(nu0, tp), gm = gradient(nu0, tm);
  std::vector<double> fd_hv(th0.size());
  for (std::size_t i = 0; i < th0.size(); ++i) fd_hv[i] = (gp[i] - gm[i]) / (2 * eps);
  EXPECT_LT(test::relative_error(hv.to_host(), fd_hv), 1e-7);
  std::vector<double> fd_jv(nu0.size());
  for (index_t i = 0; i < a; ++i) {
    std::vector<double> np = nu0, nm = nu0;
    for (index_t b = 0; b < nb; ++b) np[i + b * a] += eps, nm[i + b * a] -= eps;
    const std::vector<double> up = gradient(np, th0), um = gradient(nm, th0);
    for (index_t b = 0; b < nb; ++b) {
      double d = 0;
      for (index_t k = 0; k < a - 1; ++k) d += (up[k + b * (a - 1)] - um[k + b * (a - 1)]) * v0[k + b * (a - 1)];
      fd_jv[i + b * a] = d / (2 * eps);
    }
  }
  EXPECT_LT(test::relative_error(jv.to_host(), fd_jv), 1e-7);
}

/// theta*(nu) by many exact policy-gradient steps, then one AID-CG estimate: h (A values).
std::vector<double> hypergradient(BanditAlignmentProblem<double>& p, const std::vector<double>& nu0) {
  auto exec = p.executor();
  const index_t a = p.dim_x();
  Array<double> nu(exec, a, 1, nu0), th(exec, a - 1, 1), gy(exec, a - 1, 1), h(exec, a, 1);
  exec->ops<double>().fill(th.view(), 0.0);
  for (int t = 0; t < 4000; ++t) {
    p.grad_y_g(Batch{}, nu.view(), th.view(), gy.view());
    exec->ops<double>().axpby(-1.0 / p.spec().tau, gy.view(), 1.0, th.view());
  }
  auto cg = make_cg_estimator<double>(CgOptions{2 * a, false});
  cg->prepare(p, 1);
  MinibatchSampler<double> lower(exec, 0, 0, 0), upper(exec, 0, 0, 0);
  cg->estimate(EstimateContext<double>{p, lower, upper, 0}, nu.view(), th.view(), h.view());
  return h.to_host();
}

// With the score-function term the hypergradient is dF/dnu (finite differences of the host
// formula); without it, it is 0 here - measurably biased.
TEST(BanditAlignment, HypergradientNeedsTheScoreTerm) {
  const index_t a = 5;
  BanditAlignmentProblem<double> with(cpu(), spec(a, true)), without(cpu(), spec(a, false));
  const std::vector<double> nu0 = test::random_vector<double>(a, 7, -1, 1);
  const std::vector<double> h = hypergradient(with, nu0);
  std::vector<double> fd(static_cast<std::size_t>(a));
  const double eps = 1e-6;
  for (index_t i = 0; i < a; ++i) {
    std::vector<double> np = nu0, nm = nu0;
    np[i] += eps, nm[i] -= eps;
    fd[i] = (with.upper_objective(np) - with.upper_objective(nm)) / (2 * eps);
  }
  EXPECT_LT(test::relative_error(h, fd), 1e-6);
  const std::vector<double> h0 = hypergradient(without, nu0);
  EXPECT_GT(test::distance(h0, fd), 0.5 * test::norm(fd));
  EXPECT_GT(test::norm(fd), 1e-2);
}

// Feedback samples: the score-function estimator's mean over many batches is the exact
// gradient; without the score term the mean is 0. score_function_term() is the difference.
TEST(BanditAlignment, FeedbackEstimatorsHaveTheirMeans) {
  const index_t a = 4, m = 64, batches = 400;
  BanditAlignmentProblem<double> with(cpu(), spec(a, true)), without(cpu(), spec(a, false));
  auto exec = with.executor();
  const std::vector<double> th0 = test::random_vector<double>(a - 1, 9, -1, 1);
  Array<double> nu(exec, a, 1), th(exec, a - 1, 1, th0), fy(exec, a - 1, 1), exact(exec, a - 1, 1),
      score(exec, a - 1, 1), without_fy(exec, a - 1, 1);
  exec->ops<double>().fill(nu.view(), 0.0);
  with.grad_f(Batch{}, nu.view(), th.view(), MatrixView<double>(), exact.view());
  MinibatchSampler<double> sampler(exec, 5, with.upper_samples(), m);
  std::vector<double> mean(a - 1, 0.0), mean_without(a - 1, 0.0);
  for (index_t k = 0; k < batches; ++k) {
    const Batch b = sampler.draw(SampleStream::upper, 0, k);
    with.grad_f(b, nu.view(), th.view(), MatrixView<double>(), fy.view());
    without.grad_f(b, nu.view(), th.view(), MatrixView<double>(), without_fy.view());
    with.score_function_term(b, nu.view(), th.view(), score.view());
    const std::vector<double> f1 = fy.to_host(), f0 = without_fy.to_host(), s = score.to_host();
    for (index_t i = 0; i < a - 1; ++i) {
      mean[i] += f1[i] / batches;
      mean_without[i] += f0[i] / batches;
      EXPECT_NEAR(s[i], f1[i] - f0[i], 1e-12);
    }
  }
  const std::vector<double> e = exact.to_host();
  // standard error of the mean over 400 x 64 draws: well under 0.02 here
  EXPECT_LT(test::distance(mean, e), 0.03);
  EXPECT_LT(test::norm(mean_without), 0.03);
  EXPECT_GT(test::norm(e), 0.1);
}

// Whole runs: A-PARL reaches nu* = tau log p (up to the constant) to 1e-3 with exact
// expectations and close to it from feedback samples; reward learning without the score
// term stays where it started.
TEST(BanditAlignment, AParlReachesTheOptimalRewardAndTheBaselineDoesNot) {
  const index_t a = 6, nb = 2;
  const auto run = [&](const std::string& name, index_t feedback, index_t iterations) {
    AlignmentOptions o;
    o.name = name;
    o.loop.iterations = iterations;
    o.loop.upper_batch = feedback;
    o.loop.independent_batches = feedback > 0;
    o.loop.eval_every = 0;
    o.loop.seed = 4;
    BanditAlignmentSpec s = spec(a);
    apply_alignment_preset(o, s);
    BanditAlignmentProblem<double> p(cpu(), s);
    const std::vector<double> x0(static_cast<std::size_t>(a * nb), 0.0),
        y0(static_cast<std::size_t>((a - 1) * nb), 0.0);
    const SolveResult<double> r = make_alignment_solver(p, o)->run(x0, y0);
    std::vector<double> err;
    const std::vector<double> star = p.optimal_reward();
    for (index_t b = 0; b < nb; ++b)
      err.push_back(test::distance(centred(test::column(r.x, a, b)), star) / test::norm(star));
    return err;
  };
  for (double e : run("a-parl", 0, 400)) EXPECT_LT(e, 1e-3);
  for (double e : run("a-parl", 256, 400)) EXPECT_LT(e, 0.1);
  for (double e : run("reward-learning", 0, 400)) EXPECT_GT(e, 0.99);
  for (double e : run("reward-learning", 256, 400)) EXPECT_GT(e, 0.5);
  BanditAlignmentProblem<double> p(cpu(), spec(a));
  AlignmentOptions wrong;
  wrong.name = "reward-learning";
  EXPECT_THROW(make_alignment_solver(p, wrong), InvalidArgument);
  wrong.name = "ppo";
  BanditAlignmentSpec s;
  EXPECT_THROW(apply_alignment_preset(wrong, s), InvalidArgument);
}

// CUDA against the CPU: every oracle, exact and from feedback samples.
TEST(BanditAlignment, CudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const index_t a = 7, nb = 3;
  BanditAlignmentProblem<double> c(cpu(), spec(a)), g(gpu, spec(a));
  const std::vector<double> nu0 = test::random_vector<double>(a * nb, 1),
                            th0 = test::random_vector<double>((a - 1) * nb, 2),
                            v0 = test::random_vector<double>((a - 1) * nb, 3);
  std::vector<std::vector<double>> out[2];
  int side = 0;
  for (BanditAlignmentProblem<double>* p : {&c, &g}) {
    auto exec = p->executor();
    Array<double> nu(exec, a, nb, nu0), th(exec, a - 1, nb, th0), v(exec, a - 1, nb, v0),
        gy(exec, a - 1, nb), hv(exec, a - 1, nb), jv(exec, a, nb), fy(exec, a - 1, nb),
        fs(exec, a - 1, nb);
    MinibatchSampler<double> sampler(exec, 5, p->upper_samples(), 32, nb);
    p->grad_y_g(Batch{}, nu.view(), th.view(), gy.view());
    p->hvp_jvp(Batch{}, nu.view(), th.view(), v.view(), hv.view(), jv.view());
    p->grad_f(Batch{}, nu.view(), th.view(), MatrixView<double>(), fy.view());
    p->grad_f(sampler.draw(SampleStream::upper, 0, 3), nu.view(), th.view(), MatrixView<double>(),
              fs.view());
    out[side++] = {gy.to_host(), hv.to_host(), jv.to_host(), fy.to_host(), fs.to_host()};
  }
  for (std::size_t i = 0; i < out[0].size(); ++i)
    EXPECT_LT(test::relative_error(out[1][i], out[0][i]), 1e-12) << i;
}

}  // namespace
}  // namespace bilevel
