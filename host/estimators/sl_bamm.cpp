// sl-BAMM: single-loop bi-level aggregation (Liu, Liu, Yuan, Zeng, Zhang, arXiv 2302.03407,
// Algorithm 1 with a practical step schedule). Runs the lower level itself: every
// update is computed at (x_k, y_k, v_k) before any is applied. With mu0 = 0 (no aggregation)
// this is SOBA's step (Dagreou et al., arXiv 2201.13409): y, v and x all move from the same
// point with one lower-level batch, H v and J v from one fused oracle call.
#include <bilevel/estimators.hpp>

#include "scheduled_weights.hpp"

#include <cmath>

namespace bilevel {
namespace {

template <typename T>
class SlBammEstimator final : public HypergradientEstimator<T> {
 public:
  explicit SlBammEstimator(SlBammOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.mu0 >= 0 && options_.mu0 < 1,
                    "sl-bamm: mu0 must be in [0, 1), got " << options_.mu0);
    BILEVEL_EXPECTS(options_.p >= 1, "sl-bamm: p must be >= 1, got " << options_.p);
    BILEVEL_EXPECTS(options_.decay >= 0, "sl-bamm: the steps' decay must be >= 0, got "
                                             << options_.decay);
  }
  /// mu0 = 0: no aggregation, SOBA's single-point step.
  std::string name() const override { return options_.mu0 > 0 ? "sl-bamm" : "single-point"; }
  bool runs_lower_level() const override { return true; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    s_ = per_instance_array<T>(exec, options_.s, instances, "sl-bamm s");
    eta_ = per_instance_array<T>(exec, options_.eta, instances, "sl-bamm eta");
    // decaying: s_k = s (k + 1)^-decay and eta_k likewise, on the executor (a launch each per
    // iteration, which constant steps do without)
    if (options_.decay > 0) {
      s_k_.prepare(exec, options_.s, instances, Schedule{1.0, 1.0, options_.decay}, "sl-bamm s");
      eta_k_.prepare(exec, options_.eta, instances, Schedule{1.0, 1.0, options_.decay},
                     "sl-bamm eta");
    }
    // mu_k = mu_0 (k + 1)^(-1/p)
    mu_.prepare(exec, {options_.mu0}, instances, Schedule{1.0, 1.0, 1.0 / options_.p}, "sl-bamm mu");
    const index_t dy = problem.dim_y();
    fx_ = Array<T>(exec, problem.dim_x(), instances);
    fy_ = Array<T>(exec, dy, instances);
    gy_ = Array<T>(exec, dy, instances);
    v_ = Array<T>(exec, dy, instances);
    hv_ = Array<T>(exec, dy, instances);
    exec->template ops<T>().fill(v_.view(), T(0));
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // mu_k = mu_0 (k + 1)^(-1/p), on the executor
    const T* mu = options_.mu0 > 0 ? mu_.at(ctx) : nullptr;
    const Batch lower = ctx.draw_lower(SampleStream::lower_step, 0);
    const Batch upper = ctx.draw_upper(SampleStream::upper, 0);
    // fx only where f depends on x (hyper-cleaning: it does not)
    const MatrixView<T> fx = p.upper_depends_on_x() ? fx_.view() : MatrixView<T>();
    // all at (x_k, y_k, v_k): fx, fy on the upper batch; gy, H v, J v (into h) on the lower one
    p.single_point_oracles(lower, upper, x, y, v_.view(), gy_.view(), hv_.view(), h, fx,
                           fy_.view());
    const bool decay = options_.decay > 0;
    const T* s = decay ? s_k_.at(ctx) : s_.data();
    const T* eta = decay ? eta_k_.at(ctx) : eta_.data();
    // y <- y - s_k [gy + mu (fy - gy)];  v <- v - eta_k (H v - fy);  h = fx - J v
    ops.single_point_step(s, eta, mu, gy_.view(), fy_.view(), hv_.view(), fx, y, v_.view(), h);
    // y <- Proj_Y(y)
    p.project_y(y);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }

  std::vector<MatrixView<T>> carried_state() override { return {v_.view()}; }

 private:
  SlBammOptions options_;
  Array<T> s_, eta_, fx_, fy_, gy_, v_, hv_;
  detail::ScheduledWeights<T> s_k_, eta_k_, mu_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_sl_bamm_estimator(SlBammOptions options) {
  return std::make_unique<SlBammEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_sl_bamm_estimator(SlBammOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_sl_bamm_estimator(SlBammOptions);

}  // namespace bilevel
