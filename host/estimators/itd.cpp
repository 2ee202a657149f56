// Iterative differentiation (ITD-BiO): reverse mode through D inner SGD steps. Source:
// Ji et al., arXiv 2010.07962, Algorithm 1 with the backward pass
// written out. The batch of inner step t is drawn again (counter-based RNG) for the backward
// pass instead of being stored.
// FOM keeps only fx(x, y_D). UFOM (arXiv 2106.02487) in its simplest unbiased form:
// with probability q the exact correction (ITD - FOM) is computed and divided
// by q. The paper's truncation distribution, optimal q and adaptive scheme are not implemented
// (not checked against the paper text); the trajectory buffer is allocated for the triggered case.
#include <bilevel/estimators.hpp>

#include <cmath>

namespace bilevel {
namespace {

template <typename T>
class ItdEstimator final : public HypergradientEstimator<T> {
 public:
  explicit ItdEstimator(ItdOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.steps >= 0, "itd: steps must be >= 0, got " << options_.steps);
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "itd: alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.aggregation >= 0.0 && options_.aggregation < 1.0 &&
                        options_.aggregation_decay > 0.0 && options_.aggregation_decay <= 1.0,
                    "bda: aggregation must be in [0, 1) and its decay in (0, 1]");
    BILEVEL_EXPECTS(options_.mode != UnrolledMode::ufom ||
                        (options_.probability > 0.0 && options_.probability <= 1.0),
                    "ufom: the correction probability q must be in (0, 1], got " << options_.probability);
  }
  std::string name() const override {
    if (aggregated()) return "bda";
    return options_.mode == UnrolledMode::itd ? "itd" : options_.mode == UnrolledMode::fom ? "fom" : "ufom";
  }
  bool runs_lower_level() const override { return true; }
  bool capturable() const override { return true; }
  /// UFOM: one graph with the correction and one without.
  std::uint64_t iteration_shape(index_t iteration) const override {
    return options_.mode == UnrolledMode::ufom && triggered(iteration) ? 1 : 0;
  }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    const index_t dy = problem.dim_y();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "itd alpha");
    trajectory_ = Array<T>(exec, dy, instances * (options_.steps + 1));
    gy_ = Array<T>(exec, dy, instances);
    a_ = Array<T>(exec, dy, instances);
    ha_ = Array<T>(exec, dy, instances);
    jv_ = Array<T>(exec, problem.dim_x(), instances);
    if (aggregated()) {
      fx_t_ = Array<T>(exec, problem.dim_x(), instances);
      fy_t_ = Array<T>(exec, dy, instances);
    }
    instances_ = instances;
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    BILEVEL_EXPECTS(x.cols == instances_, "itd: prepared for " << instances_ << " instances, got " << x.cols);
    const index_t steps = options_.steps;
    // y_0 = y
    ops.copy(y, state(0));
    for (index_t t = 0; t < steps; ++t) {
      const Batch batch =
          ctx.draw_lower(SampleStream::lower_step, static_cast<std::uint32_t>(t));
      // gy = grad_y g(x, y_t)
      p.grad_y_g(batch, x, state(t), gy_.view());
      if (aggregated()) {
        // BDA: gy = (1 - mu_t) gy + mu_t fy(x, y_t)
        p.grad_f(ctx.draw_upper(SampleStream::upper, static_cast<std::uint32_t>(t + 1)),
                 x, state(t), fx_t_.view(), fy_t_.view());
        ops.axpby(mu(t), fy_t_.view(), T(1) - mu(t), gy_.view());
      }
      // y_{t+1} = y_t - alpha gy
      ops.copy(state(t), state(t + 1));
      ops.batch_axpy(T(-1), alpha_.data(), gy_.view(), state(t + 1));
    }
    // h = fx(x, y_D); a = fy(x, y_D)
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, state(steps), h,
             a_.view());
    // FOM: h = fx(x, y_D). UFOM: add the exact correction / q with probability q.
    T correction_scale = T(1);
    bool backward = options_.mode == UnrolledMode::itd;
    if (options_.mode == UnrolledMode::ufom && triggered(ctx.iteration)) {
      backward = true;
      correction_scale = static_cast<T>(1.0 / options_.probability);
    }
    for (index_t t = backward ? steps - 1 : -1; t >= 0; --t) {
      const Batch batch =
          ctx.draw_lower(SampleStream::lower_step, static_cast<std::uint32_t>(t));
      // ha = H(x, y_t) a; jv = J(x, y_t) a
      p.hvp_jvp(batch, x, state(t), a_.view(), ha_.view(), jv_.view());
      if (aggregated()) {
        // BDA: ha = (1 - mu_t) H_g a + mu_t H_f a; jv = (1 - mu_t) J_g a + mu_t J_f a
        p.hvp_jvp_f(ctx.draw_upper(SampleStream::upper, static_cast<std::uint32_t>(t + 1)),
                    x, state(t), a_.view(), fy_t_.view(), fx_t_.view());
        ops.axpby(mu(t), fy_t_.view(), T(1) - mu(t), ha_.view());
        ops.axpby(mu(t), fx_t_.view(), T(1) - mu(t), jv_.view());
      }
      // h -= alpha J a  (UFOM: divided by q)
      ops.batch_axpy(-correction_scale, alpha_.data(), jv_.view(), h);
      // a -= alpha H a
      ops.batch_axpy(T(-1), alpha_.data(), ha_.view(), a_.view());
    }
    // y = y_D
    ops.copy(state(steps), y);
  }

 private:
  MatrixView<T> state(index_t t) {
    return MatrixView<T>(trajectory_.data() + t * trajectory_.rows() * instances_,
                         trajectory_.rows(), instances_);
  }

  bool aggregated() const { return options_.aggregation > 0.0; }
  /// UFOM's correction at this iteration: with probability q (the same draw on every machine).
  bool triggered(index_t iteration) const {
    return host_uniform(options_.seed, 2, iteration) < options_.probability;
  }
  /// BDA's aggregation weight of inner step t: mu decay^t.
  T mu(index_t t) const {
    return static_cast<T>(options_.aggregation * std::pow(options_.aggregation_decay, double(t)));
  }

  ItdOptions options_;
  Array<T> alpha_, trajectory_, gy_, a_, ha_, jv_, fx_t_, fy_t_;
  index_t instances_ = 0;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_itd_estimator(ItdOptions options) {
  return std::make_unique<ItdEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_itd_estimator(ItdOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_itd_estimator(ItdOptions);

}  // namespace bilevel
