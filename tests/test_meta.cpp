// Meta-learning: the batched MLP's products against finite differences, the problem's oracles
// (ANIL's head-only ones against the full network), MAML's meta-gradient against a finite-
// difference derivative of the post-adaptation loss, FOMAML's second-order gap, iMAML's
// convergence to the implicit gradient, batched tasks against single-task runs, the sinusoid
// sampler, and a short sinusoid meta-training run that beats the pre-trained baseline.
#include "test_support.hpp"

#include "host/linalg/dense.hpp"
#include "kernels/meta_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>

namespace bilevel {
namespace {

using test::cpu;

/// Random tasks for a network with `in` inputs and `out` outputs.
std::vector<MetaTask> random_tasks(index_t count, index_t in, index_t out, index_t k, index_t q,
                                   std::uint64_t seed) {
  std::vector<MetaTask> tasks;
  for (index_t b = 0; b < count; ++b) {
    MetaTask t;
    const std::uint64_t s = seed + 10 * static_cast<std::uint64_t>(b);
    t.support_x = test::random_vector<double>(static_cast<std::size_t>(in * k), s + 1, -2, 2);
    t.support_y = test::random_vector<double>(static_cast<std::size_t>(out * k), s + 2, -1, 1);
    t.query_x = test::random_vector<double>(static_cast<std::size_t>(in * q), s + 3, -2, 2);
    t.query_y = test::random_vector<double>(static_cast<std::size_t>(out * q), s + 4, -1, 1);
    tasks.push_back(t);
  }
  return tasks;
}

MetaMlpSpec small_spec(Activation act, bool head_only = false, double proximal = 0.0) {
  MetaMlpSpec s;
  s.mlp.widths = {2, 5, 4, 3};
  s.mlp.activation = act;
  s.adapt_head_only = head_only;
  s.proximal = proximal;
  s.support = 6;
  s.query = 5;
  return s;
}

/// P x B parameters: task b's start values plus a little per-task noise.
std::vector<double> task_parameters(const MlpSpec& spec, index_t tasks, std::uint64_t seed) {
  const std::vector<double> base = mlp_initial_parameters(spec, seed);
  std::vector<double> p;
  for (index_t b = 0; b < tasks; ++b) {
    const std::vector<double> noise =
        test::random_vector<double>(base.size(), seed + 100 + static_cast<std::uint64_t>(b), -0.3, 0.3);
    for (std::size_t i = 0; i < base.size(); ++i) p.push_back(base[i] + noise[i]);
  }
  return p;
}

TEST(MlpSpec, LayoutOfTheParameters) {
  MlpSpec s;  // 1-40-40-1
  EXPECT_EQ(s.parameters(), 40 + 40 + 1600 + 40 + 40 + 1);
  EXPECT_EQ(s.weight_offset(1), 0);
  EXPECT_EQ(s.bias_offset(1), 40);
  EXPECT_EQ(s.weight_offset(2), 80);
  EXPECT_EQ(s.bias_offset(2), 1680);
  EXPECT_EQ(s.head_offset(), 1720);
  EXPECT_EQ(s.head_size(), 41);
  const std::vector<double> p = mlp_initial_parameters(s, 3);
  // Glorot range, zero biases, seeded
  EXPECT_LE(std::abs(*std::max_element(p.begin(), p.begin() + 40)), std::sqrt(6.0 / 41));
  EXPECT_EQ(p[40], 0.0);
  EXPECT_EQ(p, mlp_initial_parameters(s, 3));
  EXPECT_NE(p, mlp_initial_parameters(s, 4));
  MlpSpec bad;
  bad.widths = {1, 0, 1};
  EXPECT_THROW(bad.validate(), InvalidArgument);
  EXPECT_THROW(parse_activation("sigmoid"), InvalidArgument);
}

/// Targets made one-hot (the largest entry of each sample becomes 1, the others 0).
std::vector<MetaTask> one_hot(std::vector<MetaTask> tasks, index_t classes) {
  for (MetaTask& t : tasks)
    for (std::vector<double>* y : {&t.support_y, &t.query_y})
      for (std::size_t i = 0; i < y->size(); i += static_cast<std::size_t>(classes)) {
        const auto first = y->begin() + static_cast<std::ptrdiff_t>(i);
        const auto best = std::max_element(first, first + classes);
        for (auto it = first; it != first + classes; ++it) *it = it == best ? 1.0 : 0.0;
      }
  return tasks;
}

class MlpProducts
    : public ::testing::TestWithParam<std::tuple<Activation, OutputLoss>> {};

// grad L and H d of every task against central differences of L and grad L (double).
TEST_P(MlpProducts, GradientAndHessianProductMatchFiniteDifferences) {
  const index_t nb = 3;
  MetaMlpSpec spec = small_spec(std::get<0>(GetParam()));
  spec.mlp.loss = std::get<1>(GetParam());
  MetaMlpProblem<double> problem(cpu(), spec, nb);
  problem.set_tasks(spec.mlp.loss == OutputLoss::cross_entropy
                        ? one_hot(random_tasks(nb, 2, 3, 6, 5, 11), 3)
                        : random_tasks(nb, 2, 3, 6, 5, 11));
  const index_t p = problem.dim_x();
  const std::vector<double> phi0 = task_parameters(problem.spec().mlp, nb, 5);
  auto exec = problem.executor();
  Array<double> phi(exec, p, nb, phi0), grad(exec, p, nb), out(exec, p, nb), values(exec, nb, 1);
  problem.loss_gradient(false, phi.view(), grad.view());
  const std::vector<double> g = grad.to_host();
  // dL/dphi_i by central differences, all tasks at once
  const double eps = 1e-6;
  std::vector<double> fd(g.size());
  for (index_t i = 0; i < p; ++i) {
    std::vector<double> plus = phi0, minus = phi0;
    for (index_t b = 0; b < nb; ++b) plus[i + b * p] += eps, minus[i + b * p] -= eps;
    phi.upload(plus);
    problem.loss_values(false, phi.view(), values.data());
    const std::vector<double> lp = values.to_host();
    phi.upload(minus);
    problem.loss_values(false, phi.view(), values.data());
    const std::vector<double> lm = values.to_host();
    for (index_t b = 0; b < nb; ++b) fd[i + b * p] = (lp[b] - lm[b]) / (2 * eps);
  }
  EXPECT_LT(test::relative_error(g, fd), 1e-7);

  // H d against (grad(phi + e d) - grad(phi - e d)) / 2e
  const std::vector<double> d = test::random_vector<double>(g.size(), 17);
  Array<double> dir(exec, p, nb, d);
  phi.upload(phi0);
  problem.loss_hvp(false, phi.view(), dir.view(), out.view());
  const std::vector<double> hd = out.to_host();
  std::vector<double> plus = phi0, minus = phi0;
  for (std::size_t i = 0; i < d.size(); ++i) plus[i] += eps * d[i], minus[i] -= eps * d[i];
  phi.upload(plus);
  problem.loss_gradient(false, phi.view(), grad.view());
  const std::vector<double> gp = grad.to_host();
  phi.upload(minus);
  problem.loss_gradient(false, phi.view(), grad.view());
  const std::vector<double> gm = grad.to_host();
  std::vector<double> fdh(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) fdh[i] = (gp[i] - gm[i]) / (2 * eps);
  EXPECT_LT(test::relative_error(hd, fdh), 1e-6);
  // the Hessian is symmetric: <d2, H d> = <d, H d2>
  const std::vector<double> d2 = test::random_vector<double>(g.size(), 23);
  Array<double> dir2(exec, p, nb, d2), out2(exec, p, nb);
  phi.upload(phi0);
  problem.loss_hvp(false, phi.view(), dir2.view(), out2.view());
  const std::vector<double> hd2 = out2.to_host();
  for (index_t b = 0; b < nb; ++b) {
    double a = 0, c = 0;
    for (index_t i = 0; i < p; ++i) a += d2[i + b * p] * hd[i + b * p], c += d[i + b * p] * hd2[i + b * p];
    EXPECT_NEAR(a, c, 1e-10 * std::max(1.0, std::abs(a)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    ActivationsAndLosses, MlpProducts,
    ::testing::Combine(::testing::Values(Activation::relu, Activation::tanh),
                       ::testing::Values(OutputLoss::squared, OutputLoss::cross_entropy)),
    [](const auto& info) {
      return to_string(std::get<0>(info.param)) +
             (std::get<1>(info.param) == OutputLoss::squared ? "_squared" : "_cross_entropy");
    });

/// A small labelled data set: `classes` classes of `per_class` samples, `features` features
/// (sample i's features encode i, so a gathered column names its sample).
Dataset labelled_data(int classes, index_t per_class, index_t features) {
  Dataset d;
  d.source = "test data";
  d.classes = classes;
  d.features = features;
  d.samples = classes * per_class;
  for (index_t i = 0; i < d.samples; ++i) {
    d.labels.push_back(static_cast<std::int32_t>((i * 7) % classes));
    for (index_t f = 0; f < features; ++f) d.x.push_back(static_cast<float>(i * 10 + f));
  }
  return d;
}

// Episodes: way j of a task is one class of the split (distinct classes, label j), its
// samples are distinct members of that class, inputs are the scaled features of those samples.
TEST(Episodes, WaysAreDistinctClassesOfTheSplitWithDistinctSamples) {
  const Dataset data = labelled_data(8, 12, 3);
  EpisodeSpec e;
  e.classes = {1, 3, 4, 6, 7};
  e.ways = 4, e.shots = 2, e.queries = 3;
  e.scale = 0.5;
  MetaMlpSpec spec;
  spec.mlp.widths = {3, 8, 4};
  spec.mlp.loss = OutputLoss::cross_entropy;
  spec.seed = 9;
  MetaMlpProblem<double> problem(cpu(), spec, 20, data, e);
  EXPECT_EQ(problem.spec().support, 8);
  EXPECT_EQ(problem.spec().query, 12);
  problem.sample_tasks(5);
  const std::vector<MetaTask> tasks = problem.current_tasks();
  std::set<std::vector<int>> orders;
  for (const MetaTask& t : tasks) {
    std::vector<int> way_class(4, -1);
    std::set<index_t> samples;
    const auto visit = [&](const std::vector<double>& x, const std::vector<double>& y, index_t n) {
      for (index_t i = 0; i < n; ++i) {
        const index_t sample = static_cast<index_t>(std::lround(x[i * 3] / 0.5 / 10));
        EXPECT_DOUBLE_EQ(x[i * 3 + 2], 0.5 * (sample * 10 + 2));
        const int label = data.labels[static_cast<std::size_t>(sample)];
        EXPECT_NE(std::find(e.classes.begin(), e.classes.end(), label), e.classes.end());
        const auto way = std::max_element(y.begin() + i * 4, y.begin() + (i + 1) * 4) - (y.begin() + i * 4);
        EXPECT_DOUBLE_EQ(std::accumulate(y.begin() + i * 4, y.begin() + (i + 1) * 4, 0.0), 1.0);
        if (way_class[way] < 0) way_class[way] = label;
        EXPECT_EQ(way_class[way], label) << "way " << way << " mixes classes";
        EXPECT_TRUE(samples.insert(sample).second) << "sample " << sample << " twice in a task";
      }
    };
    visit(t.support_x, t.support_y, 8);
    visit(t.query_x, t.query_y, 12);
    EXPECT_EQ(std::set<int>(way_class.begin(), way_class.end()).size(), 4u);
    orders.insert(way_class);
  }
  EXPECT_GT(orders.size(), 5u);  // class orders vary between tasks
  // the nearest-centroid baseline classifies well-separated clusters perfectly
  std::vector<MetaTask> clusters = tasks;
  for (MetaTask& t : clusters) {
    for (std::size_t i = 0; i < t.support_x.size(); ++i)
      t.support_x[i] = static_cast<double>(std::max_element(t.support_y.begin() + (i / 3) * 4, t.support_y.begin() + (i / 3 + 1) * 4) - (t.support_y.begin() + (i / 3) * 4));
    for (std::size_t i = 0; i < t.query_x.size(); ++i)
      t.query_x[i] = static_cast<double>(std::max_element(t.query_y.begin() + (i / 3) * 4, t.query_y.begin() + (i / 3 + 1) * 4) - (t.query_y.begin() + (i / 3) * 4));
  }
  for (double a : nearest_centroid_accuracy(clusters, 3, 4)) EXPECT_DOUBLE_EQ(a, 1.0);
  // a split without enough classes, or a network of the wrong shape, is refused
  EpisodeSpec small = e;
  small.classes = {1, 3};
  EXPECT_THROW(MetaMlpProblem<double>(cpu(), spec, 2, data, small), InvalidArgument);
  MetaMlpSpec wrong = spec;
  wrong.mlp.widths = {3, 8, 5};
  EXPECT_THROW(MetaMlpProblem<double>(cpu(), wrong, 2, data, e), InvalidArgument);
}

/// One hypergradient estimate of `estimator` on `problem` at x (one column repeated) from the
/// start of adaptation (begin_iteration without new tasks): h (dx x B), per task.
template <typename T>
std::vector<T> estimate_once(MetaMlpProblem<T>& problem, HypergradientEstimator<T>& estimator,
                             const std::vector<T>& x_columns, index_t solver_inner_steps = 0,
                             double alpha = 0.0) {
  auto exec = problem.executor();
  const index_t nb = problem.tasks();
  Array<T> x(exec, problem.dim_x(), nb, x_columns), y(exec, problem.dim_y(), nb),
      h(exec, problem.dim_x(), nb), gy(exec, problem.dim_y(), nb);
  MinibatchSampler<T> lower(exec, 0, 0, 0), upper(exec, 0, 0, 0);
  estimator.prepare(problem, nb);
  problem.begin_iteration(nullptr, x.view(), y.view());
  for (index_t t = 0; t < solver_inner_steps; ++t) {
    problem.grad_y_g(Batch{}, x.view(), y.view(), gy.view());
    exec->template ops<T>().axpby(static_cast<T>(-alpha), gy.view(), T(1), y.view());
  }
  estimator.estimate(EstimateContext<T>{problem, lower, upper, 0}, x.view(), y.view(), h.view());
  return h.to_host();
}

/// F_b(x) = L_query(phi_D(x)) of every task after D steps from the start of adaptation.
std::vector<double> post_adaptation_loss(MetaMlpProblem<double>& problem,
                                         const std::vector<double>& x_columns, index_t steps,
                                         double alpha) {
  auto exec = problem.executor();
  const index_t nb = problem.tasks();
  Array<double> x(exec, problem.dim_x(), nb, x_columns), y(exec, problem.dim_y(), nb),
      gy(exec, problem.dim_y(), nb), f(exec, nb, 1);
  problem.begin_iteration(nullptr, x.view(), y.view());
  for (index_t t = 0; t < steps; ++t) {
    problem.grad_y_g(Batch{}, x.view(), y.view(), gy.view());
    exec->ops<double>().axpby(-alpha, gy.view(), 1.0, y.view());
  }
  problem.values(Batch{}, Batch{}, x.view(), y.view(), f.data(), nullptr);
  return f.to_host();
}

std::vector<double> repeat(const std::vector<double>& column, index_t times) {
  std::vector<double> out;
  for (index_t b = 0; b < times; ++b) out.insert(out.end(), column.begin(), column.end());
  return out;
}

class MamlGradient : public ::testing::TestWithParam<bool> {};  // head only (ANIL) or not

// MAML's (and ANIL's) meta-gradient is the derivative of the post-adaptation query loss:
// ITD through D steps against central differences of F(x) = L_query(x + E y_D(x)). FOMAML's
// differs from it by the second-order term and equals the query gradient at phi_D.
TEST_P(MamlGradient, MetaGradientIsTheDerivativeOfThePostAdaptationLoss) {
  const bool head_only = GetParam();
  const index_t nb = 2, steps = 3;
  const double alpha = 0.05;
  MetaMlpProblem<double> problem(cpu(), small_spec(Activation::tanh, head_only), nb);
  problem.set_tasks(random_tasks(nb, 2, 3, 6, 5, 31));
  const index_t p = problem.dim_x();
  const std::vector<double> x0 = repeat(mlp_initial_parameters(problem.spec().mlp, 9), nb);
  auto itd = make_itd_estimator<double>(ItdOptions{steps, {alpha}, UnrolledMode::itd});
  const std::vector<double> h = estimate_once(problem, *itd, x0);
  const double eps = 1e-6;
  std::vector<double> fd(h.size());
  for (index_t i = 0; i < p; ++i) {
    std::vector<double> plus = x0, minus = x0;
    for (index_t b = 0; b < nb; ++b) plus[i + b * p] += eps, minus[i + b * p] -= eps;
    const std::vector<double> fp = post_adaptation_loss(problem, plus, steps, alpha);
    const std::vector<double> fm = post_adaptation_loss(problem, minus, steps, alpha);
    for (index_t b = 0; b < nb; ++b) fd[i + b * p] = (fp[b] - fm[b]) / (2 * eps);
  }
  EXPECT_LT(test::relative_error(h, fd), 1e-7);

  // FOMAML: grad L_query at phi_D, a different vector
  auto fom = make_itd_estimator<double>(ItdOptions{steps, {alpha}, UnrolledMode::fom});
  const std::vector<double> h_fo = estimate_once(problem, *fom, x0);
  EXPECT_GT(test::relative_error(h_fo, fd), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Adaptation, MamlGradient, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "anil" : "maml"; });

// iMAML: with the inner problem solved, AID-CG's estimate tends to the implicit gradient
// (I + H / lambda)^{-1} grad L_query(phi*) as the CG iterations grow.
TEST(Imaml, EstimateConvergesToTheImplicitGradient) {
  const index_t nb = 1;
  MetaMlpSpec spec = small_spec(Activation::tanh, false, 0.0);
  spec.mlp.widths = {2, 4, 2};
  // lambda above the largest negative curvature, so that H + lambda I is definite
  spec.proximal = 3.0;
  MetaMlpProblem<double> problem(cpu(), spec, nb);
  problem.set_tasks(random_tasks(nb, 2, 2, 6, 5, 41));
  const index_t p = problem.dim_x();
  const std::vector<double> x0 = mlp_initial_parameters(spec.mlp, 13);
  auto exec = problem.executor();
  // phi* by many gradient steps on the proximal task loss
  const index_t inner = 3000;
  const double alpha = 0.02;
  Array<double> x(exec, p, 1, x0), y(exec, p, 1), gy(exec, p, 1), probe(exec, p, 1), hv(exec, p, 1);
  problem.begin_iteration(nullptr, x.view(), y.view());
  for (index_t t = 0; t < inner; ++t) {
    problem.grad_y_g(Batch{}, x.view(), y.view(), gy.view());
    exec->ops<double>().axpby(-alpha, gy.view(), 1.0, y.view());
  }
  problem.grad_y_g(Batch{}, x.view(), y.view(), gy.view());
  ASSERT_LT(test::norm(gy.to_host()), 1e-9) << "the inner problem is not solved";
  // dense H_L + lambda I (columns: hvp of unit vectors), and grad L_query(phi*)
  std::vector<double> a(static_cast<std::size_t>(p * p));
  for (index_t j = 0; j < p; ++j) {
    std::vector<double> e(static_cast<std::size_t>(p), 0.0);
    e[j] = 1.0;
    probe.upload(e);
    problem.hvp_jvp(Batch{}, x.view(), y.view(), probe.view(), hv.view(), MatrixView<double>());
    const std::vector<double> col = hv.to_host();
    std::copy(col.begin(), col.end(), a.begin() + j * p);
  }
  for (index_t i = 0; i < p; ++i)
    for (index_t j = 0; j < i; ++j) ASSERT_NEAR(a[i + j * p], a[j + i * p], 1e-9);
  ASSERT_GT(linalg::symmetric_eigenvalues(a, p).front(), 0.0);
  Array<double> fx(exec, p, 1), fy(exec, p, 1);
  problem.grad_f(Batch{}, x.view(), y.view(), fx.view(), fy.view());
  // implicit gradient: lambda (H_L + lambda I)^{-1} grad L_query
  std::vector<double> implicit = linalg::spd_solve(a, fy.to_host(), p, 1);
  for (double& v : implicit) v *= spec.proximal;
  double previous = 1e300;
  for (index_t cg : {index_t(1), index_t(4), index_t(16), 2 * p}) {
    auto est = make_cg_estimator<double>(CgOptions{cg, false});
    const std::vector<double> h = estimate_once(problem, *est, x0, inner, alpha);
    const double err = test::relative_error(h, implicit);
    EXPECT_LT(err, previous + 1e-12) << cg << " CG iterations";
    previous = err;
  }
  EXPECT_LT(previous, 1e-6);
}

// A meta-batch of B tasks gives, task by task, what B single-task problems give (MAML, ANIL,
// iMAML estimates before the solver averages them).
TEST(MetaBatch, BatchedTasksEqualSingleTaskRuns) {
  const index_t nb = 4;
  const std::vector<MetaTask> tasks = random_tasks(nb, 2, 3, 6, 5, 51);
  for (const char* algo : {"maml", "anil", "imaml"}) {
    MetaAlgorithmOptions o;
    o.name = algo;
    MetaMlpSpec spec = small_spec(Activation::tanh);
    apply_meta_preset(o, spec);
    MetaMlpProblem<double> batched(cpu(), spec, nb);
    batched.set_tasks(tasks);
    const index_t p = batched.dim_x();
    const std::vector<double> x1 = mlp_initial_parameters(spec.mlp, 3);
    const auto estimator = [&] {
      return std::string(algo) == "imaml"
                 ? make_cg_estimator<double>(CgOptions{5, false})
                 : make_itd_estimator<double>(ItdOptions{2, {0.05}, UnrolledMode::itd});
    };
    const index_t solver_steps = std::string(algo) == "imaml" ? 4 : 0;
    auto e = estimator();
    const std::vector<double> h = estimate_once(batched, *e, repeat(x1, nb), solver_steps, 0.05);
    for (index_t b = 0; b < nb; ++b) {
      MetaMlpProblem<double> single(cpu(), spec, 1);
      single.set_tasks({tasks[static_cast<std::size_t>(b)]});
      auto e1 = estimator();
      const std::vector<double> h1 = estimate_once(single, *e1, x1, solver_steps, 0.05);
      EXPECT_LT(test::relative_error(test::column(h, static_cast<std::size_t>(p),
                                                  static_cast<std::size_t>(b)),
                                     h1),
                1e-12)
          << algo << ", task " << b;
    }
  }
}

// The sinusoid sampler: targets A sin(t - p) with A, p, t in their ranges (A recovered from
// the points), the same tasks for the same (seed, split, step), other tasks otherwise.
TEST(SinusoidTasks, DrawsAreInRangeAndReproducible) {
  MetaMlpSpec spec;  // 1-40-40-1
  spec.support = 10;
  spec.query = 15;
  spec.seed = 4;
  MetaMlpProblem<double> problem(cpu(), spec, 50);
  problem.sample_tasks(7);
  const std::vector<MetaTask> a = problem.current_tasks();
  ASSERT_EQ(a.size(), 50u);
  double largest = 0;
  for (const MetaTask& t : a) {
    ASSERT_EQ(t.support_x.size(), 10u);
    ASSERT_EQ(t.query_y.size(), 15u);
    for (double v : t.support_x) EXPECT_TRUE(v >= -5 && v <= 5);
    for (double v : t.query_x) EXPECT_TRUE(v >= -5 && v <= 5);
    for (double v : t.support_y) EXPECT_LE(std::abs(v), 5.0);
    for (double v : t.support_y) largest = std::max(largest, std::abs(v));
  }
  EXPECT_GT(largest, 3.0);  // amplitudes reach the upper part of [0.1, 5]
  problem.sample_tasks(7);
  const std::vector<MetaTask> again = problem.current_tasks();
  EXPECT_EQ(again[3].support_y, a[3].support_y);
  problem.sample_tasks(8);
  EXPECT_NE(problem.current_tasks()[3].support_y, a[3].support_y);
  MetaMlpSpec test_spec = spec;
  test_spec.split = TaskSplit::meta_test;
  MetaMlpProblem<double> test_problem(cpu(), test_spec, 50);
  test_problem.sample_tasks(7);
  EXPECT_NE(test_problem.current_tasks()[3].support_y, a[3].support_y);
  // wrong shapes are refused with the task named
  std::vector<MetaTask> bad = a;
  bad[2].query_x.pop_back();
  EXPECT_THROW(problem.set_tasks(bad), InvalidArgument);
  MetaMlpSpec wide = spec;
  wide.mlp.widths = {2, 8, 1};
  MetaMlpProblem<double> wide_problem(cpu(), wide, 2);
  EXPECT_THROW(wide_problem.sample_tasks(0), InvalidArgument);
}

// The solver keeps the shared meta-parameters shared, refuses columns that differ, and a short
// MAML run on sinusoids adapts far better than the jointly pre-trained network (the MAML
// paper's comparison), FOMAML and ANIL in between or close.
TEST(MetaSolver, SinusoidMamlBeatsThePretrainedBaseline) {
  const index_t nb = 25;
  const auto train = [&](const std::string& algo, index_t iterations) {
    MetaAlgorithmOptions o;
    o.name = algo;
    o.inner_steps = 1;
    o.inner_step = 0.01;
    o.loop.iterations = iterations;
    o.loop.eval_every = 0;
    o.loop.upper = UpperUpdate::moving_average;
    o.loop.outer_step = {0.05};
    MetaMlpSpec spec;
    spec.seed = 1;
    apply_meta_preset(o, spec);
    MetaMlpProblem<float> problem(cpu(), spec, nb);
    const std::vector<double> start = mlp_initial_parameters(spec.mlp, 2);
    std::vector<float> x0;
    for (index_t b = 0; b < nb; ++b)
      for (double v : start) x0.push_back(static_cast<float>(v));
    std::vector<float> y0(static_cast<std::size_t>(problem.dim_y() * nb), 0.0f);
    auto solver = make_meta_solver(problem, o);
    const SolveResult<float> r = solver->run(x0, y0);
    const index_t p = problem.dim_x();
    for (index_t b = 1; b < nb; ++b)
      EXPECT_TRUE(std::equal(r.x.begin(), r.x.begin() + p, r.x.begin() + b * p)) << algo;
    MetaMlpSpec test_spec = spec;
    test_spec.split = TaskSplit::meta_test;
    MetaMlpProblem<float> tests(cpu(), test_spec, 200);
    tests.sample_tasks(0);
    return meta_test(tests, std::vector<float>(r.x.begin(), r.x.begin() + p), 1, 0.01);
  };
  const MetaTestResult pretrain = train("pretrain", 1500);
  const MetaTestResult maml = train("maml", 1500);
  const MetaTestResult fomaml = train("fomaml", 1500);
  // adaptation helps the meta-learned start much more than the pre-trained one
  EXPECT_LT(maml.mean_after + maml.interval_after, pretrain.mean_after - pretrain.interval_after);
  EXPECT_LT(maml.mean_after, 0.5 * pretrain.mean_after);
  EXPECT_LT(maml.mean_after, 0.5 * maml.mean_before);
  EXPECT_LT(fomaml.mean_after, pretrain.mean_after);

  // x0 with different columns is refused
  MetaMlpProblem<double> problem(cpu(), MetaMlpSpec{}, 2);
  MetaAlgorithmOptions o;
  o.loop.iterations = 1;
  auto solver = make_meta_solver(problem, o);
  std::vector<double> x0(static_cast<std::size_t>(problem.dim_x() * 2), 0.0);
  x0.back() = 1.0;
  EXPECT_THROW(solver->run(x0, std::vector<double>(x0.size(), 0.0)), InvalidArgument);
  // a preset on a problem configured for another is refused
  o.name = "anil";
  EXPECT_THROW(make_meta_solver(problem, o), InvalidArgument);
}

// CUDA against the CPU: the kernels (task draws, activations) and the problem's oracles.
TEST(MetaParity, CudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  for (Activation act : {Activation::relu, Activation::tanh}) {
    MetaMlpSpec spec;
    spec.mlp.activation = act;
    const index_t nb = 8;
    MetaMlpProblem<double> on_cpu(cpu(), spec, nb), on_gpu(gpu, spec, nb);
    on_cpu.sample_tasks(3);
    on_gpu.sample_tasks(3);
    const std::vector<MetaTask> tc = on_cpu.current_tasks(), tg = on_gpu.current_tasks();
    for (index_t b = 0; b < nb; ++b) {
      EXPECT_LT(test::relative_error(tg[b].support_y, tc[b].support_y), 1e-12);
      EXPECT_LT(test::relative_error(tg[b].query_x, tc[b].query_x), 1e-12);
    }
    const std::vector<double> phi0 = task_parameters(spec.mlp, nb, 5);
    const std::vector<double> d = test::random_vector<double>(phi0.size(), 6);
    std::vector<std::vector<double>> results[2];
    int side = 0;
    for (MetaMlpProblem<double>* pr : {&on_cpu, &on_gpu}) {
      auto exec = pr->executor();
      const index_t p = pr->dim_x();
      Array<double> phi(exec, p, nb, phi0), dir(exec, p, nb, d), g(exec, p, nb), hv(exec, p, nb),
          v(exec, nb, 1);
      pr->loss_gradient(true, phi.view(), g.view());
      pr->loss_hvp(false, phi.view(), dir.view(), hv.view());
      pr->loss_values(true, phi.view(), v.data());
      results[side++] = {g.to_host(), hv.to_host(), v.to_host()};
    }
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_LT(test::relative_error(results[1][i], results[0][i]), 1e-10) << to_string(act) << " " << i;
  }
  // classification: episodes drawn identically, cross-entropy oracles and accuracy agree
  const Dataset data = labelled_data(8, 12, 3);
  EpisodeSpec e;
  e.classes = {0, 2, 3, 5, 7};
  e.ways = 4, e.shots = 2, e.queries = 3;
  MetaMlpSpec spec;
  spec.mlp.widths = {3, 8, 4};
  spec.mlp.loss = OutputLoss::cross_entropy;
  const index_t nb = 6;
  MetaMlpProblem<double> on_cpu(cpu(), spec, nb, data, e), on_gpu(gpu, spec, nb, data, e);
  on_cpu.sample_tasks(4);
  on_gpu.sample_tasks(4);
  const std::vector<MetaTask> tc = on_cpu.current_tasks(), tg = on_gpu.current_tasks();
  for (index_t b = 0; b < nb; ++b) {
    EXPECT_EQ(tg[b].support_x, tc[b].support_x);
    EXPECT_EQ(tg[b].query_y, tc[b].query_y);
  }
  const std::vector<double> phi0 = task_parameters(spec.mlp, nb, 8);
  const std::vector<double> d = test::random_vector<double>(phi0.size(), 9);
  std::vector<std::vector<double>> results[2];
  int side = 0;
  for (MetaMlpProblem<double>* pr : {&on_cpu, &on_gpu}) {
    auto exec = pr->executor();
    const index_t p = pr->dim_x();
    Array<double> phi(exec, p, nb, phi0), dir(exec, p, nb, d), g(exec, p, nb), hv(exec, p, nb),
        v(exec, nb, 1), acc(exec, nb, 1), y(exec, p, nb);
    exec->ops<double>().fill(y.view(), 0.0);
    pr->loss_gradient(true, phi.view(), g.view());
    pr->loss_hvp(false, phi.view(), dir.view(), hv.view());
    pr->loss_values(true, phi.view(), v.data());
    pr->query_accuracy(phi.view(), y.view(), acc.data());
    results[side++] = {g.to_host(), hv.to_host(), v.to_host(), acc.to_host()};
  }
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_LT(test::relative_error(results[1][i], results[0][i]), 1e-10) << "cross-entropy " << i;
}

}  // namespace
}  // namespace bilevel
