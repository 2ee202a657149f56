// F2SA: fully first-order stochastic approximation (Kwon, Kwon, Wright, Nowak,
// arXiv 2301.10945, Algorithm 1; the y-step scaled by 1/lambda
// as the paper's alpha_k = alpha / lambda_k). No second-order oracle: needs grad_x g.
#include <bilevel/estimators.hpp>

#include "scheduled_weights.hpp"

namespace bilevel {
namespace {

template <typename T>
class F2saEstimator final : public HypergradientEstimator<T> {
 public:
  explicit F2saEstimator(F2saOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.steps >= 0, "f2sa: steps must be >= 0, got " << options_.steps);
    BILEVEL_EXPECTS(options_.lambda0 > 0 && options_.growth >= 0,
                    "f2sa: lambda0 must be > 0 and growth >= 0");
  }
  std::string name() const override { return "f2sa"; }
  bool runs_lower_level() const override { return true; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "f2sa alpha");
    // lambda_k = lambda_0 + growth k, and its inverse
    const Schedule growing{options_.lambda0, options_.growth, -1.0};
    lambda_.prepare(exec, {1.0}, instances, growing, "f2sa lambda");
    inverse_lambda_.prepare(exec, {1.0}, instances, Schedule{growing.offset, growing.slope, 1.0},
                            "f2sa 1/lambda");
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    z_ = Array<T>(exec, dy, instances);
    fx_ = Array<T>(exec, dx, instances);
    fy_ = Array<T>(exec, dy, instances);
    gy_ = Array<T>(exec, dy, instances);
    gz_ = Array<T>(exec, dy, instances);
    gxz_ = Array<T>(exec, dx, instances);
    started_ = false;
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    if (!started_) start_state(x, y);
    // lambda_k and 1 / lambda_k, on the executor
    const T* lambda = lambda_.at(ctx);
    const T* inverse_lambda = inverse_lambda_.at(ctx);
    for (index_t t = 0; t < options_.steps; ++t) {
      const Batch lower = ctx.draw_lower(SampleStream::lower_step, static_cast<std::uint32_t>(t));
      const Batch upper = ctx.draw_upper(SampleStream::upper, static_cast<std::uint32_t>(t + 1));
      // gy = grad_y g(x, y); fy = grad_y f(x, y); gz = grad_y g(x, z)
      p.grad_y_g(lower, x, y, gy_.view());
      p.grad_f(upper, x, y, fx_.view(), fy_.view());
      p.grad_y_g(lower, x, z_.view(), gz_.view());
      // y <- y - (alpha / lambda) (fy + lambda gy) = y - alpha (fy / lambda + gy)
      ops.batch_axpy(T(1), inverse_lambda, fy_.view(), gy_.view());
      ops.batch_axpy(T(-1), alpha_.data(), gy_.view(), y);
      p.project_y(y);
      // z <- z - alpha gz
      ops.batch_axpy(T(-1), alpha_.data(), gz_.view(), z_.view());
      p.project_y(z_.view());
    }
    const Batch lower = ctx.draw_lower(SampleStream::cross, 0);
    // fx = grad_x f(x, y)
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y, fx_.view(), fy_.view());
    // h = gx(x, y) - gx(x, z)
    p.grad_x_g(lower, x, y, h);
    p.grad_x_g(lower, x, z_.view(), gxz_.view());
    ops.axpby(T(-1), gxz_.view(), T(1), h);
    // h = fx + lambda h
    ops.batch_scale(T(1), lambda, h);
    ops.axpby(T(1), fx_.view(), T(1), h);
  }

  /// z, the second lower-level sequence (set to y on the first call unless restored).
  std::vector<MatrixView<T>> carried_state() override { return {z_.view()}; }
  void state_restored() override { started_ = true; }
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    (void)x;
    // z starts where y starts
    z_.executor().template ops<T>().copy(y, z_.view());
    started_ = true;
  }

 private:
  F2saOptions options_;
  Array<T> alpha_, z_, fx_, fy_, gy_, gz_, gxz_;
  detail::ScheduledWeights<T> lambda_, inverse_lambda_;
  bool started_ = false;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_f2sa_estimator(F2saOptions options) {
  return std::make_unique<F2saEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_f2sa_estimator(F2saOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_f2sa_estimator(F2saOptions);

}  // namespace bilevel
