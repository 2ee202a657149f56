// Hypergradient estimators against closed forms (double, CPU): Neumann within its
// (1 - eta mu)^(Q+1) bound, CG exact after dy iterations, ITD equal to the unrolled closed form.
// CUDA parity of each estimator on minibatches where a device exists.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

template <typename T>
struct Harness {
  std::shared_ptr<Executor> exec;
  QuadraticData data;
  QuadraticProblem<T> problem;
  MinibatchSampler<T> lower, upper;
  index_t nb;

  Harness(std::shared_ptr<Executor> e, QuadraticData q, index_t instances, index_t batch = 0,
          std::uint64_t seed = 1)
      : exec(e), data(q), problem(e, q), lower(e, seed, q.n, batch), upper(e, seed, q.n, batch),
        nb(instances) {
    problem.reserve(nb, batch);
  }

  /// h at (x, y); optionally the linear-system solution v and the final y.
  std::vector<T> estimate(HypergradientEstimator<T>& est, const std::vector<T>& xh,
                          const std::vector<T>& yh, index_t iteration = 0,
                          std::vector<T>* v = nullptr, std::vector<T>* y_out = nullptr,
                          bool prepare = true) {
    Array<T> x(exec, data.dx, nb, xh), y(exec, data.dy, nb, yh), h(exec, data.dx, nb);
    if (prepare) est.prepare(problem, nb);
    est.estimate(EstimateContext<T>{problem, lower, upper, iteration}, x.view(), y.view(), h.view());
    if (v != nullptr) {
      const ConstMatrixView<T> vs = est.linear_system_solution();
      v->resize(static_cast<std::size_t>(vs.size()));
      exec->copy_to_host(v->data(), vs.data, v->size() * sizeof(T));
    }
    if (y_out != nullptr) *y_out = y.to_host();
    return h.to_host();
  }
};

TEST(NeumannEstimator, ErrorWithinTheGeometricBound) {
  const QuadraticData q = QuadraticData::random(4, 8, 100, 21);
  const auto [mu, big_l] = q.lower_hessian_spectrum();
  const double eta = 1.0 / big_l;
  Harness<double> hs(cpu(), q, 1);
  const std::vector<double> x = random_vector<double>(4, 1), y = random_vector<double>(8, 2);
  // v* = A^{-1} fy = A^{-1} A y = y, and h* = d (x - xh) + B y.
  double previous = 1e300;
  for (index_t terms : {0, 1, 3, 10, 30, 100}) {
    auto est = make_neumann_estimator<double>(NeumannOptions{terms, {eta}});
    std::vector<double> v;
    hs.estimate(*est, x, y, 0, &v);
    const double err = distance(v, y);
    const double bound = std::pow(1.0 - eta * mu, static_cast<double>(terms + 1)) * norm(y);
    SCOPED_TRACE("Q = " + std::to_string(terms));
    EXPECT_LE(err, bound * (1 + 1e-9) + 1e-14);
    EXPECT_LT(err, previous);
    previous = err;
  }
  EXPECT_LT(previous, 1e-6) << "100 terms should nearly solve the system";
}

TEST(CgEstimator, ExactAfterDyIterations) {
  const QuadraticData q = QuadraticData::random(5, 12, 60, 22);
  Harness<double> hs(cpu(), q, 2);
  std::vector<double> x = random_vector<double>(10, 3), y;
  for (int b = 0; b < 2; ++b) {  // y = y*(x): then h* = grad F(x)
    const std::vector<double> ys = q.solution_y(column(x, 5, b));
    y.insert(y.end(), ys.begin(), ys.end());
  }
  auto est = make_cg_estimator<double>(CgOptions{12, /*warm_start=*/false});
  const std::vector<double> h = hs.estimate(*est, x, y);
  for (int b = 0; b < 2; ++b)
    EXPECT_LT(relative_error(column(h, 5, b), q.hypergradient(column(x, 5, b))), 1e-10);
  // fewer iterations are measurably inexact (the test can fail)
  auto short_est = make_cg_estimator<double>(CgOptions{2, false});
  const std::vector<double> h2 = hs.estimate(*short_est, x, y);
  EXPECT_GT(relative_error(column(h2, 5, 0), q.hypergradient(column(x, 5, 0))), 1e-6);
}

TEST(CgEstimator, WarmStartKeepsAConvergedSolution) {
  const QuadraticData q = QuadraticData::random(3, 6, 40, 23);
  Harness<double> hs(cpu(), q, 1);
  const std::vector<double> x = random_vector<double>(3, 4), y = random_vector<double>(6, 5);
  auto est = make_cg_estimator<double>(CgOptions{6, true});
  std::vector<double> v;
  hs.estimate(*est, x, y, 0, &v);
  EXPECT_LT(relative_error(v, y), 1e-10);
  // a second call starts from the solution: zero residual, zero denominators, no NaN
  hs.estimate(*est, x, y, 1, &v, nullptr, /*prepare=*/false);
  EXPECT_LT(relative_error(v, y), 1e-10);
}

TEST(ItdEstimator, MatchesTheUnrolledClosedForm) {
  const QuadraticData q = QuadraticData::random(4, 7, 50, 24);
  const auto [mu, big_l] = q.lower_hessian_spectrum();
  const double alpha = 0.7 / big_l;
  const index_t steps = 15;
  Harness<double> hs(cpu(), q, 3);
  const std::vector<double> x = random_vector<double>(12, 6), y0(21, 0.0);
  auto est = make_itd_estimator<double>(ItdOptions{steps, {alpha}});
  std::vector<double> y_out;
  const std::vector<double> h = hs.estimate(*est, x, y0, 0, nullptr, &y_out);
  for (int b = 0; b < 3; ++b) {
    const std::vector<double> want = q.itd_hypergradient(column(x, 4, b), alpha, steps);
    EXPECT_LT(relative_error(column(h, 4, b), want), 1e-10);
    // and the unrolled gradient differs from the true one (D steps do not reach y*)
    EXPECT_GT(relative_error(want, q.hypergradient(column(x, 4, b))), 1e-6);
  }
  (void)mu;
}

/// Every estimator on minibatches, B = 3, CUDA against CPU with the same seed.
template <typename T>
class EstimatorParity : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(EstimatorParity, Precisions);

TYPED_TEST(EstimatorParity, CudaMatchesCpu) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  const QuadraticData q = QuadraticData::random(40, 70, 300, 25);
  const std::vector<T> x = random_vector<T>(40 * 3, 7), y = random_vector<T>(70 * 3, 8);
  const auto make = [](int which) -> std::unique_ptr<HypergradientEstimator<T>> {
    if (which == 0) return make_neumann_estimator<T>(NeumannOptions{10, {0.1, 0.2, 0.3}});
    if (which == 1) return make_cg_estimator<T>(CgOptions{10, true});
    return make_itd_estimator<T>(ItdOptions{10, {0.1}});
  };
  for (int which = 0; which < 3; ++which) {
    Harness<T> on_cpu(cpu(), q, 3, 64, 5), on_gpu(gpu, q, 3, 64, 5);
    auto a = make(which), b = make(which);
    SCOPED_TRACE(a->name());
    const std::vector<T> want = on_cpu.estimate(*a, x, y, 4);
    const std::vector<T> got = on_gpu.estimate(*b, x, y, 4);
    EXPECT_LT(relative_error(got, want), 10 * parity_tolerance<T>());
  }
}

}  // namespace
}  // namespace bilevel::test
