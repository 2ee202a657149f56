// The run's device state (internal to the scheduler). Everything an iteration touches is
// allocated here, before the loop: x, y and the hypergradient h; the step sizes alpha and beta
// and their decayed alpha_k, beta_k; the upper update's direction m; the iteration counter k
// that lives on the executor; the two minibatch samplers, which read k; and the carried state
// (m, then the estimator's own arrays) that a checkpoint saves and a resumed run restores.
// After construction nothing here allocates, synchronises or copies to the host.
#pragma once

#include <bilevel/distributed.hpp>
#include <bilevel/sampling.hpp>
#include <bilevel/solvers/solver.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace bilevel::detail {

template <typename T>
struct RunState {
  /// Checks x0 (dx x B) and y0 (dy x B) against the problem, allocates every array, sets up
  /// the problem's and the estimator's workspaces (reserve, prepare) and zeroes h.
  RunState(Problem<T>& problem, HypergradientEstimator<T>& estimator,
           const ScheduleOptions& options, const std::vector<T>& x0, const std::vector<T>& y0);

  /// Writes a checkpoint's carried state (Solver::restore_state) into `carried` and tells the
  /// estimator; InvalidArgument when it is another preset's or another size. Empty: nothing.
  void restore(const std::vector<std::vector<T>>& restored, HypergradientEstimator<T>& estimator);

  std::shared_ptr<Executor> exec;
  Ops<T>& ops;
  index_t dx, dy, nb;  ///< sizes of x and y, and the instances B
  bool shared;         ///< one x for all instances: their hypergradients are averaged
  Communicator* shards;  ///< x split over ranks (norms over x all-reduced), or null

  Array<T> x, y;       ///< dx x B, dy x B
  Array<T> gy;         ///< dy x B: grad_y g where the problem does not fuse it into the step
  Array<T> h;          ///< dx x B: the last hypergradient estimate
  Array<T> diff;       ///< dx x B: x - x* at evaluations; the mean of h when x is shared
  Array<T> direction;  ///< dx x B: m of the moving-average and momentum updates (else empty)
  Array<T> shard_norms;          ///< B: ||m||^2 summed over the ranks (x split over ranks)
  Array<T> alpha, beta;          ///< B: the inner and outer steps
  Array<T> alpha_k, beta_k;      ///< B: alpha (k + 1)^-inner_decay, beta likewise (decaying only)
  const T* inner_steps_now;      ///< alpha_k where it decays, else alpha
  const T* outer_steps_now;      ///< beta_k where it decays, else beta
  Array<T> averaging, ones_row;  ///< shared x: 1/B weights (B x 1) and ones (1 x B)
  Array<T> reference;            ///< dx x B: x* repeated, when reference_x is given
  Array<std::uint32_t> counter;  ///< k, on the executor
  MinibatchSampler<T> lower, upper;
  /// What carries over between iterations besides x and y: m first, then the estimator's
  /// carried_state(); each a contiguous rows x B array.
  std::vector<MatrixView<T>> carried;
};

/// The values of `views` copied to the host (synchronises).
template <typename T>
std::vector<std::vector<T>> copy_to_host(Executor& exec, const std::vector<MatrixView<T>>& views);

/// Seconds since the run started.
class RunClock {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace bilevel::detail
