// Policy alignment (PARL / A-PARL, Chakraborty et al. 2023, arXiv 2308.02585) on batched
// tabular MDPs: one seeded gridworld per instance (issue #14 (b)). Formulas and the feedback
// model: kernels/common/gridworld.hpp.
//
//   x = nu (S state rewards: the designed reward), y = Q (4 S soft Q-values)
//   lower level: Q*(nu), the fixed point of the soft Bellman operator (entropy weight tau):
//                pi*(nu) = softmax(Q* / tau) is the optimal entropy-regularised policy for nu
//   upper level: F(nu) = E_{pairs ~ pi*(nu)} [ -log P_nu(answer) ], the Bradley-Terry
//                negative log-likelihood of simulated preferences between two trajectories of
//                the policy; the answers come from a true utility u that the designer's first
//                reward does not know. With utility feedback instead: F(nu) = -E_{pi*(nu)} U,
//                minus the true utility of the policy's trajectories as a person reports it
//
// The lower level is a root-finding problem, not a minimisation: grad_y_g returns the
// residual Q - T_nu Q (so an inner step of 1 is one sweep of soft value iteration) and hvp_jvp
// the transposed Jacobian products of that residual (equal to H v and J v when the residual
// is a gradient). Estimators that only apply the products and solve H' v = fy by a series
// (stocBiO's Neumann, the fixed-point iteration) give the implicit hypergradient
// fx + (dQ*/dnu)' fy; conjugate gradient assumes a symmetric H and does not apply
// (make_alignment_solver uses the Neumann series).
//
// Each instance is its own MDP: a goal cell (u = +1), two trap cells (u = -1), and a decoy
// cell where the designer's initial reward puts its +1 (initial_reward()): the policy of the
// first reward walks to the decoy, and the feedback must move it to the goal. The true
// utility of a policy is J = E_{s0 uniform} sum_t gamma^t u(s_t); evaluation reports it and
// (J - J_uniform) / (J* - J_uniform), 1 for an optimal policy, 0 for the uniform one.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

struct GridworldAlignmentSpec {
  index_t side = 5;          ///< the grid is side x side, 2 .. 8
  index_t horizon = 15;      ///< steps per feedback trajectory, 2 .. 64
  double gamma = 0.9;        ///< discount of the reward, the utility and the lower level
  double slip = 0.1;         ///< probability that a move is drawn uniformly instead
  double tau = 0.1;          ///< entropy weight of the lower level
  double beta = 1.0;         ///< temperature of the simulated preferences
  /// Preference pairs (Bradley-Terry; the default) or the trajectories' utilities reported
  /// directly (upper objective: minus the policy's expected utility; fx = 0).
  bool utility_feedback = false;
  /// The reward model: false, one reward per state (x = nu, S values: can express the true
  /// utility); true, a row score plus a column score (x = w, 2 side values, nu_s = w_row(s) +
  /// w_side+col(s)): a misspecified model that cannot single out the goal or the traps.
  bool row_column_reward = false;
  index_t instances = 1;     ///< gridworlds (one per instance), each drawn from the seed
  std::uint64_t seed = 0;
  /// With the score-function term (A-PARL) or without it (reward learning on the policy's
  /// data as if it were fixed).
  bool score_function_term = true;
  index_t feedback_population = index_t(1) << 24;  ///< pair streams the batches index
  index_t evaluation_pairs = 512;  ///< pairs behind values()' f (the same ones every call)
};

template <typename T>
class GridworldAlignmentProblem final : public Problem<T> {
 public:
  GridworldAlignmentProblem(std::shared_ptr<Executor> exec, GridworldAlignmentSpec spec);
  ~GridworldAlignmentProblem() override;

  std::string name() const override { return "policy-alignment gridworld"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return spec_.row_column_reward ? 2 * spec_.side : states(); }
  index_t dim_y() const override { return 4 * states(); }
  index_t states() const { return spec_.side * spec_.side; }
  index_t upper_samples() const override { return spec_.feedback_population; }
  bool supports_independent_batches() const override { return true; }
  bool upper_data_depend_on_y() const override { return true; }
  const GridworldAlignmentSpec& spec() const { return spec_; }

  /// Host copies, column-major: the true utility u (S x B) and the designer's first reward x
  /// (dim_x() x B: +1 on the decoy; with the row-column model +1/2 on its row and its column).
  const std::vector<double>& utility() const { return utility_; }
  const std::vector<double>& initial_reward() const { return initial_reward_; }
  /// The state rewards nu (S x B) of upper variables x (dim_x() x B).
  std::vector<double> state_reward(const std::vector<double>& x) const;
  /// Per instance: J of the optimal policy and of the uniform one.
  const std::vector<double>& optimal_utility() const { return j_star_; }
  const std::vector<double>& uniform_utility() const { return j_uniform_; }
  /// Q*(nu(x)) by soft value iteration to 1e-12 (host, double; x: dim_x() x B): the lower
  /// level's exact solution, used as the start of a run and by the tests.
  std::vector<double> soft_optimal_q(const std::vector<double>& x) const;
  /// The true utility J of softmax(Q / tau) per instance (host, double; q: 4 S x B).
  std::vector<double> true_utility(const std::vector<double>& q) const;
  /// (J - J_uniform) / (J* - J_uniform) per instance of utilities J (B values).
  std::vector<double> utility_ratio(const std::vector<double>& j) const;

  std::vector<std::string> evaluation_metric_names() const override {
    return {"true_utility", "utility_ratio"};
  }
  void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;

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
  /// nu = Phi x on the executor (x itself for state rewards).
  const T* reward(ConstMatrixView<T> x);
  /// out = Phi' g for g of S x B in nu_grad_ (a copy-free no-op for state rewards, where the
  /// kernels wrote out directly).
  T* nu_output(MatrixView<T> out);
  void to_x(MatrixView<T> out);
  void feedback(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                bool include_score, MatrixView<T> fx, T* fy, T* f);

  std::shared_ptr<Executor> exec_;
  GridworldAlignmentSpec spec_;
  std::vector<double> utility_, initial_reward_, j_star_, j_uniform_;
  Array<T> utility_dev_, j_star_dev_, j_uniform_dev_;
  Array<T> phi_, nu_, nu_grad_;  // row-column model: features (S x 2 side), nu, d/dnu (S x B)
  Array<std::int32_t> evaluation_pairs_;
  std::unique_ptr<Kernels> kernels_;
};

extern template class GridworldAlignmentProblem<float>;
extern template class GridworldAlignmentProblem<double>;

}  // namespace bilevel
