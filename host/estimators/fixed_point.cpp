// SGD on the linear system H v = fy (fixed point iteration), warm started. Sources: AmIGO
// (Arbel & Mairal, arXiv 2111.14580, Algorithm 2), SOBA (Dagreou et al., arXiv 2201.13409,
// eq. 6), BO-REP (Hao et al., arXiv 2401.09587: z <- z - nu (H z - fy); the paper's projection of
// z on a ball is not applied here).
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"

namespace bilevel {
namespace {

template <typename T>
class FixedPointEstimator final : public HypergradientEstimator<T> {
 public:
  explicit FixedPointEstimator(FixedPointOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.steps >= 0, "fixed point: steps must be >= 0, got " << options_.steps);
    for (double nu : options_.nu) BILEVEL_EXPECTS(nu > 0.0, "fixed point: nu must be > 0, got " << nu);
  }
  std::string name() const override { return "fixed-point"; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    nu_ = per_instance_array<T>(exec, options_.nu, instances, "fixed-point nu");
    fx_ = Array<T>(exec, problem.dim_x(), instances);
    fy_ = Array<T>(exec, problem.dim_y(), instances);
    v_ = Array<T>(exec, problem.dim_y(), instances);
    hv_ = Array<T>(exec, problem.dim_y(), instances);
    exec->template ops<T>().fill(v_.view(), T(0));
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // fx, fy = grad f(x, y)
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y,
             detail::wanted_fx(p, fx_.view()), fy_.view());
    if (!options_.warm_start) ops.fill(v_.view(), T(0));
    for (index_t m = 0; m < options_.steps; ++m) {
      const Batch batch = ctx.draw_lower(SampleStream::second_order, static_cast<std::uint32_t>(m));
      // hv = H v - fy
      p.hvp_jvp(batch, x, y, v_.view(), hv_.view(), MatrixView<T>());
      ops.axpby(T(-1), fy_.view(), T(1), hv_.view());
      // v <- v - nu (H v - fy)
      ops.batch_axpy(T(-1), nu_.data(), hv_.view(), v_.view());
    }
    // h = fx - J v
    detail::aid_hypergradient<T>(ctx, x, y, v_.view(), detail::wanted_fx(p, fx_.view()), h);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }
  // the warm-started v (a cold start resets it every call: nothing to carry)
  std::vector<MatrixView<T>> carried_state() override {
    if (!options_.warm_start) return {};
    return {v_.view()};
  }

 private:
  FixedPointOptions options_;
  Array<T> nu_, fx_, fy_, v_, hv_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_fixed_point_estimator(FixedPointOptions options) {
  return std::make_unique<FixedPointEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_fixed_point_estimator(FixedPointOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_fixed_point_estimator(FixedPointOptions);

}  // namespace bilevel
