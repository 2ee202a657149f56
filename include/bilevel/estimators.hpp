// Hypergradient estimators: approximations of grad F(x) = fx - J H^{-1} fy with H = grad2_yy g
// and J = grad2_xy g, for B instances at once. Each is a list of kernel calls on the problem's
// executor: no host synchronisation, no allocation after prepare().
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>
#include <bilevel/sampling.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

/// What an estimator draws its batches from at one outer iteration.
template <typename T>
struct EstimateContext {
  Problem<T>& problem;
  MinibatchSampler<T>& lower;  ///< batches of g (HVPs, J v, inner steps)
  MinibatchSampler<T>& upper;  ///< batches of f (fx, fy)
  index_t iteration;
  /// The same iteration on the executor (the solver's counter), for weights that change with
  /// k; null outside a solver, where estimators set a counter of their own from `iteration`.
  const std::uint32_t* counter = nullptr;
  /// Added to every sub-step an estimator draws with: an estimator that calls another several
  /// times in one iteration (VRBO's inner steps, each with its own Neumann batches) gives each
  /// call a base of its own, so that their batches differ. 0 otherwise.
  std::uint32_t substep_base = 0;

  /// The batch of g (lower) or f (upper) for (purpose, substep_base + substep) at this
  /// iteration: what every estimator draws through.
  Batch draw_lower(SampleStream purpose, std::uint32_t substep) const {
    return lower.draw(purpose, substep_base + substep, iteration);
  }
  Batch draw_upper(SampleStream purpose, std::uint32_t substep) const {
    return upper.draw(purpose, substep_base + substep, iteration);
  }
};

template <typename T>
class HypergradientEstimator {
 public:
  virtual ~HypergradientEstimator() = default;
  virtual std::string name() const = 0;
  /// True when the estimator moves y itself (ITD differentiates through its own inner steps).
  virtual bool runs_lower_level() const { return false; }
  /// True when what estimate() enqueues depends on the iteration only through the samplers'
  /// batches and state on the executor, from the second call on: the solver may then capture
  /// an iteration once and replay it (a CUDA graph). Estimators whose host code depends on the
  /// iteration (decaying weights, random truncation depths, first-call set-up) keep false.
  virtual bool capturable() const { return false; }
  /// Which captured graph iteration k replays: estimate() must enqueue the same work for every
  /// k of one shape. Random structure (TTSA's truncation depth, UFOM's trigger) is a shape.
  virtual std::uint64_t iteration_shape(index_t iteration) const {
    (void)iteration;
    return 0;
  }
  /// Allocates workspaces for `instances` instances. Called before the loop.
  virtual void prepare(Problem<T>& problem, index_t instances) = 0;
  /// h (dx x B) = hypergradient estimate at (x, y). ITD leaves its last inner iterate in y.
  virtual void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                        MatrixView<T> h) = 0;
  /// v ~ H^{-1} fy of the last estimate (AID estimators); empty for ITD.
  virtual ConstMatrixView<T> linear_system_solution() const { return {}; }
  /// The state the estimator carries from one iteration to the next (a warm-started v, F2SA's
  /// z, LV-HBA's theta, lambda and z), each rows x B on the executor, valid after prepare():
  /// checkpoints save it, and a resumed run writes it back and calls state_restored(), so that
  /// it continues bit for bit. Empty for estimators that carry nothing.
  virtual std::vector<MatrixView<T>> carried_state() { return {}; }
  /// The carried state was written back (resuming): the next estimate() keeps it.
  virtual void state_restored() {}
  /// Sets the carried state to its start values for a run from (x, y) (F2SA: z = y; LV-HBA:
  /// theta = y, lambda = lambda0, z = z0). The solver calls it once after prepare() unless it
  /// restores a state, and keeps the values to restart an instance that diverges; called
  /// outside a solver, the first estimate() does it.
  virtual void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) {
    (void)x;
    (void)y;
  }
};

/// Neumann series (stocBiO, arXiv 2010.07962, eq. of Algorithm 1 as in benchopt):
/// r_0 = fy, r_i = r_{i-1} - eta H_i r_{i-1} (fresh batch per term), v = eta sum_{i=0..Q} r_i.
/// Converges for eta <= 1/L_g; the error is (I - eta H)^{Q+1} H^{-1} fy.
struct NeumannOptions {
  index_t terms = 10;               ///< Q (HVPs per estimate)
  std::vector<double> eta{0.05};    ///< per instance: 1 value for all or B values
};

/// Conjugate gradient on H v = fy (AID-CG), warm-started from the previous v, on one batch
/// per estimate. Exact in dy iterations on a quadratic (in exact arithmetic). Where H is
/// indefinite (neural networks: iMAML), a direction p with p'Hp <= 0 makes no step.
struct CgOptions {
  index_t iterations = 10;
  bool warm_start = true;
};

/// SGD on the linear system (AID-FP, AmIGO, SOBA, BO-REP): M steps of
/// v <- v - nu (H v - fy), warm-started from the previous v (one SGD step on
/// 0.5 v'Hv - v'fy each), fresh batch per step. Converges for nu < 2 / L_g.
struct FixedPointOptions {
  index_t steps = 1;                ///< M
  std::vector<double> nu{0.05};     ///< per instance (1 or B values)
  bool warm_start = true;
};

/// Random-truncation Neumann (TTSA, arXiv 2007.05170): p ~ Uniform{0..K-1} (Philox, keyed by
/// seed and iteration, shared by the instances), v = K eta prod_{i<=p} (I - eta H_i) fy:
/// unbiased for the K-term Neumann series with p HVPs instead of K.
struct TruncatedNeumannOptions {
  index_t terms = 10;               ///< K
  std::vector<double> eta{0.05};    ///< per instance (1 or B values)
  std::uint64_t seed = 0;
};

/// sl-BAMM (Liu et al., arXiv 2302.03407), single loop, everything at the same point
/// (x_k, y_k, v_k): y <- y - s [mu_k fy + (1 - mu_k) gy]; v <- v - eta (H v - fy);
/// h = fx - J v_k. The aggregation of fy into the lower-level step lets it pick the lower-level
/// solution that suits f when there are many. mu_k = mu_0 (k + 1)^(-1/p): p = 1 is the paper's
/// practical schedule (mu_0 = 0.1), p = 10 its theory schedule (mu_0 = 0.9).
struct SlBammOptions {
  double mu0 = 0.1;
  double p = 1.0;
  std::vector<double> s{0.1};    ///< lower-level step, per instance (1 or B values)
  std::vector<double> eta{0.1};  ///< linear-system step, per instance
  /// Both steps decay as s_k = s (k + 1)^-decay, eta_k = eta (k + 1)^-decay (0: constant).
  /// SOBA takes loop.inner_decay here (benchopt's SOBA: 0.5 on y and v).
  double decay = 0.0;
};

/// F2SA (Kwon et al., arXiv 2301.10945), fully first order, no HVP: K steps of
/// y <- y - (alpha / lambda) (fy + lambda gy(x, y)) and z <- z - alpha gy(x, z), then
/// h = fx(x, y) + lambda (gx(x, y) - gx(x, z)); lambda_k = lambda_0 + growth k. The step on y
/// is scaled by 1/lambda (the paper's alpha_k = alpha / lambda_k) so it stays stable as lambda
/// grows. Its bias is O(1/lambda).
struct F2saOptions {
  index_t steps = 10;
  std::vector<double> alpha{0.1};  ///< per instance (1 or B values)
  double lambda0 = 1.0;
  double growth = 0.05;
};

/// LV-HBA (Yao et al., arXiv 2401.16164, Algorithm 1), Hessian-free,
/// single loop, for lower levels with constraints c(x, y) <= 0 coupling both levels:
///   theta <- Proj_Y(theta - eta [gy(x, theta) + grad_y c(x, theta)' lambda + (theta - y) / gamma1])
///   lambda <- Proj(lambda - eta [-c(x, theta) + (lambda - z) / gamma2])   (same old theta)
///   d_x = fx / c_k + gx(x, y) - gx(x, theta) - grad_x c(x, theta)' lambda   (returned as h)
///   y <- Proj_Y(y - alpha [fy / c_k + gy(x, y) - (y - theta) / gamma1])    (with x <- x - alpha d_x)
///   z <- Proj(z + beta (lambda - z) / gamma2)
/// with c_k = c0 (k + 1)^power (authors' code: 0.025 (k + 1)^0.3). Multipliers are projected
/// on [0, bound] for inequality constraints and on [-bound, bound] for equalities (authors'
/// code: bound u = 1000). theta starts at y. Proj_C of the joint (x, y) step is the problem's
/// project_joint, applied by the solver after the x step.
struct LvHbaOptions {
  std::vector<double> alpha{0.008};  ///< step on y (and, by the preset, on x), per instance
  double beta = 0.02, eta = 0.01, gamma1 = 10.0, gamma2 = 10.0;
  double c0 = 0.025, power = 0.3;
  double lambda0 = 0.0, z0 = 0.0;   ///< authors' toy code: lambda0 = 1, z0 = -1
  double bound = 1000.0;            ///< u
};

/// SABA (Dagreou et al., arXiv 2201.13409): SOBA's single loop with SAGA variance reduction on
/// each direction (grad_y g, H v, J v on the lower batch; grad_y f, grad_x f on the upper one),
/// over fixed batches of the given sizes, with constant steps. Memory: per instance, one stored
/// term per batch of each kind: (2 dy + dx) lower batches + (dy + dx) upper batches values.
struct SabaOptions {
  std::vector<double> rho{0.1};  ///< the step on y and v, per instance (1 or B values)
  index_t lower_batch = 0;       ///< samples per lower batch (0: all, one batch)
  index_t upper_batch = 0;       ///< samples per upper batch (0: all, one batch)
  std::uint64_t seed = 0;        ///< the batch picks' Philox seed
  /// The batches walked in epochs, a new order each (loop.epoch_sampling: benchopt's SABA walks
  /// its fixed batches so); off: each iteration's batch picked uniformly with replacement.
  bool epochs = false;
};

/// SRBA (Dagreou et al., arXiv 2302.08766): SOBA's three directions made SARAH-recursive (each
/// moves by the minibatch term at the new point minus the same batch's term at the previous
/// point), restarted from full batches every `period` iterations, with constant steps. Two
/// single-point oracle calls per iteration; memory: the previous point and the three directions.
/// With `page` it is SPABA (Chu, Xu, Yao, Zhang, ICML 2024, arXiv 2405.18777): PAGE's coin
/// instead of the period - each iteration after the first restarts from full batches with
/// probability p (a host_uniform draw of (seed, iteration): the same on every machine, in
/// captured graphs and resumed runs), else takes the recursive step.
struct SrbaOptions {
  std::vector<double> rho{0.1};  ///< the step on y and v, per instance (1 or B values)
  index_t period = 0;            ///< full-batch restart every period iterations (0: benchopt's rule)
  index_t lower_batch = 0;       ///< the run's batch sizes, for the period's rule (0: full data)
  index_t upper_batch = 0;
  bool page = false;             ///< SPABA: PAGE's coin instead of the period
  double probability = 0.0;      ///< SPABA's p in [0, 1]; 0: PAGE's b / (n + b)
  std::uint64_t seed = 0;        ///< the coin's seed (SPABA)
};

/// MRBO (Yang, Ji, Liang, NeurIPS 2021, arXiv 2106.04692): STORM-style momentum-recursive
/// directions for y and x, d = q(k) + (1 - eta_k) (d - q(k-1)) with both terms on the same
/// batches, q the lower gradient (y) and the Neumann hypergradient (x); eta_k = eta (k + 1)^
/// -eta_decay; y moves by alpha (k + 1)^-inner_decay d_y. Three gradient-and-Neumann evaluations'
/// worth of oracles per iteration at two points; memory: the previous point and both directions.
struct MrboOptions {
  std::vector<double> alpha{0.1};  ///< the step on y, per instance (1 or B values)
  double eta = 0.5;                ///< the momentum's eta
  double eta_decay = 2.0 / 3.0;    ///< eta_k = eta (k + 1)^-eta_decay (the paper's and benchopt's)
  double inner_decay = 1.0 / 3.0;  ///< alpha_k = alpha (k + 1)^-inner_decay
  NeumannOptions neumann;          ///< the hypergradient at each point (benchopt: Q = 10)
  /// SUSTAIN (Khanduri et al., NeurIPS 2021, arXiv 2102.07367): the same directions with the
  /// random-truncation Neumann hypergradient (BSA's and TTSA's: v = K eta (I - eta H)^p fy, p
  /// uniform in 0 .. K - 1), the same depth p and batches at both points, as benchopt's
  /// solvers/sustain.py with its joint_hia.
  bool truncated = false;
  TruncatedNeumannOptions truncated_neumann;
};

/// VRBO (Yang, Ji, Liang, NeurIPS 2021, arXiv 2106.04692): SARAH-recursive directions for y
/// and x, restarted from full batches every `period` iterations (d_y = gy, d_x = the Neumann
/// hypergradient, both on all the data); after each x step, `steps` inner steps each move the
/// directions by the same batches' terms at the new point minus those at the previous point
/// (the first step's previous point has the previous x: the authors' recursion, which sees x
/// move; benchopt's omits it), then y <- y - alpha d_y. The Neumann hypergradient at both
/// points draws the same batches (benchopt's joint_shia). Per iteration 2 steps (Q + 3) oracle
/// calls; memory: the previous point and both directions.
struct VrboOptions {
  std::vector<double> alpha{0.1};  ///< the inner step on y, per instance (1 or B values)
  index_t steps = 10;              ///< inner steps per iteration (benchopt: n_inner_steps = 10)
  index_t period = 0;              ///< full-batch restart every period iterations (0: the rule)
  /// period 0: floor((n_lower / b_lower + n_upper / b_upper) fraction), SRBA's rule (about one
  /// pass over the data's batches between restarts): benchopt's vrbo.py rule with the
  /// period_frac = 0.5 of its best datacleaning parameters (its class default is 128).
  double period_fraction = 0.5;
  index_t lower_batch = 0;         ///< the run's batch sizes, for the rule (0: full data)
  index_t upper_batch = 0;
  NeumannOptions neumann;          ///< the hypergradient (benchopt: n_shia_steps = 10)
  /// The first inner step's previous point has the previous x (the paper's recursion, which
  /// sees x move); false: benchopt's vrbo.py, both terms at the new x.
  bool x_move = true;
};

/// FSLA (Li, Gu, Huang, AAAI 2022, arXiv 2112.04660): a single loop - one SGD step on y, one on
/// v for H v = fy at the new y - and STORM momentum on the x direction h = fx - J v, the
/// previous point's h taken on the same batches; every step decays as (k + 1)^-decay, and so
/// does eta. Memory: v, the previous point and the direction.
struct FslaOptions {
  std::vector<double> alpha{0.1};  ///< the step on y and v, per instance (1 or B values)
  double eta = 1.0;                ///< eta_k = eta (k + 1)^-decay (benchopt: its step_size, 1.0)
  double decay = 0.5;              ///< the exponent of every step (benchopt's)
};

/// BOME (Liu et al., NeurIPS 2022, arXiv 2209.08709): first order only (grad_y g, grad_x g,
/// grad f; no H v, no J v). T gradient steps from y give y_T ~ y*(x); the value gap q(x, y) =
/// g(x, y) - g(x, y_T) enters (x, y)'s direction grad f + lambda grad q with the dynamic
/// barrier's lambda = max(eta ||grad q||^2 - <grad f, grad q>, 0) / ||grad q||^2 per instance.
/// Constant steps: alpha on y (and the T inner steps), the run's outer step on x.
struct BomeOptions {
  std::vector<double> alpha{0.1};  ///< the step on y and of the inner steps, per instance
  index_t steps = 10;              ///< T (benchopt: n_inner_steps = 10)
  double eta = 0.5;                ///< the barrier's eta (benchopt's default)
  /// V-PBGD (Shen & Chen, ICML 2023, arXiv 2302.05185): the penalty f + gamma_k q instead of the
  /// barrier, gamma_k = gamma0 + growth k, the direction divided by gamma_k (the paper's step
  /// 1 / (L_f + gamma L_g) scales so): y <- y - alpha (fy / gamma_k + q_y), h = fx / gamma_k + q_x.
  bool penalty = false;
  double gamma0 = 10.0;
  double growth = 0.0;
};

/// PZOBO (Sow, Ji, Liang, arXiv 2110.07004), as benchopt's solvers/pzobo.py: Hessian-free by
/// Gaussian finite differences of the inner trajectory. T gradient steps take y_0 = y to y_T at
/// x; the same T steps (the same batches) from y_0 at x + mu u_q give y_T^q, for Q Gaussian
/// u_q; then h = fx(x, y_T) + (1 / Q) sum_q u_q <(y_T^q - y_T) / mu, fy(x, y_T)>, and y = y_T.
/// Needs grad_y g and grad f only. (Q + 1) T lower-level steps per iteration.
struct PzoboOptions {
  std::vector<double> alpha{0.1};  ///< the inner step, per instance (1 or B values)
  index_t steps = 10;              ///< T (benchopt: n_inner_steps = 10)
  index_t directions = 10;         ///< Q (benchopt: n_gaussian_vectors = 10)
  double mu = 0.1;                 ///< the finite differences' radius (benchopt: mu = 0.1)
  std::uint64_t seed = 0;          ///< the Gaussian directions' Philox seed
};

/// What the unrolled estimator returns.
enum class UnrolledMode {
  itd,   ///< reverse mode through the D inner steps (exact gradient of f(x, y_D(x)))
  fom,   ///< first order: fx(x, y_D), the second-order terms dropped (biased, constant memory)
  ufom,  ///< FOM plus, with probability q, the exact correction divided by q: unbiased for ITD
};

/// Reverse mode through `steps` inner SGD steps y <- y - alpha gy (ITD-BiO), or its first-order
/// variants. ITD and triggered UFOM store the trajectory y_0..y_D: memory (D + 1) dy B.
struct ItdOptions {
  index_t steps = 10;
  std::vector<double> alpha{0.1};   ///< inner step, per instance (1 or B values)
  UnrolledMode mode = UnrolledMode::itd;
  double probability = 0.2;         ///< q of UFOM
  std::uint64_t seed = 0;           ///< UFOM's trigger (Philox, keyed by seed and iteration)
  /// BDA (Liu et al., arXiv 2006.04045): with aggregation mu > 0 the inner steps are
  /// y <- y - alpha [(1 - mu_t) gy + mu_t fy], mu_t = mu decay^t (authors' code: 0.9^t, with
  /// s_u = s_l = 1), and reverse mode runs through these steps (needs Problem::hvp_jvp_f).
  double aggregation = 0.0;
  double aggregation_decay = 0.9;
};

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_neumann_estimator(NeumannOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_cg_estimator(CgOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_itd_estimator(ItdOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_fixed_point_estimator(FixedPointOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_truncated_neumann_estimator(
    TruncatedNeumannOptions options);

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_sl_bamm_estimator(SlBammOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_f2sa_estimator(F2saOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_lv_hba_estimator(LvHbaOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_saba_estimator(SabaOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_srba_estimator(SrbaOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_mrbo_estimator(MrboOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_fsla_estimator(FslaOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_vrbo_estimator(VrboOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_pzobo_estimator(PzoboOptions options);
template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_bome_estimator(BomeOptions options);
/// SRBA's restart period when SrbaOptions::period is 0: benchopt's (n_inner + n_outer) / 2 /
/// batch with each level's own batch, floor((n_lower / b_lower + n_upper / b_upper) / 2), at
/// least 1 (a full batch counts as one batch).
index_t srba_default_period(index_t lower_samples, index_t lower_batch, index_t upper_samples,
                            index_t upper_batch);
/// The full-batch restart period of the variance-reduced presets' rule: floor((n_lower / b_lower
/// + n_upper / b_upper) fraction), at least 1 (a full batch counts as one batch). SRBA's is
/// fraction 1/2, VRBO's 128 (benchopt's period_frac).
index_t full_batch_period(index_t lower_samples, index_t lower_batch, index_t upper_samples,
                          index_t upper_batch, double fraction);
/// SPABA's restart probability when none is given: PAGE's b / (n + b) of the lower level (the
/// expected restart interval then matches a pass over the data in batches of b), 1 for full
/// batches.
double spaba_default_probability(index_t lower_samples, index_t lower_batch);

/// A uniform draw in [0, 1) for (seed, stream, iteration), the same on every machine: random
/// choices that the host makes between kernel launches (never a device read-back).
double host_uniform(std::uint64_t seed, std::uint32_t stream, index_t iteration);

/// Expands per-instance values (1 value for all, or exactly `instances`) to `instances`
/// values; throws InvalidArgument naming `what` otherwise or when a value is not finite.
std::vector<double> per_instance(const std::vector<double>& values, index_t instances,
                                 const std::string& what);

/// per_instance() uploaded as a length-B array of T on `exec`: the per-instance scalars that the
/// batched kernels read on the device.
template <typename T>
Array<T> per_instance_array(const std::shared_ptr<Executor>& exec,
                            const std::vector<double>& values, index_t instances,
                            const std::string& what) {
  const std::vector<double> v = per_instance(values, instances, what);
  return Array<T>(exec, instances, 1, std::vector<T>(v.begin(), v.end()));
}

}  // namespace bilevel
