// The scheduler (see solvers/solver.hpp for the update rules): Solver::run and the outer
// iteration. Its parts each have a file of their own: the run's device state (run_state), the
// metric read-back (metric_readback), the divergence watch (divergence_watch), the iteration
// graphs (iteration_graphs) and the checkpointing hook (checkpoint_hook); the algorithm presets
// are in presets.cpp. Nothing is read back inside an iteration (docs/design.md, "The
// scheduler").
#include <bilevel/solvers/solver.hpp>

#include "checkpoint_hook.hpp"
#include "divergence_watch.hpp"
#include "iteration_graphs.hpp"
#include "metric_readback.hpp"
#include "run_state.hpp"

#include <algorithm>
#include <sstream>
#include <utility>

namespace bilevel {
template <typename T>
Solver<T>::Solver(Problem<T>& problem, std::unique_ptr<HypergradientEstimator<T>> estimator,
                  ScheduleOptions options)
    : problem_(problem), estimator_(std::move(estimator)), options_(std::move(options)) {
  BILEVEL_EXPECTS(estimator_ != nullptr, "solver: no estimator given");
  BILEVEL_EXPECTS(options_.iterations >= 0,
                  "solver: iterations must be >= 0, got " << options_.iterations);
  BILEVEL_EXPECTS(options_.inner_steps >= 0,
                  "solver: inner_steps must be >= 0, got " << options_.inner_steps);
  BILEVEL_EXPECTS(options_.lower_batch >= 0 && options_.upper_batch >= 0,
                  "solver: batch sizes must be >= 0 (0 = full data)");
  BILEVEL_EXPECTS(options_.inner_period >= 1,
                  "solver: inner_period must be >= 1, got " << options_.inner_period);
  BILEVEL_EXPECTS(options_.init_steps >= 0,
                  "solver: init_steps must be >= 0, got " << options_.init_steps);
  BILEVEL_EXPECTS(options_.inner_decay >= 0 && options_.outer_decay >= 0,
                  "solver: step decays must be >= 0");
  BILEVEL_EXPECTS(options_.average > 0 && options_.average <= 1,
                  "solver: the moving-average weight theta must be in (0, 1], got " << options_.average);
  BILEVEL_EXPECTS(options_.momentum >= 0 && options_.momentum < 1,
                  "solver: the momentum mu must be in [0, 1), got " << options_.momentum);
  BILEVEL_EXPECTS(options_.eval_every >= 0,
                  "solver: eval_every must be >= 0, got " << options_.eval_every);
  BILEVEL_EXPECTS(options_.divergence_limit > 0,
                  "solver: divergence_limit must be > 0, got " << options_.divergence_limit);
  BILEVEL_EXPECTS(options_.checkpoint_every >= 0,
                  "solver: checkpoint_every must be >= 0, got " << options_.checkpoint_every);
  BILEVEL_EXPECTS(options_.start_iteration >= 0 && options_.start_iteration <= options_.iterations,
                  "solver: start_iteration must be in [0, iterations = " << options_.iterations
                                                                          << "], got "
                                                                          << options_.start_iteration);
  BILEVEL_EXPECTS(options_.reference_x.empty() ||
                      static_cast<index_t>(options_.reference_x.size()) == problem_.dim_x(),
                  "solver: reference_x must have dx = " << problem_.dim_x() << " values, has "
                                                             << options_.reference_x.size());
}

namespace {

// The algorithm: one outer iteration k on the run's state, and the lower-level steps.
template <typename T>
struct OuterIteration {
  Problem<T>& problem;
  HypergradientEstimator<T>& estimator;
  const ScheduleOptions& options;
  detail::RunState<T>& s;

  // y <- Proj_Y(y - steps gy(x, y)), `count` times, batches of (purpose, t, iteration)
  void lower_steps(index_t count, const T* steps, SampleStream purpose, index_t iteration) {
    for (index_t t = 0; t < count; ++t) {
      const Batch batch = s.lower.draw(purpose, static_cast<std::uint32_t>(t), iteration);
      // y <- y - alpha grad_y g(x, y; b)   (gy: scratch where the problem does not fuse it)
      problem.lower_step(batch, s.x.view(), s.y.view(), steps, s.gy.view());
      // y <- Proj_Y(y)
      problem.project_y(s.y.view());
    }
  }

  // a lower-level round in iteration k (not when the estimator runs its own inner steps)
  bool lower_round(index_t k) const {
    return !estimator.runs_lower_level() && k % options.inner_period == 0;
  }

  // One outer iteration k (the host's k equals the counter's value on the executor).
  void operator()(index_t k) {
    Ops<T>& ops = s.ops;
    // the problem's per-iteration set-up (new tasks, y <- its start)
    problem.begin_iteration(s.counter.data(), s.x.view(), s.y.view());
    if (lower_round(k)) {
      // alpha_k = alpha (k + 1)^-inner_decay
      if (options.inner_decay > 0)
        ops.schedule(s.alpha.data(), s.nb, Schedule{1.0, 1.0, options.inner_decay},
                     s.counter.data(), s.alpha_k.data());
      lower_steps(options.inner_steps, s.inner_steps_now, SampleStream::lower_step, k);
    }
    // h ~ grad F(x, y)
    estimator.estimate(EstimateContext<T>{problem, s.lower, s.upper, k, s.counter.data()},
                       s.x.view(), s.y.view(), s.h.view());
    if (s.shared) {
      // m = (1/B) sum_j h_j;  h_b <- m for every b
      const MatrixView<T> mean = s.diff.view().col(0);
      ops.gemm(Op::none, Op::none, T(1), s.h.view(), s.averaging.view(), T(0), mean);
      ops.gemm(Op::none, Op::none, T(1), mean, s.ones_row.view(), T(0), s.h.view());
    }
    // beta_k = beta (k + 1)^-outer_decay
    if (options.outer_decay > 0)
      ops.schedule(s.beta.data(), s.nb, Schedule{1.0, 1.0, options.outer_decay},
                   s.counter.data(), s.beta_k.data());
    upper_step();
    // x <- Proj_X(x); (x, y) <- Proj_C(x, y)
    problem.project_x(s.x.view());
    problem.project_joint(s.x.view(), s.y.view());
  }

  // The x step, which advances the counter k <- k + 1 (nothing after it reads the counter).
  void upper_step() {
    Ops<T>& ops = s.ops;
    switch (options.upper) {
      case UpperUpdate::sgd:
        // x <- x - beta_k h;  k <- k + 1
        ops.batch_axpy_and_advance(T(-1), s.outer_steps_now, s.h.view(), s.x.view(),
                                   s.counter.data());
        break;
      case UpperUpdate::moving_average:
        // m <- (1 - theta) m + theta h;  x <- x - beta_k m;  k <- k + 1
        ops.axpby(static_cast<T>(options.average), s.h.view(),
                  static_cast<T>(1 - options.average), s.direction.view());
        ops.batch_axpy_and_advance(T(-1), s.outer_steps_now, s.direction.view(), s.x.view(),
                                   s.counter.data());
        break;
      case UpperUpdate::normalized_momentum:
        if (s.shards != nullptr) {
          // m <- mu m + (1 - mu) h;  n = ||m||^2 summed over the ranks;  x <- x - beta_k m / sqrt(n)
          ops.axpby(static_cast<T>(1 - options.momentum), s.h.view(),
                    static_cast<T>(options.momentum), s.direction.view());
          ops.batch_dot(s.direction.view(), s.direction.view(), s.shard_norms.data());
          s.shards->allreduce_sum(*s.exec, s.shard_norms.data(), s.nb);
          ops.normalized_axpy(T(-1), s.outer_steps_now, s.shard_norms.data(),
                              s.direction.view(), s.x.view());
        } else {
          // m <- mu m + (1 - mu) h;  x <- x - beta_k m / ||m||   (one fused kernel)
          ops.normalized_momentum_step(static_cast<T>(options.momentum), s.h.view(),
                                       s.direction.view(), T(-1), s.outer_steps_now, s.x.view());
        }
        // k <- k + 1
        ops.advance_counter(s.counter.data());
        break;
    }
  }
};

}  // namespace

template <typename T>
SolveResult<T> Solver<T>::run(const std::vector<T>& x0, const std::vector<T>& y0,
                              const Observer& observer, const Inspector& inspector,
                              const Checkpointer& checkpointer) {
  // --- set-up: every array allocated before the loop; a resumed run's carried state restored
  // (restore_state is for the next run only) ---
  detail::RunState<T> s(problem_, *estimator_, options_, x0, y0);
  const std::vector<std::vector<T>> restored = std::exchange(restored_state_, {});
  s.restore(restored, *estimator_);
  active_state_ = s.carried;  // read_carried_state() sees them while the run lasts
  struct ActiveState {
    std::vector<MatrixView<T>>& arrays;
    ~ActiveState() { arrays.clear(); }
  } active{active_state_};
  const detail::RunClock clock;
  detail::DivergenceWatch watch(s.nb, options_.divergence_limit);
  detail::MetricReadback<T> metrics(problem_, s, watch, clock, observer, inspector);
  detail::NormChecks<T> norms(s, watch);
  OuterIteration<T> iterate{problem_, *estimator_, options_, s};
  const index_t first = options_.start_iteration, last = options_.iterations;
  // y_0 <- init_steps SGD steps on g(x_0, .) (BO-REP; not when resuming)
  if (!estimator_->runs_lower_level() && first == 0)
    iterate.lower_steps(options_.init_steps, s.alpha.data(), SampleStream::initialization, 0);
  // the estimator's carried state starts at (x, y) unless it was restored
  if (restored.empty()) estimator_->start_state(s.x.view(), s.y.view());
  detail::CheckpointHook<T> checkpoints(s, watch, metrics, checkpointer,
                                        options_.checkpoint_every, x0, y0);

  // --- the loop: iteration, then metrics or the norm check, then the checkpoint when due ---
  detail::IterationGraphs graphs(
      options_.capture && estimator_->capturable() && problem_.capturable(),
      [&](const std::function<void()>& work) { return s.exec->capture(work); });
  const auto due = [&](index_t every, index_t iteration) {
    return every > 0 && iteration % every == 0 && iteration != last;
  };
  for (index_t k = first; k < last; ++k) {
    graphs.run({iterate.lower_round(k), estimator_->iteration_shape(k)}, k == first,
               [&, k] { iterate(k); });
    if (due(options_.eval_every, k + 1))
      metrics.enqueue(k + 1);
    else if (due(options_.divergence_check_every, k + 1))
      norms.enqueue(k + 1);
    checkpoints.after_iteration(k + 1);
  }

  // --- finish: the last reads, the final evaluation, the last checkpoint ---
  norms.read();
  if (options_.final_evaluation) metrics.enqueue(last);
  metrics.read_pending();
  checkpoints.deliver();
  SolveResult<T> result;
  result.instances = s.nb;
  result.iterations = last - first;
  result.history = std::move(metrics.history());
  result.captured_shapes = graphs.captured_shapes();
  result.graph_nodes = graphs.graph_nodes();
  result.diverged_at = watch.diverged_at();
  result.divergence = watch.messages();
  result.x = s.x.to_host();
  result.y = s.y.to_host();
  // an x that never moved: a zero hypergradient (no J v, no grad_x f) or zero x steps
  const index_t dx = problem_.dim_x();
  for (index_t b = 0; b < s.nb && last > first && dx > 0; ++b) {
    if (watch.diverged(b)) continue;
    const auto col = result.x.begin() + b * dx;
    if (!std::equal(col, col + dx, x0.begin() + b * dx)) continue;
    std::ostringstream os;
    os << "instance " << b << ": x did not move in " << (last - first)
       << " iterations: every hypergradient estimate (grad_x f - J v) or every x step was zero"
          " (check J v and grad_x f with check_oracles, and the outer step size)";
    result.warnings.push_back(os.str());
  }
  result.carried_state = read_carried_state();
  result.seconds = clock.seconds();
  return result;
}

template <typename T>
std::vector<std::vector<T>> Solver<T>::read_carried_state() const {
  return detail::copy_to_host(*problem_.executor(), active_state_);
}

template class Solver<float>;
template class Solver<double>;

}  // namespace bilevel
