// BOME (Liu, Ye, Wright, Stone, Liu, "BOME! Bilevel optimization made easy: a simple first-order
// approach", NeurIPS 2022, arXiv 2209.08709), as benchopt's solvers/bome.py runs it (benchopt/
// benchmark_bilevel at 3ad65dc, choice_phi = "grad_norm"): no second derivatives at all. The
// value-function gap q(x, y) = g(x, y) - g(x, y_T(x)), y_T by T gradient steps on g(x, .) from
// y, is kept from growing by a dynamic barrier. Per iteration and instance:
//   y_T   = T steps y <- y - alpha grad_y g(x, y), from y
//   q_y   = grad_y g(x, y);  q_x = grad_x g(x, y) - grad_x g(x, y_T)
//   lambda = max(eta ||q||^2 - <grad f, q>, 0) / ||q||^2      (0 where ||q|| = 0)
//   y <- y - alpha (fy + lambda q_y);  h = fx + lambda q_x      (the solver: x <- x - beta h)
// with the norms and the inner product over (x, y) together, per instance, on the executor.
//
// V-PBGD (Shen & Chen, "On penalty-based bilevel gradient descent method", ICML 2023, arXiv
// 2302.05185, Algorithm 1) steps on the same value-function penalty f + gamma q with a fixed
// multiplier instead of the barrier, gamma_k = gamma0 + growth k, and the step 1 / (L_f +
// gamma L_g) folded into the direction as a factor 1 / gamma_k:
//   y <- y - alpha (fy / gamma_k + q_y);  h = fx / gamma_k + q_x
// (y_T from y, as BOME's; the paper's y_hat may start anywhere, its error enters as T's.)
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"
#include "scheduled_weights.hpp"

#include <limits>

namespace bilevel {
namespace {

template <typename T>
class BomeEstimator final : public HypergradientEstimator<T> {
 public:
  explicit BomeEstimator(BomeOptions o) : options_(std::move(o)) {
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "bome: the step alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.eta > 0.0, "bome: eta must be > 0, got " << options_.eta);
    BILEVEL_EXPECTS(options_.steps >= 0, "bome: the inner steps T must be >= 0, got " << options_.steps);
    BILEVEL_EXPECTS(options_.gamma0 > 0.0 && options_.growth >= 0.0,
                    "v-pbgd: gamma0 must be > 0 and growth >= 0, got " << options_.gamma0 << " and "
                                                                         << options_.growth);
  }
  std::string name() const override { return options_.penalty ? "v-pbgd" : "bome"; }
  bool runs_lower_level() const override { return true; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "bome alpha");
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    y_t_ = Array<T>(exec, dy, instances);
    gy_ = Array<T>(exec, dy, instances);
    q_y_ = Array<T>(exec, dy, instances);
    q_x_ = Array<T>(exec, dx, instances);
    gx_t_ = Array<T>(exec, dx, instances);
    fx_ = Array<T>(exec, dx, instances);
    fy_ = Array<T>(exec, dy, instances);
    if (options_.penalty) {
      // V-PBGD: 1 / gamma_k = (gamma0 + growth k)^-1, on the executor
      inverse_gamma_.prepare(exec, {1.0}, instances,
                             Schedule{options_.gamma0, options_.growth, 1.0}, "v-pbgd 1/gamma");
    } else {
      // BOME's barrier: ||q_y||^2, ||q_x||^2, <fy, q_y>, <fx, q_x>, and lambda's num / den
      dots_ = Array<T>(exec, instances, 4);
      num_ = Array<T>(exec, instances, 1);
      den_ = Array<T>(exec, instances, 1);
    }
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    const index_t nb = y.cols;
    // y_T = T steps of gradient descent on g(x, .) from y
    ops.copy(y, y_t_.view());
    for (index_t t = 0; t < options_.steps; ++t) {
      const Batch batch =
          ctx.draw_lower(SampleStream::lower_step, static_cast<std::uint32_t>(t));
      p.lower_step(batch, x, y_t_.view(), alpha_.data(), gy_.view());
      p.project_y(y_t_.view());
    }
    // fx, fy = grad f(x, y)
    const MatrixView<T> fx = detail::wanted_fx(p, fx_.view());
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y, fx, fy_.view());
    // q_y = grad_y g(x, y);  q_x = grad_x g(x, y) - grad_x g(x, y_T), on one batch
    const Batch cross = ctx.draw_lower(SampleStream::cross, 0);
    p.grad_y_g(cross, x, y, q_y_.view());
    p.grad_x_g(cross, x, y, q_x_.view());
    p.grad_x_g(cross, x, y_t_.view(), gx_t_.view());
    ops.axpby(T(-1), gx_t_.view(), T(1), q_x_.view());
    if (options_.penalty) {
      penalty_step(ctx, fx, y, h);
      return;
    }
    // ||q||^2 and <grad f, q> per instance
    T* d = dots_.data();
    ops.batch_dot(q_y_.view(), q_y_.view(), d);
    ops.batch_dot(q_x_.view(), q_x_.view(), d + nb);
    ops.batch_dot(fy_.view(), q_y_.view(), d + 2 * nb);
    if (!fx.empty())
      ops.batch_dot(fx, q_x_.view(), d + 3 * nb);
    else
      ops.fill(MatrixView<T>(d + 3 * nb, nb, 1, nb), T(0));
    const auto column = [&](int k) { return ConstMatrixView<T>(d + k * nb, nb, 1, nb); };
    // den = ||q||^2;  num = max(eta ||q||^2 - <grad f, q>, 0)
    ops.copy(column(0), den_.view());
    ops.axpby(T(1), column(1), T(1), den_.view());
    ops.copy(column(2), num_.view());
    ops.axpby(T(-1), column(3), T(-1), num_.view());
    ops.axpby(static_cast<T>(options_.eta), den_.view(), T(1), num_.view());
    ops.clamp(num_.view(), T(0), std::numeric_limits<T>::max());
    // y <- y - alpha (fy + lambda q_y), lambda = num / den
    ops.batch_axpy_ratio(T(1), num_.data(), den_.data(), q_y_.view(), fy_.view());
    ops.batch_axpy(T(-1), alpha_.data(), fy_.view(), y);
    p.project_y(y);
    // h = fx + lambda q_x
    if (!fx.empty())
      ops.copy(fx, h);
    else
      ops.fill(h, T(0));
    ops.batch_axpy_ratio(T(1), num_.data(), den_.data(), q_x_.view(), h);
  }

 private:
  /// V-PBGD's step with q_y and q_x in place.
  void penalty_step(const EstimateContext<T>& ctx, ConstMatrixView<T> fx, MatrixView<T> y,
                    MatrixView<T> h) {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    const T* inverse_gamma = inverse_gamma_.at(ctx);
    // y <- Proj_Y(y - alpha (fy / gamma_k + q_y))
    ops.batch_axpy(T(1), inverse_gamma, fy_.view(), q_y_.view());
    ops.batch_axpy(T(-1), alpha_.data(), q_y_.view(), y);
    p.project_y(y);
    // h = fx / gamma_k + q_x
    ops.copy(q_x_.view(), h);
    if (!fx.empty()) ops.batch_axpy(T(1), inverse_gamma, fx, h);
  }

  BomeOptions options_;
  Array<T> alpha_, y_t_, gy_, q_y_, q_x_, gx_t_, fx_, fy_, dots_, num_, den_;
  detail::ScheduledWeights<T> inverse_gamma_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_bome_estimator(BomeOptions options) {
  return std::make_unique<BomeEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_bome_estimator(BomeOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_bome_estimator(BomeOptions);

}  // namespace bilevel
