// `bilevel hyperclean`: data hyper-cleaning end to end. Gets the problem on its data
// (hyperclean_data.cpp: generated, split and corrupted here, or splits as given), trains the
// baselines (all samples; clean samples only, where which labels are wrong is known), runs the
// bilevel algorithm with a progress line and JSON-lines metrics, and prints a summary: test
// accuracy and precision/recall/F1 of the flagged samples (sigmoid(x_i) < 0.5) against the truly
// corrupted ones.
#include "checkpointing.hpp"
#include "hyperclean_args.hpp"
#include "hyperclean_data.hpp"
#include "output_files.hpp"
#include "commands.hpp"
#include "metrics_writer.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

namespace bilevel::cli {
namespace {

struct BaselineResult {
  double test_accuracy = 0, seconds = 0;
};

/// Trains W with fixed per-sample weights sigmoid(x) (x = +/-40: weights 1 and 0).
template <typename T>
BaselineResult train_baseline(HypercleanProblem<T>& problem, const std::vector<T>& x_host,
                              index_t steps, double step, index_t batch, std::uint64_t seed) {
  auto exec = problem.executor();
  const auto start = std::chrono::steady_clock::now();
  Array<T> x(exec, problem.dim_x(), 1, x_host), y(exec, problem.dim_y(), 1);
  exec->template ops<T>().fill(y.view(), T(0));
  train_lower_level(problem, x.cview(), y.view(), LowerLevelOptions{steps, {step}, batch, seed});
  BaselineResult r;
  r.test_accuracy = problem.accuracy(DataSplit::test, y.cview())[0];
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

template <typename T>
int run(HypercleanArgs a) {
  auto exec = make_cli_executor(a.run.backend);
  // data-parallel over MPI ranks: each keeps its shard of every split and of the sample
  // weights x; rank 0 reports
  const std::shared_ptr<Communicator> comm = make_run_communicator(a.distributed, *exec);
  const bool root = comm->rank() == 0, sharded = comm->size() > 1;
  // checkpoints: one file per rank (PATH.rank-R-of-P), each with its shard of x
  const RunOptions files = per_rank_checkpoints(a.run, *comm);
  // every rank runs alike, or none starts
  check_ranks_agree(*comm, "bilevel hyperclean", a.data);
  // paths first: a bad one fails before any work; no output may be another output or an input
  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--checkpoint", files.checkpoint}});
  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--resume", files.resume}});
  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--data", a.data}});
  refuse_shared_outputs({{"--checkpoint", files.checkpoint}, {"--data", a.data}});
  for (const auto& [flag, path] : {std::pair<const char*, std::string>{"--validation-data", a.validation_data},
                                   {"--test-data", a.test_data}})
    if (!path.empty()) {
      refuse_shared_outputs({{"--metrics", a.run.metrics}, {flag, path}});
      refuse_shared_outputs({{"--checkpoint", files.checkpoint}, {flag, path}});
    }
  check_checkpoint_paths<T>(files);
  // splits as given: read first (their sizes are the split's); labels as they are
  const auto t0 = std::chrono::steady_clock::now();
  const bool given = a.given_splits();
  std::optional<HypercleanData> given_data = read_given_splits(a, comm->size());
  MetricsWriter metrics(root ? a.run.metrics : std::string());
  // what shapes this problem beyond the algorithm's options (checkpoint settings), exact
  ProblemSettings problem_settings = {
      {"data", a.data},
      {"train", std::to_string(a.train)},
      {"validation", std::to_string(a.validation)},
      {"test", std::to_string(a.test)},
      {"corruption", exact_setting(a.corruption)},
      {"reg", exact_setting(a.reg)},
      {"seed", std::to_string(a.run.seed)},
      {"data_precision", a.data_precision},
      {"ranks", std::to_string(comm->size())}};
  // (recorded only when not the default: checkpoints written before --protocol still resume)
  if (a.protocol != "bilevel") problem_settings.push_back({"protocol", a.protocol});
  if (given)
    for (const auto& kv : ProblemSettings{{"validation_data", a.validation_data},
                                          {"test_data", a.test_data},
                                          {"standardize", a.standardize ? "1" : "0"}})
      problem_settings.push_back(kv);
  if (a.data == "synthetic")
    for (const auto& kv : ProblemSettings{{"samples", std::to_string(a.samples)},
                                          {"features", std::to_string(a.features)},
                                          {"classes", std::to_string(a.classes)},
                                          {"feature_scales", exact_setting(a.feature_scales)},
                                          {"correlation", exact_setting(a.correlation)}})
      problem_settings.push_back(kv);
  // (the tag versions 2 and 3 wrote, to resume their files)
  std::ostringstream problem_tag;
  problem_tag << a.data << " " << a.train << "/" << a.validation << "/" << a.test << " p "
              << a.corruption << " reg " << a.reg << " data " << a.data_precision;
  if (sharded) problem_tag << " ranks " << comm->size();
  if (a.protocol != "bilevel") problem_tag << " protocol " << a.protocol;
  if (given)
    problem_tag << " given " << a.validation_data << " " << a.test_data
                << (a.standardize ? "" : " raw");
  if (a.data == "synthetic")
    problem_tag << " samples " << a.samples << " features " << a.features << " classes "
                << a.classes << " scales " << a.feature_scales << " correlation "
                << a.correlation;

  HypercleanSetup<T> setup = make_hyperclean_problem<T>(exec, comm, a, std::move(given_data));
  HypercleanProblem<T>& problem = *setup.problem;
  const std::vector<std::uint8_t>& corrupted = setup.corrupted;
  const std::string& description = setup.description;
  const MemoryDecision& memory = setup.memory;
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const index_t n_wrong =
      static_cast<index_t>(std::count(corrupted.begin(), corrupted.end(), std::uint8_t{1}));
  if (root)
  std::fprintf(stderr,
               "bilevel hyperclean: %s, %lld train (%s) / %lld validation / %lld "
               "test, %lld features%s, %d classes (loaded in %.1f s)\n",
               description.c_str(), static_cast<long long>(a.train),
               corruption_words(a, n_wrong).c_str(),
               static_cast<long long>(a.validation), static_cast<long long>(a.test),
               static_cast<long long>(problem.features()), problem.has_bias() ? "" : " (no bias)",
               problem.classes(), load_seconds);
  if (root && a.protocol == "benchopt")
    std::fprintf(stderr,
                 "  protocol benchopt (benchmark_bilevel datacleaning): g = mean sigmoid(x_i) "
                 "CE_i + %g ||W||^2%s, no bias, x starts at -2; test error = 1 - test acc\n",
                 a.reg, a.reg_given ? " (--reg)" : " (its reg)");
  if (root) std::fputs(memory.line.c_str(), stderr);
  const bool bf16_data = problem.data_precision() == DataPrecision::bf16;
  if (root && sharded)
    std::fprintf(stderr,
                 "  distributed: %s; rank 0 holds training samples [0, %lld) and their weights "
                 "x (%s; the memory line is rank 0's)\n",
                 comm->transport().c_str(), static_cast<long long>(problem.dim_x()),
                 a.data == "synthetic" ? "each rank generated its shard"
                                       : "each rank kept its shard of the file");
  if (root)
  std::fprintf(stderr, "  %s%s on %s (%s), %s%s, %lld instance%s\n", a.run.algo.c_str(),
               a.algo_given ? "" : " (default: the preset on the quality line at every scale of "
                                   "docs/scaling.md)",
               to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.run.precision.c_str(), bf16_data ? " (features stored as bf16)" : "",
               static_cast<long long>(a.run.instances), a.run.instances == 1 ? "" : "s");

  // n: the training samples of the whole run; local: this rank's (x's rows here)
  const index_t n = problem.lower_samples(), local = problem.dim_x(), dy = problem.dim_y(),
                nb = a.run.instances;
  const index_t first = problem.first_train_sample();
  BILEVEL_EXPECTS(a.batch <= n, "--batch " << a.batch << " is larger than the training set ("
                                           << n << " samples): give a batch of at most " << n);
  problem.reserve(nb, a.batch);
  // L_g at the start (all weights 1/2, W = 0) guards the lower-level and Neumann steps.
  double l_g = 0;
  {
    Array<T> x(exec, local, 1), y(exec, dy, 1);
    exec->template ops<T>().fill(x.view(), T(0));
    exec->template ops<T>().fill(y.view(), T(0));
    l_g = estimate_lower_smoothness(problem, x.cview(), y.cview(), 4 * a.batch, 30, a.run.seed)[0];
  }
  // x = 0 gives weights 1/2, so the weight-1 problems of the baselines have about twice L_g.
  const double default_step = 0.9 / l_g;
  if (root)
  std::fprintf(stderr, "  L_g ~ %.3g (power iteration): lower-level and Neumann steps %.3g\n",
               l_g, default_step);

  // The run's length and x step scale with the data: an epoch is n / batch iterations (each
  // x_i is touched about once), and x_i moves by outer_step / batch per touch.
  BILEVEL_EXPECTS(a.iterations < 0 || a.epochs == 0, "give --iters or --epochs, not both");
  const double per_epoch = static_cast<double>(n) / static_cast<double>(a.batch);
  index_t iterations = a.iterations;
  std::string length_why = "--iters";
  if (a.epochs > 0) {
    iterations = static_cast<index_t>(std::ceil(a.epochs * per_epoch));
    length_why = "--epochs";
  } else if (iterations < 0) {
    // 30 epochs: where SOBA's F1 and test accuracy settle at every scale of docs/scaling.md
    // (at 20000 samples 3000 iterations, the floor before, were 77 epochs: F1 fell from 0.913
    // at 30 epochs to 0.897 as x went on flagging hard clean samples)
    iterations = std::max<index_t>(500, static_cast<index_t>(std::ceil(30 * per_epoch)));
    length_why = "default: 30 epochs, at least 500 iterations";
  }
  // a sixth of the run, rounded up: five evaluations inside the run and the final one (rounded
  // down, the sixth fell one iteration before the final evaluation)
  const index_t eval_every =
      a.eval_every >= 0 ? a.eval_every : std::max<index_t>(1, (iterations + 5) / 6);
  std::string step_rule;
  const double default_outer = default_outer_step(a.run.algo, a.batch, &step_rule);
  const std::vector<double> outer_step =
      a.outer_step.empty() ? std::vector<double>{default_outer} : a.outer_step;
  char step_why[96];
  if (a.search)
    std::snprintf(step_why, sizeof step_why, "--search: %s = %g x {1/4, 1, 4}", step_rule.c_str(),
                  default_outer);
  else if (a.outer_step.empty())
    std::snprintf(step_why, sizeof step_why, "%s = %g", step_rule.c_str(), default_outer);
  else
    std::snprintf(step_why, sizeof step_why, "--outer-step %g%s", outer_step[0],
                  outer_step.size() > 1 ? ", ..." : "");
  if (root)
  std::fprintf(stderr, "  run: %lld iterations = %.1f epochs of batches of %lld over %lld "
                       "training samples (%s); x step %s\n",
               static_cast<long long>(iterations), static_cast<double>(iterations) / per_epoch,
               static_cast<long long>(a.batch), static_cast<long long>(n), length_why.c_str(),
               step_why);
  if (root && !a.run.settings.empty()) {
    std::string set;
    for (const std::string& t : a.run.settings) set += " " + t;
    std::fprintf(stderr, "  --set:%s\n", set.c_str());
  }

  BaselineResult plain, oracle;
  // The baselines train as long as the run (at least 1500 steps): a baseline stopped early is
  // a low bar (at 200000 samples 1500 steps put the oracle 6 points under its trained value).
  const index_t baseline_steps =
      a.baseline_steps >= 0 ? a.baseline_steps : std::max<index_t>(1500, iterations);
  // which labels are wrong is known when the corruption was made here (given splits: not)
  const bool known_wrong = !given;
  const bool oracle_baseline = a.baselines && known_wrong;
  if (a.baselines) {
    std::vector<T> all(static_cast<std::size_t>(local), T(40)), clean(static_cast<std::size_t>(local));
    for (index_t i = 0; i < local; ++i) clean[i] = corrupted[first + i] ? T(-40) : T(40);
    plain = train_baseline(problem, all, baseline_steps, 0.45 / l_g, a.batch, a.run.seed);
    if (oracle_baseline) {
      // (the clean share of the weights: the oracle's L_g is about that much smaller)
      const double clean_share = 1.0 - static_cast<double>(n_wrong) / static_cast<double>(n);
      oracle = train_baseline(problem, clean, baseline_steps, 0.45 / l_g / (clean_share + 1e-9),
                              a.batch, a.run.seed);
    }
    if (root && oracle_baseline)
      std::fprintf(stderr, "  baselines (%lld SGD steps): plain %.2f%% (%.1f s), oracle %.2f%% (%.1f s)\n",
                   static_cast<long long>(baseline_steps), 100 * plain.test_accuracy,
                   plain.seconds, 100 * oracle.test_accuracy, oracle.seconds);
    else if (root)
      std::fprintf(stderr, "  baseline (%lld SGD steps): plain %.2f%% (%.1f s); no oracle (labels "
                           "as given: which are wrong is unknown)\n",
                   static_cast<long long>(baseline_steps), 100 * plain.test_accuracy,
                   plain.seconds);
  }

  // the preset's defaults (its paper's or authors' code), then what this command sets: the run,
  // its flags (their defaults included) and the steps derived from the problem's smoothness
  AlgorithmOptions o = default_options(a.run.algo);
  o.loop.iterations = iterations;
  o.loop.inner_steps = a.inner_steps;
  o.loop.inner_step = a.inner_step.empty() ? std::vector<double>{default_step} : a.inner_step;
  o.loop.outer_step = outer_step;
  o.loop.lower_batch = o.loop.upper_batch = a.batch;
  o.loop.seed = a.run.seed;
  o.loop.eval_every = eval_every;
  o.loop.capture = a.run.graphs;
  o.loop.independent_batches = a.run.independent_batches;
  o.neumann = NeumannOptions{a.neumann_terms,
                             a.neumann_eta.empty() ? std::vector<double>{default_step} : a.neumann_eta};
  o.cg.iterations = a.cg_iterations;
  o.fixed_point.nu = o.neumann.eta;
  o.truncated_neumann.eta = o.neumann.eta;
  o.truncated_neumann.seed = a.run.seed;
  apply_settings(a.run, o);

  Progress progress;
  std::vector<double> last_acc, last_val_loss;
  std::vector<DetectionScores> last_scores;
  // test accuracy and the detection counts are computed on the device at each evaluation and
  // copied back with the other metrics (no read-back of x)
  problem.set_detection_truth(corrupted);
  // time to a good answer (the large-scale protocol's bar): the first evaluation at which an
  // instance flags with F1 >= 0.90 and, with baselines, tests within 2 points of the oracle
  double quality_seconds = -1;
  index_t quality_iteration = -1, quality_instance = -1;
  const auto observe = [&](const IterationMetrics& m) {
    // problem metrics: test_accuracy, flagged, true_positives (HypercleanProblem's order)
    last_acc = m.problem_metrics.at(0);
    last_val_loss = m.upper_value;
    last_scores.clear();
    std::vector<double> f1, prec, rec;
    // a diverged instance's metrics are NaN: no counts for it
    const auto count = [](double v) { return std::isfinite(v) ? std::llround(v) : 0LL; };
    for (index_t b = 0; b < nb; ++b) {
      last_scores.push_back(detection_scores(count(m.problem_metrics.at(1)[b]),
                                             count(m.problem_metrics.at(2)[b]), n_wrong));
      f1.push_back(last_scores.back().f1);
      prec.push_back(last_scores.back().precision);
      rec.push_back(last_scores.back().recall);
      if (known_wrong && quality_iteration < 0 && f1.back() >= 0.90 &&
          (!a.baselines || last_acc[b] >= oracle.test_accuracy - 0.02)) {
        quality_seconds = m.seconds;
        quality_iteration = m.iteration;
        quality_instance = b;
      }
    }
    char f1_text[32] = "";
    if (known_wrong) std::snprintf(f1_text, sizeof f1_text, "  F1 %.3f", f1[0]);
    char line[256];
    std::snprintf(line, sizeof line, "iter %6lld/%lld  %6.1fs  val loss %.4f  test acc %.2f%%%s%s",
                  static_cast<long long>(m.iteration), static_cast<long long>(iterations),
                  m.seconds, m.upper_value[0], 100 * last_acc[0], f1_text,
                  nb > 1 ? " (instance 0)" : "");
    if (root) progress.update(line);
    nlohmann::json row{{"iteration", m.iteration},
                       {"seconds", m.seconds},
                       {"validation_loss", m.upper_value},
                       {"lower_value", m.lower_value},
                       {"hypergradient_norm", m.hypergradient_norm},
                       {"test_accuracy", last_acc}};
    if (known_wrong) {
      row["f1"] = f1;
      row["precision"] = prec;
      row["recall"] = rec;
    }
    metrics.write(row);
  };

  // x = 0 (weights 1/2), or benchopt's start x = -2 (weights sigmoid(-2) = 0.12)
  std::vector<T> x0(static_cast<std::size_t>(local * nb),
                    a.protocol == "benchopt" ? T(-2) : T(0));
  std::vector<T> y0(static_cast<std::size_t>(dy * nb), T(0));
  std::vector<std::vector<T>> carried =
      resume_if_asked("hyperclean", files, problem_settings, problem_tag.str(), o, local, dy, nb,
                      x0, y0, o.loop, *comm, root);
  if (!files.resume.empty()) metrics.resume_at(static_cast<long>(o.loop.start_iteration));
  const auto checkpointer =
      checkpoint_writer<T>("hyperclean", files, problem_settings, o, o.loop, *comm);
  auto solver = make_solver(problem, o);
  solver->restore_state(std::move(carried));
  SolveResult<T> r;
  try {
    r = solver->run(x0, y0, observe, {}, checkpointer);
  } catch (const DivergenceError&) {
    progress.finish();
    throw;
  }
  progress.finish();
  if (!root) return 0;

  // the healthy instance with the lowest validation loss (selection by validation, not test)
  index_t best = -1;
  for (index_t b = 0; b < nb; ++b)
    if (r.diverged_at[b] < 0 && (best < 0 || last_val_loss[b] < last_val_loss[best])) best = b;
  for (const std::string& w : r.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());
  for (index_t b = 0; b < nb; ++b)
    if (r.diverged_at[b] >= 0)
      std::fprintf(stderr, "  instance %lld diverged at iteration %lld (%s); the others went on\n",
                   static_cast<long long>(b), static_cast<long long>(r.diverged_at[b]),
                   r.divergence[b].c_str());
  const DetectionScores& s = last_scores[best];
  const double per_second = r.seconds > 0 ? r.iterations / r.seconds : 0.0;
  std::printf("summary: %s on %s, %lld iterations in %.1f s (%.1f it/s), %s (%s)%s\n",
              a.run.algo.c_str(), description.c_str(), static_cast<long long>(r.iterations),
              r.seconds, per_second, to_string(exec->backend()).c_str(),
              exec->device_name().c_str(),
              r.captured_shapes > 0 ? ", iterations replayed as CUDA graphs" : "");
  if (!a.instance_settings.empty()) {
    // the search: which instance, and why (its validation loss against the next best)
    index_t second = -1;
    for (index_t b = 0; b < nb; ++b)
      if (b != best && r.diverged_at[b] < 0 &&
          (second < 0 || last_val_loss[b] < last_val_loss[second]))
        second = b;
    std::printf("  search: best of %lld settings is instance %lld (%s): validation loss %.4f",
                static_cast<long long>(nb), static_cast<long long>(best),
                a.instance_settings[best].c_str(), last_val_loss[best]);
    if (second >= 0)
      std::printf(" against %.4f for the next best (instance %lld: %s)", last_val_loss[second],
                  static_cast<long long>(second), a.instance_settings[second].c_str());
    std::printf("\n");
  }
  std::printf("  %-28s %8s %9s %9s %9s\n", "", "test acc", "precision", "recall", "F1");
  if (a.baselines)
    std::printf("  %-28s %7.2f%% %9s %9s %9s\n", "plain (all samples)", 100 * plain.test_accuracy, "-", "-", "-");
  if (oracle_baseline)
    std::printf("  %-28s %7.2f%% %9s %9s %9s\n", "oracle (clean samples only)", 100 * oracle.test_accuracy, "-", "-", "-");
  char label[64];
  std::snprintf(label, sizeof label, "%s%s", a.run.algo.c_str(),
                nb > 1 ? (" (instance " + std::to_string(best) + " of " + std::to_string(nb) + ")").c_str() : "");
  if (known_wrong)
    std::printf("  %-28s %7.2f%% %9.3f %9.3f %9.3f\n", label, 100 * last_acc[best], s.precision,
                s.recall, s.f1);
  else
    std::printf("  %-28s %7.2f%% %9s %9s %9s\n", label, 100 * last_acc[best], "-", "-", "-");
  const std::string quality_bar =
      a.baselines ? "F1 >= 0.90 and test accuracy within 2 points of oracle" : "F1 >= 0.90";
  if (!known_wrong)
    std::printf("  time to quality: not defined (labels as given: which are wrong is unknown, so "
                "no F1)\n");
  else if (quality_iteration >= 0)
    std::printf("  time to quality (%s): %.2f s of iterations, at iteration %lld (instance %lld); "
                "%.2f s with data %s and baselines\n",
                quality_bar.c_str(), quality_seconds, static_cast<long long>(quality_iteration),
                static_cast<long long>(quality_instance),
                quality_seconds + load_seconds + plain.seconds + oracle.seconds,
                a.data == "synthetic" ? "generation" : "loading");
  else
    std::printf("  time to quality (%s): not reached at any evaluation\n", quality_bar.c_str());
  if (known_wrong)
    std::printf("  flagged %lld of %lld training samples; %lld truly corrupted\n",
                static_cast<long long>(s.flagged), static_cast<long long>(n),
                static_cast<long long>(n_wrong));
  else
    std::printf("  flagged %lld of %lld training samples (sigmoid(x_i) < 1/2)\n",
                static_cast<long long>(s.flagged), static_cast<long long>(n));
  if (a.protocol == "benchopt")
    std::printf("  test error (benchopt's value): %.4f\n", 1.0 - last_acc[best]);

  nlohmann::json summary{{"summary", true},
                         {"algorithm", a.run.algo},
                         {"data", description},
                         {"backend", to_string(exec->backend())},
                         {"device", exec->device_name()},
                         {"dtype", a.run.precision},
                         {"data_precision", bf16_data ? "bf16" : a.run.precision},
                         {"data_residence", problem.data_residence() == DataResidence::host ? "host" : "device"},
                         {"instances", nb},
                         {"ranks", comm->size()},
                         {"best_instance", best},
                         {"iterations", r.iterations},
                         {"seconds", r.seconds},
                         {"iterations_per_second", per_second},
                         {"captured_graphs", r.captured_shapes},
                         {"protocol", a.protocol},
                         {"test_accuracy", last_acc[best]},
                         {"test_error", 1.0 - last_acc[best]},
                         {"precision", known_wrong ? nlohmann::json(s.precision) : nlohmann::json()},
                         {"recall", known_wrong ? nlohmann::json(s.recall) : nlohmann::json()},
                         {"f1", known_wrong ? nlohmann::json(s.f1) : nlohmann::json()},
                         {"flagged", s.flagged},
                         {"labels", known_wrong ? "corrupted here" : "as given"},
                         {"validation_loss", last_val_loss[best]},
                         {"test_accuracy_per_instance", last_acc},
                         {"diverged_at", r.diverged_at}};
  if (!a.instance_settings.empty()) {
    summary["instance_settings"] = a.instance_settings;
    summary["best_settings"] = a.instance_settings[best];
  }
  summary["time_to_quality_seconds"] = quality_iteration >= 0 ? quality_seconds : -1.0;
  summary["time_to_quality_iteration"] = quality_iteration;
  summary["time_to_quality_end_to_end_seconds"] =
      quality_iteration >= 0 ? quality_seconds + load_seconds + plain.seconds + oracle.seconds : -1.0;
  summary["load_seconds"] = load_seconds;
  if (a.baselines) {
    summary["baselines"] = {{"plain", {{"test_accuracy", plain.test_accuracy}, {"seconds", plain.seconds}}}};
    if (oracle_baseline)
      summary["baselines"]["oracle"] = {{"test_accuracy", oracle.test_accuracy},
                                        {"seconds", oracle.seconds}};
  }
  metrics.write(summary);
  return 0;
}

}  // namespace

std::function<int()> add_hyperclean_command(CLI::App& app) {
  auto a = std::make_shared<HypercleanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "hyperclean", "Data hyper-cleaning: learn per-sample weights that undo corrupted labels");
  cmd->add_option("--data", a->data,
                  "fashion-mnist, an IDX folder, a LIBSVM file, or synthetic (with "
                  "--validation-data: the training split's LIBSVM file)")
      ->capture_default_str();
  cmd->add_option("--validation-data", a->validation_data,
                  "The validation split as its own LIBSVM file (with --test-data; --data is then "
                  "the training split, its labels used as given: no corruption here, no F1)");
  cmd->add_option("--test-data", a->test_data,
                  "The test split as its own LIBSVM file (with --validation-data)");
  cmd->add_flag("--standardize,!--no-standardize", a->standardize,
                "Given splits: standardize every feature with the training split's mean and "
                "deviation (default), or use the features as given");
  cmd->add_option("--samples", a->samples, "synthetic: samples")->capture_default_str()->check(positive_integer());
  cmd->add_option("--features", a->features, "synthetic: features")->capture_default_str()->check(positive_integer());
  cmd->add_option("--feature-scales", a->feature_scales,
                  "synthetic: features scaled log-uniformly in [1/S, S] (1: all alike)")
      ->capture_default_str()->check(number_in(1.0, 1e6));
  cmd->add_option("--correlation", a->correlation,
                  "synthetic: variance of 8 latent factors shared by the features' noise (0: "
                  "independent features)")
      ->capture_default_str()->check(number_in(0.0, 1e6));
  cmd->add_option("--classes", a->classes, "synthetic: classes")->capture_default_str()->check(CLI::Range(2, 1 << 16));
  cmd->add_option("--train", a->train, "Training samples")->capture_default_str()->check(positive_integer());
  cmd->add_option("--validation", a->validation, "Validation samples")->capture_default_str()->check(positive_integer());
  cmd->add_option("--test", a->test, "Test samples")->capture_default_str()->check(positive_integer());
  cmd->add_option("--corruption", a->corruption, "Fraction p of corrupted training labels")
      ->capture_default_str()->check(fraction_below_one());
  cmd->add_option("--reg", a->reg, "L2 weight of the lower level (default 3e-3; 0.2 with --protocol benchopt)")
      ->check(number_in(0.0, 1e6));
  cmd->add_option("--protocol", a->protocol,
                  "bilevel: exactly p n labels replaced by another class, a bias feature, x "
                  "from 0; benchopt: benchmark_bilevel's datacleaning (each label replaced with "
                  "probability p by a uniform class, no bias, reg 0.2, x from -2)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bilevel", "benchopt"}));
  cmd->add_option("--iters", a->iterations,
                  "Outer iterations (default: 30 epochs, at least 500 iterations)")
      ->check(non_negative_integer());
  cmd->add_option("--epochs", a->epochs,
                  "Run length in epochs: iterations = epochs x training samples / batch")
      ->check(positive_number());
  cmd->add_option("--inner-steps", a->inner_steps, "Lower-level steps per outer iteration")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--batch", a->batch, "Minibatch size")->capture_default_str()->check(positive_integer());
  cmd->add_option("--eval-every", a->eval_every,
                  "Metrics every k iterations (0: at the end; default: a sixth of the run)")
      ->check(non_negative_integer());
  cmd->add_option("--inner-step", a->inner_step, "Lower-level step, 1 value or one per instance (default 0.9/L_g)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--outer-step", a->outer_step,
                  "Step on the weight logits x, 1 value or one per instance (default 1000 x batch "
                  "/ 512, normalized steps 2 x sqrt(batch / 512): x_i moves the same per touch "
                  "at any batch)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--neumann-eta", a->neumann_eta, "Neumann step, 1 value or one per instance (default 0.9/L_g)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--neumann-terms", a->neumann_terms, "Neumann terms Q")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--cg-iterations", a->cg_iterations, "CG iterations per estimate")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--baseline-steps", a->baseline_steps,
                  "SGD steps of each baseline (default: as many as the run's iterations, at "
                  "least 1500)")
      ->check(non_negative_integer());
  cmd->add_flag("!--no-baselines", a->baselines, "Skip the plain and oracle baselines");
  cmd->add_option("--data-precision", a->data_precision,
                  "Storage of the features: same (as --precision) or bf16 (half the bytes; "
                  "arithmetic stays in --precision)")
      ->capture_default_str()
      ->check(CLI::IsMember({"same", "bf16"}));
  cmd->add_option("--data-residence", a->data_residence,
                  "Where the training features live: auto (on the device when the run fits, "
                  "else in host memory read in place by the kernels), device or host")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "device", "host"}));
  add_run_options(cmd, a->run, "Seed of the split, the corruption and the minibatches");
  cmd->add_option("--distributed", a->distributed,
                  "auto (when started by mpirun: NCCL with a GPU per rank, else MPI), mpi, nccl or off: "
                  "data-parallel over the ranks, "
                  "each holding its shard of the samples and of their weights")
      ->capture_default_str()->check(CLI::IsMember({"auto", "mpi", "nccl", "off"}));
  cmd->add_flag("--search", a->search,
                "Run the x steps default x {1/4, 1, 4} as three instances of one run (shared "
                "minibatches) and keep the best on validation loss");
  cmd->add_option("--grid", a->grid,
                  "A search over settings: NAME=v1,v2,... (NAME outer-step, inner-step or "
                  "neumann-eta; repeat for a product); every combination is an instance, and "
                  "the summary names the best on validation loss");
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    HypercleanArgs expanded = *a;
    expanded.algo_given = cmd->count("--algo") > 0;
    expanded.reg_given = cmd->count("--reg") > 0;
    expanded.sizes_given =
        cmd->count("--train") + cmd->count("--validation") + cmd->count("--test") > 0;
    expanded.corruption_given = cmd->count("--corruption") > 0;
    check_given_splits(expanded);
    apply_protocol(expanded);
    add_step_search(expanded);
    expand_grid(expanded);
    return expanded.run.precision == "float" ? run<float>(expanded) : run<double>(expanded);
  };
}

}  // namespace bilevel::cli
