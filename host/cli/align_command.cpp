// `bilevel align`: policy alignment (A-PARL and the reward-learning baseline) on the
// entropy-regularised bandit or on batched gridworlds with preference feedback, with a progress
// line, JSON-lines metrics and a summary of how far the learned reward and policy are from the
// optimal ones.
#include "commands.hpp"
#include "metrics_writer.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

namespace bilevel::cli {
namespace {

struct AlignArgs {
  std::string env = "bandit";
  std::string algo = "a-parl";
  index_t actions = 10, feedback = -1, iterations = 500, inner_steps = 10, eval_every = 50;
  index_t instances = 1;
  double tau = 0.0, outer_step = 0.0, outer_decay = 0.0;
  // gridworld
  index_t side = 5, horizon = 15, series_terms = 0;
  double gamma = 0.9, slip = 0.1, beta = 1.0;
  std::string feedback_type = "preference";
  std::string reward_model = "state";
  std::string backend = "auto", precision = "double", metrics;
  std::uint64_t seed = 0;
  bool graphs = true;
};

AlignmentRun run_of(const AlignArgs& a) {
  AlignmentRun r;
  r.algorithm = a.algo;
  r.iterations = a.iterations;
  r.inner_steps = a.inner_steps;
  r.eval_every = a.eval_every;
  r.instances = a.instances;
  r.feedback = a.feedback;
  r.outer_step = a.outer_step;
  r.outer_decay = a.outer_decay;
  r.series_terms = a.series_terms;
  r.seed = a.seed;
  r.capture = a.graphs;
  return r;
}

template <typename T>
int run_bandit(AlignArgs a) {
  if (a.tau <= 0) a.tau = 0.5;
  if (a.feedback < 0) a.feedback = 256;
  auto exec = make_cli_executor(a.backend);
  const AlignmentOptions o = alignment_options(run_of(a));
  BanditAlignmentSpec spec;
  spec.actions = a.actions;
  spec.tau = a.tau;
  spec.seed = a.seed;
  apply_alignment_preset(o, spec);
  BanditAlignmentProblem<T> problem(exec, spec);
  std::fprintf(stderr,
               "bilevel align: %s on %s (%s), %s, %lld instance%s\n"
               "  env bandit: %lld actions, tau %g, target p drawn from seed %llu; feedback: %s\n"
               "  lower level: %lld policy-gradient steps; hypergradient: CG%s\n",
               a.algo.c_str(), to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.precision.c_str(), static_cast<long long>(a.instances),
               a.instances == 1 ? "" : "s", static_cast<long long>(a.actions), a.tau,
               static_cast<unsigned long long>(a.seed),
               a.feedback > 0 ? (std::to_string(a.feedback) + " actions of the policy per iteration").c_str()
                              : "exact expectations",
               static_cast<long long>(a.inner_steps),
               spec.score_function_term ? ", with the score-function term"
                                        : ", without the score-function term");
  MetricsWriter metrics(a.metrics);
  Progress progress;
  const auto observe = [&](const IterationMetrics& m) {
    char line[200];
    std::snprintf(line, sizeof line, "iter %6lld/%lld  %6.2fs  KL(policy || target) %.3e",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, mean_and_interval(m.upper_value).first);
    progress.update(line);
    metrics.write({{"iteration", m.iteration},
                   {"seconds", m.seconds},
                   {"kl_policy_target", m.upper_value},
                   {"hypergradient_norm", m.hypergradient_norm}});
  };
  const std::vector<T> x0(static_cast<std::size_t>(a.actions * a.instances), T(0)),
      y0(static_cast<std::size_t>((a.actions - 1) * a.instances), T(0));
  const SolveResult<T> r = make_alignment_solver(problem, o)->run(x0, y0, observe);
  progress.finish();
  for (const std::string& w : r.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());

  const std::vector<double> star = problem.optimal_reward();
  const double star_norm =
      std::sqrt(std::inner_product(star.begin(), star.end(), star.begin(), 0.0));
  std::printf("summary: %s, %lld iterations in %.3f s on %s (%s); feedback samples used: %lld "
              "per instance\n",
              a.algo.c_str(), static_cast<long long>(r.iterations), r.seconds,
              to_string(exec->backend()).c_str(), exec->device_name().c_str(),
              static_cast<long long>(a.feedback * r.iterations));
  std::vector<double> errors, kls;
  for (index_t b = 0; b < r.instances; ++b) {
    std::vector<double> nu(r.x.begin() + b * a.actions, r.x.begin() + (b + 1) * a.actions);
    const double mean = std::accumulate(nu.begin(), nu.end(), 0.0) / static_cast<double>(a.actions);
    double err = 0;
    for (index_t i = 0; i < a.actions; ++i) err += std::pow(nu[i] - mean - star[i], 2);
    errors.push_back(std::sqrt(err) / star_norm);
    kls.push_back(problem.upper_objective(nu));
    std::printf("  instance %lld: ||nu - nu*|| / ||nu*|| = %.3e (up to a constant); "
                "KL(pi*(nu) || target) = %.3e (optimum 0; start %.3e)\n",
                static_cast<long long>(b), errors.back(), kls.back(),
                problem.upper_objective(std::vector<double>(a.actions, 0.0)));
  }
  metrics.write({{"summary", true},
                 {"algorithm", a.algo},
                 {"env", a.env},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"actions", a.actions},
                 {"instances", r.instances},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"feedback_samples", a.feedback * r.iterations},
                 {"relative_reward_error", errors},
                 {"kl_policy_target", kls}});
  return 0;
}


// Gridworlds: one MDP per instance, preference feedback on pairs of the policy's trajectories.
template <typename T>
int run_gridworld(AlignArgs a) {
  if (a.tau <= 0) a.tau = 0.1;
  if (a.feedback < 0) a.feedback = 32;
  BILEVEL_EXPECTS(a.feedback >= 2,
                  "--feedback: gridworld alignment needs at least 2 preference pairs per "
                  "iteration (the score term's baseline is the batch mean), got "
                      << a.feedback);
  auto exec = make_cli_executor(a.backend);
  const AlignmentOptions o = alignment_options(run_of(a));
  GridworldRun env;
  env.side = a.side;
  env.horizon = a.horizon;
  env.gamma = a.gamma;
  env.slip = a.slip;
  env.tau = a.tau;
  env.beta = a.beta;
  env.feedback_type = a.feedback_type;
  env.reward_model = a.reward_model;
  env.instances = a.instances;
  env.seed = a.seed;
  const GridworldAlignmentSpec spec = gridworld_spec(env, o);
  GridworldAlignmentProblem<T> problem(exec, spec);
  auto solver = make_alignment_solver(problem, o);
  char beta_note[64];
  std::snprintf(beta_note, sizeof beta_note, " (Bradley-Terry, beta %g)", a.beta);
  const std::string feedback_note = spec.utility_feedback
                                        ? " (upper objective: minus the expected true utility)"
                                        : beta_note;
  std::fprintf(stderr,
               "bilevel align: %s on %s (%s), %s, %lld gridworld%s\n"
               "  env gridworld: %lld x %lld, slip %g, gamma %g, tau %g; goal +1, two traps -1, "
               "the first reward at a decoy (drawn from seed %llu); reward model: %s\n"
               "  feedback: %lld %s of %lld-step trajectories per iteration%s\n"
               "  lower level: %lld soft value-iteration sweeps per iteration; hypergradient: "
               "Neumann series%s\n",
               a.algo.c_str(), to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.precision.c_str(), static_cast<long long>(a.instances),
               a.instances == 1 ? "" : "s", static_cast<long long>(a.side),
               static_cast<long long>(a.side), a.slip, a.gamma, a.tau,
               static_cast<unsigned long long>(a.seed),
               spec.row_column_reward ? "a row score plus a column score (misspecified)"
                                      : "one reward per state",
               static_cast<long long>(a.feedback),
               spec.utility_feedback ? "pairs of reported utilities" : "preference pairs",
               static_cast<long long>(a.horizon),
               feedback_note.c_str(),
               static_cast<long long>(a.inner_steps),
               spec.score_function_term ? ", with the score-function term"
                                        : " (fy = 0: without the score-function term)");
  // the preset's step on the reward is 0.1 (make_alignment_solver)
  const double step = a.outer_step > 0 ? a.outer_step : 0.1;
  if (a.outer_decay > 0)
    std::fprintf(stderr, "  upper level: SGD on the reward, step %g (k + 1)^-%g\n", step,
                 a.outer_decay);
  else
    std::fprintf(stderr, "  upper level: SGD on the reward, step %g\n", step);
  MetricsWriter metrics(a.metrics);
  Progress progress;
  // per instance: the feedback pairs used when the utility ratio first reached 0.95
  std::vector<long long> reached(static_cast<std::size_t>(a.instances), -1);
  const auto observe = [&](const IterationMetrics& m) {
    const std::vector<double>& ratio = m.problem_metrics.at(1);
    for (std::size_t b = 0; b < ratio.size(); ++b)
      if (reached[b] < 0 && ratio[b] >= 0.95) reached[b] = a.feedback * m.iteration;
    char line[200];
    std::snprintf(line, sizeof line,
                  "iter %6lld/%lld  %6.2fs  upper loss %.4f  true utility %.3f of optimum",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, mean_and_interval(m.upper_value).first,
                  mean_and_interval(ratio).first);
    progress.update(line);
    metrics.write({{"iteration", m.iteration},
                   {"seconds", m.seconds},
                   {"feedback_pairs", a.feedback * m.iteration},
                   {"feedback_loss", m.upper_value},
                   {"true_utility", m.problem_metrics.at(0)},
                   {"utility_ratio", ratio},
                   {"hypergradient_norm", m.hypergradient_norm}});
  };
  const std::vector<double>& nu0 = problem.initial_reward();
  const std::vector<double> q0 = problem.soft_optimal_q(nu0);
  const std::vector<double> start_utility = problem.true_utility(q0);
  const SolveResult<T> r = solver->run(std::vector<T>(nu0.begin(), nu0.end()),
                                       std::vector<T>(q0.begin(), q0.end()), observe);
  progress.finish();
  for (const std::string& w : r.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());

  // the learned reward's own optimal policy (the lower level solved exactly)
  const std::vector<double> q = problem.soft_optimal_q(std::vector<double>(r.x.begin(), r.x.end()));
  const std::vector<double> j = problem.true_utility(q);
  const std::vector<double>& j_star = problem.optimal_utility();
  const std::vector<double>& j_uniform = problem.uniform_utility();
  const std::vector<double> ratio = problem.utility_ratio(j),
                            start_ratio = problem.utility_ratio(start_utility);
  std::printf("summary: %s, %lld iterations in %.3f s on %s (%s); feedback pairs used: %lld "
              "per gridworld\n",
              a.algo.c_str(), static_cast<long long>(r.iterations), r.seconds,
              to_string(exec->backend()).c_str(), exec->device_name().c_str(),
              static_cast<long long>(a.feedback * r.iterations));
  const index_t shown = std::min<index_t>(a.instances, 8);
  for (index_t b = 0; b < shown; ++b)
    std::printf("  gridworld %lld: true utility %.4f (optimum %.4f, uniform policy %.4f, first "
                "reward %.4f) = %.1f%% of the way from uniform to optimal\n",
                static_cast<long long>(b), j[b], j_star[b], j_uniform[b], start_utility[b],
                100 * ratio[b]);
  for (index_t b = 0; b < a.instances; ++b)
    if (r.diverged_at[static_cast<std::size_t>(b)] >= 0)
      std::printf("  gridworld %lld diverged at iteration %lld (its numbers are NaN; try a "
                  "smaller --outer-step)\n",
                  static_cast<long long>(b),
                  static_cast<long long>(r.diverged_at[static_cast<std::size_t>(b)]));
  if (shown < a.instances)
    std::printf("  (%lld more gridworlds in the metrics)\n",
                static_cast<long long>(a.instances - shown));
  const auto [mean, half] = mean_and_interval(ratio);
  const auto [start_mean, start_half] = mean_and_interval(start_ratio);
  long long n_reached = 0, pairs_sum = 0;
  for (long long v : reached)
    if (v >= 0) ++n_reached, pairs_sum += v;
  std::printf("  utility ratio (J - J_uniform) / (J* - J_uniform): %.3f +- %.3f (95%%, %lld "
              "gridworlds; first reward %.3f +- %.3f)\n",
              mean, half, static_cast<long long>(a.instances), start_mean, start_half);
  std::printf("  reached 95%% of the optimum: %lld of %lld gridworlds", n_reached,
              static_cast<long long>(a.instances));
  if (n_reached > 0)
    std::printf(", after %.0f feedback pairs on average (at the evaluations, every %lld "
                "iterations)",
                static_cast<double>(pairs_sum) / static_cast<double>(n_reached),
                static_cast<long long>(a.eval_every));
  std::printf("\n");
  metrics.write({{"summary", true},
                 {"algorithm", a.algo},
                 {"env", a.env},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"side", a.side},
                 {"feedback_type", a.feedback_type},
                 {"reward_model", a.reward_model},
                 {"instances", r.instances},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"feedback_pairs", a.feedback * r.iterations},
                 {"true_utility", j},
                 {"optimal_utility", j_star},
                 {"uniform_utility", j_uniform},
                 {"utility_ratio", ratio},
                 {"utility_ratio_mean", mean},
                 {"utility_ratio_interval", half},
                 {"first_reward_utility_ratio", start_ratio},
                 {"pairs_to_95_percent", std::vector<double>(reached.begin(), reached.end())}});
  return 0;
}

}  // namespace

std::function<int()> add_align_command(CLI::App& app) {
  auto a = std::make_shared<AlignArgs>();
  CLI::App* cmd = app.add_subcommand(
      "align",
      "Policy alignment (A-PARL) on an entropy-regularised bandit with a known answer or on "
      "batched gridworlds with preference feedback");
  std::vector<std::string> names;
  for (const AlgorithmInfo& i : alignment_algorithm_presets()) names.push_back(i.name);
  cmd->add_option("--env", a->env, "Environment: bandit or gridworld")
      ->capture_default_str()->check(CLI::IsMember({"bandit", "gridworld"}));
  cmd->add_option("--algo", a->algo, "a-parl or reward-learning (the baseline)")
      ->capture_default_str()->check(CLI::IsMember(names));
  cmd->add_option("--actions", a->actions, "Bandit: actions A (2 to 64)")->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--tau", a->tau, "Entropy weight (default: bandit 0.5, gridworld 0.1)")->check(positive_number());
  cmd->add_option("--feedback", a->feedback,
                  "Feedback per iteration: bandit actions of the policy (default 256; 0: exact "
                  "expectations), gridworld preference pairs (default 32)")
      ->check(non_negative_integer());
  cmd->add_option("--side", a->side, "Gridworld: the grid is side x side (2 to 8)")->capture_default_str()->check(CLI::Range(2, 8));
  cmd->add_option("--horizon", a->horizon, "Gridworld: steps per feedback trajectory (2 to 64)")->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--gamma", a->gamma, "Gridworld: discount (0 to 0.99)")->capture_default_str()->check(number_in(1e-6, 0.99));
  cmd->add_option("--slip", a->slip, "Gridworld: probability that a move is drawn at random")->capture_default_str()->check(number_in(0.0, 1.0));
  cmd->add_option("--beta", a->beta, "Gridworld: temperature of the simulated preferences")->capture_default_str()->check(positive_number());
  cmd->add_option("--feedback-type", a->feedback_type,
                  "Gridworld: preference (Bradley-Terry pairs) or utility (the trajectories' "
                  "true utilities reported)")
      ->capture_default_str()->check(CLI::IsMember({"preference", "utility"}));
  cmd->add_option("--reward-model", a->reward_model,
                  "Gridworld: state (one reward per state) or row-column (a row score plus a "
                  "column score: cannot express the true utility)")
      ->capture_default_str()->check(CLI::IsMember({"state", "row-column"}));
  cmd->add_option("--series-terms", a->series_terms, "Gridworld: Neumann terms of the hypergradient (0: gamma^terms < 1e-3)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--iters", a->iterations, "Iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-steps", a->inner_steps, "Lower-level steps per iteration (bandit: policy gradient, gridworld: soft value iteration)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--outer-step", a->outer_step, "Step on the reward (default: bandit tau, gridworld 0.1)")->check(positive_number());
  cmd->add_option("--outer-decay", a->outer_decay, "The step at iteration k: outer-step (k + 1)^-decay (0: constant)")->capture_default_str()->check(number_in(0.0, 1.0));
  cmd->add_option("--instances", a->instances, "Instances B solved at once (independent feedback; gridworld: B different MDPs)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k iterations (0: at the end)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--seed", a->seed, "Seed of the target and of the feedback")->capture_default_str()->check(seed_value());
  add_execution_options(cmd, a->backend, a->precision, a->metrics, a->graphs);
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    BILEVEL_EXPECTS(launched_world_size() == 1,
                    "bilevel align does not run over several MPI ranks yet (started with "
                        << launched_world_size() << "): run it as one process");
    const std::vector<std::string> others =
        a->env == "bandit"
            ? std::vector<std::string>{"--side", "--horizon", "--gamma", "--slip", "--beta",
                                       "--series-terms", "--feedback-type", "--reward-model"}
            : std::vector<std::string>{"--actions"};
    for (const std::string& name : others)
      BILEVEL_EXPECTS(cmd->count(name) == 0, name << " does not apply to --env " << a->env);
    if (a->env == "gridworld")
      return a->precision == "float" ? run_gridworld<float>(*a) : run_gridworld<double>(*a);
    return a->precision == "float" ? run_bandit<float>(*a) : run_bandit<double>(*a);
  };
}

}  // namespace bilevel::cli
