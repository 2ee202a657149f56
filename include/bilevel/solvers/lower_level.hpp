// Lower-level helpers: SGD on y with x fixed (baselines, warm starts) and the smoothness
// estimate that guards step sizes (power iteration on the HVP oracle).
#pragma once

#include <bilevel/problem.hpp>

#include <cstdint>
#include <vector>

namespace bilevel {

struct LowerLevelOptions {
  index_t steps = 100;
  std::vector<double> step{0.1};  ///< per instance (1 value or B)
  index_t batch = 0;              ///< 0: full batches
  std::uint64_t seed = 0;
};

/// y <- y - step grad_y g(x, y; batch), `steps` times, for B instances (x fixed).
template <typename T>
void train_lower_level(Problem<T>& problem, ConstMatrixView<T> x, MatrixView<T> y,
                       const LowerLevelOptions& options);

/// Per-instance estimate of L_g = largest eigenvalue of grad2_yy g(x, y) on a batch of
/// `batch` samples (0: full), by `iterations` steps of power iteration from a fixed start.
/// A lower bound that converges from below; callers should leave a margin. Synchronises once.
template <typename T>
std::vector<double> estimate_lower_smoothness(Problem<T>& problem, ConstMatrixView<T> x,
                                              ConstMatrixView<T> y, index_t batch,
                                              index_t iterations = 30, std::uint64_t seed = 0);

}  // namespace bilevel
