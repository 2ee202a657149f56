// The checkpointing hook (internal to the scheduler). Every checkpoint_every iterations it
// enqueues asynchronous copies of x, y and the carried state into host buffers; the checkpoint
// is handed to the checkpointer once the next one is taken or the run ends, in order, after the
// metrics of every evaluation up to it (a run killed after a checkpoint and resumed from it has
// them all). An instance whose state is not finite at a checkpoint has diverged, seen or not;
// a diverged instance is saved at its start values (x0, y0, the carried state it started from),
// so that a resumed run restarts it rather than carrying NaN forward.
#pragma once

#include "divergence_watch.hpp"
#include "metric_readback.hpp"
#include "run_state.hpp"

#include <memory>
#include <vector>

namespace bilevel::detail {

template <typename T>
class CheckpointHook {
 public:
  using Checkpointer = typename Solver<T>::Checkpointer;

  /// Inactive (nothing copied, nothing allocated) without a checkpointer or with every = 0.
  /// x0, y0 and the carried state now (read here) are where a diverged instance restarts.
  CheckpointHook(RunState<T>& state, DivergenceWatch& watch, MetricReadback<T>& metrics,
                 const Checkpointer& checkpointer, index_t every, const std::vector<T>& x0,
                 const std::vector<T>& y0);

  /// After iteration `iteration` - 1 (the state is that of `iteration`): takes a checkpoint
  /// when one is due, handing over the previous one.
  void after_iteration(index_t iteration);
  /// Hands over the checkpoint taken last, if not yet handed over.
  void deliver();

 private:
  void take(index_t iteration);

  RunState<T>& s_;
  DivergenceWatch& watch_;
  MetricReadback<T>& metrics_;
  const Checkpointer& checkpointer_;
  index_t every_;
  const std::vector<T>& x0_;
  const std::vector<T>& y0_;
  std::vector<std::vector<T>> state0_;
  HostBuffer<T> saved_x_, saved_y_;
  std::vector<HostBuffer<T>> saved_state_;
  std::unique_ptr<StreamMark> saved_done_;
  index_t saved_iteration_ = -1;
};

}  // namespace bilevel::detail
