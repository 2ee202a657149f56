// The scheduler (see solvers/solver.hpp for the update rules) and the algorithm presets.
// Nothing is read back inside an iteration; metrics are computed every eval_every iterations
// into a device buffer and copied back once.
#include <bilevel/solvers/solver.hpp>

#include <bilevel/distributed.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
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

template <typename T>
SolveResult<T> Solver<T>::run(const std::vector<T>& x0, const std::vector<T>& y0,
                              const Observer& observer, const Inspector& inspector,
                              const Checkpointer& checkpointer) {
  const index_t dx = problem_.dim_x(), dy = problem_.dim_y();
  BILEVEL_EXPECTS(!x0.empty() && static_cast<index_t>(x0.size()) % dx == 0,
                  "solver: x0 must hold dx * B values (dx = " << dx << "), has " << x0.size());
  const index_t nb = static_cast<index_t>(x0.size()) / dx;
  BILEVEL_EXPECTS(static_cast<index_t>(y0.size()) == dy * nb,
                  "solver: y0 must hold dy * B = " << dy * nb << " values, has " << y0.size());
  auto exec = problem_.executor();
  Ops<T>& ops = exec->template ops<T>();
  const bool shared = problem_.shared_upper() && nb > 1;
  // x split over ranks (null: whole on every rank): norms over x are all-reduced
  Communicator* shards = problem_.upper_shards();
  if (shards != nullptr && shards->size() == 1) shards = nullptr;
  if (shards != nullptr) {
    BILEVEL_EXPECTS(options_.reference_x.empty(),
                    "solver: reference_x is not supported when " << problem_.name()
                                                                 << "'s x is split over ranks");
  }
  if (shared)
    for (index_t b = 1; b < nb; ++b)
      BILEVEL_EXPECTS(std::equal(x0.begin(), x0.begin() + dx, x0.begin() + b * dx),
                      "solver: " << problem_.name()
                                 << " shares x between its instances, but column " << b
                                 << " of x0 differs from column 0");

  // --- everything is allocated before the loop ---
  Array<T> x(exec, dx, nb, x0), y(exec, dy, nb, y0);
  Array<T> gy(exec, dy, nb), h(exec, dx, nb), diff(exec, dx, nb);
  Array<T> shard_norms = shards != nullptr ? Array<T>(exec, nb, 1) : Array<T>();  // ||m||^2
  Array<T> direction;  // m of the moving average / momentum updates
  if (options_.upper != UpperUpdate::sgd) {
    direction = Array<T>(exec, dx, nb);
    ops.fill(direction.view(), T(0));
  }
  Array<T> alpha = per_instance_array<T>(exec, options_.inner_step, nb, "inner_step (alpha)");
  Array<T> beta = per_instance_array<T>(exec, options_.outer_step, nb, "outer_step (beta)");
  // shared x: the weights 1/B that average the instances' hypergradients, and ones that copy
  // the mean to every column (bit for bit: the columns of x stay equal)
  Array<T> averaging, ones_row;
  if (shared) {
    averaging = Array<T>(exec, nb, 1, std::vector<T>(static_cast<std::size_t>(nb), T(1) / static_cast<T>(nb)));
    ones_row = Array<T>(exec, 1, nb, std::vector<T>(static_cast<std::size_t>(nb), T(1)));
  }
  Array<T> reference;
  if (!options_.reference_x.empty()) {
    std::vector<T> rep;
    rep.reserve(static_cast<std::size_t>(dx * nb));
    for (index_t b = 0; b < nb; ++b)
      rep.insert(rep.end(), options_.reference_x.begin(), options_.reference_x.end());
    reference = Array<T>(exec, dx, nb, rep);
  }
  const bool independent = options_.independent_batches && nb > 1;
  if (independent && !problem_.supports_independent_batches())
    throw NotSupported(problem_.name() + " does not support independent batches per instance");
  const index_t sets = independent ? nb : 1;
  MinibatchSampler<T> lower(exec, options_.seed, problem_.lower_samples(), options_.lower_batch,
                            sets);
  MinibatchSampler<T> upper(exec, options_.seed, problem_.upper_samples(), options_.upper_batch,
                            sets);
  // a problem that draws minibatches inside its kernels gets them deferred (no draw launches)
  lower.set_deferred(problem_.draws_minibatches());
  upper.set_deferred(problem_.draws_minibatches());
  // independent batches: workspace for the gathered samples of all instances together
  const auto gathered = [&](const MinibatchSampler<T>& s) {
    return s.full() ? s.batch_size() : s.batch_size() * sets;
  };
  problem_.reserve(nb, std::max(gathered(lower), gathered(upper)));
  estimator_->prepare(problem_, nb);
  ops.fill(h.view(), T(0));
  // what carries over from one iteration to the next besides x and y: the upper update's m and
  // the estimator's state (checkpointed, and written back when resuming)
  std::vector<MatrixView<T>> carried;
  if (options_.upper != UpperUpdate::sgd) carried.push_back(direction.view());
  for (const MatrixView<T>& v : estimator_->carried_state()) carried.push_back(v);
  for (const MatrixView<T>& v : carried)
    BILEVEL_EXPECTS(v.cols == nb && v.ld == v.rows,
                    "solver: carried state must be contiguous rows x B arrays");
  // (restore_state is for the next run only)
  const std::vector<std::vector<T>> restored = std::move(restored_state_);
  restored_state_.clear();
  if (!restored.empty()) {
    BILEVEL_EXPECTS(restored.size() == carried.size(),
                    "solver: the state to resume holds " << restored.size()
                                                         << " array(s); this run of "
                                                         << estimator_->name() << " carries "
                                                         << carried.size()
                                                         << " (a checkpoint of another algorithm?)");
    for (std::size_t k = 0; k < carried.size(); ++k) {
      const index_t n = carried[k].rows * nb;
      BILEVEL_EXPECTS(static_cast<index_t>(restored[k].size()) == n,
                      "solver: carried-state array " << k << " to resume holds "
                                                     << restored[k].size()
                                                     << " values; this run's holds " << n);
      const Array<T> from(exec, carried[k].rows, nb, restored[k]);
      ops.copy(from.view(), carried[k]);
    }
    estimator_->state_restored();
  }
  // read_carried_state() sees these arrays while the run lasts
  struct ActiveState {
    std::vector<MatrixView<T>>& slot;
    ~ActiveState() { slot.clear(); }
  } active{active_state_};
  active_state_ = carried;

  SolveResult<T> result;
  result.instances = nb;
  result.diverged_at.assign(static_cast<std::size_t>(nb), -1);
  result.divergence.assign(static_cast<std::size_t>(nb), std::string());
  // Marks instance b diverged (once); throws when no healthy instance is left.
  index_t healthy = nb;
  const auto mark_diverged = [&](index_t b, index_t iteration, const std::string& message) {
    if (result.diverged_at[b] >= 0) return;
    result.diverged_at[b] = iteration;
    result.divergence[b] = message;
    --healthy;
  };
  const auto throw_if_all_diverged = [&] {
    if (healthy > 0) return;
    index_t last = 0;
    for (index_t b = 0; b < nb; ++b)
      if (result.diverged_at[b] > result.diverged_at[last]) last = b;
    throw DivergenceError(result.divergence[last], static_cast<long>(result.diverged_at[last]),
                          static_cast<long>(last));
  };
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  // An evaluation enqueues its metrics kernels and an asynchronous copy into one of two host
  // buffers, and is read (observer, history, divergence check) at the next evaluation or at
  // the end, while the device works on. With an inspector, which looks at x and y as they are
  // at the evaluated iteration, each evaluation is read at once instead.
  struct Pending {
    index_t iteration = 0;
    double seconds = 0.0;
    int slot = 0;
    std::unique_ptr<StreamMark> done;
  };
  // metrics: B values each of f, g, ||h||, ||x - x*|| and the problem's own (one column of a
  // B x (4 + E) array each)
  const index_t extra = static_cast<index_t>(problem_.evaluation_metric_names().size());
  Array<T> metrics_slots[2] = {Array<T>(exec, nb, 4 + extra), Array<T>(exec, nb, 4 + extra)};
  HostBuffer<T> staging[2] = {HostBuffer<T>(exec, nb * (4 + extra)),
                              HostBuffer<T>(exec, nb * (4 + extra))};
  std::unique_ptr<Pending> pending;
  int next_slot = 0;
  const int metric_rows = reference.size() > 0 ? 4 : 3;

  const auto read = [&](Pending& p) {
    p.done->wait();
    T* host = staging[p.slot].data();
    if (shards != nullptr)
      for (index_t b = 0; b < nb; ++b) host[2 * nb + b] = std::sqrt(host[2 * nb + b]);
    // divergence: a metric that is not finite or beyond the limit marks its instance
    for (index_t b = 0; b < nb; ++b) {
      if (result.diverged_at[b] >= 0) continue;
      for (int r = 0; r < metric_rows; ++r) {
        const double value = static_cast<double>(host[r * nb + b]);
        if (!std::isfinite(value) || std::abs(value) > options_.divergence_limit) {
          static const char* what[] = {"f", "g", "||h||", "||x - x*||"};
          std::ostringstream os;
          os << "diverged at iteration " << p.iteration << ", instance " << b << ": " << what[r]
             << " is " << value;
          if (std::isfinite(value)) os << ", beyond the divergence limit " << options_.divergence_limit;
          os << " (try smaller step sizes)";
          mark_diverged(b, p.iteration, os.str());
          break;
        }
      }
    }
    // a diverged instance's metrics are NaN from its divergence on
    const index_t rows = 4 + extra;
    for (index_t b = 0; b < nb; ++b)
      if (result.diverged_at[b] >= 0)
        for (index_t r = 0; r < rows; ++r) host[r * nb + b] = std::numeric_limits<T>::quiet_NaN();
    IterationMetrics im;
    im.iteration = p.iteration;
    im.seconds = p.seconds;
    const auto column = [&](int row) {
      return std::vector<double>(host + row * nb, host + (row + 1) * nb);
    };
    im.upper_value = column(0);
    im.lower_value = column(1);
    im.hypergradient_norm = column(2);
    if (reference.size() > 0) im.distance_to_solution = column(3);
    for (index_t r = 0; r < extra; ++r) im.problem_metrics.push_back(column(4 + static_cast<int>(r)));
    result.history.push_back(im);
    if (observer) observer(im);
    if (inspector) inspector(im, x.view(), y.view());
    throw_if_all_diverged();
  };
  const auto read_pending = [&] {
    if (!pending) return;
    std::unique_ptr<Pending> p = std::move(pending);
    read(*p);
  };

  const auto evaluate = [&](index_t iteration) {
    read_pending();  // in order, and before its slot is reused
    const int slot = next_slot;
    next_slot = 1 - next_slot;
    T* m = metrics_slots[slot].data();
    const Batch full_lower{nullptr, problem_.lower_samples()};
    const Batch full_upper{nullptr, problem_.upper_samples()};
    // f, g at (x, y) on full data
    problem_.values(full_lower, full_upper, x.view(), y.view(), m, m + nb);
    // ||h|| (x split over ranks: ||h||^2 summed over them, the root taken when read)
    if (shards != nullptr) {
      ops.batch_dot(h.view(), h.view(), m + 2 * nb);
      shards->allreduce_sum(*exec, m + 2 * nb, nb);
    } else {
      ops.batch_nrm2(h.view(), m + 2 * nb);
    }
    if (reference.size() > 0) {
      // diff = x - x*
      ops.copy(x.view(), diff.view());
      ops.axpby(T(-1), reference.view(), T(1), diff.view());
      ops.batch_nrm2(diff.view(), m + 3 * nb);
    }
    // the problem's own metrics
    if (extra > 0) problem_.evaluation_metrics(x.view(), y.view(), m + 4 * nb);
    // the one read-back of an evaluation, without waiting for it
    staging[slot].copy_async_from(m);
    pending = std::make_unique<Pending>(Pending{iteration, elapsed(), slot, exec->mark()});
    if (inspector) read_pending();
  };

  // Divergence checks between evaluations: ||x||, ||y|| of every instance, copied back
  // asynchronously and read at the next check (or the end).
  Array<T> norms_slots[2] = {Array<T>(exec, nb, 2), Array<T>(exec, nb, 2)};
  HostBuffer<T> norms_host[2] = {HostBuffer<T>(exec, 2 * nb), HostBuffer<T>(exec, 2 * nb)};
  std::unique_ptr<Pending> pending_check;
  int next_check_slot = 0;
  const auto read_check = [&] {
    if (!pending_check) return;
    std::unique_ptr<Pending> p = std::move(pending_check);
    p->done->wait();
    T* host = norms_host[p->slot].data();
    if (shards != nullptr)
      for (index_t b = 0; b < nb; ++b) host[b] = std::sqrt(host[b]);
    for (index_t b = 0; b < nb; ++b)
      for (int r = 0; r < 2 && result.diverged_at[b] < 0; ++r) {
        const double value = static_cast<double>(host[r * nb + b]);
        if (!std::isfinite(value) || std::abs(value) > options_.divergence_limit) {
          std::ostringstream os;
          os << "diverged by iteration " << p->iteration << ", instance " << b << ": "
             << (r == 0 ? "||x||" : "||y||") << " is " << value << " (try smaller step sizes)";
          mark_diverged(b, p->iteration, os.str());
        }
      }
    throw_if_all_diverged();
  };
  const auto divergence_check = [&](index_t iteration) {
    read_check();
    const int slot = next_check_slot;
    next_check_slot = 1 - next_check_slot;
    T* m = norms_slots[slot].data();
    // ||x||, ||y|| per instance (x split over ranks: ||x||^2 summed, the root taken when read)
    if (shards != nullptr) {
      ops.batch_dot(x.view(), x.view(), m);
      shards->allreduce_sum(*exec, m, nb);
    } else {
      ops.batch_nrm2(x.view(), m);
    }
    ops.batch_nrm2(y.view(), m + nb);
    norms_host[slot].copy_async_from(m);
    pending_check = std::make_unique<Pending>(Pending{iteration, elapsed(), slot, exec->mark()});
  };

  // The iteration counter k lives on the executor: the samplers read it, decaying steps are
  // computed from it, and the iteration advances it, so an iteration's launches are the same
  // for every k and can be captured once and replayed.
  const index_t first = options_.start_iteration;
  Array<std::uint32_t> counter(exec, 1, 1,
                               std::vector<std::uint32_t>{static_cast<std::uint32_t>(first)});
  lower.attach_counter(counter.data());
  upper.attach_counter(counter.data());
  // alpha_k = alpha (k + 1)^-inner_decay and beta_k likewise, where the steps decay
  Array<T> alpha_k = options_.inner_decay > 0 ? Array<T>(exec, nb, 1) : Array<T>();
  Array<T> beta_k = options_.outer_decay > 0 ? Array<T>(exec, nb, 1) : Array<T>();
  const T* inner_steps_now = options_.inner_decay > 0 ? alpha_k.data() : alpha.data();
  const T* outer_steps_now = options_.outer_decay > 0 ? beta_k.data() : beta.data();

  // y <- Proj_Y(y - steps gy(x, y)), `count` times, batches of (purpose, t, iteration)
  const auto lower_steps = [&](index_t count, const T* steps, SampleStream purpose,
                               index_t iteration) {
    for (index_t t = 0; t < count; ++t) {
      const Batch batch = lower.draw(purpose, static_cast<std::uint32_t>(t), iteration);
      // y <- y - alpha grad_y g(x, y; b)   (gy: scratch where the problem does not fuse it)
      problem_.lower_step(batch, x.view(), y.view(), steps, gy.view());
      // y <- Proj_Y(y)
      problem_.project_y(y.view());
    }
  };
  const bool inner_by_estimator = estimator_->runs_lower_level();
  // init refinement: y_0 <- SGD on g(x_0, .) (counter = 0; not when resuming)
  if (!inner_by_estimator && first == 0)
    lower_steps(options_.init_steps, alpha.data(), SampleStream::initialization, 0);
  // the estimator's carried state starts at (x, y) unless it was restored
  if (restored.empty()) estimator_->start_state(x.view(), y.view());

  // Checkpoints: (x, y) copied back asynchronously, handed over at the next one or at the end.
  HostBuffer<T> saved_x, saved_y;
  std::vector<HostBuffer<T>> saved_state;
  std::unique_ptr<StreamMark> saved_done;
  index_t saved_iteration = -1;
  // the carried state's start values (a resumed run: the restored ones), where a diverged
  // instance restarts
  std::vector<std::vector<T>> state0;
  if (checkpointer && options_.checkpoint_every > 0) {
    saved_x = HostBuffer<T>(exec, dx * nb);
    saved_y = HostBuffer<T>(exec, dy * nb);
    for (const MatrixView<T>& v : carried) saved_state.emplace_back(exec, v.rows * nb);
    state0 = read_carried_state();
  }
  const auto deliver_checkpoint = [&] {
    if (saved_iteration < 0) return;
    // the metrics of every evaluation up to the checkpoint reach the observer first: a run
    // killed after this checkpoint and resumed from it has them all (they were read one
    // evaluation late, which could be after a later checkpoint)
    if (pending && pending->iteration <= saved_iteration) read_pending();
    saved_done->wait();
    Checkpoint<T> c;
    c.iteration = saved_iteration;
    c.dx = dx, c.dy = dy, c.instances = nb;
    c.x.assign(saved_x.data(), saved_x.data() + dx * nb);
    c.y.assign(saved_y.data(), saved_y.data() + dy * nb);
    for (const HostBuffer<T>& a : saved_state) c.state.emplace_back(a.data(), a.data() + a.size());
    // a diverged instance is checkpointed at its start values (its state is not finite); an
    // instance whose state is not finite here has diverged, seen or not (x split over ranks:
    // on any rank, so that every rank decides alike; each rank's checkpoint holds its shard)
    std::vector<double> broken(static_cast<std::size_t>(nb), 0.0);
    for (index_t b = 0; b < nb; ++b) {
      const auto finite = [](auto first, auto last) {
        return std::all_of(first, last, [](T v) { return std::isfinite(v); });
      };
      bool ok = finite(c.x.begin() + b * dx, c.x.begin() + (b + 1) * dx) &&
                finite(c.y.begin() + b * dy, c.y.begin() + (b + 1) * dy);
      for (std::size_t k = 0; k < c.state.size() && ok; ++k) {
        const index_t rows = carried[k].rows;
        ok = finite(c.state[k].begin() + b * rows, c.state[k].begin() + (b + 1) * rows);
      }
      broken[static_cast<std::size_t>(b)] = ok ? 0.0 : 1.0;
    }
    if (shards != nullptr) shards->allreduce_sum_host(broken.data(), nb);
    for (index_t b = 0; b < nb; ++b) {
      if (broken[static_cast<std::size_t>(b)] > 0)
        mark_diverged(b, c.iteration,
                      "diverged by iteration " + std::to_string(c.iteration) + ", instance " +
                          std::to_string(b) + ": its state is not finite at a checkpoint");
    }
    throw_if_all_diverged();
    for (index_t b = 0; b < nb; ++b)
      if (result.diverged_at[b] >= 0) {
        std::copy(x0.begin() + b * dx, x0.begin() + (b + 1) * dx, c.x.begin() + b * dx);
        std::copy(y0.begin() + b * dy, y0.begin() + (b + 1) * dy, c.y.begin() + b * dy);
        // its carried state restarts too
        for (std::size_t k = 0; k < c.state.size(); ++k) {
          const index_t rows = carried[k].rows;
          std::copy(state0[k].begin() + b * rows, state0[k].begin() + (b + 1) * rows,
                    c.state[k].begin() + b * rows);
        }
      }
    saved_iteration = -1;
    checkpointer(c);
  };
  const auto take_checkpoint = [&](index_t iteration) {
    deliver_checkpoint();
    saved_x.copy_async_from(x.data());
    saved_y.copy_async_from(y.data());
    for (std::size_t k = 0; k < carried.size(); ++k) saved_state[k].copy_async_from(carried[k].data);
    saved_done = exec->mark();
    saved_iteration = iteration;
  };

  // One outer iteration k (the host's k must equal the counter's value).
  const auto iterate = [&](index_t k) {
    // the problem's per-iteration set-up (new tasks, y <- its start)
    problem_.begin_iteration(counter.data(), x.view(), y.view());
    if (!inner_by_estimator && k % options_.inner_period == 0) {
      // alpha_k = alpha (k + 1)^-inner_decay
      if (options_.inner_decay > 0)
        ops.schedule(alpha.data(), nb, Schedule{1.0, 1.0, options_.inner_decay}, counter.data(),
                     alpha_k.data());
      lower_steps(options_.inner_steps, inner_steps_now, SampleStream::lower_step, k);
    }
    // h ~ grad F(x, y)
    estimator_->estimate(EstimateContext<T>{problem_, lower, upper, k, counter.data()}, x.view(),
                         y.view(), h.view());
    if (shared) {
      // m = (1/B) sum_j h_j;  h_b <- m for every b
      const MatrixView<T> mean = diff.view().col(0);
      ops.gemm(Op::none, Op::none, T(1), h.view(), averaging.view(), T(0), mean);
      ops.gemm(Op::none, Op::none, T(1), mean, ones_row.view(), T(0), h.view());
    }
    // beta_k = beta (k + 1)^-outer_decay
    if (options_.outer_decay > 0)
      ops.schedule(beta.data(), nb, Schedule{1.0, 1.0, options_.outer_decay}, counter.data(),
                   beta_k.data());
    // (nothing after the x step reads the counter: the step advances it, k <- k + 1)
    switch (options_.upper) {
      case UpperUpdate::sgd:
        // x <- x - beta_k h;  k <- k + 1
        ops.batch_axpy_and_advance(T(-1), outer_steps_now, h.view(), x.view(), counter.data());
        break;
      case UpperUpdate::moving_average:
        // m <- (1 - theta) m + theta h;  x <- x - beta_k m;  k <- k + 1
        ops.axpby(static_cast<T>(options_.average), h.view(),
                  static_cast<T>(1 - options_.average), direction.view());
        ops.batch_axpy_and_advance(T(-1), outer_steps_now, direction.view(), x.view(),
                                   counter.data());
        break;
      case UpperUpdate::normalized_momentum:
        if (shards != nullptr) {
          // m <- mu m + (1 - mu) h;  s = ||m||^2 summed over the ranks;  x <- x - beta_k m / sqrt(s)
          ops.axpby(static_cast<T>(1 - options_.momentum), h.view(),
                    static_cast<T>(options_.momentum), direction.view());
          ops.batch_dot(direction.view(), direction.view(), shard_norms.data());
          shards->allreduce_sum(*exec, shard_norms.data(), nb);
          ops.normalized_axpy(T(-1), outer_steps_now, shard_norms.data(), direction.view(),
                              x.view());
        } else {
          // m <- mu m + (1 - mu) h;  x <- x - beta_k m / ||m||   (one fused kernel)
          ops.normalized_momentum_step(static_cast<T>(options_.momentum), h.view(),
                                       direction.view(), T(-1), outer_steps_now, x.view());
        }
        // k <- k + 1 (on the executor)
        ops.advance_counter(counter.data());
        break;
    }
    // x <- Proj_X(x); (x, y) <- Proj_C(x, y)
    problem_.project_x(x.view());
    problem_.project_joint(x.view(), y.view());
  };

  // Iteration 0 runs directly (estimators set up their state on their first call); later
  // iterations replay one captured graph per shape: with or without the lower-level round,
  // times the estimator's own shapes.
  const bool capture = options_.capture && estimator_->capturable() && problem_.capturable();
  std::map<std::pair<bool, std::uint64_t>, std::unique_ptr<CapturedWork>> graphs;
  bool capture_unsupported = false;
  for (index_t k = first; k < options_.iterations; ++k) {
    if (!capture || capture_unsupported || k == first) {
      iterate(k);
    } else {
      const bool round = !inner_by_estimator && k % options_.inner_period == 0;
      std::unique_ptr<CapturedWork>& graph = graphs[{round, estimator_->iteration_shape(k)}];
      if (!graph) {
        graph = exec->capture([&, k] { iterate(k); });
        if (!graph) {  // the backend has nothing to capture: run directly from now on
          capture_unsupported = true;
          iterate(k);
        }
      }
      if (graph) graph->replay();
    }
    const bool evaluation = options_.eval_every > 0 && (k + 1) % options_.eval_every == 0 &&
                            k + 1 != options_.iterations;
    if (evaluation)
      evaluate(k + 1);
    else if (options_.divergence_check_every > 0 &&
             (k + 1) % options_.divergence_check_every == 0 && k + 1 != options_.iterations)
      divergence_check(k + 1);
    if (saved_x.size() > 0 && (k + 1) % options_.checkpoint_every == 0) take_checkpoint(k + 1);
  }
  for (const auto& [shape, g] : graphs)
    if (g) {
      ++result.captured_shapes;
      result.graph_nodes.push_back(g->nodes());
    }
  read_check();
  if (options_.final_evaluation) evaluate(options_.iterations);
  read_pending();
  deliver_checkpoint();
  result.iterations = options_.iterations - first;
  result.x = x.to_host();
  result.y = y.to_host();
  result.carried_state = read_carried_state();
  result.seconds = elapsed();
  return result;
}

template <typename T>
std::vector<std::vector<T>> Solver<T>::read_carried_state() const {
  std::vector<std::vector<T>> out;
  for (const MatrixView<T>& v : active_state_) {
    std::vector<T> host(static_cast<std::size_t>(v.rows * v.cols));
    problem_.executor()->copy_to_host(host.data(), v.data, host.size() * sizeof(T));
    out.push_back(std::move(host));
  }
  return out;
}

std::vector<AlgorithmInfo> algorithm_presets() {
  return {
      {"stocbio", "D inner SGD steps, Neumann-series hypergradient (Q terms), SGD on x",
       "Ji, Yang, Liang 2021, arXiv 2010.07962", "HVP"},
      {"aid-cg", "D inner SGD steps, conjugate gradient on H v = fy (warm start), SGD on x",
       "Ji et al. 2021 (AID-BiO), arXiv 2010.07962; benchopt", "HVP"},
      {"aid-fp", "D inner SGD steps, M fixed-point steps on H v = fy (warm start), SGD on x",
       "Grazzi et al. 2020, arXiv 2006.16218 (AID-FP)", "HVP"},
      {"amigo", "T = 10 inner steps, M = 10 SGD steps on the linear system, SGD on x",
       "Arbel & Mairal 2022, arXiv 2111.14580; benchopt T = M = 10", "HVP"},
      {"soba", "single loop: one step on y, v and x, all at the same (x, y, v) and LL batch",
       "Dagreou et al. 2022, arXiv 2201.13409", "HVP"},
      {"ma-soba", "SOBA with a moving average of the x direction",
       "Chen, Xu, Zhang 2023, arXiv 2306.12067", "HVP"},
      {"ttsa", "one inner step (alpha_k ~ k^-2/5), random-truncation Neumann, x step ~ k^-3/5, projection",
       "Hong et al. 2023, arXiv 2007.05170", "HVP"},
      {"bo-rep", "init refinement, N inner steps every I iterations, one step on z, normalized momentum",
       "Hao et al. 2024, arXiv 2401.09587; authors' code (mu = 0.9, I = 2, N = 3)", "HVP"},
      {"itd-bio", "reverse mode through the D inner steps",
       "Ji, Yang, Liang 2021, arXiv 2010.07962", "HVP"},
      {"fom", "first order: fx at the D-th inner iterate (biased, no second order)",
       "first-order MAML heuristic; ALGORITHMS.md", "first order"},
      {"ufom", "FOM plus the exact correction / q with probability q (unbiased for ITD)",
       "arXiv 2106.02487, simplest member (ALGORITHMS.md)", "HVP when triggered"},
      {"bda", "reverse mode through D steps aggregating both levels (mu_t = mu 0.9^t)",
       "Liu et al. 2020, arXiv 2006.04045; authors' code (K = 5, mu = 0.6)",
       "HVP of g and of f; handles many LL solutions"},
      {"sl-bamm", "single loop at one point, lower-level step aggregating fy (mu_k = mu_0/(k+1))",
       "Liu et al. 2023, arXiv 2302.03407 (practical schedule)", "HVP; handles many LL solutions"},
      {"lv-hba", "single loop, Hessian-free, lower level with constraints coupling both levels",
       "Yao et al. 2024, arXiv 2401.16164; authors' code (c_k = 0.025 (k+1)^0.3)",
       "first order (grad_x g), constraints; LL merely convex"},
      {"f2sa", "fully first order: penalized y and plain z sequences, lambda growing",
       "Kwon et al. 2023, arXiv 2301.10945", "first order (grad_x g)"},
  };
}

AlgorithmOptions default_options(const std::string& name) {
  AlgorithmOptions o;
  o.name = name;
  ScheduleOptions& l = o.loop;
  if (name == "stocbio") {
    // Ji et al. 2021, 20 Newsgroups setting: D = 10, Q = 10, eta = 0.5 (MNIST: D = 200, Q = 3)
    l.inner_steps = 10;
    o.neumann = NeumannOptions{10, {0.5}};
  } else if (name == "aid-cg") {
    l.inner_steps = 10;  // benchopt's AID-CG: 10 CG iterations, warm start
    o.cg = CgOptions{10, true};
  } else if (name == "aid-fp" || name == "amigo") {
    l.inner_steps = 10;  // benchopt: T = M = 10
    o.fixed_point = FixedPointOptions{10, {0.1}, true};
  } else if (name == "soba" || name == "ma-soba") {
    l.inner_steps = 1;  // one step on y, v, x per iteration at one point (Dagreou et al.; Chen et al.)
    o.fixed_point = FixedPointOptions{1, {0.1}, true};
    l.average = 0.1;
  } else if (name == "ttsa") {
    l.inner_steps = 1;  // Hong et al.: alpha_k ~ k^-2/5, beta_k ~ k^-3/5, K = 10 terms
    l.inner_decay = 0.4;
    l.outer_decay = 0.6;
    o.truncated_neumann = TruncatedNeumannOptions{10, {0.1}, 0};
  } else if (name == "bo-rep") {
    // Hao et al., authors' code for hyper-cleaning: mu = 0.9, nu = 1e-2, I = 2, N = 3
    l.inner_steps = 3;
    l.inner_period = 2;
    l.init_steps = 100;
    l.momentum = 0.9;
    o.fixed_point = FixedPointOptions{1, {1e-2}, true};
  } else if (name == "itd-bio" || name == "fom" || name == "ufom") {
    l.inner_steps = 10;
    o.ufom_probability = 0.2;
  } else if (name == "bda") {
    l.inner_steps = 5;  // Liu et al., authors' code: K = 5, mu = 0.6, inner lr 0.1
    l.inner_step = {0.1};
    o.bda_aggregation = 0.6;
  } else if (name == "sl-bamm") {
    l.inner_step = {0.1};  // Liu et al. practical schedule: mu_0 = 0.1, alpha = 0.005, s = 0.1
    l.outer_step = {0.005};
    o.sl_bamm.mu0 = 0.1;
    o.sl_bamm.p = 1;
  } else if (name == "lv-hba") {
    // Yao et al., authors' toy code: alpha = 0.008, beta = 0.02, eta = 0.01, gamma = 10
    l.outer_step = {0.008};
    o.lv_hba = LvHbaOptions{{0.008}, 0.02, 0.01, 10.0, 10.0, 0.025, 0.3, 0.0, 0.0, 1000.0};
  } else if (name == "f2sa") {
    l.inner_steps = 10;
    o.f2sa = F2saOptions{10, {0.1}, 1.0, 0.05};
  } else {
    std::ostringstream os;
    os << "unknown algorithm '" << name << "' (known:";
    for (const AlgorithmInfo& a : algorithm_presets()) os << ' ' << a.name;
    os << ')';
    throw InvalidArgument(os.str());
  }
  return o;
}

std::vector<std::pair<std::string, std::string>> algorithm_names() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const AlgorithmInfo& a : algorithm_presets()) out.emplace_back(a.name, a.description);
  return out;
}

template <typename T>
std::unique_ptr<Solver<T>> make_solver(Problem<T>& problem, const AlgorithmOptions& options) {
  ScheduleOptions loop = options.loop;
  std::unique_ptr<HypergradientEstimator<T>> estimator;
  const std::string& name = options.name;
  const auto unrolled = [&](UnrolledMode mode) {
    return make_itd_estimator<T>(ItdOptions{loop.inner_steps, loop.inner_step, mode,
                                            options.ufom_probability, loop.seed});
  };
  if (name == "stocbio") {
    estimator = make_neumann_estimator<T>(options.neumann);
  } else if (name == "aid-cg") {
    estimator = make_cg_estimator<T>(options.cg);
  } else if (name == "aid-fp") {
    estimator = make_fixed_point_estimator<T>(options.fixed_point);
  } else if (name == "amigo") {
    FixedPointOptions fp = options.fixed_point;
    fp.steps = 10;
    loop.inner_steps = 10;
    estimator = make_fixed_point_estimator<T>(fp);
  } else if (name == "soba" || name == "ma-soba") {
    // SOBA's three steps all at the same (x, y, v) with one lower-level batch: sl-BAMM's
    // single-point estimator without aggregation (mu = 0); H v and J v in one fused call
    loop.upper = name == "soba" ? UpperUpdate::sgd : UpperUpdate::moving_average;
    SlBammOptions single{0.0, 1.0, loop.inner_step, options.fixed_point.nu};
    estimator = make_sl_bamm_estimator<T>(single);
  } else if (name == "ttsa") {
    loop.inner_steps = 1;
    loop.inner_decay = 0.4;
    loop.outer_decay = 0.6;
    loop.upper = UpperUpdate::sgd;
    TruncatedNeumannOptions tn = options.truncated_neumann;
    tn.seed = loop.seed;
    estimator = make_truncated_neumann_estimator<T>(tn);
  } else if (name == "bo-rep") {
    FixedPointOptions fp = options.fixed_point;
    fp.steps = 1;
    loop.upper = UpperUpdate::normalized_momentum;
    if (loop.inner_period == 1) loop.inner_period = 2;  // authors' hyper-cleaning default I = 2
    estimator = make_fixed_point_estimator<T>(fp);
  } else if (name == "bda") {
    ItdOptions itd{loop.inner_steps, loop.inner_step, UnrolledMode::itd, 0.2, loop.seed};
    itd.aggregation = options.bda_aggregation;
    estimator = make_itd_estimator<T>(itd);
  } else if (name == "sl-bamm") {
    SlBammOptions sb = options.sl_bamm;
    sb.s = loop.inner_step;
    sb.eta = options.fixed_point.nu;
    estimator = make_sl_bamm_estimator<T>(sb);
  } else if (name == "lv-hba") {
    LvHbaOptions lv = options.lv_hba;
    lv.alpha = loop.outer_step;
    loop.upper = UpperUpdate::sgd;
    estimator = make_lv_hba_estimator<T>(lv);
  } else if (name == "f2sa") {
    F2saOptions f = options.f2sa;
    f.steps = loop.inner_steps;
    f.alpha = loop.inner_step;
    estimator = make_f2sa_estimator<T>(f);
  } else if (name == "itd-bio") {
    estimator = unrolled(UnrolledMode::itd);
  } else if (name == "fom") {
    estimator = unrolled(UnrolledMode::fom);
  } else if (name == "ufom") {
    estimator = unrolled(UnrolledMode::ufom);
  } else {
    std::ostringstream os;
    os << "unknown algorithm '" << name << "' (known:";
    for (const AlgorithmInfo& a : algorithm_presets()) os << ' ' << a.name;
    os << ')';
    throw InvalidArgument(os.str());
  }
  return std::make_unique<Solver<T>>(problem, std::move(estimator), loop);
}

template class Solver<float>;
template class Solver<double>;
template std::unique_ptr<Solver<float>> make_solver(Problem<float>&,
                                                              const AlgorithmOptions&);
template std::unique_ptr<Solver<double>> make_solver(Problem<double>&,
                                                               const AlgorithmOptions&);

int solver_x_arrays(const std::string& preset) {
  // measured: SolveResult peak of each preset on hyper-cleaning (x, h, diff, fx + ...)
  if (preset == "soba" || preset == "sl-bamm" || preset == "stocbio" || preset == "aid-cg" ||
      preset == "aid-fp" || preset == "amigo" || preset == "ttsa")
    return 4;
  if (preset == "bo-rep" || preset == "ma-soba" || preset == "f2sa" || preset == "itd-bio" ||
      preset == "fom" || preset == "ufom")
    return 5;
  return 6;  // bda, lv-hba, user combinations
}

}  // namespace bilevel
