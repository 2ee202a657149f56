// Policy alignment (PARL / A-PARL, Chakraborty et al. 2023, arXiv 2308.02585) on its smallest
// honest instance: an entropy-regularised bandit. The upper
// level designs a reward r_nu(a) = nu_a over A actions; the lower level is the policy that is
// optimal for it, pi*(nu) = softmax(nu / tau); the upper objective is measured on actions
// drawn from that policy - its data distribution depends on the lower-level variable:
//
//   x = nu (A), y = theta (A - 1 logits; the last action's logit is 0), pi = softmax(theta, 0)
//   g(nu, theta) = sum_a pi_a (tau log pi_a - nu_a)
//   f(theta) = E_{a ~ pi_theta}[log pi_a - log p_a] = KL(pi || p)   (p: the target behaviour)
//
// so F(nu) = KL(softmax(nu / tau) || p), minimised by nu* = tau log p + const (the reward is
// defined up to a constant). grad_theta f needs the score-function term of the sampling
// distribution; the baseline that ignores the dependence drops it (and, here, learns nothing:
// what is left has mean zero). Upper-level batches are feedback samples: index i of a batch
// drawn from `feedback_population` values is the uniform (i + 0.5) / population that picks an
// action by inverse CDF; full batches use exact expectations. Kernels: kernels/bandit_kernels.hpp.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bilevel {

struct BanditAlignmentSpec {
  index_t actions = 10;    ///< A, 2 .. 64
  double tau = 0.5;        ///< entropy weight
  std::vector<double> target;  ///< p (A positive values; normalised); empty: drawn from seed
  std::uint64_t seed = 0;
  /// With the score-function term (A-PARL) or without it (reward learning that ignores the
  /// dependence of the data on the policy).
  bool score_function_term = true;
  index_t feedback_population = index_t(1) << 24;  ///< resolution of the feedback draws
};

template <typename T>
class BanditAlignmentProblem final : public Problem<T> {
 public:
  BanditAlignmentProblem(std::shared_ptr<Executor> exec, BanditAlignmentSpec spec);
  ~BanditAlignmentProblem() override;

  std::string name() const override { return "policy-alignment bandit"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return spec_.actions; }
  index_t dim_y() const override { return spec_.actions - 1; }
  index_t upper_samples() const override { return spec_.feedback_population; }
  bool supports_independent_batches() const override { return true; }
  bool upper_depends_on_x() const override { return false; }
  bool upper_data_depend_on_y() const override { return true; }
  const BanditAlignmentSpec& spec() const { return spec_; }
  /// The target p (normalised) and the optimal reward nu* = tau (log p - mean log p).
  const std::vector<double>& target() const { return target_; }
  std::vector<double> optimal_reward() const;
  /// F(nu) = KL(softmax(nu / tau) || p), on the host.
  double upper_objective(const std::vector<double>& nu) const;

  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;
  void score_function_term(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                           MatrixView<T> out) override;

 private:
  struct Kernels;
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;
  void upper(const Batch& batch, ConstMatrixView<T> y, bool include_score, T* fy, index_t ldfy,
             T* f);

  std::shared_ptr<Executor> exec_;
  BanditAlignmentSpec spec_;
  std::vector<double> target_;
  Array<T> log_p_;
  std::unique_ptr<Kernels> kernels_;
};

extern template class BanditAlignmentProblem<float>;
extern template class BanditAlignmentProblem<double>;

}  // namespace bilevel
