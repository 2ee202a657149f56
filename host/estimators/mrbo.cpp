// MRBO (Yang, Ji, Liang, "Provably faster algorithms for bilevel optimization", NeurIPS 2021,
// arXiv 2106.04692, Algorithm 1), as benchopt's solvers/mrbo.py runs it (benchopt/
// benchmark_bilevel at 3ad65dc): STORM-style momentum-recursive directions for y and x. At
// iteration k, with eta_k = eta (k + 1)^-eta_decay and one lower batch B_k:
//   d_y = gy(x_k, y_k; B_k) + (1 - eta_k) (d_y - gy(x_k-1, y_k-1; B_k))
//   d_x = h(x_k, y_k)       + (1 - eta_k) (d_x - h(x_k-1, y_k-1))
// where h is the Neumann hypergradient (stocBiO's: fy and fx on an upper batch, Q HVP terms on
// fresh lower batches, J v) evaluated at both points with the same batches (benchopt's
// joint_shia), then y <- y - alpha (k + 1)^-inner_decay d_y, and h = d_x for the solver's x step
// (the preset decays it as beta (k + 1)^-1/3). At k = 0 the directions are the fresh terms
// (STORM's start; benchopt starts from zero memory at the zero point instead, which makes its
// first direction eta_0 times the gradient plus the term at 0). Both points' estimates draw the
// same batches because every draw is a function of (stream, sub-step, iteration) only.
//
// SUSTAIN (Khanduri, Zeng, Hong, Wai, Wang, Yang, NeurIPS 2021, arXiv 2102.07367), as benchopt's
// solvers/sustain.py runs it, is the same iteration with the random-truncation Neumann
// hypergradient (v = K eta (I - eta H)^p fy, p uniform in 0 .. K - 1: benchopt's joint_hia) at
// both points; the depth p is host_uniform(seed, k), so both points get the same p as well.
#include <bilevel/estimators.hpp>

#include "storm.hpp"

#include <cmath>

namespace bilevel {
namespace {

template <typename T>
class MrboEstimator final : public HypergradientEstimator<T> {
 public:
  explicit MrboEstimator(MrboOptions o)
      : options_(std::move(o)),
        hypergradient_(make_hypergradient(options_)) {
    for (double a : options_.alpha) BILEVEL_EXPECTS(a > 0.0, "mrbo: the step alpha must be > 0, got " << a);
    BILEVEL_EXPECTS(options_.eta > 0.0 && options_.eta <= 1.0,
                    "mrbo: the momentum eta must be in (0, 1], got " << options_.eta);
    BILEVEL_EXPECTS(options_.eta_decay >= 0.0 && options_.inner_decay >= 0.0,
                    "mrbo: the decay exponents must be >= 0");
  }
  std::string name() const override { return options_.truncated ? "sustain" : "mrbo"; }
  bool runs_lower_level() const override { return true; }
  // (the momentum weight 1 - eta_k and the step's decay are host scalars that change with k)

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    alpha_ = per_instance_array<T>(exec, options_.alpha, instances, "mrbo alpha");
    hypergradient_->prepare(problem, instances);
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

  /// The previous point is the start and the directions 0; the first iteration takes the
  /// fresh terms.
  void start_state(ConstMatrixView<T> x, ConstMatrixView<T> y) override {
    Ops<T>& ops = x_old_.executor().template ops<T>();
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
    const double k1 = static_cast<double>(ctx.iteration + 1);
    // 1 - eta_k: 0 at the first iteration (the directions are the fresh terms)
    const T keep = detail::storm_keep<T>(ctx.iteration, options_.eta, options_.eta_decay);
    const Batch lower = ctx.draw_lower(SampleStream::lower_step, 0);
    // gy at (x_k, y_k) and at (x_k-1, y_k-1), on the same batch
    p.grad_y_g(lower, x, y, gy_.view());
    p.grad_y_g(lower, x_old_.view(), y_old_.view(), gy_old_.view());
    // d_y = gy + keep (d_y - gy_old)
    detail::storm_update<T>(ops, keep, gy_.view(), gy_old_.view(), d_y_.view());
    // h_old = Neumann hypergradient at (x_k-1, y_k-1); h at (x_k, y_k), the same batches (and,
    // truncated, the same depth). One estimator serves both: it carries nothing between calls,
    // and the current point's call comes last so that its v is linear_system_solution().
    hypergradient_->estimate(ctx, x_old_.view(), y_old_.view(), h_old_.view());
    hypergradient_->estimate(ctx, x, y, h);
    // d_x = h + keep (d_x - h_old)
    detail::storm_update<T>(ops, keep, h, h_old_.view(), d_x_.view());
    // (x_k-1, y_k-1) <- (x_k, y_k)
    ops.copy(x, x_old_.view());
    ops.copy(y, y_old_.view());
    // y <- Proj_Y(y - alpha (k + 1)^-inner_decay d_y)
    ops.batch_axpy(static_cast<T>(-std::pow(k1, -options_.inner_decay)), alpha_.data(),
                   d_y_.view(), y);
    p.project_y(y);
    // h = d_x (the solver steps x along it)
    ops.copy(d_x_.view(), h);
  }

  ConstMatrixView<T> linear_system_solution() const override {
    return hypergradient_->linear_system_solution();
  }

  /// The previous point and both directions: a resumed run continues bit for bit.
  std::vector<MatrixView<T>> carried_state() override {
    return {x_old_.view(), y_old_.view(), d_y_.view(), d_x_.view()};
  }

 private:
  static std::unique_ptr<HypergradientEstimator<T>> make_hypergradient(const MrboOptions& o) {
    if (o.truncated) return make_truncated_neumann_estimator<T>(o.truncated_neumann);
    return make_neumann_estimator<T>(o.neumann);
  }

  MrboOptions options_;
  std::unique_ptr<HypergradientEstimator<T>> hypergradient_;
  bool started_ = false;
  Array<T> alpha_, x_old_, y_old_, d_y_, d_x_, gy_, gy_old_, h_old_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_mrbo_estimator(MrboOptions options) {
  return std::make_unique<MrboEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_mrbo_estimator(MrboOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_mrbo_estimator(MrboOptions);

}  // namespace bilevel
