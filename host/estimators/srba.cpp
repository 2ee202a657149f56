// SRBA (Dagreou, Moreau, Vaiter, Ablin, AISTATS 2024, arXiv 2302.08766, Algorithm 2): SOBA's
// three directions made SARAH-recursive, as benchopt's solvers/srba.py runs it
// (benchopt/benchmark_bilevel at 3ad65dc). Every `period` iterations (k % period == 0) the
// directions are the full-batch terms at (x_k, y_k, v_k):
//   D_y = gy,  D_v = H v - fy,  D_x = fx - J v;
// in between, one lower and one upper minibatch are drawn and each direction moves by the same
// batch's term at the new point minus the term at the previous point:
//   D_y += gy(k) - gy(k-1),  D_v += [H v - fy](k) - [H v - fy](k-1),  D_x += [fx - J v](k) - [..](k-1)
// Then y <- y - rho D_y, v <- v - rho D_v and h = D_x (the solver's SGD step on x), with constant
// steps. (bilevel's v solves H v = fy: benchopt's is its negative.) benchopt's period is
// (n_inner + n_outer) period_frac / batch with period_frac = 1/2; here 0 asks for the same rule
// with each level's own batch: floor((n_lower / b_lower + n_upper / b_upper) / 2), at least 1.
//
// SPABA (Chu, Xu, Yao, Zhang, ICML 2024, arXiv 2405.18777) is PAGE (Li et al. 2021) in the same
// decoupled directions: every iteration after the first restarts from full batches with
// probability p (PAGE's choice p = b / (n + b) by default), else takes the recursive step above.
// The coin is host_uniform(seed, stream, k): decided on the host from k alone, so the iteration's
// shape is known before it is launched (captured graphs) and a resumed run draws the same coins.
#include <bilevel/estimators.hpp>

#include <algorithm>
#include <cmath>

namespace bilevel {
namespace {

/// The terms of the single-point oracles at one point.
template <typename T>
struct Terms {
  Array<T> gy, hv, jv, fx, fy;
  void prepare(const std::shared_ptr<Executor>& exec, index_t dx, index_t dy, index_t instances,
               bool with_fx) {
    gy = Array<T>(exec, dy, instances);
    hv = Array<T>(exec, dy, instances);
    jv = Array<T>(exec, dx, instances);
    fy = Array<T>(exec, dy, instances);
    if (with_fx) fx = Array<T>(exec, dx, instances);
  }
  void evaluate(Problem<T>& p, const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                ConstMatrixView<T> y, ConstMatrixView<T> v) {
    p.single_point_oracles(lower, upper, x, y, v, gy.view(), hv.view(), jv.view(),
                           fx.size() > 0 ? fx.view() : MatrixView<T>(), fy.view());
  }
};

template <typename T>
class SrbaEstimator final : public HypergradientEstimator<T> {
 public:
  explicit SrbaEstimator(SrbaOptions o) : options_(std::move(o)) {
    for (double r : options_.rho) BILEVEL_EXPECTS(r > 0.0, "srba: the step rho must be > 0, got " << r);
    BILEVEL_EXPECTS(options_.period >= 0, "srba: the period must be >= 0 (0: benchopt's rule), got "
                                              << options_.period);
    BILEVEL_EXPECTS(options_.lower_batch >= 0 && options_.upper_batch >= 0,
                    "srba: batch sizes must be >= 0 (0: the whole data)");
    BILEVEL_EXPECTS(options_.probability >= 0.0 && options_.probability <= 1.0,
                    "spaba: the restart probability must be in [0, 1] (0: PAGE's b / (n + b)), got "
                        << options_.probability);
  }
  std::string name() const override { return spaba() ? "spaba" : "srba"; }
  bool runs_lower_level() const override { return true; }
  // two shapes: the full-batch restart and the recursive step (the batches come from the
  // samplers, which read the iteration on the executor)
  bool capturable() const override { return true; }
  std::uint64_t iteration_shape(index_t iteration) const override {
    return restarts(iteration) ? 1 : 0;
  }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    rho_ = per_instance_array<T>(exec, options_.rho, instances, "srba rho");
    period_ = options_.period > 0 ? options_.period
                                  : default_period(problem.lower_samples(), options_.lower_batch,
                                                   problem.upper_samples(), options_.upper_batch);
    probability_ = options_.probability > 0.0
                       ? options_.probability
                       : default_probability(problem.lower_samples(), options_.lower_batch);
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    const bool with_fx = problem.upper_depends_on_x();
    now_.prepare(exec, dx, dy, instances, with_fx);
    before_.prepare(exec, dx, dy, instances, with_fx);
    v_ = Array<T>(exec, dy, instances);
    x_old_ = Array<T>(exec, dx, instances);
    y_old_ = Array<T>(exec, dy, instances);
    v_old_ = Array<T>(exec, dy, instances);
    d_y_ = Array<T>(exec, dy, instances);
    d_v_ = Array<T>(exec, dy, instances);
    d_x_ = Array<T>(exec, dx, instances);
    started_ = false;
  }

  /// v = 0, the directions 0 and the previous point (x, y, 0): iteration 0 restarts from full
  /// batches anyway. An instance restarted after divergence gets these values back mid-run; its
  /// directions then track the change since the restart until the next full-batch restart.
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    Ops<T>& ops = v_.executor().template ops<T>();
    ops.fill(v_.view(), T(0));
    ops.fill(v_old_.view(), T(0));
    ops.copy(x, x_old_.view());
    ops.copy(y, y_old_.view());
    ops.fill(d_y_.view(), T(0));
    ops.fill(d_v_.view(), T(0));
    ops.fill(d_x_.view(), T(0));
    started_ = true;
  }
  void state_restored() override { started_ = true; }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    if (!started_) start_state(x, y);
    if (restarts(ctx.iteration)) {
      // at (x_k, y_k, v_k), full batches: gy, H v, J v, fx, fy
      now_.evaluate(p, Batch{}, Batch{}, x, y, v_.view());
      // D_y = gy
      ops.copy(now_.gy.view(), d_y_.view());
      // D_v = H v - fy
      ops.copy(now_.hv.view(), d_v_.view());
      ops.axpby(T(-1), now_.fy.view(), T(1), d_v_.view());
      // D_x = fx - J v
      set_x_direction(ops, now_, d_x_.view());
    } else {
      const Batch lower = ctx.draw_lower(SampleStream::lower_step, 0);
      const Batch upper = ctx.draw_upper(SampleStream::upper, 0);
      // the same batches at (x_k, y_k, v_k) and at (x_k-1, y_k-1, v_k-1)
      now_.evaluate(p, lower, upper, x, y, v_.view());
      before_.evaluate(p, lower, upper, x_old_.view(), y_old_.view(), v_old_.view());
      // D_y += gy(k) - gy(k-1)
      ops.axpby(T(-1), before_.gy.view(), T(1), now_.gy.view());
      ops.axpby(T(1), now_.gy.view(), T(1), d_y_.view());
      // D_v += [H v - fy](k) - [H v - fy](k-1)
      ops.axpby(T(-1), before_.hv.view(), T(1), now_.hv.view());
      ops.axpby(T(-1), before_.fy.view(), T(1), now_.fy.view());
      ops.axpby(T(1), now_.hv.view(), T(1), d_v_.view());
      ops.axpby(T(-1), now_.fy.view(), T(1), d_v_.view());
      // D_x += [fx - J v](k) - [fx - J v](k-1)
      ops.axpby(T(-1), before_.jv.view(), T(1), now_.jv.view());
      ops.axpby(T(-1), now_.jv.view(), T(1), d_x_.view());
      if (now_.fx.size() > 0) {
        ops.axpby(T(-1), before_.fx.view(), T(1), now_.fx.view());
        ops.axpby(T(1), now_.fx.view(), T(1), d_x_.view());
      }
    }
    // (x_k-1, y_k-1, v_k-1) <- (x_k, y_k, v_k)
    ops.copy(x, x_old_.view());
    ops.copy(y, y_old_.view());
    ops.copy(v_.view(), v_old_.view());
    // y <- y - rho D_y;  v <- v - rho D_v
    ops.batch_axpy(T(-1), rho_.data(), d_y_.view(), y);
    ops.batch_axpy(T(-1), rho_.data(), d_v_.view(), v_.view());
    // h = D_x
    ops.copy(d_x_.view(), h);
    // y <- Proj_Y(y)
    p.project_y(y);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }

  /// v, the previous point and the three directions: a resumed run continues bit for bit.
  std::vector<MatrixView<T>> carried_state() override {
    return {v_.view(), x_old_.view(), y_old_.view(), v_old_.view(),
            d_y_.view(), d_v_.view(),  d_x_.view()};
  }

  static double default_probability(index_t lower_samples, index_t lower_batch) {
    if (lower_samples <= 0 || lower_batch <= 0 || lower_batch >= lower_samples) return 1.0;
    return double(lower_batch) / double(lower_samples + lower_batch);
  }

  static index_t default_period(index_t lower_samples, index_t lower_batch,
                                index_t upper_samples, index_t upper_batch) {
    return full_batch_period(lower_samples, lower_batch, upper_samples, upper_batch, 0.5);
  }

 private:
  bool spaba() const { return options_.page; }
  bool restarts(index_t k) const {
    if (spaba())  // PAGE's coin; the first iteration always starts from full batches
      return k == 0 || host_uniform(options_.seed, kCoinStream, k) < probability_;
    return period_ <= 1 || k % period_ == 0;
  }
  /// The coin's Philox stream (apart from the minibatch streams, SampleStream 1-6 << 24).
  static constexpr std::uint32_t kCoinStream = 0x7A000000u;

  static void set_x_direction(Ops<T>& ops, Terms<T>& t, MatrixView<T> d) {
    if (t.fx.size() > 0)
      ops.copy(t.fx.view(), d);
    else
      ops.fill(d, T(0));
    ops.axpby(T(-1), t.jv.view(), T(1), d);
  }

  SrbaOptions options_;
  index_t period_ = 1;
  double probability_ = 1.0;
  bool started_ = false;
  Array<T> rho_, v_, x_old_, y_old_, v_old_, d_y_, d_v_, d_x_;
  Terms<T> now_, before_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_srba_estimator(SrbaOptions options) {
  return std::make_unique<SrbaEstimator<T>>(std::move(options));
}

index_t full_batch_period(index_t lower_samples, index_t lower_batch, index_t upper_samples,
                          index_t upper_batch, double fraction) {
  BILEVEL_EXPECTS(fraction > 0.0 && std::isfinite(fraction),
                  "the full-batch period's fraction must be > 0, got " << fraction);
  const auto batches = [](index_t n, index_t b) {
    return n <= 0 || b <= 0 || b >= n ? 1.0 : double(n) / double(b);
  };
  const double period =
      fraction * (batches(lower_samples, lower_batch) + batches(upper_samples, upper_batch));
  // (capped where an index_t cannot hold it: a period no run reaches)
  if (period >= 1e18) return static_cast<index_t>(1e18);
  return std::max<index_t>(1, static_cast<index_t>(std::floor(period)));
}

index_t srba_default_period(index_t lower_samples, index_t lower_batch, index_t upper_samples,
                            index_t upper_batch) {
  return SrbaEstimator<double>::default_period(lower_samples, lower_batch, upper_samples,
                                               upper_batch);
}

double spaba_default_probability(index_t lower_samples, index_t lower_batch) {
  return SrbaEstimator<double>::default_probability(lower_samples, lower_batch);
}

template std::unique_ptr<HypergradientEstimator<float>> make_srba_estimator(SrbaOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_srba_estimator(SrbaOptions);

}  // namespace bilevel
