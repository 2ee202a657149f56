#include "checkpoint_hook.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace bilevel::detail {

template <typename T>
CheckpointHook<T>::CheckpointHook(RunState<T>& state, DivergenceWatch& watch,
                                  MetricReadback<T>& metrics, const Checkpointer& checkpointer,
                                  index_t every, const std::vector<T>& x0,
                                  const std::vector<T>& y0)
    : s_(state),
      watch_(watch),
      metrics_(metrics),
      checkpointer_(checkpointer),
      every_(checkpointer ? every : 0),
      x0_(x0),
      y0_(y0) {
  if (every_ <= 0) return;
  saved_x_ = HostBuffer<T>(s_.exec, s_.dx * s_.nb);
  saved_y_ = HostBuffer<T>(s_.exec, s_.dy * s_.nb);
  for (const MatrixView<T>& v : s_.carried) saved_state_.emplace_back(s_.exec, v.rows * s_.nb);
  // the carried state's start values (a resumed run: the restored ones)
  state0_ = copy_to_host(*s_.exec, s_.carried);
}

template <typename T>
void CheckpointHook<T>::after_iteration(index_t iteration) {
  if (every_ > 0 && iteration % every_ == 0) take(iteration);
}

template <typename T>
void CheckpointHook<T>::take(index_t iteration) {
  deliver();
  saved_x_.copy_async_from(s_.x.data());
  saved_y_.copy_async_from(s_.y.data());
  for (std::size_t k = 0; k < s_.carried.size(); ++k)
    saved_state_[k].copy_async_from(s_.carried[k].data);
  saved_done_ = s_.exec->mark();
  saved_iteration_ = iteration;
}

template <typename T>
void CheckpointHook<T>::deliver() {
  if (saved_iteration_ < 0) return;
  // the metrics of every evaluation up to the checkpoint reach the observer first (they are
  // read one evaluation late, which could be after a later checkpoint)
  metrics_.read_up_to(saved_iteration_);
  saved_done_->wait();
  const index_t dx = s_.dx, dy = s_.dy, nb = s_.nb;
  Checkpoint<T> c;
  c.iteration = saved_iteration_;
  c.dx = dx, c.dy = dy, c.instances = nb;
  c.x.assign(saved_x_.data(), saved_x_.data() + dx * nb);
  c.y.assign(saved_y_.data(), saved_y_.data() + dy * nb);
  for (const HostBuffer<T>& a : saved_state_) c.state.emplace_back(a.data(), a.data() + a.size());
  // an instance whose state is not finite here has diverged, seen or not (x split over ranks:
  // on any rank, so that every rank decides alike; each rank's checkpoint holds its shard)
  const auto finite = [](auto first, auto last) {
    return std::all_of(first, last, [](T v) { return std::isfinite(v); });
  };
  std::vector<double> broken(static_cast<std::size_t>(nb), 0.0);
  for (index_t b = 0; b < nb; ++b) {
    bool ok = finite(c.x.begin() + b * dx, c.x.begin() + (b + 1) * dx) &&
              finite(c.y.begin() + b * dy, c.y.begin() + (b + 1) * dy);
    for (std::size_t k = 0; k < c.state.size() && ok; ++k) {
      const index_t rows = s_.carried[k].rows;
      ok = finite(c.state[k].begin() + b * rows, c.state[k].begin() + (b + 1) * rows);
    }
    broken[static_cast<std::size_t>(b)] = ok ? 0.0 : 1.0;
  }
  if (s_.shards != nullptr) s_.shards->allreduce_sum_host(broken.data(), nb);
  for (index_t b = 0; b < nb; ++b)
    if (broken[static_cast<std::size_t>(b)] > 0)
      watch_.mark(b, c.iteration,
                  "diverged by iteration " + std::to_string(c.iteration) + ", instance " +
                      std::to_string(b) + ": its state is not finite at a checkpoint");
  watch_.throw_if_all_diverged();
  // a diverged instance is saved at its start values, its carried state too
  for (index_t b = 0; b < nb; ++b) {
    if (!watch_.diverged(b)) continue;
    std::copy(x0_.begin() + b * dx, x0_.begin() + (b + 1) * dx, c.x.begin() + b * dx);
    std::copy(y0_.begin() + b * dy, y0_.begin() + (b + 1) * dy, c.y.begin() + b * dy);
    for (std::size_t k = 0; k < c.state.size(); ++k) {
      const index_t rows = s_.carried[k].rows;
      std::copy(state0_[k].begin() + b * rows, state0_[k].begin() + (b + 1) * rows,
                c.state[k].begin() + b * rows);
    }
  }
  saved_iteration_ = -1;
  checkpointer_(c);
}

template class CheckpointHook<float>;
template class CheckpointHook<double>;

}  // namespace bilevel::detail
