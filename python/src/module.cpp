// bilevel._bilevel: the C++ library for Python (nanobind). The Python layer (bilevel/__init__.py)
// validates keyword options and adds progress bars; this module holds executors, problems (the
// built-in quadratic and hyper-cleaning, and problems whose oracles are Python callables) and
// one solve() over them, in double precision. Arrays cross as NumPy (any DLPack-capable CPU
// array is taken without a copy where its layout allows). The array conversions are in
// conversions.hpp, the callback problem in callback_problem.hpp.
#include <bilevel/bilevel.hpp>

#include "callback_problem.hpp"
#include "conversions.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <Python.h>

#include <cmath>
#include <iomanip>
#include <memory>
#include <string>
#include <vector>

namespace nb = nanobind;
using namespace nb::literals;

namespace bilevel::python {
namespace {

/// The options a solve takes (bilevel/__init__.py checks the names and types).
struct SolveOptions {
  std::string algorithm = "stocbio";
  index_t instances = 1;
  index_t iterations = -1, inner_steps = -1, lower_batch = -1, upper_batch = -1;
  index_t eval_every = -1, neumann_terms = -1, cg_iterations = -1;
  std::vector<double> inner_step, outer_step, neumann_eta;
  std::int64_t seed = -1;
  bool capture = true, independent_batches = false;
  /// Steps from the problem: set_steps_from_smoothness at (x0, y0) before the run.
  bool auto_steps = false;
  /// Any other option of AlgorithmOptions by its key (set_algorithm_option), applied last.
  std::vector<std::pair<std::string, std::vector<double>>> settings;
  /// Continuing a run (solve(..., resume=result)): its iteration and carried state.
  index_t start_iteration = 0;
  std::vector<std::vector<double>> state;
};

/// A start point of nb_ instances of dimension d: `given` (a float64 CPU array of d nb_
/// values), or `fallback`, or zeros; InvalidArgument naming `what` otherwise.
std::vector<double> start_values(nb::object given, index_t d, index_t nb_, const char* what,
                                 std::vector<double> fallback = {}) {
  if (given.is_none())
    return fallback.empty() ? std::vector<double>(static_cast<std::size_t>(d * nb_), 0.0)
                            : fallback;
  nb::ndarray<const double, nb::c_contig, nb::device::cpu> a;
  if (!nb::try_cast(given, a))
    throw InvalidArgument(std::string(what) + " must be a float64 CPU array (NumPy or DLPack)");
  BILEVEL_EXPECTS(static_cast<index_t>(a.size()) == d * nb_,
                  what << " must hold " << d << " x " << nb_ << " instance(s) values, has "
                       << a.size());
  return std::vector<double>(a.data(), a.data() + a.size());
}

/// Runs `solver` on `problem` from x0, y0 (None: zeros) for `nb_` instances: the history, the
/// callback at every evaluation, Ctrl-C returning the state of the last evaluation.
nb::dict run_solver(Problem<double>& problem, Solver<double>& solver, const std::string& algorithm,
                    index_t nb_, nb::object x0, nb::object y0, nb::object callback,
                    std::vector<double> default_x0 = {}, std::vector<double> default_y0 = {}) {
  const index_t dx = problem.dim_x(), dy = problem.dim_y();
  BILEVEL_EXPECTS(nb_ >= 1, "instances must be >= 1, got " << nb_);
  const auto start = [&](nb::object given, index_t d, const char* what,
                         std::vector<double> fallback) {
    return start_values(std::move(given), d, nb_, what, std::move(fallback));
  };
  const std::vector<double> xs = start(x0, dx, "x0", std::move(default_x0)),
                            ys = start(y0, dy, "y0", std::move(default_y0));
  // the state at the last evaluation, kept for an interrupted run
  std::vector<double> last_x = xs, last_y = ys;
  std::vector<std::vector<double>> last_state;
  index_t last_iteration = solver.options().start_iteration;
  bool stop = false;  // Ctrl-C (or KeyboardInterrupt from the callback): stop after the copy
  nb::list history;
  const auto observe = [&](const IterationMetrics& m) {
    nb::dict d;
    d["iteration"] = m.iteration;
    d["seconds"] = m.seconds;
    d["upper_value"] = m.upper_value;
    d["lower_value"] = m.lower_value;
    d["hypergradient_norm"] = m.hypergradient_norm;
    if (!m.distance_to_solution.empty()) d["distance_to_solution"] = m.distance_to_solution;
    const std::vector<std::string> names = problem.evaluation_metric_names();
    for (std::size_t k = 0; k < names.size() && k < m.problem_metrics.size(); ++k)
      d[names[k].c_str()] = m.problem_metrics[k];
    history.append(d);
    if (!callback.is_none()) {
      try {
        callback(d);
      } catch (nb::python_error& e) {
        if (!e.matches(PyExc_KeyboardInterrupt)) throw;
        stop = true;
      }
    }
    // Ctrl-C between evaluations
    if (PyErr_CheckSignals() != 0) {
      if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) throw nb::python_error();
      PyErr_Clear();
      stop = true;
    }
  };
  const auto inspect = [&](const IterationMetrics& m, ConstMatrixView<double> x,
                           ConstMatrixView<double> y) {
    const auto copy = [&](ConstMatrixView<double> v, std::vector<double>& out) {
      out.resize(static_cast<std::size_t>(v.rows * v.cols));
      problem.executor()->copy_to_host(out.data(), v.data, out.size() * sizeof(double));
    };
    copy(x, last_x);
    copy(y, last_y);
    last_state = solver.read_carried_state();
    last_iteration = m.iteration;
    if (stop) throw Interrupted{};  // with the state of this evaluation
  };
  // the carried state as (instances, rows) arrays, like x and y
  const auto state_arrays = [&](const std::vector<std::vector<double>>& state) {
    nb::list l;
    for (const std::vector<double>& a : state)
      l.append(to_numpy(a, {static_cast<size_t>(nb_), a.size() / static_cast<size_t>(nb_)}));
    return l;
  };
  nb::dict out;
  try {
    const SolveResult<double> r = solver.run(xs, ys, observe, inspect);
    out["x"] = to_numpy(r.x, {static_cast<size_t>(nb_), static_cast<size_t>(dx)});
    out["y"] = to_numpy(r.y, {static_cast<size_t>(nb_), static_cast<size_t>(dy)});
    out["iterations"] = r.iterations;
    out["iteration"] = solver.options().iterations;
    out["state"] = state_arrays(r.carried_state);
    out["seconds"] = r.seconds;
    out["diverged_at"] = r.diverged_at;
    out["warnings"] = r.warnings;
    out["interrupted"] = false;
  } catch (const Interrupted&) {
    out["x"] = to_numpy(last_x, {static_cast<size_t>(nb_), static_cast<size_t>(dx)});
    out["y"] = to_numpy(last_y, {static_cast<size_t>(nb_), static_cast<size_t>(dy)});
    out["iterations"] = last_iteration - solver.options().start_iteration;
    out["iteration"] = last_iteration;
    out["state"] = state_arrays(last_state);
    out["seconds"] = 0.0;
    out["diverged_at"] = std::vector<index_t>(static_cast<std::size_t>(nb_), -1);
    out["warnings"] = std::vector<std::string>();
    out["interrupted"] = true;
  }
  out["history"] = history;
  out["algorithm"] = algorithm;
  out["backend"] = to_string(problem.executor()->backend());
  out["device"] = problem.executor()->device_name();
  return out;
}

/// The preset's defaults with the options given on top.
AlgorithmOptions algorithm_options(const SolveOptions& s) {
  AlgorithmOptions o = default_options(s.algorithm);
  if (s.iterations >= 0) o.loop.iterations = s.iterations;
  if (s.inner_steps >= 0) o.loop.inner_steps = s.inner_steps;
  if (s.lower_batch >= 0) o.loop.lower_batch = s.lower_batch;
  if (s.upper_batch >= 0) o.loop.upper_batch = s.upper_batch;
  if (s.eval_every >= 0) o.loop.eval_every = s.eval_every;
  if (s.seed >= 0) o.loop.seed = static_cast<std::uint64_t>(s.seed);
  if (!s.inner_step.empty()) o.loop.inner_step = s.inner_step;
  if (!s.outer_step.empty()) o.loop.outer_step = s.outer_step;
  if (s.neumann_terms >= 0) o.neumann.terms = s.neumann_terms;
  if (!s.neumann_eta.empty()) o.neumann.eta = s.neumann_eta;
  if (s.cg_iterations >= 0) o.cg.iterations = s.cg_iterations;
  for (const auto& [key, values] : s.settings) set_algorithm_option(o, key, values);
  o.loop.capture = s.capture;
  o.loop.independent_batches = s.independent_batches;
  o.loop.start_iteration = s.start_iteration;
  return o;
}

nb::dict solve(Problem<double>& problem, const SolveOptions& s, nb::object x0, nb::object y0,
               nb::object callback) {
  AlgorithmOptions o = algorithm_options(s);
  std::vector<double> l_g;
  if (s.auto_steps) {
    // the lower-level and linear-system steps: 0.9 / L_g estimated at (x0, y0)
    BILEVEL_EXPECTS(s.instances >= 1, "instances must be >= 1, got " << s.instances);
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    Array<double> xa(problem.executor(), dx, s.instances, start_values(x0, dx, s.instances, "x0")),
        ya(problem.executor(), dy, s.instances, start_values(y0, dy, s.instances, "y0"));
    l_g = set_steps_from_smoothness<double>(problem, o, xa.cview(), ya.cview(), o.loop.lower_batch);
  }
  auto solver = make_solver(problem, o);
  solver->restore_state(s.state);
  nb::dict out = run_solver(problem, *solver, s.algorithm, s.instances, x0, y0, callback);
  if (!l_g.empty()) out["lower_smoothness"] = l_g;
  return out;
}

/// The meta-learning of `bilevel meta` (same tasks, initialisation and schedule for the same
/// seed): sinusoid regression (`data` empty) or N-way K-shot episodes of a data source (`data`:
/// fashion-mnist or an IDX folder; meta-train classes from the training images, meta-test
/// classes from the test images; by default the even and the odd labels), then its meta-test
/// on new tasks (episodes: with the nearest-centroid baseline on the same tasks).
nb::dict meta_learning(std::shared_ptr<Executor> exec, const std::string& data,
                       const std::string& algorithm, index_t ways, index_t meta_batch,
                       index_t shots, index_t query, const std::vector<index_t>& hidden,
                       index_t inner_steps, double inner_step, double damping,
                       index_t iterations, double outer_step, index_t eval_every,
                       std::uint64_t seed, index_t test_tasks, index_t test_steps,
                       std::vector<int> train_classes, std::vector<int> test_classes,
                       nb::object callback) {
  MetaRun run;
  run.algorithm = algorithm;
  run.ways = ways, run.shots = shots, run.query = query;
  run.hidden = hidden;
  run.inner_steps = inner_steps;
  run.inner_step = inner_step;
  run.damping = damping;
  run.iterations = iterations;
  run.outer_step = outer_step;
  run.eval_every = eval_every;
  run.seed = seed;
  run.train_classes = std::move(train_classes);
  run.test_classes = std::move(test_classes);
  const bool episodes = !data.empty();
  DataSource source;
  if (episodes) {
    source = load_data_source(data, "meta_episodes");
    BILEVEL_EXPECTS(source.test.has_value(), "meta_episodes '" << data
                                                 << "': episodes need an IDX folder (training "
                                                    "and test images)");
  }
  const MetaSetup setup = meta_setup(run, episodes ? &source.pool : nullptr, source.description,
                                     "train_classes", "test_classes");
  const MetaAlgorithmOptions& o = setup.options;
  const MetaMlpSpec& spec = setup.spec;
  const EpisodeSpec &train_episodes = setup.train_episodes, &test_episodes = setup.test_episodes;
  auto problem = episodes ? std::make_unique<MetaMlpProblem<double>>(exec, spec, meta_batch,
                                                                      source.pool, train_episodes)
                          : std::make_unique<MetaMlpProblem<double>>(exec, spec, meta_batch);
  std::vector<double> x0;
  const std::vector<double> start = mlp_initial_parameters(spec.mlp, seed + 1);
  for (index_t b = 0; b < meta_batch; ++b) x0.insert(x0.end(), start.begin(), start.end());
  auto solver = make_meta_solver(*problem, o);
  nb::dict out = run_solver(*problem, *solver, algorithm, meta_batch, nb::none(), nb::none(),
                            callback, x0);
  // meta-test: new tasks of the test split, adapted from the learned x
  MetaMlpSpec test_spec = spec;
  test_spec.split = TaskSplit::meta_test;
  auto test_problem =
      episodes ? std::make_unique<MetaMlpProblem<double>>(exec, test_spec, test_tasks,
                                                          *source.test, test_episodes)
               : std::make_unique<MetaMlpProblem<double>>(exec, test_spec, test_tasks);
  test_problem->sample_tasks(0);
  const auto x = nb::cast<nb::ndarray<const double, nb::c_contig, nb::device::cpu>>(out["x"]);
  const std::vector<double> meta(x.data(), x.data() + problem->dim_x());
  const MetaTestResult t = meta_test(
      *test_problem, meta, test_steps >= 0 ? test_steps : std::max<index_t>(inner_steps, 1),
      inner_step);
  out["test_loss_before_adaptation"] = t.mean_before;
  out["test_loss_after_adaptation"] = t.mean_after;
  out["test_loss_interval95"] = t.interval_after;
  if (episodes) {
    out["test_accuracy"] = t.mean_accuracy;
    out["test_accuracy_interval95"] = t.interval_accuracy;
    const auto centroid = mean_and_interval(nearest_centroid_accuracy(
        test_problem->current_tasks(), source.pool.features, ways));
    out["nearest_centroid_accuracy"] = centroid.first;
    out["nearest_centroid_interval95"] = centroid.second;
  }
  return out;
}

AlignmentRun alignment_run(const std::string& algorithm, index_t feedback, index_t iterations,
                           index_t inner_steps, double outer_step, index_t instances,
                           index_t eval_every, std::uint64_t seed) {
  AlignmentRun r;
  r.algorithm = algorithm;
  r.feedback = feedback;
  r.iterations = iterations;
  r.inner_steps = inner_steps;
  r.outer_step = outer_step;
  r.instances = instances;
  r.eval_every = eval_every;
  r.seed = seed;
  return r;
}

/// The bandit of `bilevel align` (A-PARL or the reward-learning baseline), and how far the
/// learned reward is from nu* (up to a constant) and its policy from the target.
nb::dict align_bandit(std::shared_ptr<Executor> exec, const std::string& algorithm,
                      index_t actions, double tau, index_t feedback, index_t iterations,
                      index_t inner_steps, double outer_step, index_t instances,
                      index_t eval_every, std::uint64_t seed, nb::object callback) {
  const AlignmentOptions o =
      alignment_options(alignment_run(algorithm, feedback, iterations, inner_steps, outer_step,
                                      instances, eval_every, seed));
  BanditAlignmentSpec spec;
  spec.actions = actions;
  spec.tau = tau;
  spec.seed = seed;
  apply_alignment_preset(o, spec);
  BanditAlignmentProblem<double> problem(exec, spec);
  auto solver = make_alignment_solver(problem, o);
  nb::dict out = run_solver(problem, *solver, algorithm, instances, nb::none(), nb::none(), callback);
  const auto x = nb::cast<nb::ndarray<const double, nb::c_contig, nb::device::cpu>>(out["x"]);
  const std::vector<double> star = problem.optimal_reward();
  double star_norm = 0;
  for (double v : star) star_norm += v * v;
  star_norm = std::sqrt(star_norm);
  std::vector<double> errors, kls;
  for (index_t b = 0; b < instances; ++b) {
    std::vector<double> nu(x.data() + b * actions, x.data() + (b + 1) * actions);
    double mean = 0;
    for (double v : nu) mean += v / static_cast<double>(actions);
    double err = 0;
    for (index_t i = 0; i < actions; ++i) err += (nu[i] - mean - star[i]) * (nu[i] - mean - star[i]);
    errors.push_back(std::sqrt(err) / star_norm);
    kls.push_back(problem.upper_objective(nu));
  }
  out["relative_reward_error"] = errors;
  out["kl_policy_target"] = kls;
  out["optimal_reward"] = to_numpy(star, {static_cast<size_t>(actions)});
  return out;
}

/// The gridworlds of `bilevel align --env gridworld`, started (as the CLI does) from the
/// designer's first reward and its soft-optimal Q; the true utility of the learned reward's
/// policy against the optimal and the uniform ones.
nb::dict align_gridworld(std::shared_ptr<Executor> exec, const std::string& algorithm,
                         index_t side, index_t horizon, double gamma, double slip, double tau,
                         double beta, const std::string& feedback_type,
                         const std::string& reward_model, index_t feedback,
                         index_t iterations, index_t inner_steps, double outer_step,
                         double outer_decay, index_t instances, index_t eval_every,
                         std::uint64_t seed, nb::object callback) {
  BILEVEL_EXPECTS(feedback >= 2, "align_gridworld: feedback must be >= 2 pairs, got " << feedback);
  AlignmentRun run = alignment_run(algorithm, feedback, iterations, inner_steps, outer_step,
                                   instances, eval_every, seed);
  run.outer_decay = outer_decay;
  const AlignmentOptions o = alignment_options(run);
  GridworldRun env;
  env.side = side;
  env.horizon = horizon;
  env.gamma = gamma;
  env.slip = slip;
  env.tau = tau;
  env.beta = beta;
  env.feedback_type = feedback_type;
  env.reward_model = reward_model;
  env.instances = instances;
  env.seed = seed;
  const GridworldAlignmentSpec spec = gridworld_spec(env, o);
  GridworldAlignmentProblem<double> problem(exec, spec);
  auto solver = make_alignment_solver(problem, o);
  const std::vector<double> nu0 = problem.initial_reward(), q0 = problem.soft_optimal_q(nu0);
  nb::dict out = run_solver(problem, *solver, algorithm, instances, nb::none(), nb::none(),
                            callback, nu0, q0);
  const auto x = nb::cast<nb::ndarray<const double, nb::c_contig, nb::device::cpu>>(out["x"]);
  const std::vector<double> j =
      problem.true_utility(problem.soft_optimal_q(std::vector<double>(x.data(), x.data() + x.size())));
  out["true_utility"] = j;
  out["optimal_utility"] = problem.optimal_utility();
  out["uniform_utility"] = problem.uniform_utility();
  out["utility_ratio"] = problem.utility_ratio(j);
  out["first_reward_utility_ratio"] = problem.utility_ratio(problem.true_utility(q0));
  return out;
}

}  // namespace
}  // namespace bilevel::python

NB_MODULE(_bilevel, m) {
  using namespace bilevel;
  using namespace bilevel::python;
  m.doc() = "bilevel: stochastic bilevel optimization on the GPU and the CPU (C++ core)";

  nb::exception<DivergenceError>(m, "DivergenceError", PyExc_RuntimeError);
  nb::exception<NotSupported>(m, "NotSupported", PyExc_NotImplementedError);
  nb::exception<DeviceUnavailable>(m, "DeviceUnavailable", PyExc_RuntimeError);
  nb::exception<InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);

  nb::class_<Executor>(m, "Executor")
      .def_prop_ro("backend", [](const Executor& e) { return to_string(e.backend()); })
      .def_prop_ro("device_name", &Executor::device_name);
  m.def("make_executor",
        [](const std::string& kind, int device) { return make_executor(parse_backend(kind), device); },
        "kind"_a = "auto", "device"_a = 0,
        "An executor: 'auto' (CUDA when a device exists, else the CPU), 'cpu' or 'cuda'.");
  m.def("cuda_device_count", []() { return cuda_device_count(); });
  m.def("set_cpu_threads", &set_cpu_threads, "threads"_a,
        "Threads of the CPU backend from now on (>= 1); results do not depend on it.");
  m.def("cpu_threads", &cpu_threads, "The threads the CPU backend uses now.");
  m.def("max_cpu_threads", &max_cpu_threads,
        "The most threads the CPU backend accepts (4 per core, at least 8).");
  m.def("set_cpu_isa", &set_cpu_isa, "isa"_a,
        "The instruction set of the CPU kernels from now on: 'generic', 'avx2' or 'avx512', "
        "capped at what this CPU has; returns the one in use (ValueError for another name).");
  m.def("cpu_isa", &cpu_isa, "The instruction set the CPU kernels use now.");
  m.def("cpu_isas", &cpu_isas, "Every instruction set this CPU can run, lowest first.");

  m.def("algorithms", []() {
    nb::list out;
    for (const AlgorithmInfo& i : algorithm_presets()) {
      nb::dict d;
      d["name"] = i.name;
      d["description"] = i.description;
      d["source"] = i.source;
      d["needs"] = i.needs;
      out.append(d);
    }
    return out;
  });

  nb::class_<Problem<double>>(m, "Problem")
      .def_prop_ro("name", &Problem<double>::name)
      .def_prop_ro("dim_x", &Problem<double>::dim_x)
      .def_prop_ro("dim_y", &Problem<double>::dim_y)
      .def_prop_ro("lower_samples", &Problem<double>::lower_samples,
                   "samples in the sum behind g (0: deterministic, batches ignored)")
      .def_prop_ro("upper_samples", &Problem<double>::upper_samples,
                   "samples in the sum behind f (0: deterministic, batches ignored)")
      .def_prop_ro("backend", [](const Problem<double>& p) { return to_string(p.executor()->backend()); });

  nb::class_<QuadraticProblem<double>, Problem<double>>(m, "QuadraticProblem")
      .def("__init__",
           [](QuadraticProblem<double>* self, std::shared_ptr<Executor> exec, index_t dx,
              index_t dy, index_t samples, std::uint64_t seed, double mu) {
             new (self) QuadraticProblem<double>(std::move(exec),
                                                 QuadraticData::random(dx, dy, samples, seed, mu));
           },
           "executor"_a, "dx"_a, "dy"_a, "samples"_a, "seed"_a = 0, "mu"_a = 0.5,
           "The random quadratic of `bilevel quadratic` (same data for the same seed).")
      .def("solution_x", [](const QuadraticProblem<double>& p) {
        std::vector<double> x = p.data().solution_x();
        const size_t n = x.size();
        return to_numpy(std::move(x), {n});
      });

  nb::class_<HypercleanProblem<double>, Problem<double>>(m, "HypercleanProblem")
      .def("__init__",
           [](HypercleanProblem<double>* self, std::shared_ptr<Executor> exec,
              const Matrix& train_x, const Labels& train_y, const Matrix& val_x,
              const Labels& val_y, const Matrix& test_x, const Labels& test_y, int classes,
              double reg, bool bias) {
             const HypercleanData data =
                 splits_of(train_x, train_y, val_x, val_y, test_x, test_y, classes, bias);
             new (self) HypercleanProblem<double>(std::move(exec), data, reg);
           },
           "executor"_a, "train_x"_a, "train_y"_a, "validation_x"_a, "validation_y"_a,
           "test_x"_a, "test_y"_a, "classes"_a, "reg"_a = 3e-3, "bias"_a = true,
           "Hyper-cleaning on the given splits: g = mean sigmoid(x_i) CE(W' a_i, y_i) + reg "
           "||W||^2 on train, f = mean CE on validation. bias=False: no constant feature (W is "
           "features x classes, benchopt's datacleaning); else (features + 1) x classes.")
      .def_static(
          "l2_tuning",
          [](std::shared_ptr<Executor> exec, const Matrix& train_x, const Labels& train_y,
             const Matrix& val_x, const Labels& val_y, const Matrix& test_x, const Labels& test_y,
             int classes, const std::string& penalty, const std::string& loss, bool bias) {
            const HypercleanData data =
                splits_of(train_x, train_y, val_x, val_y, test_x, test_y, classes, bias);
            return new L2TuningProblem<double>(std::move(exec), data, parse_l2_penalty(penalty),
                                               parse_linear_model_loss(loss));
          },
          nb::rv_policy::take_ownership, "executor"_a, "train_x"_a, "train_y"_a,
          "validation_x"_a, "validation_y"_a, "test_x"_a, "test_y"_a, "classes"_a,
          "penalty"_a = "per-feature", "loss"_a = "softmax", "bias"_a = true,
          "The same linear-model family with an L2 outer map (`bilevel hpo`): every sample "
          "weight 1, x the log L2 weights, per-feature (x: one per feature) or per-class (one "
          "per class); loss 'binary' is two-class logistic regression with one weight vector "
          "(y: features (+ 1) entries; benchopt's ijcnn1 with penalty per-feature, bias False).")
      .def_prop_ro("outer_map", [](const HypercleanProblem<double>& p) {
        return p.outer_map() == OuterMap::sample_weights ? "sample-weights"
               : p.outer_map() == OuterMap::per_feature_l2 ? "per-feature-l2"
                                                         : "per-class-l2";
      })
      .def("test_accuracy", [](HypercleanProblem<double>& p, const Matrix& y) {
        BILEVEL_EXPECTS(static_cast<index_t>(y.shape(1)) == p.dim_y(),
                        "test_accuracy: y must have " << p.dim_y() << " columns");
        auto exec = p.executor();
        const index_t nb_ = static_cast<index_t>(y.shape(0));
        Array<double> w(exec, p.dim_y(), nb_, std::vector<double>(y.data(), y.data() + y.size()));
        p.reserve(nb_, 1);
        return p.accuracy(DataSplit::test, w.cview());
      }, "y"_a);

  m.def("hyperclean_split",
        [](const std::string& path, index_t train, index_t validation, index_t test,
           double corruption, std::uint64_t seed, const std::string& protocol) {
          // the CLI's protocol: split, standardize on train, corrupt labels
          const DataSource source = load_data_source(path, "hyperclean_split");
          const HypercleanData d = prepare_hyperclean(source.pool, source.test,
                                                      SplitSizes{train, validation, test},
                                                      corruption, seed,
                                                      parse_hyperclean_protocol(protocol));
          nb::dict out;
          const auto put = [&](const Dataset& s, const char* name) {
            out[(std::string(name) + "_x").c_str()] = to_numpy(
                std::vector<double>(s.x.begin(), s.x.end()),
                {static_cast<size_t>(s.samples), static_cast<size_t>(s.features)});
            auto* labels = new std::vector<std::int32_t>(s.labels);
            nb::capsule owner(labels, [](void* q) noexcept {
              delete static_cast<std::vector<std::int32_t>*>(q);
            });
            out[(std::string(name) + "_y").c_str()] = nb::ndarray<nb::numpy, std::int32_t>(
                labels->data(), {labels->size()}, owner);
          };
          put(d.train, "train");
          put(d.validation, "validation");
          put(d.test, "test");
          out["classes"] = d.train.classes;
          out["corrupted"] = std::vector<int>(d.corrupted.begin(), d.corrupted.end());
          out["bias"] = d.bias;
          return out;
        },
        "path"_a, "train"_a, "validation"_a, "test"_a, "corruption"_a = 0.5, "seed"_a = 0,
        "protocol"_a = "bilevel",
        "The hyper-cleaning protocol of `bilevel hyperclean --data PATH` (same split, "
        "standardization and corrupted labels for the same seed), as NumPy arrays: PATH is "
        "fashion-mnist, an IDX folder or a LIBSVM file. protocol='benchopt': each train "
        "label redrawn uniformly with probability `corruption`, and 'bias' False (pass it to "
        "HypercleanProblem).");

  // (x, y) of the diagnostics: (B, dim_x) and (B, dim_y) arrays as dim x B columns
  const auto points = [](Problem<double>& p, const Matrix& x, const Matrix& y, const char* what) {
    BILEVEL_EXPECTS(x.shape(0) == y.shape(0) && static_cast<index_t>(x.shape(1)) == p.dim_x() &&
                        static_cast<index_t>(y.shape(1)) == p.dim_y(),
                    what << ": x must be (B, " << p.dim_x() << ") and y (B, " << p.dim_y()
                         << "), got (" << x.shape(0) << ", " << x.shape(1) << ") and ("
                         << y.shape(0) << ", " << y.shape(1) << ")");
    auto exec = p.executor();
    const index_t nb_ = static_cast<index_t>(x.shape(0));
    return std::pair{
        Array<double>(exec, p.dim_x(), nb_, std::vector<double>(x.data(), x.data() + x.size())),
        Array<double>(exec, p.dim_y(), nb_, std::vector<double>(y.data(), y.data() + y.size()))};
  };
  m.def("_check_oracles",
        [points](Problem<double>& p, const Matrix& x, const Matrix& y, double step,
                 double tolerance, std::uint64_t seed) {
          const auto [xa, ya] = points(p, x, y, "check_oracles");
          const OracleCheckReport r =
              check_oracles<double>(p, xa.cview(), ya.cview(), OracleCheckOptions{step, tolerance, seed});
          nb::list checks;
          for (const OracleCheck& c : r.checks) {
            nb::dict d;
            d["oracle"] = c.oracle;
            d["against"] = c.against;
            d["instance"] = c.instance;
            d["analytic"] = c.analytic;
            d["finite_difference"] = c.finite_difference;
            d["relative_error"] = c.relative_error;
            d["passed"] = c.passed;
            checks.append(d);
          }
          nb::dict out;
          out["passed"] = r.passed();
          out["checks"] = checks;
          out["skipped"] = r.skipped;
          out["text"] = r.text();
          return out;
        },
        "problem"_a, "x"_a, "y"_a, "step"_a, "tolerance"_a, "seed"_a);
  m.def("_hypergradient",
        [points](Problem<double>& p, const Matrix& x, const Matrix& y, const std::string& method,
                 index_t iterations, double neumann_eta) {
          const auto [xa, ya] = points(p, x, y, "hypergradient");
          Array<double> h(p.executor(), p.dim_x(), xa.cols());
          hypergradient<double>(p, xa.cview(), ya.cview(), h.view(),
                                HypergradientOptions{method, iterations, neumann_eta});
          return to_numpy(h.to_host(), {static_cast<size_t>(xa.cols()), static_cast<size_t>(p.dim_x())});
        },
        "problem"_a, "x"_a, "y"_a, "method"_a, "iterations"_a, "neumann_eta"_a);

  nb::class_<CallbackProblem, Problem<double>>(
      m, "CallbackProblem",
      "A problem from Python functions of one instance (1-D float64 arrays in; NumPy or CPU\n"
      "DLPack arrays back): grad_y_g(x, y) -> gy, grad_f(x, y) -> (fx, fy), values(x, y) ->\n"
      "(f, g), and optionally hvp_jvp(x, y, v) -> (hv, jv) and grad_x_g(x, y) -> gx. Without\n"
      "hvp_jvp (None) the problem has gradients only: the first-order presets run on it\n"
      "(bome, v-pbgd, f2sa, f2ba with grad_x_g; pzobo and fom without), the others raise\n"
      "NotSupported. project_x(x) -> x and project_y(y) -> y, when given, project each\n"
      "instance onto its feasible set after every step on it. With lower_samples and\n"
      "upper_samples > 0 (g and f are means over that\n"
      "many samples) each function takes the batch's sample indices as a last argument (int64\n"
      "array, None for a full pass): the lower batch for grad_y_g, grad_x_g and hvp_jvp, the\n"
      "upper for grad_f, values(x, y, lower, upper) both; solve(lower_batch=, upper_batch=)\n"
      "draws them. Runs on the CPU, instances one after another - or, with vectorized=True,\n"
      "all at once: each function then gets (B, dim) arrays (row b: instance b; the indices\n"
      "one int64 array shared by the instances) and returns (B, dim) arrays, values two\n"
      "arrays of B numbers (f, g): one call per oracle for every instance, e.g. with jax.vmap.",
      nb::type_slots(callback_problem_slots))
      .def(nb::init<index_t, index_t, nb::callable, nb::callable, nb::object, nb::object,
                    index_t, index_t, nb::object, nb::object, nb::object, bool>(),
           "dim_x"_a, "dim_y"_a, "grad_y_g"_a, "grad_f"_a, "hvp_jvp"_a = nb::none(),
           "values"_a = nb::none(), "lower_samples"_a = 0, "upper_samples"_a = 0,
           "grad_x_g"_a = nb::none(), "project_x"_a = nb::none(), "project_y"_a = nb::none(),
           "vectorized"_a = false)
      .def_prop_ro("vectorized", &CallbackProblem::vectorized);

  nb::class_<SolveOptions>(m, "SolveOptions")
      .def(nb::init<>())
      .def_rw("algorithm", &SolveOptions::algorithm)
      .def_rw("instances", &SolveOptions::instances)
      .def_rw("iterations", &SolveOptions::iterations)
      .def_rw("inner_steps", &SolveOptions::inner_steps)
      .def_rw("lower_batch", &SolveOptions::lower_batch)
      .def_rw("upper_batch", &SolveOptions::upper_batch)
      .def_rw("eval_every", &SolveOptions::eval_every)
      .def_rw("neumann_terms", &SolveOptions::neumann_terms)
      .def_rw("cg_iterations", &SolveOptions::cg_iterations)
      .def_rw("inner_step", &SolveOptions::inner_step)
      .def_rw("outer_step", &SolveOptions::outer_step)
      .def_rw("neumann_eta", &SolveOptions::neumann_eta)
      .def_rw("seed", &SolveOptions::seed)
      .def_rw("auto_steps", &SolveOptions::auto_steps)
      .def_rw("capture", &SolveOptions::capture)
      .def_rw("independent_batches", &SolveOptions::independent_batches)
      .def_rw("start_iteration", &SolveOptions::start_iteration)
      .def_rw("state", &SolveOptions::state)
      .def_rw("settings", &SolveOptions::settings);
  m.def("describe_settings",
        [](const SolveOptions& s) { return describe_settings(algorithm_options(s)); });
  m.def("algorithm_option_fields", []() {
    nb::list out;
    for (const AlgorithmOptionField& f : algorithm_option_fields())
      out.append(nb::make_tuple(f.key, f.kind, f.description));
    return out;
  });

  m.def("solve", &solve, "problem"_a, "options"_a, "x0"_a.none() = nb::none(),
        "y0"_a.none() = nb::none(), "callback"_a.none() = nb::none());
  m.def("meta_learning", &meta_learning, "executor"_a, "data"_a, "algorithm"_a, "ways"_a,
        "meta_batch"_a, "shots"_a, "query"_a, "hidden"_a, "inner_steps"_a, "inner_step"_a,
        "damping"_a, "iterations"_a, "outer_step"_a, "eval_every"_a, "seed"_a, "test_tasks"_a,
        "test_steps"_a, "train_classes"_a, "test_classes"_a, "callback"_a.none() = nb::none());
  m.def("align_bandit", &align_bandit, "executor"_a, "algorithm"_a, "actions"_a, "tau"_a,
        "feedback"_a, "iterations"_a, "inner_steps"_a, "outer_step"_a, "instances"_a,
        "eval_every"_a, "seed"_a, "callback"_a.none() = nb::none());
  m.def("align_gridworld", &align_gridworld, "executor"_a, "algorithm"_a, "side"_a, "horizon"_a,
        "gamma"_a, "slip"_a, "tau"_a, "beta"_a, "feedback_type"_a, "reward_model"_a,
        "feedback"_a, "iterations"_a,
        "inner_steps"_a, "outer_step"_a, "outer_decay"_a, "instances"_a, "eval_every"_a, "seed"_a,
        "callback"_a.none() = nb::none());
  m.def("meta_algorithms", []() {
    nb::list out;
    for (const AlgorithmInfo& i : meta_algorithm_presets()) out.append(i.name);
    return out;
  });
  m.def("alignment_algorithms", []() {
    nb::list out;
    for (const AlgorithmInfo& i : alignment_algorithm_presets()) out.append(i.name);
    return out;
  });
}
