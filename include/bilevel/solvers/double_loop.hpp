// The double-loop solver: per outer iteration, D warm-started SGD steps on y, a hypergradient
// estimate, and an SGD step on x, for B instances at once with per-instance step sizes.
// Presets: stocBiO (Neumann), AID-CG (CG), ITD-BiO (ITD; the estimator runs the inner steps).
#pragma once

#include <bilevel/estimators.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

struct DoubleLoopOptions {
  index_t iterations = 100;           ///< outer iterations K
  index_t inner_steps = 10;           ///< D: SGD steps on y per outer iteration
  std::vector<double> inner_step{0.1};///< alpha, per instance (1 value or B)
  std::vector<double> outer_step{0.1};///< beta, per instance (1 value or B)
  index_t lower_batch = 0;            ///< samples per lower-level batch; 0: full data
  index_t upper_batch = 0;            ///< samples per upper-level batch; 0: full data
  std::uint64_t seed = 0;             ///< minibatch seed (Philox key)
  index_t eval_every = 0;             ///< metrics every k iterations (0: only at the end)
  std::vector<double> reference_x;    ///< x* (dx values), when known: distance metric
};

/// Metrics of one evaluation, one value per instance. Values of f and g use full batches.
struct IterationMetrics {
  index_t iteration = 0;
  double seconds = 0.0;
  std::vector<double> upper_value;          ///< f(x, y)
  std::vector<double> lower_value;          ///< g(x, y)
  std::vector<double> hypergradient_norm;   ///< ||h|| of the last estimate
  std::vector<double> distance_to_solution; ///< ||x - x*|| (empty without reference_x)
};

template <typename T>
struct SolveResult {
  index_t instances = 0;
  index_t iterations = 0;
  double seconds = 0.0;
  std::vector<T> x;  ///< dx x B, column-major
  std::vector<T> y;  ///< dy x B
  std::vector<IterationMetrics> history;
};

template <typename T>
class DoubleLoopSolver {
 public:
  using Observer = std::function<void(const IterationMetrics&)>;
  /// Sees the state (x: dx x B, y: dy x B, on the executor) at every evaluation, after the
  /// observer; for problem-specific metrics. May synchronise.
  using Inspector =
      std::function<void(const IterationMetrics&, ConstMatrixView<T> x, ConstMatrixView<T> y)>;

  DoubleLoopSolver(Problem<T>& problem, std::unique_ptr<HypergradientEstimator<T>> estimator,
                   DoubleLoopOptions options);

  /// Runs from x0 (dx x B) and y0 (dy x B), host, column-major; B = x0.size() / dx. Throws
  /// DivergenceError (iteration, instance) when a metric becomes non-finite; `observer` has
  /// seen every evaluation before that.
  SolveResult<T> run(const std::vector<T>& x0, const std::vector<T>& y0,
                     const Observer& observer = {}, const Inspector& inspector = {});

  const HypergradientEstimator<T>& estimator() const { return *estimator_; }

 private:
  Problem<T>& problem_;
  std::unique_ptr<HypergradientEstimator<T>> estimator_;
  DoubleLoopOptions options_;
};

/// Named presets of the double loop, with their estimators.
struct AlgorithmOptions {
  std::string name = "stocbio";  ///< stocbio | aid-cg | itd-bio
  DoubleLoopOptions loop;
  NeumannOptions neumann;
  CgOptions cg;
};

/// Names of the algorithms `make_solver` knows, with a one-line description each.
std::vector<std::pair<std::string, std::string>> algorithm_names();

/// stocbio: Neumann; aid-cg: CG; itd-bio: ITD through loop.inner_steps steps of size
/// loop.inner_step. Throws InvalidArgument for an unknown name.
template <typename T>
std::unique_ptr<DoubleLoopSolver<T>> make_solver(Problem<T>& problem,
                                                 const AlgorithmOptions& options);

}  // namespace bilevel
