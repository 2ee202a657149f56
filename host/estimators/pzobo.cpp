// PZOBO (Sow, Ji, Liang, "On the convergence theory for Hessian-free bilevel algorithms", NeurIPS
// 2022, arXiv 2110.07004, Algorithm 1), as benchopt's solvers/pzobo.py runs it (benchopt/
// benchmark_bilevel at 3ad65dc): the Jacobian of the inner trajectory dy_T/dx by Gaussian finite
// differences, so no second derivative and no grad_x g. Per iteration and instance:
//   y_T   = T steps y <- y - alpha gy(x, y) from y_0 = y          (batches B_1 .. B_T)
//   y_T^q = the same T steps from y_0 at x + mu u_q, u_q ~ N(0, I)  (the same batches), q < Q
//   h     = fx(x, y_T) + (1 / Q) sum_q u_q <(y_T^q - y_T) / mu, fy(x, y_T)>
// and y = y_T. The directions u_q are Philox normals keyed by (seed, k) and q, one column per
// instance (instances explore independent directions); decided on the host per iteration, so the
// estimator is not captured.
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"

namespace bilevel {
namespace {

template <typename T>
class PzoboEstimator final : public HypergradientEstimator<T> {
 public:
  explicit PzoboEstimator(PzoboOptions o) : options_(std::move(o)) {
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "pzobo: the step alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.steps >= 1, "pzobo: the inner steps T must be >= 1, got " << options_.steps);
    BILEVEL_EXPECTS(options_.directions >= 1,
                    "pzobo: the Gaussian directions Q must be >= 1, got " << options_.directions);
    BILEVEL_EXPECTS(options_.mu > 0.0, "pzobo: the radius mu must be > 0, got " << options_.mu);
  }
  std::string name() const override { return "pzobo"; }
  bool runs_lower_level() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "pzobo alpha");
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    y_0_ = Array<T>(exec, dy, instances);
    y_q_ = Array<T>(exec, dy, instances);
    gy_ = Array<T>(exec, dy, instances);
    u_ = Array<T>(exec, dx, instances);
    x_q_ = Array<T>(exec, dx, instances);
    fx_ = Array<T>(exec, dx, instances);
    fy_ = Array<T>(exec, dy, instances);
    dot_ = Array<T>(exec, instances, 1);
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // y_0 = y;  y = y_T at x
    ops.copy(y, y_0_.view());
    descend(ctx, x, y);
    // fx, fy = grad f(x, y_T)
    const MatrixView<T> fx = detail::wanted_fx(p, fx_.view());
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y, fx, fy_.view());
    // h = fx
    if (!fx.empty())
      ops.copy(fx, h);
    else
      ops.fill(h, T(0));
    const std::uint64_t key = direction_key(ctx.iteration);
    const T mu = static_cast<T>(options_.mu);
    for (index_t q = 0; q < options_.directions; ++q) {
      // u_q ~ N(0, I);  x_q = x + mu u_q
      ops.fill(u_.view(), T(0));
      ops.add_normal(key, static_cast<std::uint32_t>(q), T(1), u_.view());
      ops.copy(x, x_q_.view());
      ops.axpby(mu, u_.view(), T(1), x_q_.view());
      // y_q = y_T at x_q, from y_0 on the same batches
      ops.copy(y_0_.view(), y_q_.view());
      descend(ctx, x_q_.view(), y_q_.view());
      // dot = <y_q - y_T, fy> per instance
      ops.axpby(T(-1), y, T(1), y_q_.view());
      ops.batch_dot(y_q_.view(), fy_.view(), dot_.data());
      // h += dot / (mu Q) u_q
      ops.batch_axpy(static_cast<T>(1.0 / (options_.mu * static_cast<double>(options_.directions))),
                     dot_.data(), u_.view(), h);
    }
  }

 private:
  /// T steps of gradient descent on g(x, .) from y, on the iteration's batches B_1 .. B_T.
  void descend(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y) {
    for (index_t t = 0; t < options_.steps; ++t) {
      // y <- Proj_Y(y - alpha gy(x, y; B_t))
      ctx.problem.lower_step(ctx.draw_lower(SampleStream::lower_step, static_cast<std::uint32_t>(t)),
                             x, y, alpha_.data(), gy_.view());
      ctx.problem.project_y(y);
    }
  }

  /// The Philox key of iteration k's directions (q is the stream): the run's seed mixed with k.
  std::uint64_t direction_key(index_t k) const {
    return options_.seed ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(k + 1));
  }

  PzoboOptions options_;
  Array<T> alpha_, y_0_, y_q_, gy_, u_, x_q_, fx_, fy_, dot_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_pzobo_estimator(PzoboOptions options) {
  return std::make_unique<PzoboEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_pzobo_estimator(PzoboOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_pzobo_estimator(PzoboOptions);

}  // namespace bilevel
