// `bilevel align`: policy alignment (A-PARL and the reward-learning baseline) on the
// entropy-regularised bandit, with a progress line, JSON-lines metrics and a summary of how far
// the learned reward and policy are from the optimal ones.
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
  index_t actions = 10, feedback = 256, iterations = 500, inner_steps = 10, eval_every = 50;
  index_t instances = 1;
  double tau = 0.5, outer_step = 0.0;
  std::string backend = "auto", precision = "double", metrics;
  std::uint64_t seed = 0;
  bool graphs = true;
};

template <typename T>
int run(const AlignArgs& a) {
  auto exec = make_cli_executor(a.backend);
  AlignmentOptions o;
  o.name = a.algo;
  o.inner_steps = a.inner_steps;
  o.loop.iterations = a.iterations;
  o.loop.eval_every = a.eval_every;
  o.loop.seed = a.seed;
  o.loop.capture = a.graphs;
  o.loop.upper_batch = a.feedback;
  o.loop.independent_batches = a.feedback > 0 && a.instances > 1;
  if (a.outer_step > 0) o.loop.outer_step = {a.outer_step};
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

}  // namespace

std::function<int()> add_align_command(CLI::App& app) {
  auto a = std::make_shared<AlignArgs>();
  CLI::App* cmd = app.add_subcommand(
      "align", "Policy alignment (A-PARL) on an entropy-regularised bandit with a known answer");
  std::vector<std::string> names;
  for (const AlgorithmInfo& i : alignment_algorithm_presets()) names.push_back(i.name);
  cmd->add_option("--env", a->env, "Environment (bandit; gridworlds are not there yet)")
      ->capture_default_str()->check(CLI::IsMember({"bandit"}));
  cmd->add_option("--algo", a->algo, "a-parl or reward-learning (the baseline)")
      ->capture_default_str()->check(CLI::IsMember(names));
  cmd->add_option("--actions", a->actions, "Actions A (2 to 64)")->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--tau", a->tau, "Entropy weight")->capture_default_str()->check(positive_number());
  cmd->add_option("--feedback", a->feedback, "Actions of the policy sampled per iteration for the upper level (0: exact expectations)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--iters", a->iterations, "Iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-steps", a->inner_steps, "Policy-gradient steps per iteration")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--outer-step", a->outer_step, "Step on the reward (default tau)")->check(positive_number());
  cmd->add_option("--instances", a->instances, "Instances B solved at once (independent feedback)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k iterations (0: at the end)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--seed", a->seed, "Seed of the target and of the feedback")->capture_default_str()->check(seed_value());
  add_execution_options(cmd, a->backend, a->precision, a->metrics, a->graphs);
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    BILEVEL_EXPECTS(launched_world_size() == 1,
                    "bilevel align does not run over several MPI ranks yet (started with "
                        << launched_world_size() << "): run it as one process");
    return a->precision == "float" ? run<float>(*a) : run<double>(*a);
  };
}

}  // namespace bilevel::cli
