// `bilevel quadratics`: benchopt's quadratics (problems/finite_sum_quadratic.hpp) from a file
// that bench/compare/benchopt_quadratic_data.py writes with benchopt's own generator, or drawn
// here by the same recipe; the distance to the closed-form x* at each evaluation and benchopt's
// metric ||grad F(x)||^2 at the end.
#include "checkpointing.hpp"
#include "commands.hpp"
#include "metrics_writer.hpp"
#include "output_files.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include <cmath>
#include <cstdio>
#include <numeric>

namespace bilevel::cli {
namespace {

struct QuadraticsArgs {
  std::string data = "synthetic";
  index_t dx = 10, dy = 20, n_inner = 1024, n_outer = 1024;
  double mu = 0.1;
  index_t iterations = 2000, batch = 64, eval_every = 200;
  std::vector<double> inner_step, outer_step;
  RunOptions run;
};

double norm2(const std::vector<double>& v) {
  return std::inner_product(v.begin(), v.end(), v.begin(), 0.0);
}

template <typename T>
int run(const QuadraticsArgs& a) {
  auto exec = make_cli_executor(a.run.backend);
  const bool synthetic = a.data == "synthetic";
  const FiniteSumQuadraticData q =
      synthetic ? FiniteSumQuadraticData::random(a.dx, a.dy, a.n_inner, a.n_outer, a.mu, a.run.seed)
                : FiniteSumQuadraticData::read(a.data);
  const auto [mu_g, l_g] = q.lower_hessian_spectrum();
  const std::vector<double> x_star = q.solution_x();
  const double x_star_norm = std::sqrt(norm2(x_star));
  FiniteSumQuadraticProblem<T> problem(exec, q);

  AlgorithmOptions o = default_options(a.run.algo);
  o.loop.iterations = a.iterations;
  // constant steps from the data: 1/(2 L_g) on y (and v), 1/2 on x, unless given
  o.loop.inner_step = a.inner_step.empty() ? std::vector<double>{0.5 / l_g} : a.inner_step;
  o.loop.outer_step = a.outer_step.empty() ? std::vector<double>{0.5} : a.outer_step;
  o.neumann.eta = o.fixed_point.nu = o.truncated_neumann.eta = o.loop.inner_step;
  o.loop.lower_batch = o.loop.upper_batch = a.batch;
  o.loop.seed = a.run.seed;
  o.loop.eval_every = a.eval_every;
  o.loop.capture = a.run.graphs;
  o.loop.independent_batches = a.run.independent_batches;
  o.loop.reference_x = x_star;
  apply_settings(a.run, o);

  std::fprintf(stderr,
               "bilevel quadratics: %s on %s (%s), %s, %lld instance%s\n"
               "  %s: dx = %lld, dy = %lld, %lld inner and %lld outer samples, batch %s; "
               "mu_g = %.3g, L_g = %.3g, ||x*|| = %.4g\n",
               a.run.algo.c_str(), to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.run.precision.c_str(), static_cast<long long>(a.run.instances),
               a.run.instances == 1 ? "" : "s", synthetic ? "synthetic (benchopt's recipe)" : a.data.c_str(),
               static_cast<long long>(q.dx), static_cast<long long>(q.dy),
               static_cast<long long>(q.inner.n), static_cast<long long>(q.outer.n),
               a.batch > 0 ? std::to_string(a.batch).c_str() : "full", mu_g, l_g, x_star_norm);

  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--checkpoint", a.run.checkpoint}});
  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--resume", a.run.resume}});
  check_checkpoint_paths<T>(a.run);
  MetricsWriter metrics(a.run.metrics);
  const ProblemSettings problem_settings = {
      {"data", a.data}, {"dx", std::to_string(q.dx)}, {"dy", std::to_string(q.dy)},
      {"inner_samples", std::to_string(q.inner.n)}, {"outer_samples", std::to_string(q.outer.n)},
      {"mu", synthetic ? exact_setting(a.mu) : std::string("file")}};
  Progress progress;
  const auto observe = [&](const IterationMetrics& m) {
    std::vector<double> rel(m.distance_to_solution);
    for (double& v : rel) v /= x_star_norm;
    // benchopt's metric, per instance (FiniteSumQuadraticProblem::evaluation_metrics)
    const std::vector<double>& grad_sq = m.problem_metrics.at(0);
    char line[160];
    std::snprintf(line, sizeof line, "iter %6lld/%lld  %6.2fs  |x-x*|/|x*| %.3e  |grad F|^2 %.3e",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, rel[0], grad_sq[0]);
    progress.update(line);
    metrics.write({{"iteration", m.iteration},
                   {"seconds", m.seconds},
                   {"upper_value", m.upper_value},
                   {"lower_value", m.lower_value},
                   {"distance_to_solution", m.distance_to_solution},
                   {"relative_distance", rel},
                   {"hypergradient_norm_squared", grad_sq}});
  };
  const index_t nb = a.run.instances;
  std::vector<T> x0(static_cast<std::size_t>(q.dx * nb), T(0));
  std::vector<T> y0(static_cast<std::size_t>(q.dy * nb), T(0));
  const std::shared_ptr<Communicator> local = local_communicator();
  Communicator& comm = *local;
  std::vector<std::vector<T>> carried = resume_if_asked(
      "quadratics", a.run, problem_settings, std::string(), o, q.dx, q.dy, nb, x0, y0, o.loop, comm);
  if (!a.run.resume.empty()) metrics.resume_at(static_cast<long>(o.loop.start_iteration));
  const auto checkpointer =
      checkpoint_writer<T>("quadratics", a.run, problem_settings, o, o.loop, comm);
  auto solver = make_solver(problem, o);
  solver->restore_state(std::move(carried));
  const SolveResult<T> r = solver->run(x0, y0, observe, {}, checkpointer);
  progress.finish();

  const double per_second = r.seconds > 0 ? r.iterations / r.seconds : 0.0;
  std::printf("summary: %s, %lld iterations in %.3f s (%.1f it/s) on %s (%s)\n",
              a.run.algo.c_str(), static_cast<long long>(r.iterations), r.seconds, per_second,
              to_string(exec->backend()).c_str(), exec->device_name().c_str());
  for (const std::string& w : r.warnings) std::printf("  warning: %s\n", w.c_str());
  std::vector<double> grad_sq(static_cast<std::size_t>(nb), std::nan("")), rel(grad_sq);
  for (index_t b = 0; b < nb; ++b) {
    if (r.diverged_at[b] >= 0) {
      std::printf("  instance %lld: diverged at iteration %lld (%s)\n", static_cast<long long>(b),
                  static_cast<long long>(r.diverged_at[b]), r.divergence[b].c_str());
      continue;
    }
    const std::vector<double> xb(r.x.begin() + b * q.dx, r.x.begin() + (b + 1) * q.dx);
    std::vector<double> diff(xb);
    for (index_t j = 0; j < q.dx; ++j) diff[j] -= x_star[j];
    rel[b] = std::sqrt(norm2(diff)) / x_star_norm;
    // benchopt's metric "value": ||grad F(x)||^2 (closed form, double, on the host)
    grad_sq[b] = norm2(q.hypergradient(xb));
    std::printf("  instance %lld: ||x - x*|| / ||x*|| = %.3e, ||grad F(x)||^2 = %.3e\n",
                static_cast<long long>(b), rel[b], grad_sq[b]);
  }
  metrics.write({{"summary", true},
                 {"algorithm", a.run.algo},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"dtype", a.run.precision},
                 {"instances", r.instances},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"iterations_per_second", per_second},
                 {"relative_distance", rel},
                 {"hypergradient_norm_squared", grad_sq},
                 {"diverged_at", r.diverged_at}});
  return 0;
}

}  // namespace

std::function<int()> add_quadratics_command(CLI::App& app) {
  auto a = std::make_shared<QuadraticsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quadratics", "benchopt's quadratics: per-sample dense quadratics at both levels (known x*)");
  cmd->add_option("--data", a->data,
                  "A file written by bench/compare/benchopt_quadratic_data.py (benchopt's "
                  "generator), or synthetic (its recipe, drawn here with --seed)")
      ->capture_default_str();
  cmd->add_option("--dx", a->dx, "synthetic: upper-level dimension")->capture_default_str()->check(positive_integer());
  cmd->add_option("--dy", a->dy, "synthetic: lower-level dimension")->capture_default_str()->check(positive_integer());
  cmd->add_option("--inner-samples", a->n_inner, "synthetic: samples of g")->capture_default_str()->check(positive_integer());
  cmd->add_option("--outer-samples", a->n_outer, "synthetic: samples of f")->capture_default_str()->check(positive_integer());
  cmd->add_option("--mu", a->mu, "synthetic: smallest eigenvalue of the mean lower Hessian, in (0, 1)")
      ->capture_default_str()->check(number_in(1e-12, 0.999999));
  cmd->add_option("--iters", a->iterations, "Outer iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--batch", a->batch, "Minibatch size (0: full batches)")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k iterations (0: at the end)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-step", a->inner_step, "Step on y and v, 1 value or one per instance (default 0.5/L_g)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--outer-step", a->outer_step, "Step on x, 1 value or one per instance (default 0.5)")
      ->delimiter(',')->check(positive_number());
  a->run.algo = "srba";
  add_run_options(cmd, a->run, "Seed of the synthetic data and of the minibatches");
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    // the generator's options shape nothing when the instance comes from a file: refused, not
    // ignored
    if (a->data != "synthetic")
      for (const char* option : {"--dx", "--dy", "--inner-samples", "--outer-samples", "--mu"})
        BILEVEL_EXPECTS(cmd->count(option) == 0,
                        option << " sets the synthetic instance; --data " << a->data
                               << " brings its own sizes");
    return a->run.precision == "float" ? run<float>(*a) : run<double>(*a);
  };
}

}  // namespace bilevel::cli
