#include "run_state.hpp"

#include <algorithm>

namespace bilevel::detail {
namespace {

template <typename T>
index_t instances_of(const Problem<T>& problem, const std::vector<T>& x0, const std::vector<T>& y0) {
  const index_t dx = problem.dim_x(), dy = problem.dim_y();
  BILEVEL_EXPECTS(!x0.empty() && static_cast<index_t>(x0.size()) % dx == 0,
                  "solver: x0 must hold dx * B values (dx = " << dx << "), has " << x0.size());
  const index_t nb = static_cast<index_t>(x0.size()) / dx;
  BILEVEL_EXPECTS(static_cast<index_t>(y0.size()) == dy * nb,
                  "solver: y0 must hold dy * B = " << dy * nb << " values, has " << y0.size());
  return nb;
}

// one minibatch index set per instance, or one for all
template <typename T>
index_t sampler_sets(const Problem<T>& problem, const ScheduleOptions& options, index_t nb) {
  const bool independent = options.independent_batches && nb > 1;
  if (independent && !problem.supports_independent_batches())
    throw NotSupported(problem.name() + " does not support independent batches per instance");
  return independent ? nb : 1;
}

template <typename T>
Array<T> filled(const std::shared_ptr<Executor>& exec, index_t rows, index_t cols, T value) {
  return Array<T>(exec, rows, cols,
                  std::vector<T>(static_cast<std::size_t>(rows * cols), value));
}

}  // namespace

template <typename T>
RunState<T>::RunState(Problem<T>& problem, HypergradientEstimator<T>& estimator,
                      const ScheduleOptions& options, const std::vector<T>& x0,
                      const std::vector<T>& y0)
    : exec(problem.executor()),
      ops(exec->template ops<T>()),
      dx(problem.dim_x()),
      dy(problem.dim_y()),
      nb(instances_of(problem, x0, y0)),
      shared(problem.shared_upper() && nb > 1),
      shards(problem.upper_shards()),
      lower(exec, options.seed, problem.lower_samples(), options.lower_batch,
            sampler_sets(problem, options, nb), options.epoch_sampling),
      upper(exec, options.seed, problem.upper_samples(), options.upper_batch,
            sampler_sets(problem, options, nb), options.epoch_sampling) {
  if (shards != nullptr && shards->size() == 1) shards = nullptr;
  if (shards != nullptr)
    BILEVEL_EXPECTS(options.reference_x.empty(),
                    "solver: reference_x is not supported when " << problem.name()
                                                                 << "'s x is split over ranks");
  if (shared)
    for (index_t b = 1; b < nb; ++b)
      BILEVEL_EXPECTS(std::equal(x0.begin(), x0.begin() + dx, x0.begin() + b * dx),
                      "solver: " << problem.name()
                                 << " shares x between its instances, but column " << b
                                 << " of x0 differs from column 0");
  x = Array<T>(exec, dx, nb, x0);
  y = Array<T>(exec, dy, nb, y0);
  gy = Array<T>(exec, dy, nb);
  h = Array<T>(exec, dx, nb);
  diff = Array<T>(exec, dx, nb);
  if (shards != nullptr) shard_norms = Array<T>(exec, nb, 1);
  if (options.upper != UpperUpdate::sgd) {
    direction = Array<T>(exec, dx, nb);
    ops.fill(direction.view(), T(0));
  }
  alpha = per_instance_array<T>(exec, options.inner_step, nb, "inner_step (alpha)");
  beta = per_instance_array<T>(exec, options.outer_step, nb, "outer_step (beta)");
  // shared x: the weights 1/B that average the instances' hypergradients, and ones that copy
  // the mean to every column (bit for bit: the columns of x stay equal)
  if (shared) {
    averaging = filled(exec, nb, 1, T(1) / static_cast<T>(nb));
    ones_row = filled(exec, 1, nb, T(1));
  }
  if (!options.reference_x.empty()) {
    std::vector<T> repeated;
    repeated.reserve(static_cast<std::size_t>(dx * nb));
    for (index_t b = 0; b < nb; ++b)
      repeated.insert(repeated.end(), options.reference_x.begin(), options.reference_x.end());
    reference = Array<T>(exec, dx, nb, repeated);
  }
  // a problem that draws minibatches inside its kernels gets them deferred (no draw launches)
  lower.set_deferred(problem.draws_minibatches());
  upper.set_deferred(problem.draws_minibatches());
  // independent batches: workspace for the gathered samples of all instances together
  const auto gathered = [](const MinibatchSampler<T>& s, index_t sets) {
    return s.full() ? s.batch_size() : s.batch_size() * sets;
  };
  const index_t sets = sampler_sets(problem, options, nb);
  problem.reserve(nb, std::max(gathered(lower, sets), gathered(upper, sets)));
  estimator.prepare(problem, nb);
  ops.fill(h.view(), T(0));
  if (options.upper != UpperUpdate::sgd) carried.push_back(direction.view());
  for (const MatrixView<T>& v : estimator.carried_state()) carried.push_back(v);
  for (const MatrixView<T>& v : carried)
    BILEVEL_EXPECTS(v.cols == nb && v.ld == v.rows,
                    "solver: carried state must be contiguous rows x B arrays");
  // The counter k lives on the executor: the samplers read it, decaying steps are computed
  // from it, and the iteration advances it, so an iteration's launches are the same for every
  // k and can be captured once and replayed.
  counter = Array<std::uint32_t>(
      exec, 1, 1, std::vector<std::uint32_t>{static_cast<std::uint32_t>(options.start_iteration)});
  lower.attach_counter(counter.data());
  upper.attach_counter(counter.data());
  if (options.inner_decay > 0) alpha_k = Array<T>(exec, nb, 1);
  if (options.outer_decay > 0) beta_k = Array<T>(exec, nb, 1);
  inner_steps_now = options.inner_decay > 0 ? alpha_k.data() : alpha.data();
  outer_steps_now = options.outer_decay > 0 ? beta_k.data() : beta.data();
}

template <typename T>
void RunState<T>::restore(const std::vector<std::vector<T>>& restored,
                          HypergradientEstimator<T>& estimator) {
  if (restored.empty()) return;
  BILEVEL_EXPECTS(restored.size() == carried.size(),
                  "solver: the state to resume holds " << restored.size()
                                                       << " array(s); this run of "
                                                       << estimator.name() << " carries "
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
  estimator.state_restored();
}

template <typename T>
std::vector<std::vector<T>> copy_to_host(Executor& exec, const std::vector<MatrixView<T>>& views) {
  std::vector<std::vector<T>> out;
  for (const MatrixView<T>& v : views) {
    std::vector<T> host(static_cast<std::size_t>(v.rows * v.cols));
    exec.copy_to_host(host.data(), v.data, host.size() * sizeof(T));
    out.push_back(std::move(host));
  }
  return out;
}

template struct RunState<float>;
template struct RunState<double>;
template std::vector<std::vector<float>> copy_to_host(Executor&, const std::vector<MatrixView<float>>&);
template std::vector<std::vector<double>> copy_to_host(Executor&, const std::vector<MatrixView<double>>&);

}  // namespace bilevel::detail
