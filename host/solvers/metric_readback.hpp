// The metric read-back (internal to the scheduler). An evaluation enqueues its metrics kernels
// (f, g on full data, ||h||, ||x - x*||, the problem's own) into one of two device slots and an
// asynchronous copy of that slot to the host, and returns without waiting. It is read (the
// divergence check, the history, the observer) at the next evaluation or at the end, while the
// device works on: evaluations reach the observer one late and in order. With an inspector,
// which looks at x and y as they are at the evaluated iteration, each is read at once.
#pragma once

#include "divergence_watch.hpp"
#include "run_state.hpp"

#include <memory>
#include <vector>

namespace bilevel::detail {

template <typename T>
class MetricReadback {
 public:
  using Observer = typename Solver<T>::Observer;
  using Inspector = typename Solver<T>::Inspector;

  MetricReadback(Problem<T>& problem, RunState<T>& state, DivergenceWatch& watch,
                 const RunClock& clock, const Observer& observer, const Inspector& inspector);

  /// Reads the pending evaluation, then enqueues this one's metrics at (x, y, h) now
  /// (IterationMetrics::seconds: the clock once they are enqueued).
  void enqueue(index_t iteration);
  /// Reads the pending evaluation, if any: waits for its copy, marks the instances whose
  /// metrics diverged (their metrics are NaN from then on), appends it to the history, calls
  /// the observer and the inspector; DivergenceError once no instance is healthy.
  void read_pending();
  /// Reads the pending evaluation if it is of `iteration` or earlier (before a checkpoint of
  /// `iteration` is handed over, so that a run resumed from it has all its metrics).
  void read_up_to(index_t iteration);

  std::vector<IterationMetrics>& history() { return history_; }

 private:
  Problem<T>& problem_;
  RunState<T>& s_;
  DivergenceWatch& watch_;
  const RunClock& clock_;
  const Observer& observer_;
  const Inspector& inspector_;
  index_t extra_;  ///< the problem's own metrics
  // B x (4 + extra) each: columns f, g, ||h||, ||x - x*||, then the problem's own
  Array<T> slots_[2];
  HostBuffer<T> host_[2];
  int next_slot_ = 0;
  int pending_slot_ = -1;
  index_t pending_iteration_ = 0;
  double pending_seconds_ = 0.0;
  std::unique_ptr<StreamMark> done_;
  std::vector<IterationMetrics> history_;
};

}  // namespace bilevel::detail
