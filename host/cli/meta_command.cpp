// `bilevel meta`: meta-learning (MAML, first-order MAML, ANIL, iMAML, and the pre-trained
// baseline) on sinusoid regression tasks, with a progress line, JSON-lines metrics and a
// summary of the meta-test loss after adaptation with its 95% interval.
#include "commands.hpp"
#include "data_source.hpp"
#include "metrics_writer.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

namespace bilevel::cli {
namespace {

struct MetaArgs {
  std::string task = "sinusoid";
  std::string data = "fashion-mnist";
  std::string algo = "maml";
  index_t ways = 5, shots = 10, query = 10, meta_batch = 25, inner_steps = 1;
  double inner_step = 0.01, outer_step = 0.0;
  std::string update = "average";
  index_t iterations = 10000, eval_every = 500;
  std::vector<index_t> hidden{40, 40};
  std::string activation = "relu";
  std::vector<int> train_classes, test_classes;
  double lambda = 1.0, damping = 0.0;
  index_t cg_iterations = 5;
  index_t test_tasks = 600, test_steps = -1;
  std::string backend = "auto", precision = "float", metrics;
  std::uint64_t seed = 0;
  bool graphs = true;
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int c : v) s += (s.empty() ? "" : " ") + std::to_string(c);
  return s;
}

/// "" for disjoint class sets, else a note that the meta-test is not on unseen classes.
std::string split_overlap(const std::vector<int>& train, const std::vector<int>& test) {
  index_t shared = 0;
  for (int c : test) shared += std::count(train.begin(), train.end(), c);
  if (shared == 0) return "";
  return "; " + std::to_string(shared) + " of them also meta-train classes: adaptation to new images, not to new classes";
}

UpperUpdate parse_update(const std::string& s) {
  if (s == "sgd") return UpperUpdate::sgd;
  if (s == "average") return UpperUpdate::moving_average;
  return UpperUpdate::normalized_momentum;
}

template <typename T>
int run(const MetaArgs& a) {
  auto exec = make_cli_executor(a.backend);
  MetaRun run;
  run.algorithm = a.algo;
  run.ways = a.ways, run.shots = a.shots, run.query = a.query;
  run.inner_steps = a.inner_steps;
  run.inner_step = a.inner_step;
  run.outer_step = a.outer_step;
  run.update = parse_update(a.update);
  run.iterations = a.iterations;
  run.eval_every = a.eval_every;
  run.hidden = a.hidden;
  run.activation = parse_activation(a.activation);
  run.train_classes = a.train_classes;
  run.test_classes = a.test_classes;
  run.lambda = a.lambda;
  run.damping = a.damping;
  run.cg_iterations = a.cg_iterations;
  run.seed = a.seed;
  run.capture = a.graphs;
  const bool episodes = a.task == "fashion-mnist";
  LoadedData data;
  if (episodes) {
    data = load_data(a.data);
    BILEVEL_EXPECTS(data.test.has_value(),
                    "--data " << a.data << ": episodes need an IDX folder (training and test images)");
  }
  const MetaSetup setup = meta_setup(run, episodes ? &data.pool : nullptr, data.description);
  const MetaAlgorithmOptions& o = setup.options;
  const MetaMlpSpec& spec = setup.spec;
  const EpisodeSpec &train_episodes = setup.train_episodes, &test_episodes = setup.test_episodes;
  auto problem_ptr = episodes ? std::make_unique<MetaMlpProblem<T>>(exec, spec, a.meta_batch,
                                                                     data.pool, train_episodes)
                              : std::make_unique<MetaMlpProblem<T>>(exec, spec, a.meta_batch);
  MetaMlpProblem<T>& problem = *problem_ptr;
  const index_t test_steps = a.test_steps >= 0 ? a.test_steps : std::max<index_t>(a.inner_steps, 1);

  std::string widths;
  for (index_t w : spec.mlp.widths) widths += (widths.empty() ? "" : "-") + std::to_string(w);
  const std::string task_line =
      episodes ? data.description + ", " + std::to_string(a.ways) + "-way " +
                     std::to_string(a.shots) + "-shot, " + std::to_string(a.query) +
                     " queries per class; meta-train classes " + join(train_episodes.classes) +
                     " (training images), meta-test classes " + join(test_episodes.classes) +
                     " (test images" + split_overlap(train_episodes.classes, test_episodes.classes) +
                     ")\n  "
               : "sinusoid: " + std::to_string(a.shots) + "-shot support, " +
                     std::to_string(a.query) + " query points; ";
  std::fprintf(stderr,
               "bilevel meta: %s on %s (%s), %s\n"
               "  task %smeta-batch %lld; network %s %s "
               "(%lld parameters)\n"
               "  inner: %s%s; meta step %g (%s), %lld meta-iterations\n",
               a.algo.c_str(), to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.precision.c_str(), task_line.c_str(), static_cast<long long>(a.meta_batch),
               widths.c_str(), a.activation.c_str(),
               static_cast<long long>(spec.mlp.parameters()),
               a.algo == "pretrain"
                   ? "none (the baseline trains on the query loss at x)"
                   : (std::to_string(a.inner_steps) + (a.inner_steps == 1 ? " step" : " steps") +
                      " of " + number(a.inner_step))
                         .c_str(),
               a.algo == "anil"    ? " on the head"
               : a.algo == "imaml" ? (" on the proximal loss (lambda " + number(a.lambda) + ", damping " + number(a.damping) +
                                      "), CG " + std::to_string(a.cg_iterations))
                                         .c_str()
                                   : "",
               o.loop.outer_step[0], a.update.c_str(), static_cast<long long>(a.iterations));

  MetricsWriter metrics(a.metrics);
  Progress progress;
  const auto observe = [&](const IterationMetrics& m) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "iter %6lld/%lld  %6.2fs  query loss: before adaptation %.4f, after %.4f",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, mean_and_interval(m.problem_metrics.at(0)).first, mean_and_interval(m.upper_value).first);
    std::string text = line;
    if (episodes) {
      std::snprintf(line, sizeof line, "  accuracy %.3f", mean_and_interval(m.problem_metrics.at(1)).first);
      text += line;
    }
    progress.update(text);
    nlohmann::json record{{"iteration", m.iteration},
                          {"seconds", m.seconds},
                          {"query_loss_after_adaptation", mean_and_interval(m.upper_value).first},
                          {"query_loss_before_adaptation", mean_and_interval(m.problem_metrics.at(0)).first},
                          {"support_loss", mean_and_interval(m.lower_value).first},
                          {"meta_gradient_norm", mean_and_interval(m.hypergradient_norm).first}};
    if (episodes) record["query_accuracy_after_adaptation"] = mean_and_interval(m.problem_metrics.at(1)).first;
    metrics.write(record);
  };

  const std::vector<double> start = mlp_initial_parameters(spec.mlp, a.seed + 1);
  std::vector<T> x0, y0(static_cast<std::size_t>(problem.dim_y() * a.meta_batch), T(0));
  for (index_t b = 0; b < a.meta_batch; ++b)
    for (double v : start) x0.push_back(static_cast<T>(v));
  auto solver = make_meta_solver(problem, o);
  const SolveResult<T> r = solver->run(x0, y0, observe);
  progress.finish();
  for (const std::string& w : r.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());

  // meta-test: new tasks of the test split, adapted from the learned x
  MetaMlpSpec test_spec = spec;
  test_spec.split = TaskSplit::meta_test;
  auto test_ptr = episodes ? std::make_unique<MetaMlpProblem<T>>(exec, test_spec, a.test_tasks,
                                                                  *data.test, test_episodes)
                           : std::make_unique<MetaMlpProblem<T>>(exec, test_spec, a.test_tasks);
  MetaMlpProblem<T>& test_problem = *test_ptr;
  test_problem.sample_tasks(0);
  const std::vector<T> x(r.x.begin(), r.x.begin() + problem.dim_x());
  const MetaTestResult t = meta_test(test_problem, x, test_steps, a.inner_step);
  const double per_second = r.seconds > 0 ? r.iterations / r.seconds : 0.0;
  std::printf("summary: %s, %lld meta-iterations in %.3f s (%.1f it/s) on %s (%s)\n",
              a.algo.c_str(), static_cast<long long>(r.iterations), r.seconds, per_second,
              to_string(exec->backend()).c_str(), exec->device_name().c_str());
  std::printf("  meta-test (%lld new tasks, %lld-shot): query %s %.4f before adaptation, "
              "%.4f +- %.4f after %lld step%s (95%% interval)\n",
              static_cast<long long>(a.test_tasks), static_cast<long long>(a.shots),
              episodes ? "cross-entropy" : "MSE", t.mean_before, t.mean_after, t.interval_after,
              static_cast<long long>(test_steps), test_steps == 1 ? "" : "s");
  std::pair<double, double> centroid{std::nan(""), std::nan("")};
  if (episodes) {
    centroid = mean_and_interval(nearest_centroid_accuracy(
        test_problem.current_tasks(), data.pool.features, a.ways));
    std::printf("  accuracy %.2f%% +- %.2f after adaptation; nearest-centroid baseline on the "
                "same tasks %.2f%% +- %.2f\n",
                100 * t.mean_accuracy, 100 * t.interval_accuracy, 100 * centroid.first,
                100 * centroid.second);
  }
  nlohmann::json summary{{"summary", true},
                 {"algorithm", a.algo},
                 {"task", a.task},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"dtype", a.precision},
                 {"meta_batch", a.meta_batch},
                 {"shots", a.shots},
                 {"inner_steps", a.inner_steps},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"iterations_per_second", per_second},
                 {"test_tasks", a.test_tasks},
                 {"test_steps", test_steps},
                 {"test_loss_before_adaptation", t.mean_before},
                 {"test_loss_after_adaptation", t.mean_after},
                 {"test_loss_interval95", t.interval_after}};
  if (episodes) {
    summary["ways"] = a.ways;
    summary["test_accuracy"] = t.mean_accuracy;
    summary["test_accuracy_interval95"] = t.interval_accuracy;
    summary["nearest_centroid_accuracy"] = centroid.first;
    summary["nearest_centroid_interval95"] = centroid.second;
  }
  metrics.write(summary);
  return 0;
}

}  // namespace

std::function<int()> add_meta_command(CLI::App& app) {
  auto a = std::make_shared<MetaArgs>();
  CLI::App* cmd = app.add_subcommand(
      "meta", "Meta-learning (MAML, FOMAML, ANIL, iMAML) on sinusoid tasks or Fashion-MNIST episodes");
  std::vector<std::string> names;
  for (const AlgorithmInfo& i : meta_algorithm_presets()) names.push_back(i.name);
  cmd->add_option("--task", a->task, "sinusoid (regression) or fashion-mnist (N-way K-shot episodes)")
      ->capture_default_str()->check(CLI::IsMember({"sinusoid", "fashion-mnist"}));
  cmd->add_option("--data", a->data, "Episodes: fashion-mnist or a folder of MNIST-named IDX files")
      ->capture_default_str();
  cmd->add_option("--ways", a->ways, "Episodes: classes per task (N)")->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--algo", a->algo, "maml, fomaml, anil, imaml or pretrain (the baseline)")
      ->capture_default_str()->check(CLI::IsMember(names));
  cmd->add_option("--shots", a->shots, "K: support points per task (episodes: per class; default 1)")->capture_default_str()->check(positive_integer());
  cmd->add_option("--query", a->query, "Query points per task (episodes: per class; default 15)")->capture_default_str()->check(positive_integer());
  cmd->add_option("--meta-batch", a->meta_batch, "Tasks per meta-iteration")->capture_default_str()->check(positive_integer());
  cmd->add_option("--inner-steps", a->inner_steps, "Adaptation steps D (imaml: 10)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-step", a->inner_step, "Adaptation step alpha (imaml: 0.005)")->capture_default_str()->check(positive_number());
  cmd->add_option("--outer-step", a->outer_step, "Meta step beta (default 0.05, 0.01 with --meta-update normalized)")
      ->check(positive_number());
  cmd->add_option("--meta-update", a->update, "sgd, average (moving average of the meta-gradient, theta 0.1) or normalized (momentum 0.9)")
      ->capture_default_str()->check(CLI::IsMember({"sgd", "average", "normalized"}));
  cmd->add_option("--iters", a->iterations, "Meta-iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k meta-iterations (0: at the end)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--hidden", a->hidden, "Hidden widths (episodes: default 64,64)")->delimiter(',')->capture_default_str()->check(positive_integer());
  cmd->add_option("--activation", a->activation, "relu or tanh")->capture_default_str()->check(CLI::IsMember({"relu", "tanh"}));
  cmd->add_option("--train-classes", a->train_classes,
                  "Episodes: meta-train classes, drawn from the training images (default the even labels)")
      ->delimiter(',')->check(CLI::Range(0, 255));
  cmd->add_option("--test-classes", a->test_classes,
                  "Episodes: meta-test classes, drawn from the test images (default the odd labels; "
                  "the meta-train ones measure adaptation to new images of seen classes)")
      ->delimiter(',')->check(CLI::Range(0, 255));
  cmd->add_option("--lambda", a->lambda, "iMAML's proximal weight")->capture_default_str()->check(positive_number());
  cmd->add_option("--damping", a->damping, "iMAML: added to the diagonal of the linear system only (imaml: 30)")
      ->capture_default_str()->check(number_in(0.0, 1e12));
  cmd->add_option("--cg-iterations", a->cg_iterations, "iMAML's CG iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--test-tasks", a->test_tasks, "Meta-test tasks")->capture_default_str()->check(positive_integer());
  cmd->add_option("--test-steps", a->test_steps, "Adaptation steps at meta-test (default: --inner-steps, at least 1)")
      ->check(non_negative_integer());
  cmd->add_option("--seed", a->seed, "Seed of the tasks and of the initialisation")->capture_default_str()->check(seed_value());
  add_execution_options(cmd, a->backend, a->precision, a->metrics, a->graphs);
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    BILEVEL_EXPECTS(launched_world_size() == 1,
                    "bilevel meta does not run over several MPI ranks yet (started with "
                        << launched_world_size() << "): run it as one process");
    // iMAML's defaults: more, smaller inner steps on the proximal loss and a damped system
    // (runs with 1 step of 0.01 or without damping diverged on sinusoids)
    if (a->task == "fashion-mnist") {
      if (cmd->count("--shots") == 0) a->shots = 1;
      if (cmd->count("--query") == 0) a->query = 15;
      if (cmd->count("--hidden") == 0) a->hidden = {64, 64};
      if (cmd->count("--inner-step") == 0) a->inner_step = 0.4;
      if (cmd->count("--test-tasks") == 0) a->test_tasks = 1000;
    }
    if (a->algo == "imaml") {
      if (cmd->count("--inner-steps") == 0) a->inner_steps = 10;
      if (cmd->count("--inner-step") == 0) a->inner_step = 0.005;
      if (cmd->count("--damping") == 0) a->damping = 30.0;
    }
    return a->precision == "double" ? run<double>(*a) : run<float>(*a);
  };
}

}  // namespace bilevel::cli
