// Conjugate-gradient hypergradient (AID-CG): Ji et al., arXiv 2010.07962 (AID-BiO with CG),
// and benchopt's bilevel benchmark. Per-instance CG scalars stay on the device: the step
// ratios are applied by batch_axpy_ratio / batch_xpay_ratio without a read-back.
#include <bilevel/estimators.hpp>

#include "aid_hypergradient.hpp"

#include <utility>

namespace bilevel {
namespace {

template <typename T>
class CgEstimator final : public HypergradientEstimator<T> {
 public:
  explicit CgEstimator(CgOptions o) : options_(o) {
    BILEVEL_EXPECTS(options_.iterations >= 0,
                    "cg: iterations must be >= 0, got " << options_.iterations);
  }
  std::string name() const override { return "cg"; }
  bool capturable() const override { return true; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    const index_t dy = problem.dim_y();
    fx_ = Array<T>(exec, problem.dim_x(), instances);
    fy_ = Array<T>(exec, dy, instances);
    v_ = Array<T>(exec, dy, instances);
    r_ = Array<T>(exec, dy, instances);
    p_ = Array<T>(exec, dy, instances);
    hp_ = Array<T>(exec, dy, instances);
    rr_ = Array<T>(exec, instances, 1);
    rr_next_ = Array<T>(exec, instances, 1);
    pap_ = Array<T>(exec, instances, 1);
    exec->template ops<T>().fill(v_.view(), T(0));
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& pr = ctx.problem;
    Ops<T>& ops = pr.executor()->template ops<T>();
    pr.grad_f(ctx.draw_upper(SampleStream::upper, 0), x, y,
              detail::wanted_fx(pr, fx_.view()), fy_.view());
    // One batch for all CG iterations: CG needs a fixed operator.
    const Batch batch = ctx.draw_lower(SampleStream::second_order, 0);
    if (!options_.warm_start) ops.fill(v_.view(), T(0));
    // r = fy - H v
    pr.hvp_jvp(batch, x, y, v_.view(), hp_.view(), MatrixView<T>());
    ops.copy(fy_.view(), r_.view());
    ops.axpby(T(-1), hp_.view(), T(1), r_.view());
    // p = r; rr = <r, r>
    ops.copy(r_.view(), p_.view());
    ops.batch_dot(r_.view(), r_.view(), rr_.data());
    for (index_t it = 0; it < options_.iterations; ++it) {
      // hp = H p
      pr.hvp_jvp(batch, x, y, p_.view(), hp_.view(), MatrixView<T>());
      // pap = <p, H p>
      ops.batch_dot(p_.view(), hp_.view(), pap_.data());
      // v += (rr / pap) p
      ops.batch_axpy_ratio(T(1), rr_.data(), pap_.data(), p_.view(), v_.view());
      // r -= (rr / pap) H p
      ops.batch_axpy_ratio(T(-1), rr_.data(), pap_.data(), hp_.view(), r_.view());
      // rr_next = <r, r>
      ops.batch_dot(r_.view(), r_.view(), rr_next_.data());
      // p = r + (rr_next / rr) p
      ops.batch_xpay_ratio(rr_next_.data(), rr_.data(), r_.view(), p_.view());
      std::swap(rr_, rr_next_);
    }
    // h = fx - J v
    detail::aid_hypergradient<T>(ctx, x, y, v_.view(), detail::wanted_fx(pr, fx_.view()), h);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }
  // the warm-started v (a cold start resets it every call: nothing to carry)
  std::vector<MatrixView<T>> carried_state() override {
    if (!options_.warm_start) return {};
    return {v_.view()};
  }

 private:
  CgOptions options_;
  Array<T> fx_, fy_, v_, r_, p_, hp_, rr_, rr_next_, pap_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_cg_estimator(CgOptions options) {
  return std::make_unique<CgEstimator<T>>(options);
}

template std::unique_ptr<HypergradientEstimator<float>> make_cg_estimator(CgOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_cg_estimator(CgOptions);

}  // namespace bilevel
