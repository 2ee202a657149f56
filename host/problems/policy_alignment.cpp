// The policy-alignment bandit (problems/policy_alignment.hpp): oracles from the bandit kernels.
#include <bilevel/problems/policy_alignment.hpp>

#include "../../kernels/bandit_kernels.hpp"
#include "../../kernels/common/bandit.hpp"
#include "../../kernels/common/philox.hpp"
#include "view_checks.hpp"

#include <cmath>
#include <numeric>

namespace bilevel {

template <typename T>
struct BanditAlignmentProblem<T>::Kernels {
  std::unique_ptr<kernels::BanditKernels<T>> k;
  Array<T> without;  // the score term's estimate without it (kept from call to call)
};

template <typename T>
BanditAlignmentProblem<T>::BanditAlignmentProblem(std::shared_ptr<Executor> exec,
                                                  BanditAlignmentSpec spec)
    : exec_(std::move(exec)), spec_(std::move(spec)) {
  BILEVEL_EXPECTS(exec_ != nullptr, "BanditAlignmentProblem needs an executor");
  BILEVEL_EXPECTS(spec_.actions >= 2 && spec_.actions <= kernels::common::kMaxBanditActions,
                  "bandit: actions must be in [2, " << kernels::common::kMaxBanditActions
                                                    << "], got " << spec_.actions);
  BILEVEL_EXPECTS(std::isfinite(spec_.tau) && spec_.tau > 0,
                  "bandit: tau must be > 0, got " << spec_.tau);
  BILEVEL_EXPECTS(spec_.feedback_population >= 2 && spec_.feedback_population <= INT32_MAX,
                  "bandit: feedback population must be in [2, 2^31)");
  target_ = spec_.target;
  if (target_.empty()) {
    // a seeded target: p_a proportional to exp(2 z_a), z uniform in [-1, 1]
    for (index_t a = 0; a < spec_.actions; ++a)
      target_.push_back(std::exp(
          2.0 * (2.0 * kernels::common::uniform_open01(spec_.seed, 11, 0, 0, a) - 1.0)));
  }
  BILEVEL_EXPECTS(static_cast<index_t>(target_.size()) == spec_.actions,
                  "bandit: the target has " << target_.size() << " values for " << spec_.actions
                                            << " actions");
  for (double v : target_)
    BILEVEL_EXPECTS(std::isfinite(v) && v > 0, "bandit: target values must be > 0, got " << v);
  const double sum = std::accumulate(target_.begin(), target_.end(), 0.0);
  std::vector<T> log_p;
  for (double& v : target_) {
    v /= sum;
    log_p.push_back(static_cast<T>(std::log(v)));
  }
  log_p_ = Array<T>(exec_, spec_.actions, 1, log_p);
  kernels_ = std::make_unique<Kernels>();
  kernels_->k = kernels::make_bandit_kernels<T>(*exec_);
}

template <typename T>
BanditAlignmentProblem<T>::~BanditAlignmentProblem() = default;

template <typename T>
std::vector<double> BanditAlignmentProblem<T>::optimal_reward() const {
  std::vector<double> nu;
  for (double p : target_) nu.push_back(spec_.tau * std::log(p));
  const double mean = std::accumulate(nu.begin(), nu.end(), 0.0) / static_cast<double>(nu.size());
  for (double& v : nu) v -= mean;
  return nu;
}

template <typename T>
double BanditAlignmentProblem<T>::upper_objective(const std::vector<double>& nu) const {
  BILEVEL_EXPECTS(static_cast<index_t>(nu.size()) == spec_.actions, "bandit: nu has " << nu.size() << " values");
  double m = nu[0];
  for (double v : nu) m = std::max(m, v);
  double z = 0;
  for (double v : nu) z += std::exp((v - m) / spec_.tau);
  double kl = 0;
  for (std::size_t a = 0; a < nu.size(); ++a) {
    const double pi = std::exp((nu[a] - m) / spec_.tau) / z;
    kl += pi * (std::log(pi) - std::log(target_[a]));
  }
  return kl;
}

template <typename T>
void BanditAlignmentProblem<T>::check(const char* oracle, ConstMatrixView<T> x,
                                      ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && y.rows == dim_y() && x.cols == y.cols &&
                      x.ld == x.rows && y.ld == y.rows,
                  "bandit " << oracle << ": x must be " << dim_x() << " x B and y " << dim_y()
                            << " x B (contiguous), got " << x.rows << " x " << x.cols << " and "
                            << y.rows << " x " << y.cols);
}

namespace {
template <typename T>
kernels::BanditShape<T> shape(const BanditAlignmentSpec& s, index_t instances) {
  kernels::BanditShape<T> sh;
  sh.actions = static_cast<int>(s.actions);
  sh.instances = instances;
  sh.tau = static_cast<T>(s.tau);
  sh.ldnu = s.actions;
  sh.ldy = s.actions - 1;
  return sh;
}
}  // namespace

template <typename T>
void BanditAlignmentProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y, MatrixView<T> out) {
  (void)batch;
  check("grad_y_g", x, y);
  detail::expect_contiguous<T>("bandit", "grad_y_g's output", out, dim_y(), x.cols);
  // gy = pi (c - cbar)
  kernels_->k->lower(shape<T>(spec_, x.cols), x.data, y.data, nullptr, out.data, nullptr,
                     nullptr, nullptr);
}

template <typename T>
void BanditAlignmentProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x,
                                        ConstMatrixView<T> y, ConstMatrixView<T> v,
                                        MatrixView<T> hv, MatrixView<T> jv) {
  (void)batch;
  check("hvp_jvp", x, y);
  detail::expect_contiguous<T>("bandit", "v", v, dim_y(), x.cols);
  detail::expect_contiguous<T>("bandit", "hv", hv, dim_y(), x.cols);
  detail::expect_contiguous<T>("bandit", "jv", jv, dim_x(), x.cols);
  // hv = H v; jv = J v
  kernels_->k->lower(shape<T>(spec_, x.cols), x.data, y.data, v.data, nullptr,
                     hv.empty() ? nullptr : hv.data, jv.empty() ? nullptr : jv.data, nullptr);
}

template <typename T>
void BanditAlignmentProblem<T>::upper(const Batch& batch, ConstMatrixView<T> y,
                                      bool include_score, T* fy, index_t ldfy, T* f) {
  BILEVEL_EXPECTS(fy == nullptr || ldfy == dim_y(), "bandit: fy must be contiguous");
  const bool exact = batch.full();
  BILEVEL_EXPECTS(exact || batch.population == spec_.feedback_population,
                  "bandit: a feedback batch drawn from " << batch.population << " values, expected "
                                                         << spec_.feedback_population);
  // fy = the exact gradient of KL(pi || p), or its estimate from the batch's actions
  kernels_->k->upper(shape<T>(spec_, y.cols), log_p_.data(), y.data,
                     exact ? nullptr : batch.indices, exact ? 0 : batch.size,
                     batch.independent() ? batch.stride : 0, spec_.feedback_population,
                     include_score, fy, f);
}

template <typename T>
void BanditAlignmentProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x,
                                       ConstMatrixView<T> y, MatrixView<T> fx, MatrixView<T> fy) {
  check("grad_f", x, y);
  // fx = 0 (f does not depend on nu)
  if (!fx.empty()) exec_->template ops<T>().fill(fx, T(0));
  if (fy.empty()) return;
  // exact expectations: the full gradient (the pathwise part has mean 0: without the score
  // term nothing is left); feedback samples: the estimator with or without the score term
  if (batch.full() && !spec_.score_function_term)
    exec_->template ops<T>().fill(fy, T(0));
  else
    upper(batch, y, spec_.score_function_term, fy.data, fy.ld, nullptr);
}

template <typename T>
void BanditAlignmentProblem<T>::score_function_term(const Batch& batch, ConstMatrixView<T> x,
                                                    ConstMatrixView<T> y, MatrixView<T> out) {
  check("score_function_term", x, y);
  detail::expect_contiguous<T>("bandit", "the score term's output", out, dim_y(), x.cols);
  Ops<T>& ops = exec_->template ops<T>();
  if (batch.full()) {
    // exact: the whole gradient is the score term's expectation
    upper(batch, y, true, out.data, out.ld, nullptr);
    return;
  }
  // out = estimate with the term - estimate without it (the same actions); the workspace is
  // allocated on the first call of a shape, not in every iteration
  Array<T>& without = kernels_->without;
  if (without.cols() < x.cols) without = Array<T>(exec_, dim_y(), x.cols);
  const MatrixView<T> w(without.data(), dim_y(), x.cols, dim_y());
  upper(batch, y, true, out.data, out.ld, nullptr);
  upper(batch, y, false, w.data, dim_y(), nullptr);
  ops.axpby(T(-1), w, T(1), out);
}

template <typename T>
void BanditAlignmentProblem<T>::values(const Batch& lower, const Batch& upper_batch,
                                       ConstMatrixView<T> x, ConstMatrixView<T> y, T* f_out,
                                       T* g_out) {
  (void)lower, (void)upper_batch;
  check("values", x, y);
  // f = KL(pi || p) exactly, g = sum pi (tau log pi - nu)
  if (f_out) upper(Batch{}, y, true, nullptr, dim_y(), f_out);
  if (g_out)
    kernels_->k->lower(shape<T>(spec_, x.cols), x.data, y.data, nullptr, nullptr, nullptr,
                       nullptr, g_out);
}

template class BanditAlignmentProblem<float>;
template class BanditAlignmentProblem<double>;

}  // namespace bilevel
