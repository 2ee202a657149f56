// FSLA (Li, Gu, Huang, "A fully single loop algorithm for bilevel optimization without Hessian
// inverse", AAAI 2022, arXiv 2112.04660), as benchopt's solvers/fsla.py runs it (benchopt/
// benchmark_bilevel at 3ad65dc). One iteration k, every step decaying as (k + 1)^-1/2:
//   y_k+1 = y_k - alpha_k gy(x_k, y_k; B1)
//   v_k+1 = v_k - alpha_k (H(x_k, y_k+1; B2) v_k - fy(x_k, y_k+1; U1))
//   h     = fx(x_k, y_k+1; U2) - J(x_k, y_k+1; B3) v_k+1          (the new point)
//   h_old = fx(x_k-1, y_k; U2) - J(x_k-1, y_k; B3) v_k            (the previous one, same batches)
//   d     = h + (1 - eta_k) (d - h_old)                            (STORM momentum on x)
// and h = d for the solver's x step (the preset decays it as beta (k + 1)^-1/2). At k = 0 the
// direction is h (STORM's start; benchopt's memory starts at zero at the point 0).
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"
#include "storm.hpp"

#include <cmath>

namespace bilevel {
namespace {

template <typename T>
class FslaEstimator final : public HypergradientEstimator<T> {
 public:
  explicit FslaEstimator(FslaOptions o) : options_(std::move(o)) {
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "fsla: the step alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.eta > 0.0 && options_.eta <= 1.0,
                    "fsla: the momentum eta must be in (0, 1], got " << options_.eta);
    BILEVEL_EXPECTS(options_.decay >= 0.0, "fsla: the decay exponent must be >= 0");
  }
  std::string name() const override { return "fsla"; }
  bool runs_lower_level() const override { return true; }
  // (the momentum weight and the decayed steps are host scalars that change with k)

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "fsla alpha");
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    v_ = Array<T>(exec, dy, instances);
    v_old_ = Array<T>(exec, dy, instances);
    x_old_ = Array<T>(exec, dx, instances);
    y_old_ = Array<T>(exec, dy, instances);
    d_x_ = Array<T>(exec, dx, instances);
    gy_ = Array<T>(exec, dy, instances);
    hv_ = Array<T>(exec, dy, instances);
    fy_ = Array<T>(exec, dy, instances);
    fx_ = Array<T>(exec, dx, instances);
    h_old_ = Array<T>(exec, dx, instances);
    started_ = false;
  }

  /// v = 0, the previous x the start, the direction 0.
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    Ops<T>& ops = v_.executor().template ops<T>();
    (void)y;
    ops.fill(v_.view(), T(0));
    ops.copy(x, x_old_.view());
    ops.fill(d_x_.view(), T(0));
    started_ = true;
  }
  void state_restored() override { started_ = true; }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    if (!started_) start_state(x, y);
    const double k1 = static_cast<double>(ctx.iteration + 1);
    const T step = static_cast<T>(-std::pow(k1, -options_.decay));  // -(k + 1)^-1/2
    const T keep = detail::storm_keep<T>(ctx.iteration, options_.eta, options_.decay);
    // y_k+1 = Proj_Y(y_k - alpha_k gy(x_k, y_k; B1)), y_k kept as the previous point's y
    ops.copy(y, y_old_.view());
    p.grad_y_g(ctx.draw_lower(SampleStream::lower_step, 0), x, y, gy_.view());
    ops.batch_axpy(step, alpha_.data(), gy_.view(), y);
    p.project_y(y);
    // v_k+1 = v_k - alpha_k (H v_k - fy) at (x_k, y_k+1), v_k kept
    ops.copy(v_.view(), v_old_.view());
    p.hvp_jvp(ctx.draw_lower(SampleStream::second_order, 1), x, y, v_.view(),
              hv_.view(), MatrixView<T>());
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y,
             detail::wanted_fx(p, fx_.view()), fy_.view());
    ops.axpby(T(-1), fy_.view(), T(1), hv_.view());
    ops.batch_axpy(step, alpha_.data(), hv_.view(), v_.view());
    // h = fx - J v at (x_k, y_k+1, v_k+1); h_old at (x_k-1, y_k, v_k): the same U2 and B3
    const Batch u2 = ctx.draw_upper(SampleStream::upper, 1);
    const MatrixView<T> fx = detail::wanted_fx(p, fx_.view());
    if (!fx.empty()) p.grad_f(u2, x, y, fx, fy_.view());
    detail::aid_hypergradient<T>(ctx, x, y, v_.view(), fx, h);
    if (!fx.empty()) p.grad_f(u2, x_old_.view(), y_old_.view(), fx, fy_.view());
    detail::aid_hypergradient<T>(ctx, x_old_.view(), y_old_.view(), v_old_.view(), fx,
                                 h_old_.view());
    // d = h + keep (d - h_old)
    detail::storm_update<T>(ops, keep, h, h_old_.view(), d_x_.view());
    // x_k-1 <- x_k; h = d (the solver steps x along it)
    ops.copy(x, x_old_.view());
    ops.copy(d_x_.view(), h);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }

  /// v, the previous x and the direction (the previous y is this iteration's y: not carried).
  std::vector<MatrixView<T>> carried_state() override {
    return {v_.view(), x_old_.view(), d_x_.view()};
  }

 private:
  FslaOptions options_;
  bool started_ = false;
  Array<T> alpha_, v_, v_old_, x_old_, y_old_, d_x_, gy_, hv_, fy_, fx_, h_old_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_fsla_estimator(FslaOptions options) {
  return std::make_unique<FslaEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_fsla_estimator(FslaOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_fsla_estimator(FslaOptions);

}  // namespace bilevel
