#include "metric_readback.hpp"

#include <cmath>
#include <limits>

namespace bilevel::detail {

template <typename T>
MetricReadback<T>::MetricReadback(Problem<T>& problem, RunState<T>& state,
                                  DivergenceWatch& watch, const RunClock& clock,
                                  const Observer& observer, const Inspector& inspector)
    : problem_(problem),
      s_(state),
      watch_(watch),
      clock_(clock),
      observer_(observer),
      inspector_(inspector),
      extra_(static_cast<index_t>(problem.evaluation_metric_names().size())),
      slots_{Array<T>(state.exec, state.nb, 4 + extra_), Array<T>(state.exec, state.nb, 4 + extra_)},
      host_{HostBuffer<T>(state.exec, state.nb * (4 + extra_)),
            HostBuffer<T>(state.exec, state.nb * (4 + extra_))} {}

template <typename T>
void MetricReadback<T>::enqueue(index_t iteration) {
  read_pending();  // in order, and before its slot is reused
  const int slot = next_slot_;
  next_slot_ = 1 - next_slot_;
  const index_t nb = s_.nb;
  T* m = slots_[slot].data();
  const Batch full_lower{nullptr, problem_.lower_samples()};
  const Batch full_upper{nullptr, problem_.upper_samples()};
  // f, g at (x, y) on full data
  problem_.values(full_lower, full_upper, s_.x.view(), s_.y.view(), m, m + nb);
  // ||h|| (x split over ranks: ||h||^2 summed over them, the root taken when read)
  if (s_.shards != nullptr) {
    s_.ops.batch_dot(s_.h.view(), s_.h.view(), m + 2 * nb);
    s_.shards->allreduce_sum(*s_.exec, m + 2 * nb, nb);
  } else {
    s_.ops.batch_nrm2(s_.h.view(), m + 2 * nb);
  }
  if (s_.reference.size() > 0) {
    // diff = x - x*;  ||diff||
    s_.ops.copy(s_.x.view(), s_.diff.view());
    s_.ops.axpby(T(-1), s_.reference.view(), T(1), s_.diff.view());
    s_.ops.batch_nrm2(s_.diff.view(), m + 3 * nb);
  }
  // the problem's own metrics
  if (extra_ > 0) problem_.evaluation_metrics(s_.x.view(), s_.y.view(), m + 4 * nb);
  // the one read-back of an evaluation, without waiting for it
  host_[slot].copy_async_from(m);
  pending_slot_ = slot;
  pending_iteration_ = iteration;
  pending_seconds_ = clock_.seconds();
  done_ = s_.exec->mark();
  if (inspector_) read_pending();
}

template <typename T>
void MetricReadback<T>::read_up_to(index_t iteration) {
  if (pending_slot_ >= 0 && pending_iteration_ <= iteration) read_pending();
}

template <typename T>
void MetricReadback<T>::read_pending() {
  if (pending_slot_ < 0) return;
  const int slot = pending_slot_;
  pending_slot_ = -1;
  done_->wait();
  const index_t nb = s_.nb;
  T* host = host_[slot].data();
  if (s_.shards != nullptr)
    for (index_t b = 0; b < nb; ++b) host[2 * nb + b] = std::sqrt(host[2 * nb + b]);
  // a metric that is not finite or beyond the limit marks its instance
  static const char* const names[] = {"f", "g", "||h||", "||x - x*||"};
  watch_.check("at", pending_iteration_, names, s_.reference.size() > 0 ? 4 : 3, host);
  // a diverged instance's metrics are NaN from its divergence on
  const index_t rows = 4 + extra_;
  for (index_t b = 0; b < nb; ++b)
    if (watch_.diverged(b))
      for (index_t r = 0; r < rows; ++r) host[r * nb + b] = std::numeric_limits<T>::quiet_NaN();
  IterationMetrics im;
  im.iteration = pending_iteration_;
  im.seconds = pending_seconds_;
  const auto column = [&](index_t row) {
    return std::vector<double>(host + row * nb, host + (row + 1) * nb);
  };
  im.upper_value = column(0);
  im.lower_value = column(1);
  im.hypergradient_norm = column(2);
  if (s_.reference.size() > 0) im.distance_to_solution = column(3);
  for (index_t r = 0; r < extra_; ++r) im.problem_metrics.push_back(column(4 + r));
  history_.push_back(im);
  if (observer_) observer_(im);
  if (inspector_) inspector_(im, s_.x.view(), s_.y.view());
  watch_.throw_if_all_diverged();
}

template class MetricReadback<float>;
template class MetricReadback<double>;

}  // namespace bilevel::detail
