// The scheduler: one loop that runs every algorithm of the library as a preset of parts.
// Per outer iteration k, for B instances at once with per-instance step sizes:
//
//   lower level   every `inner_period` iterations: `inner_steps` SGD steps
//                 y <- Proj_Y(y - alpha_k gy(x, y))            (skipped when the estimator
//                                                               runs its own inner steps: ITD)
//   hypergradient h = estimate of grad F(x, y)                 (the estimator part)
//   upper level   sgd:                 x <- Proj_X(x - beta_k h)
//                 moving_average:      m <- (1 - theta) m + theta h;  x <- Proj_X(x - beta_k m)
//                 normalized_momentum: m <- mu m + (1 - mu) h;         x <- Proj_X(x - beta_k m / ||m||)
//
// with alpha_k = alpha (k + 1)^-inner_decay and beta_k = beta (k + 1)^-outer_decay. Before
// the loop, `init_steps` SGD steps on g(x_0, .) refine y_0 (BO-REP's initialization).
#pragma once

#include <bilevel/checkpoint.hpp>
#include <bilevel/estimators.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

enum class UpperUpdate { sgd, moving_average, normalized_momentum };

struct ScheduleOptions {
  index_t iterations = 100;           ///< outer iterations K
  // lower level
  index_t inner_steps = 10;           ///< SGD steps on y per lower-level round
  index_t inner_period = 1;           ///< a lower-level round every I iterations (BO-REP: 2)
  index_t init_steps = 0;             ///< SGD steps on g(x_0, .) before the loop
  std::vector<double> inner_step{0.1};///< alpha, per instance (1 value or B)
  double inner_decay = 0.0;           ///< alpha_k = alpha (k + 1)^-inner_decay (TTSA: 0.4)
  // upper level
  UpperUpdate upper = UpperUpdate::sgd;
  std::vector<double> outer_step{0.1};///< beta, per instance (1 value or B)
  double outer_decay = 0.0;           ///< beta_k = beta (k + 1)^-outer_decay (TTSA: 0.6)
  double average = 0.1;               ///< theta of moving_average (MA-SOBA)
  double momentum = 0.9;              ///< mu of normalized_momentum (BO-REP)
  // sampling and reporting
  index_t lower_batch = 0;            ///< samples per lower-level batch; 0: full data
  index_t upper_batch = 0;            ///< samples per upper-level batch; 0: full data
  std::uint64_t seed = 0;             ///< minibatch seed (Philox key)
  /// One minibatch index set per instance (B independent runs, e.g. B seeds' worth of noise at
  /// once) instead of one set shared by all; the problem must support_independent_batches().
  bool independent_batches = false;
  /// Minibatches walk the data in epochs, a new random order each (random reshuffling: every
  /// sample once per epoch, as benchopt's samplers); off: indices drawn uniformly with
  /// replacement. SRBA's preset turns it on (its recursion drifts further on batches drawn
  /// with replacement: docs/algorithms.md).
  bool epoch_sampling = false;
  index_t eval_every = 0;             ///< metrics every k iterations (0: only at the end)
  /// A metric (f, g, ||h||, ||x - x*||) that is not finite or whose magnitude exceeds this is
  /// divergence (double precision can take thousands of exploding steps before an Inf).
  double divergence_limit = 1e20;
  /// Between evaluations, ||x|| and ||y|| of every instance are checked every this many
  /// iterations (two norms and an asynchronous copy, read at the next check): divergence is
  /// reported within 2 x this many iterations even with eval_every = 0. 0: off.
  index_t divergence_check_every = 100;
  bool final_evaluation = true;       ///< metrics after the last iteration (benchmarks: off)
  /// Capture each distinct iteration shape once as a CUDA graph and replay it (CUDA backend,
  /// estimators that are capturable()); off: every kernel is launched from the host each time.
  bool capture = true;
  // checkpoints and resuming
  index_t checkpoint_every = 0;       ///< hand (x, y) to the checkpointer every k iterations
  /// The first iteration k of this run (resuming from a checkpoint of an earlier run): the
  /// counter, minibatches and step schedules continue from it; no init refinement when > 0.
  index_t start_iteration = 0;
  std::vector<double> reference_x;    ///< x* (dx values), when known: distance metric
};

/// Metrics of one evaluation, one value per instance. Values of f and g use full batches.
struct IterationMetrics {
  index_t iteration = 0;
  double seconds = 0.0;  ///< since the run started, when the host enqueued this evaluation
  std::vector<double> upper_value;          ///< f(x, y)
  std::vector<double> lower_value;          ///< g(x, y)
  std::vector<double> hypergradient_norm;   ///< ||h|| of the last estimate
  std::vector<double> distance_to_solution; ///< ||x - x*|| (empty without reference_x)
  /// The problem's own metrics (Problem::evaluation_metric_names(), in that order), B each.
  std::vector<std::vector<double>> problem_metrics;
};

template <typename T>
struct SolveResult {
  index_t instances = 0;
  index_t iterations = 0;  ///< run by this call (a resumed run starts at start_iteration)
  double seconds = 0.0;
  std::vector<T> x;  ///< dx x B, column-major
  std::vector<T> y;  ///< dy x B
  std::vector<IterationMetrics> history;
  /// Iteration shapes captured as graphs and replayed (0: every iteration ran from the host,
  /// because capture was off, the backend has no graphs or the estimator is not capturable).
  index_t captured_shapes = 0;
  /// Nodes (kernels, memsets, copies) of each captured graph, by shape: what one replayed
  /// iteration of that shape launches. Empty without graphs.
  std::vector<long> graph_nodes;
  /// Per instance: the iteration its divergence was seen at, or -1 (healthy). A diverged
  /// instance's metrics are NaN from then on and its columns in checkpoints are its start
  /// values; the others go on. The run throws DivergenceError only when every instance has
  /// diverged.
  std::vector<index_t> diverged_at;
  /// Per instance: what diverged ("f is inf", ...), empty for healthy ones.
  std::vector<std::string> divergence;
  /// What is not an error but likely a mistake, one line each: an instance whose x did not
  /// move at all (every hypergradient estimate, or every x step, was zero).
  std::vector<std::string> warnings;
  /// The carried state at the end (Solver::restore_state): with x, y and the last iteration
  /// (options().iterations), what continues this run exactly in a longer one.
  std::vector<std::vector<T>> carried_state;
};

/// x-sized arrays per instance that a preset's solver and estimator hold (x, h, the evaluation's
/// difference, fx, and the moving average, momentum or second sequences of some): 4 to 6, for
/// planning memory when x is large (hyper-cleaning: one entry per training sample).
int solver_x_arrays(const std::string& preset);

/// Values per instance that a preset's estimator keeps on top of those (and of the y-sized
/// arrays every solver holds), for the same planning: SABA's tables, one stored term per fixed
/// batch - (2 dy + dx) per lower batch and dy (+ dx where f depends on x) per upper batch, with
/// batches of `lower_batch` of `lower_samples` and `upper_batch` of `upper_samples` (0: one
/// batch). 0 for the other presets.
std::size_t preset_table_values(const std::string& preset, index_t dx, index_t dy,
                                index_t lower_samples, index_t upper_samples,
                                index_t lower_batch, index_t upper_batch,
                                bool upper_depends_on_x);

template <typename T>
class Solver {
 public:
  using Observer = std::function<void(const IterationMetrics&)>;
  /// Sees the state (x: dx x B, y: dy x B, on the executor) at every evaluation, after the
  /// observer; for problem-specific metrics. May synchronise.
  using Inspector =
      std::function<void(const IterationMetrics&, ConstMatrixView<T> x, ConstMatrixView<T> y)>;
  /// Receives (x, y) and the carried state (see restore_state) every checkpoint_every
  /// iterations, copied back asynchronously: checkpoint k arrives once the next checkpoint is
  /// taken or the run ends, in order.
  using Checkpointer = std::function<void(const Checkpoint<T>&)>;

  Solver(Problem<T>& problem, std::unique_ptr<HypergradientEstimator<T>> estimator,
         ScheduleOptions options);

  /// Runs from x0 (dx x B) and y0 (dy x B), host, column-major; B = x0.size() / dx. Throws
  /// DivergenceError (iteration, instance) when a metric becomes non-finite; `observer` has
  /// seen every evaluation before that. Metrics are copied back asynchronously: without an
  /// inspector, evaluation k reaches the observer (and the divergence check) at the next
  /// evaluation or at the end, in order; with one, at once.
  SolveResult<T> run(const std::vector<T>& x0, const std::vector<T>& y0,
                     const Observer& observer = {}, const Inspector& inspector = {},
                     const Checkpointer& checkpointer = {});

  const HypergradientEstimator<T>& estimator() const { return *estimator_; }
  const ScheduleOptions& options() const { return options_; }
  /// The carried state the next run() starts from (Checkpoint::state of a run of the same
  /// preset, resumed with options().start_iteration): the upper update's m first (moving-average
  /// and momentum presets), then the estimator's carried_state(). Checked against what this
  /// run carries when it starts (InvalidArgument: another preset's, or another size). Empty:
  /// the state starts afresh (a version 2 checkpoint).
  void restore_state(std::vector<std::vector<T>> state) { restored_state_ = std::move(state); }
  /// During run() (from an observer or an inspector): the carried state now, copied to the host
  /// (synchronises); what an interrupted run returns besides x and y. Empty outside run().
  std::vector<std::vector<T>> read_carried_state() const;

 private:
  Problem<T>& problem_;
  std::unique_ptr<HypergradientEstimator<T>> estimator_;
  ScheduleOptions options_;
  std::vector<std::vector<T>> restored_state_;
  std::vector<MatrixView<T>> active_state_;  // the carried state's arrays while run() runs
};

/// A named algorithm: the schedule and the options of every estimator part. make_solver
/// applies the preset's own parts on top of these (see algorithm_presets()).
struct AlgorithmOptions {
  std::string name = "stocbio";
  ScheduleOptions loop;
  NeumannOptions neumann;
  CgOptions cg;
  FixedPointOptions fixed_point;
  TruncatedNeumannOptions truncated_neumann;
  SlBammOptions sl_bamm;   ///< s and eta default to loop.inner_step and fixed_point.nu
  F2saOptions f2sa;        ///< steps and alpha default to loop.inner_steps and loop.inner_step
  double ufom_probability = 0.2;  ///< q of UFOM
  double bda_aggregation = 0.6;   ///< mu of BDA (authors' code)
  index_t srba_period = 0;        ///< SRBA's full-batch restart period (0: benchopt's rule)
  double spaba_probability = 0.0; ///< SPABA's restart probability (0: PAGE's b / (n + b))
  double mrbo_eta = 0.5;          ///< MRBO's and SUSTAIN's momentum eta (eta_k = eta (k + 1)^-2/3)
  double fsla_eta = 1.0;          ///< FSLA's momentum eta (eta_k = eta (k + 1)^-1/2)
  double bome_eta = 0.5;          ///< BOME's barrier eta
  index_t vrbo_period = 0;        ///< VRBO's full-batch restart period (0: SRBA's rule)
  bool vrbo_x_move = true;        ///< VRBO's recursion sees x move (false: benchopt's)
  index_t pzobo_directions = 10;  ///< PZOBO's Gaussian directions Q
  double pzobo_mu = 0.1;          ///< PZOBO's finite-difference radius mu
  double vpbgd_gamma0 = 10.0;     ///< V-PBGD's first penalty gamma_0
  double vpbgd_growth = 0.0;      ///< gamma_k = gamma_0 + growth k
  double f2ba_lambda = 10.0;      ///< F2BA's fixed penalty lambda
  LvHbaOptions lv_hba;            ///< alpha defaults to loop.outer_step
};

/// The options of preset `name` with the defaults of its paper or its authors' code (the
/// source of each is in algorithm_presets() and in the comments of default_options). Step sizes
/// that depend on the problem's smoothness (alpha, eta, nu) keep these values; the CLI replaces
/// them by 0.9 / L_g estimated on the problem. Throws InvalidArgument for an unknown name.
AlgorithmOptions default_options(const std::string& name);

/// Step sizes from the problem, for a problem of your own (what `bilevel hyperclean` and
/// `bilevel hpo` do for theirs): L_g of each instance estimated at (x0, y0) by power iteration
/// on H v (estimate_lower_smoothness, `iterations` steps on a lower batch of `batch` samples, 0:
/// full), then every lower-level and linear-system step of `options` - loop.inner_step,
/// neumann.eta, fixed_point.nu, truncated_neumann.eta, sl_bamm.s and sl_bamm.eta - set to
/// fraction / L_g per instance. Returns the estimates. They hold at (x0, y0): on a problem whose
/// curvature grows as x moves (a learned L2 weight), bound x (project_x) or leave a margin.
/// InvalidArgument for a fraction outside (0, 2) or an estimate that is not positive and finite
/// (a problem without H v throws NotSupported).
template <typename T>
std::vector<double> set_steps_from_smoothness(Problem<T>& problem, AlgorithmOptions& options,
                                              ConstMatrixView<T> x0, ConstMatrixView<T> y0,
                                              index_t batch = 0, double fraction = 0.9,
                                              index_t iterations = 50);

/// The x update the preset `name` runs with its defaults (set when the solver is made: e.g.
/// normalized momentum for bo-rep, a moving average for ma-soba).
UpperUpdate preset_upper_update(const std::string& name);

/// Every option that shapes the iterates, as "key=value" lines with exact values (not the run
/// length, evaluations, checkpointing or capture): what a checkpoint records of the algorithm
/// (Checkpoint::settings) and what ranks of one run compare.
std::string describe_settings(const AlgorithmOptions& options);

/// One option of AlgorithmOptions reachable by name: `key` as describe_settings writes it
/// ("loop.inner_decay", "fixed_point.nu"), `kind` one of "int", "real", "reals" (per instance:
/// one value for all or one per instance), "bool", "seed", and what it is.
struct AlgorithmOptionField {
  std::string key, kind, description;
};
/// The options set_algorithm_option takes (the schedule's and every estimator part's that shape
/// the iterates; not the run length, evaluations, checkpoints or capture).
const std::vector<AlgorithmOptionField>& algorithm_option_fields();
/// Sets option `key` of `o` from `values` (one value; 1 or more for "reals"). InvalidArgument
/// naming the key for an unknown key, a count other than one, a non-integer or negative "int" or
/// "seed", a non-finite value, or a "bool" other than 0 or 1. Ranges (a momentum in [0, 1), ...)
/// are the solver's to check, when it is made.
void set_algorithm_option(AlgorithmOptions& o, const std::string& key,
                          const std::vector<double>& values);

/// One preset: its name, what it is, its source, what it needs of a problem.
struct AlgorithmInfo {
  std::string name;
  std::string description;
  std::string source;
  std::string needs;
};
std::vector<AlgorithmInfo> algorithm_presets();
/// Names and descriptions (for help texts).
std::vector<std::pair<std::string, std::string>> algorithm_names();

/// Builds the preset `options.name`:
///   stocbio   D inner steps, Neumann, SGD                     aid-cg  D inner steps, CG, SGD
///   aid-fp    D inner steps, fixed point (M steps), SGD        amigo   T inner, M fixed-point steps
///   soba      1 inner step, 1 fixed-point step, SGD            ma-soba soba + moving average
///   ttsa      1 decaying inner step, random-truncation Neumann, decaying SGD + projection
///   bo-rep    init refinement, N steps every I, 1 fixed-point step, normalized momentum
///   itd-bio   reverse mode through D inner steps               fom / ufom  first-order (+ correction)
///   sl-bamm   single loop, aggregated lower-level step         f2sa    first order, penalty lambda
///   bda       reverse mode through D steps aggregating f and g  lv-hba  constrained, Hessian-free
/// The schedule's fields that a preset fixes (e.g. soba: inner_steps = 1) override `loop`.
/// Throws InvalidArgument for an unknown name.
template <typename T>
std::unique_ptr<Solver<T>> make_solver(Problem<T>& problem, const AlgorithmOptions& options);

}  // namespace bilevel
