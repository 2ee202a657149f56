// Neumann-series hypergradient (stocBiO). Source: Ji, Yang, Liang, "Bilevel Optimization:
// Convergence Analysis and Enhanced Design", arXiv 2010.07962, Algorithm 2 (the paper's form of
// the sum, as in benchopt, not the reference repository's variant).
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"

namespace bilevel {
namespace {

template <typename T>
class NeumannEstimator final : public HypergradientEstimator<T> {
 public:
  explicit NeumannEstimator(NeumannOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.terms >= 0, "neumann: terms must be >= 0, got " << options_.terms);
    for (double e : options_.eta)
      BILEVEL_EXPECTS(e > 0.0, "neumann: eta must be > 0, got " << e);
  }
  std::string name() const override { return "neumann"; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    eta_ = per_instance_array<T>(exec, options_.eta, instances, "neumann eta");
    fx_ = Array<T>(exec, problem.dim_x(), instances);
    fy_ = Array<T>(exec, problem.dim_y(), instances);
    r_ = Array<T>(exec, problem.dim_y(), instances);
    hr_ = Array<T>(exec, problem.dim_y(), instances);
    v_ = Array<T>(exec, problem.dim_y(), instances);
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // fx, fy = grad f(x, y) on an upper batch
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y,
             detail::wanted_fx(p, fx_.view()), fy_.view());
    // r_0 = fy; v = r_0
    ops.copy(fy_.view(), r_.view());
    ops.copy(fy_.view(), v_.view());
    for (index_t i = 1; i <= options_.terms; ++i) {
      const Batch batch = ctx.draw_lower(SampleStream::second_order, static_cast<std::uint32_t>(i));
      // r <- r - eta H_i r;  v <- v + r   (hr: scratch where the problem does not fuse it)
      p.neumann_term(batch, x, y, eta_.data(), r_.view(), v_.view(), hr_.view());
    }
    // v = eta v
    ops.batch_scale(T(1), eta_.data(), v_.view());
    // h = fx - J v
    detail::aid_hypergradient<T>(ctx, x, y, v_.view(), detail::wanted_fx(p, fx_.view()), h);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }

 private:
  NeumannOptions options_;
  Array<T> eta_, fx_, fy_, r_, hr_, v_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_neumann_estimator(NeumannOptions options) {
  return std::make_unique<NeumannEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_neumann_estimator(NeumannOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_neumann_estimator(NeumannOptions);

}  // namespace bilevel
