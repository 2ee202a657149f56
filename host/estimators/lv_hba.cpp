// LV-HBA: proximal Lagrangian value function, Hessian-free, single loop (Yao, Yu, Zeng, Zhang,
// Zhang, arXiv 2401.16164, Algorithm 1; update order and c_k from the authors'
// code). Owns the lower level (y) and the auxiliary theta, lambda, z.
#include <bilevel/estimators.hpp>

#include "scheduled_weights.hpp"

#include <cmath>

namespace bilevel {
namespace {

template <typename T>
class LvHbaEstimator final : public HypergradientEstimator<T> {
 public:
  explicit LvHbaEstimator(LvHbaOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.bound > 0, "lv-hba: the multiplier bound must be > 0");
    BILEVEL_EXPECTS(options_.eta > 0 && options_.beta > 0 && options_.gamma1 > 0 &&
                        options_.gamma2 > 0 && options_.c0 > 0,
                    "lv-hba: eta, beta, gamma1, gamma2 and c0 must be > 0");
  }
  std::string name() const override { return "lv-hba"; }
  bool runs_lower_level() const override { return true; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    const index_t m = problem.constraint_count();
    BILEVEL_EXPECTS(m > 0, "lv-hba needs lower-level constraints; " << problem.name() << " has none");
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "lv-hba alpha");
    // 1 / c_k = (1 / c0) (k + 1)^-power
    inverse_ck_.prepare(exec, {1.0 / options_.c0}, instances, Schedule{1.0, 1.0, options_.power},
                        "lv-hba 1/c_k");
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    theta_ = Array<T>(exec, dy, instances);
    lambda_ = Array<T>(exec, m, instances);
    z_ = Array<T>(exec, m, instances);
    c_ = Array<T>(exec, m, instances);
    fx_ = Array<T>(exec, dx, instances);
    fy_ = Array<T>(exec, dy, instances);
    g_theta_ = Array<T>(exec, dy, instances);
    g_y_ = Array<T>(exec, dy, instances);
    cy_ = Array<T>(exec, dy, instances);
    gx_theta_ = Array<T>(exec, dx, instances);
    cx_ = Array<T>(exec, dx, instances);
    started_ = false;
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // multipliers: [0, u] for inequalities, [-u, u] for equalities
    const T hi = static_cast<T>(options_.bound), lo = p.constraints_are_equalities() ? -hi : T(0);
    const T eta = static_cast<T>(options_.eta), g1 = static_cast<T>(1 / options_.gamma1),
            g2 = static_cast<T>(1 / options_.gamma2);
    if (!started_) start_state(x, y);
    // 1 / c_k, on the executor
    const T* inv_ck = inverse_ck_.at(ctx);
    const Batch lower = ctx.draw_lower(SampleStream::lower_step, 0);

    // 1. both at the current theta (the authors' code):
    //    g_theta = gy(x, theta) + grad_y c(x, theta)' lambda + (theta - y) / gamma1
    //    c = -c(x, theta) + (lambda - z) / gamma2
    p.grad_y_g(lower, x, theta_.view(), g_theta_.view());
    p.constraint_vjp(x, theta_.view(), lambda_.view(), MatrixView<T>(), cy_.view());
    ops.axpby(T(1), cy_.view(), T(1), g_theta_.view());
    ops.axpby(g1, theta_.view(), T(1), g_theta_.view());
    ops.axpby(-g1, y, T(1), g_theta_.view());
    p.constraint_values(x, theta_.view(), c_.view());
    ops.axpby(g2, lambda_.view(), T(-1), c_.view());
    ops.axpby(-g2, z_.view(), T(1), c_.view());
    // theta <- Proj_Y(theta - eta g_theta);  lambda <- Proj(lambda - eta c)
    ops.axpby(-eta, g_theta_.view(), T(1), theta_.view());
    p.project_y(theta_.view());
    ops.axpby(-eta, c_.view(), T(1), lambda_.view());
    ops.clamp(lambda_.view(), lo, hi);

    // 2. h = d_x = fx / c_k + gx(x, y) - gx(x, theta) - grad_x c(x, theta)' lambda
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y, fx_.view(), fy_.view());
    p.grad_x_g(lower, x, y, h);
    p.grad_x_g(lower, x, theta_.view(), gx_theta_.view());
    p.constraint_vjp(x, theta_.view(), lambda_.view(), cx_.view(), MatrixView<T>());
    ops.axpby(T(-1), gx_theta_.view(), T(1), h);
    ops.axpby(T(-1), cx_.view(), T(1), h);
    ops.batch_axpy(T(1), inv_ck, fx_.view(), h);
    // d_y = fy / c_k + gy(x, y) - (y - theta) / gamma1
    p.grad_y_g(lower, x, y, g_y_.view());
    ops.batch_axpy(T(1), inv_ck, fy_.view(), g_y_.view());
    ops.axpby(-g1, y, T(1), g_y_.view());
    ops.axpby(g1, theta_.view(), T(1), g_y_.view());
    // y <- Proj_Y(y - alpha d_y)   (the solver then steps x <- x - alpha d_x)
    ops.batch_axpy(T(-1), alpha_.data(), g_y_.view(), y);
    p.project_y(y);

    // 3. z <- Proj(z + beta (lambda - z) / gamma2)
    const T bg = static_cast<T>(options_.beta / options_.gamma2);
    ops.axpby(bg, lambda_.view(), T(1) - bg, z_.view());
    ops.clamp(z_.view(), lo, hi);
  }

  /// theta, lambda and z (set on the first call unless restored).
  std::vector<MatrixView<T>> carried_state() override {
    return {theta_.view(), lambda_.view(), z_.view()};
  }
  void state_restored() override { started_ = true; }
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    (void)x;
    Ops<T>& ops = theta_.executor().template ops<T>();
    // theta = y; lambda = lambda0; z = z0
    ops.copy(y, theta_.view());
    ops.fill(lambda_.view(), static_cast<T>(options_.lambda0));
    ops.fill(z_.view(), static_cast<T>(options_.z0));
    started_ = true;
  }

 private:
  LvHbaOptions options_;
  Array<T> alpha_, theta_, lambda_, z_, c_, fx_, fy_, g_theta_, g_y_, cy_, gx_theta_, cx_;
  detail::ScheduledWeights<T> inverse_ck_;
  bool started_ = false;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_lv_hba_estimator(LvHbaOptions options) {
  return std::make_unique<LvHbaEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_lv_hba_estimator(LvHbaOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_lv_hba_estimator(LvHbaOptions);

}  // namespace bilevel
