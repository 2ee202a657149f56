// `bilevel quadratic`: a double-loop algorithm on the quadratic problem with a known solution,
// with a progress line, JSON-lines metrics and a summary of the distance to x*.
#include "checkpointing.hpp"
#include "output_files.hpp"
#include "commands.hpp"
#include "metrics_writer.hpp"
#include "progress.hpp"

#include <bilevel/bilevel.hpp>

#include "../linalg/dense.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

namespace bilevel::cli {
namespace {

struct QuadraticArgs {
  index_t dx = 50, dy = 100, samples = 5000;
  double mu = 0.5;
  index_t iterations = 400, inner_steps = 10, batch = 256;
  RunOptions run;
  index_t eval_every = 50;
  std::vector<double> inner_step, outer_step, neumann_eta;
  index_t neumann_terms = 10, cg_iterations = 10;
  std::string distributed = "auto";
};

/// Largest eigenvalue of the upper level's Hessian B A^{-1} B' + d I (the smoothness of F).
double upper_smoothness(const QuadraticData& q) {
  const std::vector<double> ainv_bt = linalg::spd_solve(
      q.lower_hessian(), linalg::matmul(q.b, linalg::identity(q.dx), q.dy, q.dx, q.dx, true),
      q.dy, q.dx);
  std::vector<double> h = linalg::matmul(q.b, ainv_bt, q.dx, q.dx, q.dy);
  for (index_t i = 0; i < q.dx; ++i) h[i + i * q.dx] += q.d;
  return linalg::symmetric_eigenvalues(h, q.dx).back();
}

std::string format_values(const std::vector<double>& v) {
  std::string s;
  char buf[32];
  for (std::size_t i = 0; i < v.size() && i < 4; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.3e", i ? " " : "", v[i]);
    s += buf;
  }
  if (v.size() > 4) s += " ...";
  return s;
}

double max_of(const std::vector<double>& v) {
  return v.empty() ? std::nan("") : *std::max_element(v.begin(), v.end());
}

template <typename T>
int run(const QuadraticArgs& a) {
  auto exec = make_cli_executor(a.run.backend);

  // the per-sample matrices live on the host first: n x dy values (and dx x dy)
  const index_t values = checked_mul(std::max<index_t>(a.samples, 1), a.dy, "--samples x --dy");
  BILEVEL_EXPECTS(values <= (index_t(1) << 31),
                  "--samples " << a.samples << " x --dy " << a.dy << " = " << values
                               << " values (" << values * 8 / (1 << 20)
                               << " MiB) is more than the quadratic command generates (2^31)");
  const QuadraticData q = QuadraticData::random(a.dx, a.dy, a.samples, a.run.seed + 1, a.mu);
  const auto [mu_g, l_g] = q.lower_hessian_spectrum();
  const double l_f = upper_smoothness(q);
  const std::vector<double> x_star = q.solution_x();
  const double x_star_norm = std::sqrt(std::inner_product(x_star.begin(), x_star.end(),
                                                          x_star.begin(), 0.0));
  // data-parallel over MPI ranks: each keeps its shard of the n samples; rank 0 reports
  const std::shared_ptr<Communicator> comm = make_run_communicator(a.distributed, *exec);
  const bool root = comm->rank() == 0;
  // every rank runs alike, or none starts
  check_ranks_agree(*comm, "bilevel quadratic");
  // checkpoints: one file per rank (PATH.rank-R-of-P)
  const RunOptions files = per_rank_checkpoints(a.run, *comm);
  QuadraticProblem<T> problem(exec, q, comm);

  // the preset's defaults (its paper's or authors' code), then what this command sets: the run,
  // its flags (their defaults included) and the steps derived from the problem's smoothness
  AlgorithmOptions o = default_options(a.run.algo);
  o.loop.iterations = a.iterations;
  o.loop.inner_steps = a.inner_steps;
  // Step sizes default to 1/L of the level they act on (L computed from the data).
  o.loop.inner_step = a.inner_step.empty() ? std::vector<double>{1.0 / l_g} : a.inner_step;
  o.loop.outer_step = a.outer_step.empty() ? std::vector<double>{1.0 / l_f} : a.outer_step;
  o.loop.lower_batch = o.loop.upper_batch = a.batch;
  o.loop.seed = a.run.seed;
  o.loop.eval_every = a.eval_every;
  o.loop.capture = a.run.graphs;
  o.loop.independent_batches = a.run.independent_batches;
  o.loop.reference_x = x_star;
  o.neumann = NeumannOptions{a.neumann_terms,
                             a.neumann_eta.empty() ? std::vector<double>{1.0 / l_g} : a.neumann_eta};
  o.cg.iterations = a.cg_iterations;
  o.fixed_point.nu = o.neumann.eta;
  o.truncated_neumann.eta = o.neumann.eta;
  o.truncated_neumann.seed = a.run.seed;
  apply_settings(a.run, o);
  for (double s : o.loop.inner_step)
    if (s > 2.0 / l_g)
      BILEVEL_EXPECTS(false, "--inner-step " << s << " is too large for L_g = " << l_g
                                             << " (must be < 2/L_g = " << 2.0 / l_g << ")");

  if (root)
  std::fprintf(stderr,
               "bilevel quadratic: %s on %s (%s), %s, %lld instance%s\n"
               "  dx = %lld, dy = %lld, n = %lld samples, batch %s; mu_g = %.3g, L_g = %.3g, "
               "L_F = %.3g\n",
               a.run.algo.c_str(), to_string(exec->backend()).c_str(), exec->device_name().c_str(),
               a.run.precision.c_str(), static_cast<long long>(a.run.instances),
               a.run.instances == 1 ? "" : "s", static_cast<long long>(a.dx),
               static_cast<long long>(a.dy), static_cast<long long>(a.samples),
               a.batch > 0 ? std::to_string(a.batch).c_str() : "full", mu_g, l_g, l_f);
  if (root && comm->size() > 1) {
    const Shard s = comm->shard(a.samples);
    std::fprintf(stderr, "  distributed: %s; rank 0 holds samples [%lld, %lld)\n",
                 comm->transport().c_str(), static_cast<long long>(s.begin),
                 static_cast<long long>(s.end));
  }

  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--checkpoint", files.checkpoint}});
  refuse_shared_outputs({{"--metrics", a.run.metrics}, {"--resume", files.resume}});
  check_checkpoint_paths<T>(files);
  MetricsWriter metrics(root ? a.run.metrics : std::string());
  // what shapes this problem beyond the algorithm's options (checkpoint settings), exact
  const ProblemSettings problem_settings = {{"dx", std::to_string(a.dx)},
                                            {"dy", std::to_string(a.dy)},
                                            {"samples", std::to_string(a.samples)},
                                            {"mu", exact_setting(a.mu)},
                                            {"data_seed", std::to_string(a.run.seed)},
                                            {"ranks", std::to_string(comm->size())}};
  // (the tag versions 2 and 3 wrote, to resume their files)
  const std::string problem_tag = "dx " + std::to_string(a.dx) + " dy " + std::to_string(a.dy) +
                                  " n " + std::to_string(a.samples) + " mu " +
                                  std::to_string(a.mu) + " batch " + std::to_string(a.batch) +
                                  (comm->size() > 1 ? " ranks " + std::to_string(comm->size())
                                                    : std::string());
  Progress progress;
  const auto observe = [&](const IterationMetrics& m) {
    std::vector<double> rel(m.distance_to_solution);
    for (double& v : rel) v /= x_star_norm;
    char line[256];
    std::snprintf(line, sizeof line, "iter %6lld/%lld  %6.2fs  |x-x*|/|x*| %s  f %s",
                  static_cast<long long>(m.iteration), static_cast<long long>(a.iterations),
                  m.seconds, format_values(rel).c_str(), format_values(m.upper_value).c_str());
    if (root) progress.update(line);
    metrics.write({{"iteration", m.iteration},
                   {"seconds", m.seconds},
                   {"upper_value", m.upper_value},
                   {"lower_value", m.lower_value},
                   {"hypergradient_norm", m.hypergradient_norm},
                   {"distance_to_solution", m.distance_to_solution},
                   {"relative_distance", rel}});
  };

  std::vector<T> x0(static_cast<std::size_t>(a.dx * a.run.instances), T(0));
  std::vector<T> y0(static_cast<std::size_t>(a.dy * a.run.instances), T(0));
  std::vector<std::vector<T>> carried =
      resume_if_asked("quadratic", files, problem_settings, problem_tag, o, a.dx, a.dy,
                      a.run.instances, x0, y0, o.loop, *comm, root);
  if (!files.resume.empty()) metrics.resume_at(static_cast<long>(o.loop.start_iteration));
  const auto checkpointer =
      checkpoint_writer<T>("quadratic", files, problem_settings, o, o.loop, *comm);
  auto solver = make_solver(problem, o);
  solver->restore_state(std::move(carried));
  const SolveResult<T> r = solver->run(x0, y0, observe, {}, checkpointer);
  progress.finish();

  if (!root) return 0;
  const IterationMetrics& last = r.history.back();
  std::vector<double> rel(last.distance_to_solution);
  for (double& v : rel) v /= x_star_norm;
  const double per_second = r.seconds > 0 ? r.iterations / r.seconds : 0.0;
  std::printf("summary: %s, %lld iterations in %.3f s (%.1f it/s) on %s (%s)\n", a.run.algo.c_str(),
              static_cast<long long>(r.iterations), r.seconds, per_second,
              to_string(exec->backend()).c_str(), exec->device_name().c_str());
  std::printf("  ||x*|| = %.4e\n", x_star_norm);
  for (const std::string& w : r.warnings) std::printf("  warning: %s\n", w.c_str());
  std::vector<double> healthy_rel;
  for (index_t b = 0; b < r.instances; ++b) {
    if (r.diverged_at[b] >= 0) {
      std::printf("  instance %lld: diverged at iteration %lld (%s)\n", static_cast<long long>(b),
                  static_cast<long long>(r.diverged_at[b]), r.divergence[b].c_str());
      continue;
    }
    healthy_rel.push_back(rel[b]);
    std::printf("  instance %lld: ||x - x*|| = %.4e (relative %.3e), f = %.6e\n",
                static_cast<long long>(b), last.distance_to_solution[b], rel[b],
                last.upper_value[b]);
  }
  metrics.write({{"summary", true},
                 {"algorithm", a.run.algo},
                 {"backend", to_string(exec->backend())},
                 {"device", exec->device_name()},
                 {"dtype", a.run.precision},
                 {"instances", r.instances},
                 {"ranks", comm->size()},
                 {"iterations", r.iterations},
                 {"seconds", r.seconds},
                 {"iterations_per_second", per_second},
                 {"captured_graphs", r.captured_shapes},
                 {"distance_to_solution", last.distance_to_solution},
                 {"relative_distance", rel},
                 {"max_relative_distance", max_of(healthy_rel)},
                 {"diverged_at", r.diverged_at}});
  return 0;
}

}  // namespace

std::function<int()> add_quadratic_command(CLI::App& app) {
  auto a = std::make_shared<QuadraticArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quadratic", "Solve the strongly convex quadratic bilevel problem (known x*)");
  cmd->add_option("--dx", a->dx, "Upper-level dimension")->capture_default_str()->check(positive_integer());
  cmd->add_option("--dy", a->dy, "Lower-level dimension")->capture_default_str()->check(positive_integer());
  cmd->add_option("--samples", a->samples, "Samples n in the finite sums")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--mu", a->mu, "Ridge of the lower-level Hessian")->capture_default_str()->check(number_in(0.0, 1e6));
  cmd->add_option("--iters", a->iterations, "Outer iterations")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-steps", a->inner_steps, "Lower-level steps per outer iteration (D)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--batch", a->batch, "Minibatch size (0: full batches, deterministic)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--eval-every", a->eval_every, "Metrics every k iterations (0: at the end)")
      ->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--inner-step", a->inner_step, "Lower-level step alpha, 1 value or one per instance (default 1/L_g)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--outer-step", a->outer_step, "Upper-level step beta, 1 value or one per instance (default 1/L_F)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--neumann-eta", a->neumann_eta, "Neumann step eta, 1 value or one per instance (default 1/L_g)")
      ->delimiter(',')->check(positive_number());
  cmd->add_option("--neumann-terms", a->neumann_terms, "Neumann terms Q")->capture_default_str()->check(non_negative_integer());
  cmd->add_option("--cg-iterations", a->cg_iterations, "CG iterations per estimate")->capture_default_str()->check(non_negative_integer());
  add_run_options(cmd, a->run, "Seed of the data and of the minibatches");
  cmd->add_option("--distributed", a->distributed,
                  "auto (when started by mpirun: NCCL with a GPU per rank, else MPI), mpi, nccl or off: "
                  "data-parallel over the ranks")
      ->capture_default_str()->check(CLI::IsMember({"auto", "mpi", "nccl", "off"}));
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return a->run.precision == "float" ? run<float>(*a) : run<double>(*a);
  };
}

}  // namespace bilevel::cli
