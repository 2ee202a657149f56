// `bilevel hpo`: one L2 weight per feature for logistic regression on a LIBSVM file (benchopt's
// bilevel L2-tuning task), against the best scalar L2 of a grid searched on the same
// validation split: the grid's points train at once (one instance each), the per-feature run
// starts from the best of them, and both are judged by retraining W to convergence.
#include "commands.hpp"
#include "given_splits.hpp"
#include "metrics_writer.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace bilevel::cli {
namespace {

/// Debian's liblinear-tools ships LIBSVM's heart_scale (270 patients, 13 features, 2 classes).
constexpr const char* kHeartScale = "/usr/share/doc/liblinear-tools/examples/heart_scale";

struct HpoArgs {
  std::string data = kHeartScale;
  index_t train = 0, validation = 0, test = 0;  ///< 0: half, a quarter, the rest
  std::string algo = "aid-cg";
  index_t iterations = 300, inner_steps = 20, eval_every = 50, batch = 0;
  index_t grid_points = 13, retrain_steps = 3000;
  index_t samples = 20000, features = 50, informative = 10;  ///< --data synthetic
  double grid_min = 1e-5, grid_max = 10.0, outer_step = 0.0;
  std::string backend = "auto", precision = "double", metrics;
  std::uint64_t seed = 0;
  bool graphs = true;
  std::string penalty = "per-feature";
  std::string loss = "softmax";
  bool bias = true;
  /// Given splits (benchopt's): --data is the training split, these the other two.
  std::string validation_data, test_data;
  bool standardize = true;
};

template <typename T>
int run(const HpoArgs& a) {
  auto exec = make_cli_executor(a.backend);
  // a LIBSVM file, or the sparse-logistic generator (only the first features matter), split
  // here; or three LIBSVM files, the splits as given
  const bool given = !a.validation_data.empty() || !a.test_data.empty();
  check_given_splits(a.data, a.validation_data, a.test_data,
                     a.train != 0 || a.validation != 0 || a.test != 0, a.standardize);
  HypercleanData data;
  index_t n = 0, train = 0, validation = 0, test = 0, features = 0;
  std::string source;
  if (given) {
    data = read_given_splits(a.data, a.validation_data, a.test_data, a.standardize);
    train = data.train.samples;
    validation = data.validation.samples;
    test = data.test.samples;
    n = train + validation + test;
    features = data.train.features;
    source = "'" + a.data + "', '" + a.validation_data + "', '" + a.test_data + "'";
  } else {
    const Dataset pool = a.data == "synthetic"
                             ? make_sparse_logistic(a.samples, a.features, a.informative, a.seed + 11)
                             : read_libsvm(a.data);
    n = pool.samples;
    train = a.train > 0 ? a.train : n / 2;
    validation = a.validation > 0 ? a.validation : n / 4;
    test = a.test > 0 ? a.test : n - train - validation;
    BILEVEL_EXPECTS(train > 0 && validation > 0 && test > 0 && train + validation + test <= n,
                    "--train " << train << " + --validation " << validation << " + --test "
                               << test << " do not fit in the " << n << " samples of '" << a.data
                               << "'");
    features = pool.features;
    source = a.data == "synthetic" ? pool.source : "'" + a.data + "'";
    // the split and standardization of hyper-cleaning, with no label corrupted
    data = prepare_hyperclean(pool, std::nullopt, SplitSizes{train, validation, test}, 0.0, a.seed);
  }
  BILEVEL_EXPECTS(a.batch <= train, "--batch " << a.batch << " is larger than the training split ("
                                                << train << " samples): give at most " << train
                                                << ", or 0 for full batches");
  data.bias = a.bias;
  const L2Penalty penalty = parse_l2_penalty(a.penalty);
  const LinearModelLoss loss = parse_linear_model_loss(a.loss);
  L2TuningProblem<T> problem(exec, data, penalty, loss);
  const index_t d = problem.dim_x(), dy = problem.dim_y(), g = a.grid_points;
  Ops<T>& ops = exec->ops<T>();
  problem.reserve(std::max<index_t>(g, 1), a.batch);

  // L of the cross-entropy alone (lambda -> -inf), by power iteration
  double l_ce = 0;
  {
    Array<T> x(exec, d, 1, std::vector<T>(static_cast<std::size_t>(d), T(-50))), y(exec, dy, 1);
    ops.fill(y.view(), T(0));
    l_ce = estimate_lower_smoothness(problem, x.cview(), y.cview(), a.batch, 50, a.seed)[0];
  }
  std::fprintf(stderr,
               "bilevel hpo: %s L2 of %s on %s (%lld samples, %lld features, %d classes, %s)\n"
               "  split %lld train / %lld validation / %lld test (%s); %s on "
               "%s (%s), %s\n"
               "  L of the cross-entropy ~ %.3g; baseline: %lld scalar L2 weights in [%g, %g] "
               "(log-spaced), trained at once\n",
               a.penalty.c_str(),
               loss == LinearModelLoss::binary_logistic ? "binary logistic regression (one logit)"
                                                        : "logistic regression",
               source.c_str(), static_cast<long long>(n), static_cast<long long>(features),
               problem.classes(), a.bias ? "a bias" : "no bias", static_cast<long long>(train), static_cast<long long>(validation),
               static_cast<long long>(test),
               given ? (a.standardize ? "as given, standardized on train" : "as given, not standardized")
                     : "standardized on train",
               a.algo.c_str(), to_string(exec->backend()).c_str(),
               exec->device_name().c_str(), a.precision.c_str(), l_ce,
               static_cast<long long>(g), a.grid_min, a.grid_max);

  // W trained to convergence at fixed lambdas (one instance per column), its losses per split
  struct Fit {
    std::vector<double> validation_loss, test_loss, test_accuracy;
    std::vector<T> y;
  };
  const auto fit = [&](const std::vector<T>& lambdas, index_t instances) {
    Array<T> x(exec, d, instances, lambdas), y(exec, dy, instances);
    ops.fill(y.view(), T(0));
    // steps 1 / (L_CE + largest weight), per instance
    std::vector<double> steps;
    for (index_t b = 0; b < instances; ++b) {
      const auto first = lambdas.begin() + b * d;
      steps.push_back(1.0 / (l_ce + std::exp(static_cast<double>(*std::max_element(first, first + d)))));
    }
    // full batches: both sides are judged at (near) convergence, whatever --batch the run used
    train_lower_level(problem, x.cview(), y.view(),
                      LowerLevelOptions{a.retrain_steps, steps, 0, a.seed});
    Fit f;
    f.validation_loss = problem.mean_loss(DataSplit::validation, y.cview());
    f.test_loss = problem.mean_loss(DataSplit::test, y.cview());
    f.test_accuracy = problem.accuracy(DataSplit::test, y.cview());
    f.y = y.to_host();
    return f;
  };

  // the grid: scalar weights r_k, lambda = log r_k on every feature
  std::vector<double> grid;
  std::vector<T> lambdas;
  for (index_t k = 0; k < g; ++k) {
    const double t = g == 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(g - 1);
    grid.push_back(a.grid_min * std::pow(a.grid_max / a.grid_min, t));
    lambdas.insert(lambdas.end(), static_cast<std::size_t>(d), static_cast<T>(std::log(grid.back())));
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Fit scalar = fit(lambdas, g);
  const double grid_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const index_t best = static_cast<index_t>(
      std::min_element(scalar.validation_loss.begin(), scalar.validation_loss.end()) -
      scalar.validation_loss.begin());
  std::fprintf(stderr, "  grid: best scalar L2 %g (validation loss %.4f; %.2f s for all %lld)\n",
               grid[best], scalar.validation_loss[best], grid_seconds, static_cast<long long>(g));

  // per-feature (per-class) weights, from the best scalar one and its W
  AlgorithmOptions o = default_options(a.algo);
  o.loop.iterations = a.iterations;
  o.loop.inner_steps = a.inner_steps;
  const double inner = 0.9 / (l_ce + grid[best]);
  // weights up to L + 2 r0 keep that step below 2 / L_g (it allows 1.22 L + 2.22 r0)
  const double max_weight = l_ce + 2 * grid[best];
  problem.set_max_weight(max_weight);
  o.loop.inner_step = {inner};
  o.loop.outer_step = {a.outer_step > 0 ? a.outer_step : 1.0};
  o.loop.lower_batch = o.loop.upper_batch = a.batch;
  o.loop.eval_every = a.eval_every;
  o.loop.seed = a.seed;
  o.loop.capture = a.graphs;
  o.neumann = NeumannOptions{20, {inner}};
  o.cg = CgOptions{20, true};
  o.fixed_point = FixedPointOptions{1, {inner}, true};
  std::fprintf(stderr,
               "  %s: %lld iterations, %lld inner steps of %.3g, lambda step %g, weights at most "
               "%.3g (the inner step's stability), %s\n",
               a.algo.c_str(), static_cast<long long>(a.iterations),
               static_cast<long long>(a.inner_steps), inner, o.loop.outer_step[0], max_weight,
               a.batch > 0 ? ("batches of " + std::to_string(a.batch)).c_str() : "full batches");
  MetricsWriter metrics(a.metrics);
  Progress progress;
  const auto observe = [&](const IterationMetrics& m) {
    char line[160];
    std::snprintf(line, sizeof line, "iter %5lld/%lld  %6.2fs  validation loss %.4f  ||h|| %.3g",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, m.upper_value[0], m.hypergradient_norm[0]);
    progress.update(line);
    metrics.write({{"iteration", m.iteration},
                   {"seconds", m.seconds},
                   {"validation_loss", m.upper_value},
                   {"lower_value", m.lower_value},
                   {"hypergradient_norm", m.hypergradient_norm},
                   {"test_accuracy", m.problem_metrics.at(0)}});
  };
  const std::vector<T> x0(lambdas.begin() + best * d, lambdas.begin() + (best + 1) * d);
  const std::vector<T> y0(scalar.y.begin() + best * dy, scalar.y.begin() + (best + 1) * dy);
  auto solver = make_solver(problem, o);
  const SolveResult<T> r = solver->run(x0, y0, observe);
  progress.finish();
  for (const std::string& w : r.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());
  const Fit tuned = fit(r.x, 1);

  std::vector<double> weights(static_cast<std::size_t>(d));
  for (index_t j = 0; j < d; ++j) weights[j] = std::exp(static_cast<double>(r.x[j]));
  std::printf("summary: %s, %lld iterations in %.2f s on %s (%s)\n", a.algo.c_str(),
              static_cast<long long>(r.iterations), r.seconds, to_string(exec->backend()).c_str(),
              exec->device_name().c_str());
  std::printf("  %-34s %9s %9s %9s\n", "", "val loss", "test loss", "test acc");
  char label[64];
  std::snprintf(label, sizeof label, "best scalar L2 (%g)", grid[best]);
  std::printf("  %-34s %9.4f %9.4f %8.2f%%\n", label, scalar.validation_loss[best],
              scalar.test_loss[best], 100 * scalar.test_accuracy[best]);
  std::snprintf(label, sizeof label, "%s L2 (retrained)", a.penalty.c_str());
  std::printf("  %-34s %9.4f %9.4f %8.2f%%\n", label,
              tuned.validation_loss[0], tuned.test_loss[0], 100 * tuned.test_accuracy[0]);
  std::printf("  %s weights: min %.3g, median %.3g, max %.3g\n",
              penalty == L2Penalty::per_feature ? "feature" : "class",
              *std::min_element(weights.begin(), weights.end()),
              [&] {
                std::vector<double> w = weights;
                std::nth_element(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(w.size() / 2), w.end());
                return w[w.size() / 2];
              }(),
              *std::max_element(weights.begin(), weights.end()));
  metrics.write({{"summary", true},
                 {"algorithm", a.algo},
                 {"data", a.data},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"grid", grid},
                 {"grid_validation_loss", scalar.validation_loss},
                 {"best_scalar_l2", grid[best]},
                 {"scalar_validation_loss", scalar.validation_loss[best]},
                 {"scalar_test_loss", scalar.test_loss[best]},
                 {"scalar_test_accuracy", scalar.test_accuracy[best]},
                 {"validation_loss", tuned.validation_loss[0]},
                 {"test_loss", tuned.test_loss[0]},
                 {"test_accuracy", tuned.test_accuracy[0]},
                 {"penalty", a.penalty},
                 {"loss", a.loss},
                 {"bias", a.bias},
                 {penalty == L2Penalty::per_feature ? "feature_weights" : "class_weights", weights},
                 {"diverged_at", r.diverged_at}});
  return 0;
}

}  // namespace

std::function<int()> add_hpo_command(CLI::App& app) {
  auto a = std::make_shared<HpoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "hpo", "One L2 weight per feature (or per class) for logistic regression (LIBSVM file) against a grid of scalar L2");
  cmd->add_option("--data", a->data,
                  "A LIBSVM file (default: heart_scale of Debian's liblinear-tools), or synthetic "
                  "(binary logistic data in which only --informative of --features matter)")
      ->capture_default_str();
  cmd->add_option("--samples", a->samples, "synthetic: samples")->capture_default_str()->check(positive_integer());
  cmd->add_option("--features", a->features, "synthetic: features")->capture_default_str()->check(positive_integer());
  cmd->add_option("--informative", a->informative, "synthetic: features that carry weight")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--validation-data", a->validation_data,
                  "The validation split as its own LIBSVM file (with --test-data: --data is then "
                  "the training split, and no split is drawn; e.g. benchopt's ijcnn1 and "
                  "ijcnn1.t, or bench/compare/benchopt_l2_splits.py's covtype files)");
  cmd->add_option("--test-data", a->test_data, "The test split as its own LIBSVM file (with --validation-data)");
  cmd->add_flag("--standardize,!--no-standardize", a->standardize,
                "Standardize the features with the training split's statistics (given splits may "
                "skip it: benchopt's ijcnn1 does)")
      ->capture_default_str();
  cmd->add_option("--train", a->train, "Training samples (default: half)")->check(positive_integer());
  cmd->add_option("--validation", a->validation, "Validation samples (default: a quarter)")->check(positive_integer());
  cmd->add_option("--test", a->test, "Test samples (default: the rest)")->check(positive_integer());
  std::vector<std::string> names;
  for (const AlgorithmInfo& i : algorithm_presets()) names.push_back(i.name);
  cmd->add_option("--algo", a->algo, "A preset of `bilevel algorithms`")
      ->capture_default_str()->check(CLI::IsMember(names));
  cmd->add_option("--iters", a->iterations, "Iterations on lambda")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-steps", a->inner_steps, "Steps on W per iteration")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--outer-step", a->outer_step, "Step on lambda (default 1)")->check(positive_number());
  cmd->add_option("--batch", a->batch, "Minibatch size (0: full batches)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--grid-points", a->grid_points, "Scalar L2 weights of the baseline grid")->capture_default_str()->check(positive_integer());
  cmd->add_option("--grid-min", a->grid_min, "Smallest scalar L2 weight")->capture_default_str()->check(positive_number());
  cmd->add_option("--grid-max", a->grid_max, "Largest scalar L2 weight")->capture_default_str()->check(positive_number());
  cmd->add_option("--retrain-steps", a->retrain_steps, "Gradient steps that fit W for the comparison")->capture_default_str()->check(positive_integer());
  cmd->add_option("--seed", a->seed, "Seed of the split and of the minibatches")->capture_default_str()->check(seed_value());
  cmd->add_option("--penalty", a->penalty,
                  "What one L2 weight covers: per-feature (a feature's row of W: benchopt's ijcnn1 "
                  "map) or per-class (a class's column: benchopt's covtype map)")
      ->capture_default_str()->check(CLI::IsMember({"per-feature", "per-class"}));
  cmd->add_option("--loss", a->loss,
                  "softmax (a column of W per class) or binary (two classes, one weight vector: "
                  "log(1 + exp(-s w'a)), s = +-1, benchopt's ijcnn1 loss; per-feature only)")
      ->capture_default_str()->check(CLI::IsMember({"softmax", "binary"}));
  cmd->add_flag("--bias,!--no-bias", a->bias,
                "A bias feature (never penalised); benchopt's ijcnn1 and covtype models have none")
      ->capture_default_str();
  add_execution_options(cmd, a->backend, a->precision, a->metrics, a->graphs);
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    BILEVEL_EXPECTS(a->grid_min < a->grid_max || a->grid_points == 1,
                    "--grid-min " << a->grid_min << " must be below --grid-max " << a->grid_max);
    return a->precision == "double" ? run<double>(*a) : run<float>(*a);
  };
}

}  // namespace bilevel::cli
