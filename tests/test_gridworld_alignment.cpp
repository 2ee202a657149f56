// Policy alignment on gridworlds: the lower-level products against finite differences of the
// Bellman residual, the feedback estimators' means against exact expectations (every pair of
// trajectories of a 2 x 2 gridworld enumerated by an independent reference written here), the
// implicit hypergradient against finite differences of the exact upper objective F(nu) (and
// the bias of dropping the score term), short runs, and CUDA against the CPU.
#include "test_support.hpp"

#include <cmath>
#include <functional>
#include <numeric>

namespace bilevel {
namespace {

using test::cpu;

GridworldAlignmentSpec spec(index_t side, index_t horizon, index_t instances, bool score = true,
                            bool utility_feedback = false) {
  GridworldAlignmentSpec s;
  s.utility_feedback = utility_feedback;
  s.side = side;
  s.horizon = horizon;
  s.instances = instances;
  s.gamma = 0.8;
  s.slip = 0.2;
  s.tau = 0.5;
  s.seed = 5;
  s.score_function_term = score;
  return s;
}

// ---- an independent reference: one MDP, everything by enumeration (double) ----
struct Reference {
  int side, horizon;
  double gamma, slip, tau, beta;
  std::vector<double> u;  // utility
  bool utility_feedback = false;

  int states() const { return side * side; }
  int next(int s, int m) const {
    int r = s / side, c = s % side;
    if (m == 0) r = std::max(r - 1, 0);
    if (m == 1) r = std::min(r + 1, side - 1);
    if (m == 2) c = std::max(c - 1, 0);
    if (m == 3) c = std::min(c + 1, side - 1);
    return r * side + c;
  }
  double p(int s, int a, int s2) const {  // P(s2 | s, a)
    double pr = next(s, a) == s2 ? 1 - slip : 0;
    for (int m = 0; m < 4; ++m) pr += next(s, m) == s2 ? slip / 4 : 0;
    return pr;
  }
  std::vector<double> policy(const std::vector<double>& q) const {
    std::vector<double> pi(q.size());
    for (int s = 0; s < states(); ++s) {
      double z = 0;
      for (int a = 0; a < 4; ++a) z += std::exp(q[4 * s + a] / tau);
      for (int a = 0; a < 4; ++a) pi[4 * s + a] = std::exp(q[4 * s + a] / tau) / z;
    }
    return pi;
  }
  std::vector<double> bellman(const std::vector<double>& nu, const std::vector<double>& q) const {
    std::vector<double> v(states()), out(q.size());
    for (int s = 0; s < states(); ++s) {
      double z = 0;
      for (int a = 0; a < 4; ++a) z += std::exp(q[4 * s + a] / tau);
      v[s] = tau * std::log(z);
    }
    for (int s = 0; s < states(); ++s)
      for (int a = 0; a < 4; ++a) {
        double e = 0;
        for (int s2 = 0; s2 < states(); ++s2) e += p(s, a, s2) * v[s2];
        out[4 * s + a] = nu[s] + gamma * e;
      }
    return out;
  }
  std::vector<double> solve(const std::vector<double>& nu) const {
    std::vector<double> q(4 * states(), 0.0);
    for (int k = 0; k < 5000; ++k) q = bellman(nu, q);
    return q;
  }
  struct Trajectory {
    double prob = 1, reward = 0, utility = 0;
    std::vector<double> visits, score;  // discounted visits (S), grad_Q log p (4 S)
  };
  // every trajectory of `horizon` states from a uniform start, with its probability
  std::vector<Trajectory> trajectories(const std::vector<double>& nu,
                                       const std::vector<double>& q) const {
    const std::vector<double> pi = policy(q);
    std::vector<Trajectory> done;
    std::function<void(Trajectory, int, int, double)> walk = [&](Trajectory t, int s, int step,
                                                                 double disc) {
      t.reward += disc * nu[s];
      t.utility += disc * u[s];
      t.visits[s] += disc;
      if (step + 1 == horizon) {
        done.push_back(t);
        return;
      }
      for (int a = 0; a < 4; ++a)
        for (int s2 = 0; s2 < states(); ++s2) {
          const double pr = pi[4 * s + a] * p(s, a, s2);
          if (pr == 0) continue;
          Trajectory t2 = t;
          t2.prob *= pr;
          for (int b = 0; b < 4; ++b) t2.score[4 * s + b] += ((a == b) - pi[4 * s + b]) / tau;
          walk(t2, s2, step + 1, disc * gamma);
        }
    };
    for (int s = 0; s < states(); ++s) {
      Trajectory t;
      t.prob = 1.0 / states();
      t.visits.assign(states(), 0.0);
      t.score.assign(4 * states(), 0.0);
      walk(t, s, 0, 1.0);
    }
    return done;
  }
  static double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }
  // E[l] and its gradients in nu (Q fixed) and in Q through the data (nu fixed)
  double expected_loss(const std::vector<double>& nu, const std::vector<double>& q,
                       std::vector<double>* fx, std::vector<double>* fy) const {
    const std::vector<Trajectory> ts = trajectories(nu, q);
    if (fx) fx->assign(states(), 0.0);
    if (fy) fy->assign(4 * states(), 0.0);
    double f = 0;
    for (const Trajectory& t1 : ts)
      for (const Trajectory& t2 : ts) {
        const double w = t1.prob * t2.prob, d = t1.reward - t2.reward;
        const double pz = sigmoid((t1.utility - t2.utility) / beta);
        const double l = utility_feedback
                             ? -(t1.utility + t2.utility) / 2
                             : -pz * std::log(sigmoid(d)) - (1 - pz) * std::log(sigmoid(-d));
        f += w * l;
        if (fx && !utility_feedback)
          for (int s = 0; s < states(); ++s)
            (*fx)[s] += w * (sigmoid(d) - pz) * (t1.visits[s] - t2.visits[s]);
        if (fy)
          for (int i = 0; i < 4 * states(); ++i) (*fy)[i] += w * l * (t1.score[i] + t2.score[i]);
      }
    return f;
  }
  double upper_objective(const std::vector<double>& nu) const {
    return expected_loss(nu, solve(nu), nullptr, nullptr);
  }
};

Reference reference(const GridworldAlignmentProblem<double>& p, index_t instance) {
  const GridworldAlignmentSpec& s = p.spec();
  const index_t ns = p.states();
  return Reference{static_cast<int>(s.side), static_cast<int>(s.horizon), s.gamma, s.slip,
                   s.tau, s.beta,
                   std::vector<double>(p.utility().begin() + instance * ns,
                                       p.utility().begin() + (instance + 1) * ns),
                   s.utility_feedback};
}

// v = sum_k (I - H')^k fy by the problem's transposed products (300 terms: converged at the
// tests' gamma), at (x, q).
std::vector<double> neumann_solution(GridworldAlignmentProblem<double>& p, Array<double>& x,
                                     Array<double>& q, const std::vector<double>& fy) {
  auto exec = p.executor();
  const index_t nq = 4 * p.states();
  Array<double> r(exec, nq, 1, fy), v(exec, nq, 1, fy), hr(exec, nq, 1);
  Ops<double>& ops = exec->ops<double>();
  for (int k = 0; k < 300; ++k) {
    p.hvp_jvp(Batch{}, x.view(), q.view(), r.view(), hr.view(), MatrixView<double>());
    ops.axpby(-1.0, hr.view(), 1.0, r.view());  // r <- r - H' r
    ops.axpby(1.0, r.view(), 1.0, v.view());    // v <- v + r
  }
  return v.to_host();
}

// The instances are drawn as documented: a goal (+1), two traps (-1), a decoy in the first
// reward, all distinct; J* and J_uniform bound the policies' utilities; Q*(nu) is the
// reference's fixed point.
TEST(GridworldAlignment, InstancesAndTheSoftOptimalPolicy) {
  GridworldAlignmentProblem<double> p(cpu(), spec(3, 4, 4));
  const index_t ns = p.states();
  for (index_t b = 0; b < 4; ++b) {
    int goals = 0, traps = 0, decoys = 0;
    for (index_t s = 0; s < ns; ++s) {
      const double u = p.utility()[b * ns + s], r = p.initial_reward()[b * ns + s];
      goals += u == 1.0, traps += u == -1.0, decoys += r == 1.0;
      EXPECT_FALSE(r == 1.0 && u != 0.0);
    }
    EXPECT_EQ(goals, 1);
    EXPECT_EQ(traps, 2);
    EXPECT_EQ(decoys, 1);
    EXPECT_GT(p.optimal_utility()[b], p.uniform_utility()[b]);
  }
  const std::vector<double> nu = test::random_vector<double>(ns * 4, 3);
  const std::vector<double> q = p.soft_optimal_q(nu);
  for (index_t b = 0; b < 4; ++b) {
    const Reference ref = reference(p, b);
    const std::vector<double> nub(nu.begin() + b * ns, nu.begin() + (b + 1) * ns);
    EXPECT_LT(test::distance(test::column(q, 4 * ns, b), ref.solve(nub)), 1e-9);
    const double j = p.true_utility(q)[b];
    EXPECT_LE(j, p.optimal_utility()[b] + 1e-9);
  }
}

// grad_y_g is the residual Q - T_nu Q; hv and jv are its transposed Jacobian products:
// <w, hv(v)> = <dPhi/dQ w, v> and <e, jv(v)> = <dPhi/dnu e, v>, by central differences.
TEST(GridworldAlignment, LowerProductsAreTransposedJacobians) {
  const index_t nb = 2;
  GridworldAlignmentProblem<double> p(cpu(), spec(3, 4, nb));
  auto exec = p.executor();
  const index_t ns = p.states(), nq = 4 * ns;
  const std::vector<double> nu0 = test::random_vector<double>(ns * nb, 1),
                            q0 = test::random_vector<double>(nq * nb, 2, -2, 2),
                            v0 = test::random_vector<double>(nq * nb, 3),
                            wq = test::random_vector<double>(nq * nb, 4),
                            wn = test::random_vector<double>(ns * nb, 5);
  Array<double> nu(exec, ns, nb, nu0), q(exec, nq, nb, q0), v(exec, nq, nb, v0),
      gy(exec, nq, nb), hv(exec, nq, nb), jv(exec, ns, nb);
  p.hvp_jvp(Batch{}, nu.view(), q.view(), v.view(), hv.view(), jv.view());
  const std::vector<double> h = hv.to_host(), j = jv.to_host();
  const auto residual = [&](const std::vector<double>& n, const std::vector<double>& qq) {
    nu.upload(n), q.upload(qq);
    p.grad_y_g(Batch{}, nu.view(), q.view(), gy.view());
    return gy.to_host();
  };
  const double eps = 1e-6;
  std::vector<double> qp = q0, qm = q0, np = nu0, nm = nu0;
  for (std::size_t i = 0; i < qp.size(); ++i) qp[i] += eps * wq[i], qm[i] -= eps * wq[i];
  for (std::size_t i = 0; i < np.size(); ++i) np[i] += eps * wn[i], nm[i] -= eps * wn[i];
  const std::vector<double> dq_p = residual(nu0, qp), dq_m = residual(nu0, qm),
                            dn_p = residual(np, q0), dn_m = residual(nm, q0);
  for (index_t b = 0; b < nb; ++b) {
    double lhs_q = 0, rhs_q = 0, lhs_n = 0, rhs_n = 0;
    for (index_t i = 0; i < nq; ++i) {
      const std::size_t k = static_cast<std::size_t>(b * nq + i);
      lhs_q += wq[k] * h[k];
      rhs_q += (dq_p[k] - dq_m[k]) / (2 * eps) * v0[k];
      rhs_n += (dn_p[k] - dn_m[k]) / (2 * eps) * v0[k];
    }
    for (index_t s = 0; s < ns; ++s) lhs_n += wn[b * ns + s] * j[b * ns + s];
    EXPECT_NEAR(lhs_q, rhs_q, 1e-7 * (1 + std::abs(rhs_q)));
    EXPECT_NEAR(lhs_n, rhs_n, 1e-7 * (1 + std::abs(rhs_n)));
  }
  // at Q*(nu) the residual vanishes and one step of 1 on it is soft value iteration
  const std::vector<double> star = p.soft_optimal_q(nu0);
  EXPECT_LT(test::norm(residual(nu0, star)), 1e-10);
}

// Many feedback batches: fx's mean is d E[l] / d nu and fy's the score term d E[l] / d Q of
// the exact expectation (2 x 2 grid, 3-step trajectories: every pair enumerated); without the
// score term fy is 0 although the exact one is far from it. Preference and utility feedback.
class GridworldFeedback : public ::testing::TestWithParam<bool> {};
TEST_P(GridworldFeedback, EstimatorsHaveTheirMeans) {
  const bool utility = GetParam();
  GridworldAlignmentProblem<double> with(cpu(), spec(2, 3, 1, true, utility)),
      without(cpu(), spec(2, 3, 1, false, utility));
  auto exec = with.executor();
  const index_t ns = with.states(), nq = 4 * ns, m = 256, batches = 400;
  const std::vector<double> nu0 = test::random_vector<double>(ns, 7, -1, 1),
                            q0 = test::random_vector<double>(nq, 8, -1, 1);
  Array<double> nu(exec, ns, 1, nu0), q(exec, nq, 1, q0), fx(exec, ns, 1), fy(exec, nq, 1),
      fy0(exec, nq, 1), score(exec, nq, 1);
  MinibatchSampler<double> sampler(exec, 9, with.upper_samples(), m);
  std::vector<std::vector<double>> fxs, fys;
  for (index_t k = 0; k < batches; ++k) {
    const Batch b = sampler.draw(SampleStream::upper, 0, k);
    with.grad_f(b, nu.view(), q.view(), fx.view(), fy.view());
    without.grad_f(b, nu.view(), q.view(), MatrixView<double>(), fy0.view());
    with.score_function_term(b, nu.view(), q.view(), score.view());
    fxs.push_back(fx.to_host());
    fys.push_back(fy.to_host());
    EXPECT_EQ(test::norm(fy0.to_host()), 0.0);
    EXPECT_LT(test::distance(score.to_host(), fys.back()), 1e-12);
  }
  const Reference ref = reference(with, 0);
  std::vector<double> ex, ey;
  ref.expected_loss(nu0, q0, &ex, &ey);
  // each component within 4.5 standard errors of the batch means
  const auto check = [&](const std::vector<std::vector<double>>& xs, const std::vector<double>& e) {
    for (std::size_t i = 0; i < e.size(); ++i) {
      double mean = 0, sq = 0;
      for (const auto& x : xs) mean += x[i] / batches;
      for (const auto& x : xs) sq += (x[i] - mean) * (x[i] - mean);
      const double se = std::sqrt(sq / (batches - 1) / batches);
      EXPECT_NEAR(mean, e[i], 4.5 * se + 1e-12) << "component " << i;
    }
  };
  check(fxs, ex);
  check(fys, ey);
  EXPECT_GT(test::norm(ey), 0.05);
  if (utility) {
    EXPECT_EQ(test::norm(fxs.front()), 0.0);
  }
}

// The implicit hypergradient fx + (dQ*/dnu)' fy, with the Neumann series on the products and
// the exact fx, fy, is dF/dnu of the exact F(nu) = E_{pi*(nu)} l (central differences); fx
// alone (reward learning) is measurably biased (with utility feedback it is 0).
TEST_P(GridworldFeedback, HypergradientNeedsTheScoreTerm) {
  GridworldAlignmentProblem<double> p(cpu(), spec(2, 3, 1, true, GetParam()));
  auto exec = p.executor();
  const index_t ns = p.states(), nq = 4 * ns;
  const Reference ref = reference(p, 0);
  const std::vector<double> nu0 = test::random_vector<double>(ns, 11, -1, 1);
  const std::vector<double> q0 = p.soft_optimal_q(nu0);
  std::vector<double> ex, ey;
  ref.expected_loss(nu0, q0, &ex, &ey);
  Array<double> nu(exec, ns, 1, nu0), q(exec, nq, 1, q0), jv(exec, ns, 1);
  Array<double> v(exec, nq, 1, neumann_solution(p, nu, q, ey));
  p.hvp_jvp(Batch{}, nu.view(), q.view(), v.view(), MatrixView<double>(), jv.view());
  std::vector<double> h = ex;
  const std::vector<double> j = jv.to_host();
  for (index_t s = 0; s < ns; ++s) h[s] -= j[s];
  std::vector<double> fd(static_cast<std::size_t>(ns));
  const double eps = 1e-5;
  for (index_t s = 0; s < ns; ++s) {
    std::vector<double> np = nu0, nm = nu0;
    np[s] += eps, nm[s] -= eps;
    fd[s] = (ref.upper_objective(np) - ref.upper_objective(nm)) / (2 * eps);
  }
  EXPECT_LT(test::relative_error(h, fd), 1e-6);
  EXPECT_GT(test::distance(ex, fd), 0.1 * test::norm(fd));
  EXPECT_GT(test::norm(fd), 1e-3);
}

// The row-column reward model (nu = Phi w, misspecified): the oracles in w are Phi' of those
// in nu - the hypergradient with the exact fx, fy equals dF/dw by finite differences of the
// reference at nu = Phi w, and the sampled fx's mean is Phi' of the exact one.
TEST(GridworldAlignment, RowColumnRewardIsTheChainRule) {
  GridworldAlignmentSpec s = spec(2, 3, 1);
  s.row_column_reward = true;
  GridworldAlignmentProblem<double> p(cpu(), s);
  auto exec = p.executor();
  const index_t ns = p.states(), nq = 4 * ns, nw = p.dim_x();
  ASSERT_EQ(nw, 4);
  const Reference ref = reference(p, 0);
  const std::vector<double> w0 = test::random_vector<double>(nw, 13, -1, 1);
  const std::vector<double> nu0 = p.state_reward(w0), q0 = p.soft_optimal_q(w0);
  for (index_t st = 0; st < ns; ++st)
    EXPECT_EQ(nu0[st], w0[st / 2] + w0[2 + st % 2]);
  std::vector<double> ex, ey;
  ref.expected_loss(nu0, q0, &ex, &ey);
  // h = Phi' fx - jv(v), jv already in w
  Array<double> w(exec, nw, 1, w0), q(exec, nq, 1, q0), jv(exec, nw, 1), fx(exec, nw, 1),
      fy(exec, nq, 1);
  Array<double> v(exec, nq, 1, neumann_solution(p, w, q, ey));
  p.hvp_jvp(Batch{}, w.view(), q.view(), v.view(), MatrixView<double>(), jv.view());
  std::vector<double> phi_ex(static_cast<std::size_t>(nw), 0.0);
  for (index_t st = 0; st < ns; ++st) phi_ex[st / 2] += ex[st], phi_ex[2 + st % 2] += ex[st];
  std::vector<double> h = phi_ex;
  const std::vector<double> j = jv.to_host();
  for (index_t i = 0; i < nw; ++i) h[i] -= j[i];
  std::vector<double> fd(static_cast<std::size_t>(nw));
  const double eps = 1e-5;
  for (index_t i = 0; i < nw; ++i) {
    std::vector<double> wp = w0, wm = w0;
    wp[i] += eps, wm[i] -= eps;
    fd[i] = (ref.upper_objective(p.state_reward(wp)) - ref.upper_objective(p.state_reward(wm))) /
            (2 * eps);
  }
  EXPECT_LT(test::relative_error(h, fd), 1e-6);
  // the sampled fx in w: its mean over many batches is Phi' of the exact d E[l] / d nu
  MinibatchSampler<double> sampler(exec, 9, p.upper_samples(), 256);
  std::vector<std::vector<double>> fxs;
  for (index_t k = 0; k < 200; ++k) {
    p.grad_f(sampler.draw(SampleStream::upper, 0, k), w.view(), q.view(), fx.view(), fy.view());
    fxs.push_back(fx.to_host());
  }
  for (index_t i = 0; i < nw; ++i) {
    double mean = 0, sq = 0;
    for (const auto& x : fxs) mean += x[i] / 200;
    for (const auto& x : fxs) sq += (x[i] - mean) * (x[i] - mean);
    EXPECT_NEAR(mean, phi_ex[i], 4.5 * std::sqrt(sq / 199 / 200) + 1e-12) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(PreferenceAndUtility, GridworldFeedback, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "utility" : "preference";
                         });

// Short runs on 3 x 3 gridworlds from the decoy's reward (whose policy is no better than the
// uniform one): with preference feedback reward learning aligns the policy; with utility
// feedback A-PARL does and reward learning, whose gradient is then 0, stays where it started.
// (A-PARL on preferences is measured, not asserted: bench/results/ says how it fares.)
TEST(GridworldAlignment, RunsAlignThePolicy) {
  const index_t nb = 4;
  const auto run = [&](const std::string& name, bool utility) {
    AlignmentOptions o;
    o.name = name;
    o.loop.iterations = 600;
    o.loop.upper_batch = 32;
    o.loop.independent_batches = true;
    o.loop.seed = 2;
    GridworldAlignmentSpec s = spec(3, 8, nb, true, utility);
    s.tau = 0.1;
    s.gamma = 0.9;
    s.slip = 0.1;
    apply_alignment_preset(o, s);
    GridworldAlignmentProblem<double> p(cpu(), s);
    const std::vector<double>& nu0 = p.initial_reward();
    const std::vector<double> q0 = p.soft_optimal_q(nu0);
    const SolveResult<double> r = make_alignment_solver(p, o)->run(nu0, q0);
    EXPECT_EQ(r.history.back().problem_metrics.size(), 2u);
    const std::vector<double> before = p.true_utility(q0),
                              after = p.true_utility(p.soft_optimal_q(r.x));
    // the evaluation kernel's metrics are the host policy evaluation of the final Q
    const std::vector<double> final_q = p.true_utility(r.y);
    std::vector<double> ratio, start;
    for (index_t b = 0; b < nb; ++b) {
      const double span = p.optimal_utility()[b] - p.uniform_utility()[b];
      ratio.push_back((after[b] - p.uniform_utility()[b]) / span);
      start.push_back((before[b] - p.uniform_utility()[b]) / span);
      EXPECT_NEAR(r.history.back().problem_metrics[0][b], final_q[b], 1e-9);
      EXPECT_NEAR(r.history.back().problem_metrics[1][b],
                  (final_q[b] - p.uniform_utility()[b]) / span, 1e-9);
    }
    return std::make_pair(ratio, start);
  };
  for (const auto& [name, utility, aligns] :
       {std::make_tuple("reward-learning", false, true), std::make_tuple("a-parl", true, true),
        std::make_tuple("reward-learning", true, false)}) {
    const auto [ratio, start] = run(name, utility);
    for (index_t b = 0; b < nb; ++b) {
      EXPECT_LT(start[b], 0.5) << name << " instance " << b;
      if (aligns)
        EXPECT_GT(ratio[b], 0.9) << name << (utility ? " (utility)" : "") << " instance " << b;
      else
        EXPECT_NEAR(ratio[b], start[b], 1e-12) << name << " (utility) instance " << b;
    }
  }
  GridworldAlignmentProblem<double> p(cpu(), spec(3, 8, 1, true));
  AlignmentOptions wrong;
  wrong.name = "reward-learning";
  EXPECT_THROW(make_alignment_solver(p, wrong), InvalidArgument);
  GridworldAlignmentSpec bad = spec(9, 8, 1);
  EXPECT_THROW(GridworldAlignmentProblem<double>(cpu(), bad), InvalidArgument);
  bad = spec(3, 65, 1);
  EXPECT_THROW(GridworldAlignmentProblem<double>(cpu(), bad), InvalidArgument);
  bad = spec(3, 8, 1);
  bad.gamma = 1.0;
  EXPECT_THROW(GridworldAlignmentProblem<double>(cpu(), bad), InvalidArgument);
}

// CUDA against the CPU: every oracle and the evaluation, on three gridworlds, with both reward
// models.
TEST(GridworldAlignment, CudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const index_t nb = 3;
  for (const bool row_column : {false, true}) {
    SCOPED_TRACE(row_column ? "row-column reward" : "state reward");
    GridworldAlignmentSpec sp = spec(4, 10, nb);
    sp.row_column_reward = row_column;
    GridworldAlignmentProblem<double> c(cpu(), sp), g(gpu, sp);
    const index_t ns = c.dim_x(), nq = 4 * c.states();
    const std::vector<double> nu0 = test::random_vector<double>(ns * nb, 1),
                              q0 = test::random_vector<double>(nq * nb, 2),
                              v0 = test::random_vector<double>(nq * nb, 3);
    std::vector<std::vector<double>> out[2];
    int side = 0;
    for (GridworldAlignmentProblem<double>* p : {&c, &g}) {
      auto exec = p->executor();
      Array<double> nu(exec, ns, nb, nu0), q(exec, nq, nb, q0), v(exec, nq, nb, v0),
          gy(exec, nq, nb), hv(exec, nq, nb), jv(exec, ns, nb), fx(exec, ns, nb), fy(exec, nq, nb),
          f(exec, nb, 1), gv(exec, nb, 1), metrics(exec, nb, 2);
      MinibatchSampler<double> sampler(exec, 5, p->upper_samples(), 32, nb);
      p->grad_y_g(Batch{}, nu.view(), q.view(), gy.view());
      p->hvp_jvp(Batch{}, nu.view(), q.view(), v.view(), hv.view(), jv.view());
      p->grad_f(sampler.draw(SampleStream::upper, 0, 3), nu.view(), q.view(), fx.view(), fy.view());
      p->values(Batch{}, Batch{}, nu.view(), q.view(), f.data(), gv.data());
      p->evaluation_metrics(nu.view(), q.view(), metrics.data());
      out[side++] = {gy.to_host(), hv.to_host(), jv.to_host(), fx.to_host(),
                     fy.to_host(), f.to_host(),  gv.to_host(), metrics.to_host()};
    }
    for (std::size_t i = 0; i < out[0].size(); ++i)
      EXPECT_LT(test::relative_error(out[1][i], out[0][i]), 1e-10) << i;
  }
}

}  // namespace
}  // namespace bilevel
