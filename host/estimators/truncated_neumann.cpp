// Random-truncation Neumann series. Source: TTSA (Hong, Wai, Wang, Yang, arXiv 2007.05170,
// Algorithm 1 and its estimator (2.6)); the same estimator as BSA (Ghadimi & Wang 2018).
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"

#include "../../kernels/common/philox.hpp"

namespace bilevel {

double host_uniform(std::uint64_t seed, std::uint32_t stream, index_t iteration) {
  const kernels::common::Philox4x32 r = kernels::common::philox4x32_10(
      kernels::common::Philox4x32{{static_cast<std::uint32_t>(iteration),
                                   static_cast<std::uint32_t>(iteration >> 32), stream,
                                   0x686f7374u}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return (static_cast<std::uint64_t>(r.v[0]) >> 8) * (1.0 / 16777216.0);
}

namespace {

template <typename T>
class TruncatedNeumannEstimator final : public HypergradientEstimator<T> {
 public:
  explicit TruncatedNeumannEstimator(TruncatedNeumannOptions o) : options_(std::move(o)) {
    BILEVEL_EXPECTS(options_.terms >= 1, "truncated neumann: terms must be >= 1, got " << options_.terms);
    for (double e : options_.eta) BILEVEL_EXPECTS(e > 0.0, "truncated neumann: eta must be > 0, got " << e);
  }
  std::string name() const override { return "truncated-neumann"; }
  bool capturable() const override { return true; }
  /// One graph per truncation depth.
  std::uint64_t iteration_shape(index_t iteration) const override {
    return static_cast<std::uint64_t>(depth(iteration));
  }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    eta_ = per_instance_array<T>(exec, options_.eta, instances, "truncated-neumann eta");
    fx_ = Array<T>(exec, problem.dim_x(), instances);
    r_ = Array<T>(exec, problem.dim_y(), instances);
    hr_ = Array<T>(exec, problem.dim_y(), instances);
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    // p ~ Uniform{0 .. K-1}, drawn on the host from the counter-based RNG (no read-back)
    const index_t p_depth = depth(ctx.iteration);
    // fx, r = grad f(x, y)
    p.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y,
             detail::wanted_fx(p, fx_.view()), r_.view());
    for (index_t i = 1; i <= p_depth; ++i) {
      const Batch batch = ctx.draw_lower(SampleStream::second_order, static_cast<std::uint32_t>(i));
      // r <- (I - eta H_i) r
      p.hvp_jvp(batch, x, y, r_.view(), hr_.view(), MatrixView<T>());
      ops.batch_axpy(T(-1), eta_.data(), hr_.view(), r_.view());
    }
    // v = K eta r
    ops.batch_scale(static_cast<T>(options_.terms), eta_.data(), r_.view());
    // h = fx - J v
    detail::aid_hypergradient<T>(ctx, x, y, r_.view(), detail::wanted_fx(p, fx_.view()), h);
  }

  ConstMatrixView<T> linear_system_solution() const override { return r_.view(); }

 private:
  index_t depth(index_t iteration) const {
    return std::min<index_t>(
        options_.terms - 1,
        static_cast<index_t>(host_uniform(options_.seed, 1, iteration) * options_.terms));
  }

  TruncatedNeumannOptions options_;
  Array<T> eta_, fx_, r_, hr_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_truncated_neumann_estimator(
    TruncatedNeumannOptions options) {
  return std::make_unique<TruncatedNeumannEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_truncated_neumann_estimator(
    TruncatedNeumannOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_truncated_neumann_estimator(
    TruncatedNeumannOptions);

}  // namespace bilevel
