// The oracle interface of a bilevel problem  min_x F(x) = f(x, y*(x)),  y*(x) = argmin_y g(x, y).
// Every oracle works on a minibatch for B instances at once: x is dx x B, y and v are dy x B,
// column b belongs to instance b. Oracles enqueue work on the problem's executor (its stream)
// and never synchronise. Built-in problems and user problems implement the same interface.
#pragma once

#include <bilevel/error.hpp>
#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>
#include <bilevel/types.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bilevel {

class Communicator;

/// A minibatch: `size` indices on the executor's memory, drawn from [0, population), or the
/// whole data set when `indices` is null. Shared by all instances (stride 0), or one set per
/// instance (independent batches: instance b's indices start at indices + b * stride).
/// Problems reject a batch drawn from more samples than they have (the indices are never read
/// on the host).
/// How a deferred minibatch's indices are drawn (MinibatchSampler in deferred mode, for
/// problems that draw them inside their own kernels: Problem::draws_minibatches): index i of
/// set s is common::sample_index(seed, stream, step + *step_on_device, s, i, population), or
/// with `epochs` common::reshuffled_index(..., i, size, population): the epoch walk.
struct BatchDraw {
  bool deferred = false;  ///< the indices are not written yet: draw_batch_indices writes them
  std::uint64_t seed = 0;
  std::uint32_t stream = 0;
  std::uint32_t step = 0;
  const std::uint32_t* step_on_device = nullptr;  ///< the iteration counter, or nullptr
  index_t sets = 1;  ///< index sets (independent batches: one per instance, `stride` apart)
  bool epochs = false;  ///< the epoch walk (MinibatchSampler's `epochs`), else with replacement
};

struct Batch {
  const sample_index_t* indices = nullptr;
  index_t size = 0;
  index_t population = 0;
  index_t stride = 0;
  BatchDraw draw{};  ///< deferred: `indices` is the buffer the draw is written to, when asked
  bool full() const { return indices == nullptr; }
  bool independent() const { return indices != nullptr && stride > 0; }
};

template <typename T>
class Problem {
 public:
  virtual ~Problem() = default;

  virtual std::string name() const = 0;
  virtual std::shared_ptr<Executor> executor() const = 0;
  virtual index_t dim_x() const = 0;
  virtual index_t dim_y() const = 0;
  /// Samples in the finite sums behind g (lower) and f (upper); 0 means deterministic: the
  /// problem ignores batches.
  virtual index_t lower_samples() const { return 0; }
  virtual index_t upper_samples() const { return 0; }

  /// Whether the problem's oracles draw deferred minibatches themselves (inside the kernels
  /// that read the samples: one launch fewer per batch). The solver then hands it deferred
  /// batches (Batch::draw); an oracle that needs the indices in memory calls
  /// draw_batch_indices first.
  virtual bool draws_minibatches() const { return false; }

  /// Sizes workspaces for up to `instances` instances and batches of up to `max_batch`
  /// samples (with independent batches: of all instances together). Solvers call it before
  /// their loop so that no oracle allocates inside it.
  virtual void reserve(index_t instances, index_t max_batch) {
    (void)instances;
    (void)max_batch;
  }

  /// Names of problem-specific metrics the solver records at every evaluation, next to f, g
  /// and ||h|| (hyper-cleaning: test accuracy, flagged samples, true positives).
  virtual std::vector<std::string> evaluation_metric_names() const { return {}; }
  /// Writes one row of B values per name (row r at out + r B) on the executor, without
  /// reading anything back: the solver copies them with its own metrics.
  virtual void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
    (void)x, (void)y, (void)out;
  }

  /// True when the oracles accept independent batches (Batch::stride > 0: one index set per
  /// instance), so that B instances are B statistically independent runs.
  virtual bool supports_independent_batches() const { return false; }

  /// out = grad_y g(x, y) on the lower-level batch. More generally, the residual Phi(x, y) of
  /// a lower level given as a root-finding problem Phi(x, y) = 0 (policy-alignment gridworlds:
  /// the soft Bellman residual); hvp_jvp then returns the transposed Jacobian products
  /// (dPhi/dy)' v and (dPhi/dx)' v, which are H v and J v when Phi = grad_y g.
  virtual void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                        MatrixView<T> out) = 0;
  /// out = grad_x g(x, y) (first-order methods; optional).
  virtual void grad_x_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                        MatrixView<T> out) {
    (void)batch, (void)x, (void)y, (void)out;
    throw NotSupported(name() + " does not provide grad_x g (needed by BOME, V-PBGD, F2SA, F2BA and LV-HBA)");
  }
  /// fx = grad_x f(x, y), fy = grad_y f(x, y) on the upper-level batch. fx may be an empty
  /// view (not wanted) when upper_depends_on_x() is false.
  virtual void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                      MatrixView<T> fx, MatrixView<T> fy) = 0;
  /// The fused second-order oracle on the lower-level batch: hv = grad2_yy g(x, y) v (dy x B)
  /// and jv = grad2_xy g(x, y) v (dx x B). Either output may be an empty view: not wanted.
  /// Optional: a problem with gradients only (grad_y_g, grad_f, and grad_x_g for the penalty
  /// and barrier methods) leaves it out and runs the first-order presets (BOME, V-PBGD, F2SA,
  /// F2BA, PZOBO, FOM); a preset that needs it stops at its first call with NotSupported.
  virtual void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                       ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
    (void)batch, (void)x, (void)y, (void)v, (void)hv, (void)jv;
    throw NotSupported(name() +
                       " provides gradients only: no H v and J v (needed by the Hessian-based "
                       "presets; BOME, V-PBGD, F2SA, F2BA, PZOBO and FOM run without them)");
  }
  /// The lower-level oracles of single-loop methods, all at one point and on one batch:
  /// gy = grad_y g(x, y), hv = H v, jv = J v (any output may be an empty view). Problems that
  /// can read the batch once for all three override it; the default calls grad_y_g, then
  /// hvp_jvp.
  virtual void lower_oracles(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                             ConstMatrixView<T> v, MatrixView<T> gy, MatrixView<T> hv,
                             MatrixView<T> jv) {
    if (!gy.empty()) grad_y_g(batch, x, y, gy);
    if (!hv.empty() || !jv.empty()) hvp_jvp(batch, x, y, v, hv, jv);
  }
  /// One SGD step on the lower level: y <- y - steps_b grad_y g(x, y) on `batch` (steps: B
  /// values on the executor; `work`: dy x B scratch). Problems that can fuse the step into the
  /// oracle's last kernel override it; the default calls grad_y_g into `work`, then
  /// Ops::batch_axpy.
  virtual void lower_step(const Batch& batch, ConstMatrixView<T> x, MatrixView<T> y,
                          const T* steps, MatrixView<T> work) {
    grad_y_g(batch, x, y, work);
    executor()->template ops<T>().batch_axpy(T(-1), steps, work, y);
  }
  /// One Neumann term: r <- r - eta_b H r on `batch`, then sum <- sum + r (eta: B values on the
  /// executor; `work`: dy x B scratch). The default calls hvp_jvp into `work`, then
  /// Ops::neumann_step; problems that fuse the step into the oracle's last kernel override it.
  virtual void neumann_term(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                            const T* eta, MatrixView<T> r, MatrixView<T> sum,
                            MatrixView<T> work) {
    hvp_jvp(batch, x, y, r, work, MatrixView<T>());
    executor()->template ops<T>().neumann_step(eta, work, r, sum);
  }
  /// False when f does not depend on x (grad_x f = 0, as hyper-cleaning's clean validation
  /// loss): estimators may then pass an empty fx to grad_f and single_point_oracles.
  virtual bool upper_depends_on_x() const { return true; }
  /// True when x is one variable shared by all instances (meta-learning: the meta-parameters
  /// of the B tasks of a meta-batch): the solver steps every column of x with the mean of the
  /// instances' hypergradients, so the columns, equal at the start, stay equal.
  virtual bool shared_upper() const { return false; }
  /// True when the upper level's data are drawn from a distribution that depends on y (policy
  /// alignment: feedback is collected on the lower-level policy's own actions). grad_f's fy
  /// then holds the score-function term E[f_i grad_y log p_y(i)] besides the pathwise
  /// gradient, and score_function_term() returns that term alone.
  virtual bool upper_data_depend_on_y() const { return false; }
  virtual void score_function_term(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                   MatrixView<T> out) {
    (void)batch, (void)x, (void)y, (void)out;
    throw NotSupported(name() + ": its upper-level data do not depend on y (no score term)");
  }
  /// The ranks over which x is split (each holds its own rows of x: hyper-cleaning's
  /// per-sample weights live with their samples), or null when every process holds all of x.
  /// The solver then all-reduces what it computes over x: the norms of normalized momentum,
  /// ||h|| and ||x||.
  virtual Communicator* upper_shards() const { return nullptr; }
  /// False when an oracle cannot be recorded in a CUDA graph (host-staged communication of
  /// sharded problems): the solver then launches every iteration from the host.
  virtual bool capturable() const { return true; }
  /// Called by the solver at the start of every iteration, before anything reads (x, y):
  /// problems whose data or lower-level start change from one iteration to the next (new
  /// tasks, adaptation from y = 0) set them up here on the executor, reading the iteration k
  /// from `counter` (executor memory) so that a captured iteration replays correctly.
  virtual void begin_iteration(const std::uint32_t* counter, ConstMatrixView<T> x,
                               MatrixView<T> y) {
    (void)counter, (void)x, (void)y;
  }
  /// The oracles of a single-loop step at one point (SOBA, sl-BAMM): fx, fy on the upper
  /// batch; gy, H v, J v on the lower batch (gy, hv, jv as lower_oracles; fx may be empty when
  /// !upper_depends_on_x()). Problems that can serve both batches in the same kernels
  /// override it; the default calls grad_f, then lower_oracles.
  virtual void single_point_oracles(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, ConstMatrixView<T> v, MatrixView<T> gy,
                                    MatrixView<T> hv, MatrixView<T> jv, MatrixView<T> fx,
                                    MatrixView<T> fy) {
    grad_f(upper, x, y, fx, fy);
    lower_oracles(lower, x, y, v, gy, hv, jv);
  }
  /// The second-order oracle of f (optional; BDA differentiates through steps that aggregate
  /// grad_y f): hv = grad2_yy f(x, y) v and jv = grad2_xy f(x, y) v, on the upper-level batch.
  virtual void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                         ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
    (void)batch, (void)x, (void)y, (void)v, (void)hv, (void)jv;
    throw NotSupported(name() + " does not provide second derivatives of f (needed by BDA)");
  }
  /// Per-instance values for logging: f_out[b] = f(x_b, y_b) on the upper batch and
  /// g_out[b] = g(x_b, y_b) on the lower batch (executor memory, length B; either may be null).
  virtual void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                      ConstMatrixView<T> y, T* f_out, T* g_out) = 0;

  /// Lower-level constraints c(x, y) <= 0 that may couple both levels (LV-HBA): their number m
  /// (0: none), their values (m x B) and the products with multipliers lambda (m x B):
  /// gx = grad_x c(x, y)' lambda (dx x B), gy = grad_y c(x, y)' lambda (dy x B); either output
  /// may be an empty view.
  virtual index_t constraint_count() const { return 0; }
  /// True when the constraints are equalities c(x, y) = 0 (multipliers of any sign).
  virtual bool constraints_are_equalities() const { return false; }
  virtual void constraint_values(ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> out) {
    (void)x, (void)y, (void)out;
    throw NotSupported(name() + " has no lower-level constraints");
  }
  virtual void constraint_vjp(ConstMatrixView<T> x, ConstMatrixView<T> y,
                              ConstMatrixView<T> lambda, MatrixView<T> gx, MatrixView<T> gy) {
    (void)x, (void)y, (void)lambda, (void)gx, (void)gy;
    throw NotSupported(name() + " has no lower-level constraints");
  }

  /// Projections onto the feasible sets (identity by default): X, Y, and the joint set
  /// C = {(x, y): c(x, y) <= 0} of constrained lower levels (the solver applies project_joint
  /// after each upper-level step).
  virtual void project_x(MatrixView<T> x) { (void)x; }
  virtual void project_y(MatrixView<T> y) { (void)y; }
  virtual void project_joint(MatrixView<T> x, MatrixView<T> y) { (void)x, (void)y; }
};

}  // namespace bilevel
