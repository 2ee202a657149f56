// The double-loop scheduler (stocBiO / AID-CG / ITD-BiO). Per outer iteration k:
//   y <- y - alpha gy(x, y; b_{k,t})       for t < D  (skipped when the estimator runs it)
//   h  = estimate of grad F(x, y)
//   x <- Proj_X(x - beta h)
// Nothing is read back inside an iteration; metrics are computed every eval_every iterations
// into a device buffer and copied back once.
#include <bilevel/solvers/double_loop.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

namespace bilevel {
namespace {

template <typename T>
std::vector<T> to_precision(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

template <typename T>
DoubleLoopSolver<T>::DoubleLoopSolver(Problem<T>& problem,
                                      std::unique_ptr<HypergradientEstimator<T>> estimator,
                                      DoubleLoopOptions options)
    : problem_(problem), estimator_(std::move(estimator)), options_(std::move(options)) {
  BILEVEL_EXPECTS(estimator_ != nullptr, "double loop: no estimator given");
  BILEVEL_EXPECTS(options_.iterations >= 0,
                  "double loop: iterations must be >= 0, got " << options_.iterations);
  BILEVEL_EXPECTS(options_.inner_steps >= 0,
                  "double loop: inner_steps must be >= 0, got " << options_.inner_steps);
  BILEVEL_EXPECTS(options_.lower_batch >= 0 && options_.upper_batch >= 0,
                  "double loop: batch sizes must be >= 0 (0 = full data)");
  BILEVEL_EXPECTS(options_.eval_every >= 0,
                  "double loop: eval_every must be >= 0, got " << options_.eval_every);
  BILEVEL_EXPECTS(options_.reference_x.empty() ||
                      static_cast<index_t>(options_.reference_x.size()) == problem_.dim_x(),
                  "double loop: reference_x must have dx = " << problem_.dim_x() << " values, has "
                                                             << options_.reference_x.size());
}

template <typename T>
SolveResult<T> DoubleLoopSolver<T>::run(const std::vector<T>& x0, const std::vector<T>& y0,
                                        const Observer& observer,
                                        const Inspector& inspector) {
  const index_t dx = problem_.dim_x(), dy = problem_.dim_y();
  BILEVEL_EXPECTS(!x0.empty() && static_cast<index_t>(x0.size()) % dx == 0,
                  "double loop: x0 must hold dx * B values (dx = " << dx << "), has " << x0.size());
  const index_t nb = static_cast<index_t>(x0.size()) / dx;
  BILEVEL_EXPECTS(static_cast<index_t>(y0.size()) == dy * nb,
                  "double loop: y0 must hold dy * B = " << dy * nb << " values, has " << y0.size());
  auto exec = problem_.executor();
  Ops<T>& ops = exec->template ops<T>();

  // --- everything is allocated before the loop ---
  Array<T> x(exec, dx, nb, x0), y(exec, dy, nb, y0);
  Array<T> gy(exec, dy, nb), h(exec, dx, nb), diff(exec, dx, nb);
  Array<T> alpha(exec, nb, 1,
                 to_precision<T>(per_instance(options_.inner_step, nb, "inner_step (alpha)")));
  Array<T> beta(exec, nb, 1,
                to_precision<T>(per_instance(options_.outer_step, nb, "outer_step (beta)")));
  // metrics: rows f, g, ||h||, ||x - x*||, one column per instance
  Array<T> metrics(exec, nb, 4);
  Array<T> reference;
  if (!options_.reference_x.empty()) {
    std::vector<T> rep;
    rep.reserve(static_cast<std::size_t>(dx * nb));
    for (index_t b = 0; b < nb; ++b)
      rep.insert(rep.end(), options_.reference_x.begin(), options_.reference_x.end());
    reference = Array<T>(exec, dx, nb, rep);
  }
  MinibatchSampler<T> lower(exec, options_.seed, problem_.lower_samples(), options_.lower_batch);
  MinibatchSampler<T> upper(exec, options_.seed, problem_.upper_samples(), options_.upper_batch);
  problem_.reserve(nb, std::max(lower.batch_size(), upper.batch_size()));
  estimator_->prepare(problem_, nb);
  ops.fill(h.view(), T(0));

  SolveResult<T> result;
  result.instances = nb;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  const auto evaluate = [&](index_t iteration) {
    T* m = metrics.data();
    const Batch full_lower{nullptr, problem_.lower_samples()};
    const Batch full_upper{nullptr, problem_.upper_samples()};
    // f, g at (x, y) on full data
    problem_.values(full_lower, full_upper, x.view(), y.view(), m, m + nb);
    // ||h||
    ops.batch_nrm2(h.view(), m + 2 * nb);
    if (reference.size() > 0) {
      // diff = x - x*
      ops.copy(x.view(), diff.view());
      ops.axpby(T(-1), reference.view(), T(1), diff.view());
      ops.batch_nrm2(diff.view(), m + 3 * nb);
    }
    const std::vector<T> host = metrics.to_host();  // the one read-back of an evaluation
    IterationMetrics im;
    im.iteration = iteration;
    im.seconds = elapsed();
    const auto column = [&](int row) {
      return std::vector<double>(host.begin() + row * nb, host.begin() + (row + 1) * nb);
    };
    im.upper_value = column(0);
    im.lower_value = column(1);
    im.hypergradient_norm = column(2);
    if (reference.size() > 0) im.distance_to_solution = column(3);
    result.history.push_back(im);
    if (observer) observer(im);
    if (inspector) inspector(im, x.view(), y.view());
    for (index_t b = 0; b < nb; ++b) {
      const int rows = reference.size() > 0 ? 4 : 3;
      for (int r = 0; r < rows; ++r) {
        if (!std::isfinite(static_cast<double>(host[r * nb + b]))) {
          static const char* what[] = {"f", "g", "||h||", "||x - x*||"};
          std::ostringstream os;
          os << "diverged at iteration " << iteration << ", instance " << b << ": " << what[r]
             << " is " << host[r * nb + b] << " (try smaller step sizes)";
          throw DivergenceError(os.str(), static_cast<long>(iteration), static_cast<long>(b));
        }
      }
    }
  };

  const bool inner_by_estimator = estimator_->runs_lower_level();
  for (index_t k = 0; k < options_.iterations; ++k) {
    if (!inner_by_estimator) {
      for (index_t t = 0; t < options_.inner_steps; ++t) {
        const Batch batch =
            lower.draw(SampleStream::lower_step, static_cast<std::uint32_t>(t), k);
        // gy = grad_y g(x, y; b_{k,t})
        problem_.grad_y_g(batch, x.view(), y.view(), gy.view());
        // y <- Proj_Y(y - alpha gy)
        ops.batch_axpy(T(-1), alpha.data(), gy.view(), y.view());
        problem_.project_y(y.view());
      }
    }
    // h ~ grad F(x, y)
    estimator_->estimate(EstimateContext<T>{problem_, lower, upper, k}, x.view(), y.view(),
                         h.view());
    // x <- Proj_X(x - beta h)
    ops.batch_axpy(T(-1), beta.data(), h.view(), x.view());
    problem_.project_x(x.view());
    if (options_.eval_every > 0 && (k + 1) % options_.eval_every == 0 &&
        k + 1 != options_.iterations)
      evaluate(k + 1);
  }
  evaluate(options_.iterations);
  result.iterations = options_.iterations;
  result.x = x.to_host();
  result.y = y.to_host();
  result.seconds = elapsed();
  return result;
}

std::vector<std::pair<std::string, std::string>> algorithm_names() {
  return {
      {"stocbio", "double loop, Neumann-series hypergradient (Ji et al. 2021, arXiv 2010.07962)"},
      {"aid-cg", "double loop, conjugate-gradient hypergradient, warm-started (AID-BiO with CG)"},
      {"itd-bio", "reverse mode through the D inner steps (ITD-BiO, arXiv 2010.07962)"},
  };
}

template <typename T>
std::unique_ptr<DoubleLoopSolver<T>> make_solver(Problem<T>& problem,
                                                 const AlgorithmOptions& options) {
  std::unique_ptr<HypergradientEstimator<T>> estimator;
  if (options.name == "stocbio") {
    estimator = make_neumann_estimator<T>(options.neumann);
  } else if (options.name == "aid-cg") {
    estimator = make_cg_estimator<T>(options.cg);
  } else if (options.name == "itd-bio") {
    estimator = make_itd_estimator<T>(ItdOptions{options.loop.inner_steps, options.loop.inner_step});
  } else {
    std::ostringstream os;
    os << "unknown algorithm '" << options.name << "' (known:";
    for (const auto& [name, what] : algorithm_names()) os << ' ' << name;
    os << ')';
    throw InvalidArgument(os.str());
  }
  return std::make_unique<DoubleLoopSolver<T>>(problem, std::move(estimator), options.loop);
}

template class DoubleLoopSolver<float>;
template class DoubleLoopSolver<double>;
template std::unique_ptr<DoubleLoopSolver<float>> make_solver(Problem<float>&,
                                                              const AlgorithmOptions&);
template std::unique_ptr<DoubleLoopSolver<double>> make_solver(Problem<double>&,
                                                               const AlgorithmOptions&);

}  // namespace bilevel
