// VRBO (Yang, Ji, Liang, "Provably faster algorithms for bilevel optimization", NeurIPS 2021,
// arXiv 2106.04692, Algorithm 2; the authors' code JunjieYang97/MRVRBO): SARAH-recursive
// directions for y and x with periodic full-batch restarts. Outer iteration k is
//   1. if k % period == 0:  d_y = gy(x_k, y; all data),  d_x = h(x_k, y; all data)
//   2. x_k+1 = x_k - beta d_x
//   3. `steps` times, at x_k+1, with one lower batch B_t and the Neumann batches of step t:
//        d_y += gy(x_k+1, y; B_t) - gy(x_old, y_old; B_t);  d_x += h(x_k+1, y) - h(x_old, y_old)
//        (x_old, y_old) <- (x_k+1, y);  y <- y - alpha d_y
// where h is the Neumann hypergradient fx - J v, v = eta sum_{i<=Q} (I - eta H_i)^i fy (stocBiO's,
// on all the data at a restart; on the same batches at both points otherwise, benchopt's
// joint_shia). The first step of a loop thus also takes in x's move from x_k to x_k+1, as the
// authors' code does (a correction at the old and the new x before the inner steps); benchopt's
// solvers/vrbo.py (benchopt/benchmark_bilevel at 3ad65dc) evaluates both terms at the new x, so
// that its directions never see x move between restarts (docs/algorithms.md, VRBO).
// The solver steps x between estimates, so estimate(k) runs step 3 of iteration k - 1 (at x_k,
// which the solver has just set), then step 1, and returns d_x: y at the end of a run is one
// inner loop behind x. Inner step t draws its batches with sub-step base t (Q + 1)
// (EstimateContext::substep_base), so that every step has batches of its own.
#include <bilevel/estimators.hpp>

#include <memory>

namespace bilevel {
namespace {

template <typename T>
class VrboEstimator final : public HypergradientEstimator<T> {
 public:
  explicit VrboEstimator(VrboOptions o)
      : options_(std::move(o)), neumann_(make_neumann_estimator<T>(options_.neumann)) {
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "vrbo: the step alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.steps >= 1, "vrbo: the inner steps must be >= 1, got " << options_.steps);
    BILEVEL_EXPECTS(options_.period >= 0,
                    "vrbo: the period must be >= 0 (0: SRBA's rule), got " << options_.period);
    BILEVEL_EXPECTS(options_.lower_batch >= 0 && options_.upper_batch >= 0,
                    "vrbo: batch sizes must be >= 0 (0: the whole data)");
  }
  std::string name() const override { return "vrbo"; }
  bool runs_lower_level() const override { return true; }
  // the shape: whether the previous iteration's inner loop runs (k > 0) and whether the
  // directions restart from full batches; the batches come from the samplers
  bool capturable() const override { return true; }
  std::uint64_t iteration_shape(index_t iteration) const override {
    return (iteration > 0 ? 1u : 0u) | (restarts(iteration) ? 2u : 0u);
  }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "vrbo alpha");
    period_ = options_.period > 0
                  ? options_.period
                  : full_batch_period(problem.lower_samples(), options_.lower_batch,
                                      problem.upper_samples(), options_.upper_batch,
                                      options_.period_fraction);
    neumann_->prepare(problem, instances);
    // the restarts' samplers: batch size 0 draws the whole data, without a kernel
    all_lower_ = std::make_unique<MinibatchSampler<T>>(exec, 0, problem.lower_samples(), 0);
    all_upper_ = std::make_unique<MinibatchSampler<T>>(exec, 0, problem.upper_samples(), 0);
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    x_old_ = Array<T>(exec, dx, instances);
    y_old_ = Array<T>(exec, dy, instances);
    d_y_ = Array<T>(exec, dy, instances);
    d_x_ = Array<T>(exec, dx, instances);
    gy_ = Array<T>(exec, dy, instances);
    gy_old_ = Array<T>(exec, dy, instances);
    h_old_ = Array<T>(exec, dx, instances);
    started_ = false;
  }

  /// The previous point is the start and the directions 0 (iteration 0 restarts from full
  /// batches). An instance restarted after divergence gets these back mid-run: its directions
  /// then track the change since the restart until the next full-batch restart.
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    Ops<T>& ops = y_old_.executor().template ops<T>();
    ops.copy(x, x_old_.view());
    ops.copy(y, y_old_.view());
    ops.fill(d_y_.view(), T(0));
    ops.fill(d_x_.view(), T(0));
    started_ = true;
  }
  void state_restored() override { started_ = true; }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    if (!started_) start_state(x, y);
    // 3. of iteration k - 1: its inner loop at x_k (h is the scratch of the current y's term)
    if (ctx.iteration > 0) {
      // benchopt's recursion: the previous point at the new x (x's move left out)
      if (!options_.x_move) ops.copy(x, x_old_.view());
      const std::uint32_t stride = static_cast<std::uint32_t>(options_.neumann.terms + 1);
      for (index_t t = 0; t < options_.steps; ++t) {
        EstimateContext<T> step = ctx;
        step.substep_base = ctx.substep_base + static_cast<std::uint32_t>(t) * stride;
        const Batch lower = step.draw_lower(SampleStream::lower_step, 0);
        // gy at (x, y) and at (x_old, y_old), on the same batch
        p.grad_y_g(lower, x, y, gy_.view());
        p.grad_y_g(lower, x_old_.view(), y_old_.view(), gy_old_.view());
        // d_y += gy - gy_old
        ops.axpby(T(-1), gy_old_.view(), T(1), gy_.view());
        ops.axpby(T(1), gy_.view(), T(1), d_y_.view());
        // h_old = Neumann hypergradient at (x_old, y_old); h at (x, y): the same batches. One
        // estimator serves both (it carries nothing); the current point's call comes last, so
        // its v is linear_system_solution().
        neumann_->estimate(step, x_old_.view(), y_old_.view(), h_old_.view());
        neumann_->estimate(step, x, y, h);
        // d_x += h - h_old
        ops.axpby(T(-1), h_old_.view(), T(1), h);
        ops.axpby(T(1), h, T(1), d_x_.view());
        // (x_old, y_old) <- (x, y) (x_old changes at the first step only);
        // y <- Proj_Y(y - alpha d_y)
        if (t == 0) ops.copy(x, x_old_.view());
        ops.copy(y, y_old_.view());
        ops.batch_axpy(T(-1), alpha_.data(), d_y_.view(), y);
        p.project_y(y);
      }
    }
    // 1. the restart, at (x_k, y), on all the data
    if (restarts(ctx.iteration)) {
      const EstimateContext<T> all{p, *all_lower_, *all_upper_, ctx.iteration, ctx.counter, 0};
      // d_y = gy
      p.grad_y_g(all.draw_lower(SampleStream::lower_step, 0), x, y, d_y_.view());
      // d_x = fx - J v, v by the Neumann series on all the data
      neumann_->estimate(all, x, y, d_x_.view());
      // (x_old, y_old) <- (x_k, y): the next correction starts from the restart's point
      ops.copy(x, x_old_.view());
      ops.copy(y, y_old_.view());
    }
    // h = d_x (the solver's step 2)
    ops.copy(d_x_.view(), h);
  }

  ConstMatrixView<T> linear_system_solution() const override {
    return neumann_->linear_system_solution();
  }

  /// The previous point and both directions: a resumed run continues bit for bit.
  std::vector<MatrixView<T>> carried_state() override {
    return {x_old_.view(), y_old_.view(), d_y_.view(), d_x_.view()};
  }

 private:
  bool restarts(index_t k) const { return period_ <= 1 || k % period_ == 0; }

  VrboOptions options_;
  std::unique_ptr<HypergradientEstimator<T>> neumann_;
  std::unique_ptr<MinibatchSampler<T>> all_lower_, all_upper_;
  index_t period_ = 1;
  bool started_ = false;
  Array<T> alpha_, x_old_, y_old_, d_y_, d_x_, gy_, gy_old_, h_old_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_vrbo_estimator(VrboOptions options) {
  return std::make_unique<VrboEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_vrbo_estimator(VrboOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_vrbo_estimator(VrboOptions);

}  // namespace bilevel
