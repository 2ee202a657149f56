// The double-loop solver (stocBiO, AID-CG, ITD-BiO) on problems with known answers; batching of
// instances; backend parity of whole runs; divergence and argument errors.
#include "test_support.hpp"

#include "../host/linalg/dense.hpp"

namespace bilevel::test {
namespace {

/// dx = 5, dy = 10, n = 200, mu = 0.5: the spectrum of A lies in about [1.1, 2.1].
QuadraticData standard_problem() { return QuadraticData::random(5, 10, 200, 31); }

template <typename T>
std::vector<T> repeat(const std::vector<double>& v, index_t times) {
  std::vector<T> out;
  for (index_t b = 0; b < times; ++b) out.insert(out.end(), v.begin(), v.end());
  return out;
}

AlgorithmOptions deterministic_options(const QuadraticData& q, const std::string& name) {
  const auto [mu, big_l] = q.lower_hessian_spectrum();
  AlgorithmOptions o;
  o.name = name;
  o.loop.iterations = 150;
  o.loop.inner_steps = name == "itd-bio" ? 40 : 10;
  o.loop.inner_step = {1.0 / big_l};
  o.loop.outer_step = {0.25};
  o.neumann = NeumannOptions{40, {1.0 / big_l}};  // bias (1 - mu/L)^41 < 1e-12
  o.cg = CgOptions{q.dy, true};
  o.loop.reference_x = q.solution_x();
  (void)mu;
  return o;
}

class DeterministicQuadratic : public ::testing::TestWithParam<std::string> {};

TEST_P(DeterministicQuadratic, ReachesTheSolution) {
  const QuadraticData q = standard_problem();
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  const AlgorithmOptions o = deterministic_options(q, GetParam());
  auto solver = make_solver(p, o);
  const std::vector<double> x0(5, 0.0), y0(10, 0.0);
  const SolveResult<double> r = solver->run(x0, y0);
  const std::vector<double> xs = q.solution_x();
  EXPECT_LT(distance(r.x, xs), 1e-6);
  EXPECT_GT(norm(xs), 0.1) << "the test must start far from the answer";
  ASSERT_EQ(r.history.size(), 1u);
  EXPECT_LT(r.history.back().distance_to_solution[0], 1e-6);
  EXPECT_LT(relative_error(r.y, q.solution_y(xs)), 1e-6) << "y tracks y*(x)";
}

INSTANTIATE_TEST_SUITE_P(Algorithms, DeterministicQuadratic,
                         ::testing::Values("stocbio", "aid-cg", "itd-bio"));

TEST(StocBio, IdentityProblemConvergesToHalfOnes) {
  auto exec = cpu();
  QuadraticProblem<double> p(exec, QuadraticData::identity(6));
  AlgorithmOptions o;
  o.loop.iterations = 100;
  o.loop.inner_steps = 5;
  o.loop.inner_step = {0.5};
  o.loop.outer_step = {0.4};
  o.neumann = NeumannOptions{40, {0.5}};
  const SolveResult<double> r = make_solver(p, o)->run(std::vector<double>(6, 3.0),
                                                       std::vector<double>(6, -1.0));
  for (double v : r.x) EXPECT_NEAR(v, 0.5, 1e-6);
}

/// Stochastic stocBiO with constant steps ends in a noise ball around x*. Its radius follows
/// from the variance of the hypergradient estimate at the solution: for SGD on a quadratic with
/// Hessian H_F (smallest eigenvalue mu_F) and step beta, E||x - x*||^2 ~ beta tr(Sigma) /
/// (2 mu_F). Sigma is measured here with the library's own estimator at (x*, y*(x*)); the lower
/// level's own noise adds to it, hence the factor 4 of slack. A lower bound shows the noise is
/// real (a sampler that returned full batches would fail it).
TEST(StocBio, StochasticQuadraticWithinTheVarianceBall) {
  const QuadraticData q = standard_problem();
  const auto [mu, big_l] = q.lower_hessian_spectrum();
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  const index_t batch = 16;
  const double beta = 0.05;
  const NeumannOptions neumann{20, {0.5 / big_l}};

  // Sigma at the solution, from 400 independent estimates.
  const std::vector<double> xs = q.solution_x(), ys = q.solution_y(xs);
  std::vector<std::vector<double>> samples;
  {
    MinibatchSampler<double> lower(exec, 99, q.n, batch), upper(exec, 99, q.n, batch);
    p.reserve(1, batch);
    auto est = make_neumann_estimator<double>(neumann);
    est->prepare(p, 1);
    Array<double> x(exec, 5, 1, xs), y(exec, 10, 1, ys), h(exec, 5, 1);
    for (index_t k = 0; k < 400; ++k) {
      est->estimate(EstimateContext<double>{p, lower, upper, k}, x.view(), y.view(), h.view());
      samples.push_back(h.to_host());
    }
  }
  std::vector<double> mean(5, 0.0);
  for (const auto& s : samples)
    for (int i = 0; i < 5; ++i) mean[i] += s[i] / samples.size();
  double trace = 0.0;
  for (const auto& s : samples)
    for (int i = 0; i < 5; ++i) trace += (s[i] - mean[i]) * (s[i] - mean[i]) / (samples.size() - 1);
  // mu_F = smallest eigenvalue of B A^{-1} B' + d I
  const std::vector<double> ainv_bt = linalg::spd_solve(
      q.lower_hessian(), linalg::matmul(q.b, linalg::identity(5), 10, 5, 5, true), 10, 5);
  std::vector<double> hf = linalg::matmul(q.b, ainv_bt, 5, 5, 10);
  for (int i = 0; i < 5; ++i) hf[i + i * 5] += q.d;
  const double mu_f = linalg::symmetric_eigenvalues(hf, 5).front();
  const double ball = beta * trace / (2.0 * mu_f);

  AlgorithmOptions o;
  o.loop.iterations = 600;
  o.loop.inner_steps = 5;
  o.loop.inner_step = {0.5 / big_l};
  o.loop.outer_step = {beta};
  o.loop.lower_batch = o.loop.upper_batch = batch;
  o.neumann = neumann;
  double mean_sq = 0.0;
  const int runs = 8;
  for (int seed = 0; seed < runs; ++seed) {
    o.loop.seed = 1000 + seed;
    const SolveResult<double> r = make_solver(p, o)->run(std::vector<double>(5, 0.0),
                                                         std::vector<double>(10, 0.0));
    mean_sq += std::pow(distance(r.x, xs), 2) / runs;
  }
  RecordProperty("ball", std::to_string(ball));
  RecordProperty("mean_sq", std::to_string(mean_sq));
  EXPECT_LT(mean_sq, 4.0 * ball) << "E||x - x*||^2 = " << mean_sq << ", predicted " << ball;
  EXPECT_GT(mean_sq, 0.05 * ball) << "E||x - x*||^2 = " << mean_sq << ", predicted " << ball;
  EXPECT_LT(std::sqrt(mean_sq), 0.1 * norm(xs)) << "the run must still get close";
  (void)mu;
}

/// B = 4 instances with their own step sizes follow the trajectories of four B = 1 runs.
template <typename T>
void check_batched_equals_single(const std::shared_ptr<Executor>& exec, double tol) {
  const QuadraticData q = standard_problem();
  QuadraticProblem<T> p(exec, q);
  AlgorithmOptions o;
  o.loop.iterations = 40;
  o.loop.inner_steps = 4;
  o.loop.lower_batch = o.loop.upper_batch = 32;
  o.loop.seed = 5;
  const std::vector<double> alphas{0.1, 0.2, 0.3, 0.4}, betas{0.05, 0.1, 0.15, 0.2},
      etas{0.1, 0.2, 0.3, 0.4};
  o.loop.inner_step = alphas;
  o.loop.outer_step = betas;
  o.neumann = NeumannOptions{5, etas};
  const std::vector<T> x0 = random_vector<T>(5 * 4, 1), y0 = random_vector<T>(10 * 4, 2);
  const SolveResult<T> batched = make_solver(p, o)->run(x0, y0);
  for (index_t b = 0; b < 4; ++b) {
    AlgorithmOptions ob = o;
    ob.loop.inner_step = {alphas[b]};
    ob.loop.outer_step = {betas[b]};
    ob.neumann.eta = {etas[b]};
    const SolveResult<T> single = make_solver(p, ob)->run(column(x0, 5, b), column(y0, 10, b));
    SCOPED_TRACE("instance " + std::to_string(b));
    EXPECT_LT(relative_error(column(batched.x, 5, b), single.x), tol);
    EXPECT_LT(relative_error(column(batched.y, 10, b), single.y), tol);
  }
  // the instances really differ
  EXPECT_GT(relative_error(column(batched.x, 5, 0), column(batched.x, 5, 3)), 1e-3);
}

TEST(StocBio, BatchedInstancesFollowSingleRuns) { check_batched_equals_single<double>(cpu(), 1e-12); }

TEST(StocBio, BatchedInstancesFollowSingleRunsOnCuda) {
  BILEVEL_REQUIRE_CUDA(gpu);
  check_batched_equals_single<double>(gpu, 1e-10);
}

template <typename T>
class RunParity : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(RunParity, Precisions);

/// A whole stochastic stocBiO run (B = 3, 50 iterations) on both backends, same seed: the
/// trajectories agree to rounding (relative 1e-9 in double, 1e-3 in float after 50 iterations
/// of accumulated reordering).
TYPED_TEST(RunParity, StocBioRunAgreesOnBothBackends) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  const QuadraticData q = QuadraticData::random(64, 96, 2000, 41);
  AlgorithmOptions o;
  o.loop.iterations = 50;
  o.loop.inner_steps = 5;
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {0.05, 0.1, 0.2};
  o.loop.lower_batch = o.loop.upper_batch = 128;
  o.loop.seed = 17;
  o.neumann = NeumannOptions{5, {0.1}};
  const std::vector<T> x0 = random_vector<T>(64 * 3, 3), y0 = random_vector<T>(96 * 3, 4);
  QuadraticProblem<T> pc(cpu(), q), pg(gpu, q);
  const SolveResult<T> rc = make_solver(pc, o)->run(x0, y0);
  const SolveResult<T> rg = make_solver(pg, o)->run(x0, y0);
  const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-9;
  EXPECT_LT(relative_error(rg.x, rc.x), tol);
  EXPECT_LT(relative_error(rg.y, rc.y), tol);
}

/// One diverging instance of three is marked (its metrics NaN from then on) while the others
/// go on and reach what they reach alone; when every instance diverges the run throws,
/// naming the iteration and the instance.
TEST(Solver, ADivergingInstanceIsMarkedAndTheOthersGoOn) {
  const QuadraticData q = standard_problem();
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  AlgorithmOptions o;
  o.loop.iterations = 500;
  o.loop.eval_every = 10;
  o.loop.checkpoint_every = 100;
  o.loop.outer_step = {0.1, 0.1, 50.0};  // instance 2 explodes
  std::vector<IterationMetrics> seen;
  std::vector<Checkpoint<double>> saved;
  const std::vector<double> x0(15, 0.0), y0(30, 0.0);
  const SolveResult<double> r = make_solver(p, o)->run(
      x0, y0, [&](const IterationMetrics& m) { seen.push_back(m); }, {},
      [&](const Checkpoint<double>& c) { saved.push_back(c); });
  EXPECT_EQ(r.diverged_at[0], -1);
  EXPECT_EQ(r.diverged_at[1], -1);
  ASSERT_GT(r.diverged_at[2], 0);
  EXPECT_NE(r.divergence[2].find("instance 2"), std::string::npos) << r.divergence[2];
  EXPECT_TRUE(std::isnan(seen.back().upper_value[2]));
  EXPECT_TRUE(std::isfinite(seen.back().upper_value[0]));
  // the healthy instances are what a run of them alone gives
  o.loop.outer_step = {0.1};
  o.loop.checkpoint_every = 0;
  const SolveResult<double> alone = make_solver(p, o)->run(std::vector<double>(5, 0.0),
                                                           std::vector<double>(10, 0.0));
  EXPECT_LT(relative_error(column(r.x, 5, 0), alone.x), 1e-12);
  EXPECT_LT(relative_error(column(r.x, 5, 1), alone.x), 1e-12);
  // checkpoints stay finite: the diverged instance is saved at its start
  ASSERT_FALSE(saved.empty());
  for (double v : saved.back().x) EXPECT_TRUE(std::isfinite(v));

  o.loop.outer_step = {50.0, 60.0};
  try {
    make_solver(p, o)->run(std::vector<double>(10, 0.0), std::vector<double>(20, 0.0));
    FAIL() << "steps of 50 and 60 must diverge";
  } catch (const DivergenceError& e) {
    EXPECT_GT(e.iteration(), 0);
    EXPECT_NE(std::string(e.what()).find("instance"), std::string::npos) << e.what();
  }
}

/// Finite but huge metrics are divergence too: the limit is what decides.
TEST(Solver, MetricsBeyondTheDivergenceLimitAreDivergence) {
  const QuadraticData q = standard_problem();
  QuadraticProblem<double> p(cpu(), q);
  AlgorithmOptions o;
  o.loop.iterations = 20;
  o.loop.eval_every = 10;
  o.loop.divergence_limit = 1e-6;  // any nonzero f exceeds it
  try {
    make_solver(p, o)->run(std::vector<double>(5, 1.0), std::vector<double>(10, 1.0));
    FAIL() << "f beyond the limit must stop the run";
  } catch (const DivergenceError& e) {
    EXPECT_EQ(e.iteration(), 10);
    EXPECT_NE(std::string(e.what()).find("beyond the divergence limit"), std::string::npos) << e.what();
  }
  o.loop.divergence_limit = 1e20;
  EXPECT_NO_THROW(make_solver(p, o)->run(std::vector<double>(5, 1.0), std::vector<double>(10, 1.0)));
}

/// Counts its calls and leaves h = 0.
class CountingEstimator final : public HypergradientEstimator<double> {
 public:
  explicit CountingEstimator(int* calls) : calls_(calls) {}
  std::string name() const override { return "counting"; }
  void prepare(Problem<double>&, index_t) override {}
  void estimate(const EstimateContext<double>& ctx, ConstMatrixView<double>, MatrixView<double>,
                MatrixView<double> h) override {
    ++*calls_;
    ctx.problem.executor()->ops<double>().fill(h, 0.0);
  }

 private:
  int* calls_;
};

/// Metrics are copied back without waiting: the observer sees evaluation k once the iterations
/// up to the next evaluation are enqueued (here: have run), in order, all of them. An inspector
/// (which reads x and y) gets each evaluation at once.
TEST(Solver, EvaluationsAreReadOneEvaluationLaterUnlessInspected) {
  const QuadraticData q = standard_problem();
  QuadraticProblem<double> p(cpu(), q);
  ScheduleOptions loop;
  loop.iterations = 30;
  loop.eval_every = 10;
  for (const bool inspect : {false, true}) {
    int calls = 0;
    std::vector<std::pair<index_t, int>> seen;  // (evaluated iteration, estimates run by then)
    Solver<double> s(p, std::make_unique<CountingEstimator>(&calls), loop);
    const auto observe = [&](const IterationMetrics& m) { seen.emplace_back(m.iteration, calls); };
    Solver<double>::Inspector inspector;
    if (inspect) inspector = [](const IterationMetrics&, ConstMatrixView<double>, ConstMatrixView<double>) {};
    const SolveResult<double> r = s.run(std::vector<double>(5, 0.0), std::vector<double>(10, 0.0),
                                        observe, inspector);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(r.history.size(), 3u);
    for (std::size_t e = 0; e < 3; ++e) EXPECT_EQ(seen[e].first, index_t(10 * (e + 1)));
    if (inspect) {
      EXPECT_EQ(seen[0].second, 10);
      EXPECT_EQ(seen[1].second, 20);
    } else {
      EXPECT_EQ(seen[0].second, 20) << "read at the next evaluation";
      EXPECT_EQ(seen[1].second, 30);
    }
    EXPECT_EQ(seen[2].second, 30);
  }
}

TEST(Solver, RejectsBadArguments) {
  const QuadraticData q = standard_problem();
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  AlgorithmOptions o;
  o.name = "sgd-magic";
  try {
    make_solver(p, o);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown algorithm 'sgd-magic'"), std::string::npos);
  }
  o.name = "stocbio";
  o.loop.outer_step = {0.1, 0.2};  // 2 values for 3 instances
  try {
    make_solver(p, o)->run(std::vector<double>(15, 0.0), std::vector<double>(30, 0.0));
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("outer_step (beta): expected 1 value or one per instance (3), got 2"),
              std::string::npos)
        << e.what();
  }
  o.loop.outer_step = {0.1};
  EXPECT_THROW(make_solver(p, o)->run(std::vector<double>(7, 0.0), std::vector<double>(10, 0.0)),
               InvalidArgument);
  o.loop.iterations = -1;
  EXPECT_THROW(make_solver(p, o), InvalidArgument);
}

}  // namespace
}  // namespace bilevel::test
