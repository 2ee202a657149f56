// hypergradient: one implicit hypergradient per instance at a given (x, y), on full batches,
// with the library's own CG or Neumann estimator.
#include <bilevel/array.hpp>
#include <bilevel/diagnostics.hpp>
#include <bilevel/error.hpp>
#include <bilevel/estimators.hpp>
#include <bilevel/ops.hpp>
#include <bilevel/sampling.hpp>

namespace bilevel {

template <typename T>
void hypergradient(Problem<T>& problem, ConstMatrixView<T> x, ConstMatrixView<T> y,
                   MatrixView<T> h, const HypergradientOptions& options) {
  const index_t nb = x.cols, dx = problem.dim_x(), dy = problem.dim_y();
  BILEVEL_EXPECTS(x.rows == dx && y.rows == dy && y.cols == nb && h.rows == dx && h.cols == nb &&
                      nb > 0,
                  "hypergradient: x and h must be " << dx << " x B and y " << dy << " x B, got "
                                                    << x.rows << " x " << x.cols << ", "
                                                    << h.rows << " x " << h.cols << " and "
                                                    << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(options.iterations >= 0,
                  "hypergradient: iterations must be >= 0, got " << options.iterations);
  std::unique_ptr<HypergradientEstimator<T>> estimator;
  if (options.method == "cg") {
    // CG on the dy x dy system: dy iterations are exact in exact arithmetic
    estimator = make_cg_estimator<T>(CgOptions{options.iterations > 0 ? options.iterations : dy,
                                               false});
  } else if (options.method == "neumann") {
    BILEVEL_EXPECTS(options.neumann_eta > 0,
                    "hypergradient: method neumann needs neumann_eta > 0 (a step below 2 / L of "
                    "the lower level), got "
                        << options.neumann_eta);
    estimator = make_neumann_estimator<T>(
        NeumannOptions{options.iterations > 0 ? options.iterations : 100, {options.neumann_eta}});
  } else {
    BILEVEL_EXPECTS(false, "hypergradient: method must be cg or neumann, got '" << options.method
                                                                                << "'");
  }
  auto exec = problem.executor();
  // full batches (size 0): the deterministic hypergradient of the whole finite sums
  MinibatchSampler<T> lower(exec, 0, problem.lower_samples(), 0);
  MinibatchSampler<T> upper(exec, 0, problem.upper_samples(), 0);
  problem.reserve(nb, std::max<index_t>({index_t(1), lower.batch_size(), upper.batch_size()}));
  estimator->prepare(problem, nb);
  // the estimators take y as their own (some move it): a copy
  Array<T> y_copy(exec, dy, nb);
  exec->template ops<T>().copy(y, y_copy.view());
  EstimateContext<T> ctx{problem, lower, upper, 0};
  estimator->estimate(ctx, x, y_copy.view(), h);
}

template void hypergradient(Problem<float>&, ConstMatrixView<float>, ConstMatrixView<float>,
                            MatrixView<float>, const HypergradientOptions&);
template void hypergradient(Problem<double>&, ConstMatrixView<double>, ConstMatrixView<double>,
                            MatrixView<double>, const HypergradientOptions&);

}  // namespace bilevel
