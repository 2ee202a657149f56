// The strongly convex quadratic test problem, with closed-form answers.
//
//   g(x, y) = (1/n) sum_i 0.5 (m_i' y)^2 + 0.5 mu ||y||^2 - x' B y       (lower level)
//   f(x, y) = (1/n) sum_i 0.5 (m_i' y)^2 + 0.5 mu ||y||^2 + 0.5 d ||x - xh||^2   (upper level)
//
// so that A = grad2_yy g = M'M/n + mu I (M: n x dy, rows m_i), B: dx x dy, D = d I, and
//   y*(x) = A^{-1} B' x,   grad F(x) = B A^{-1} B' x + d (x - xh),
//   x*    = (B A^{-1} B' + d I)^{-1} d xh.
// A minibatch of rows gives the stochastic version (unbiased for gy, fy, Hv; J = -B is exact).
// With n = 0 the problem is deterministic with A = mu I. The unrolled version (ITD) has the
// closed form of `QuadraticData::itd_hypergradient`.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace bilevel {

/// The data of a quadratic problem, in double on the host, with its closed forms.
struct QuadraticData {
  index_t dx = 0;
  index_t dy = 0;
  index_t n = 0;              ///< rows of M (samples); 0: A = mu I
  std::vector<double> m;      ///< n x dy, column-major
  std::vector<double> b;      ///< dx x dy, column-major
  double mu = 1.0;            ///< ridge of A
  double d = 1.0;             ///< D = d I
  std::vector<double> xh;     ///< dx

  /// Seeded random instance: M with N(0, 1) entries, B with N(0, 1/dy), xh with N(0, 1).
  static QuadraticData random(index_t dx, index_t dy, index_t n, std::uint64_t seed,
                              double mu = 0.5, double d = 1.0);
  /// A = B = D = I (dx = dy = dim), xh = e: the answer is x* = 0.5 e.
  static QuadraticData identity(index_t dim);

  /// Throws InvalidArgument naming the first inconsistency.
  void validate() const;
  /// A = M'M/n + mu I (dy x dy, column-major).
  std::vector<double> lower_hessian() const;
  std::vector<double> solution_x() const;
  std::vector<double> solution_y(const std::vector<double>& x) const;
  /// grad F(x) = B A^{-1} B' x + d (x - xh).
  std::vector<double> hypergradient(const std::vector<double>& x) const;
  /// The gradient that ITD computes by differentiating f(x, y_D(x)) through `steps` full-batch
  /// steps y <- y - alpha (A y - B' x) from y_0 = 0: with P = (I - alpha A)^steps,
  /// y_D = (I - P) A^{-1} B' x and the gradient is d (x - xh) + B A^{-1} (I - P) A y_D.
  std::vector<double> itd_hypergradient(const std::vector<double>& x, double alpha,
                                        index_t steps) const;
  /// Smallest and largest eigenvalues of A (mu-strong convexity and L-smoothness of g in y).
  std::pair<double, double> lower_hessian_spectrum() const;
};

template <typename T>
class QuadraticProblem final : public Problem<T> {
 public:
  QuadraticProblem(std::shared_ptr<Executor> exec, QuadraticData data);
  /// Data-parallel: this rank keeps only its shard of the n rows of M (comm->shard(n)); every
  /// sum over samples is a partial sum all-reduced over the ranks, so that every rank sees the
  /// oracles of the whole problem. Needs n >= the number of ranks.
  QuadraticProblem(std::shared_ptr<Executor> exec, QuadraticData data,
                   std::shared_ptr<Communicator> comm);

  std::string name() const override { return "quadratic"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return data_.dx; }
  index_t dim_y() const override { return data_.dy; }
  index_t lower_samples() const override { return data_.n; }
  index_t upper_samples() const override { return data_.n; }
  const QuadraticData& data() const { return data_; }
  bool supports_independent_batches() const override { return true; }
  bool capturable() const override { return comm_->capturable(); }
  const Communicator& communicator() const { return *comm_; }

  void reserve(index_t instances, index_t max_batch) override;
  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_x_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  /// f's Hessian in y is A_b as g's; f has no x-y coupling: J_f = 0.
  void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

 private:
  /// out = A_batch v = (1/|b|) M_b' (M_b v) + mu v.
  void apply_hessian(const Batch& batch, ConstMatrixView<T> v, MatrixView<T> out);
  /// The same with one index set per instance (Batch::independent()).
  void apply_hessian_independent(const Batch& batch, ConstMatrixView<T> v, MatrixView<T> out);
  /// A 1 x instances row of ones: broadcasts a vector over instances through GEMM.
  ConstMatrixView<T> ones(index_t instances) const;
  void check_state(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;

  /// out = (1/s) M_b' (M_b v) summed over the ranks, then + mu v (sharded runs).
  void apply_hessian_sharded(const Batch& batch, ConstMatrixView<T> v, MatrixView<T> out);

  std::shared_ptr<Executor> exec_;
  QuadraticData data_;
  std::shared_ptr<Communicator> comm_;
  Shard shard_;      // this rank's rows of M: [shard_.begin, shard_.end)
  Array<T> m_;       // shard rows x dy (all n rows on one rank)
  Array<T> b_;       // dx x dy
  Array<T> xh_;      // dx x 1
  Array<T> rows_;    // workspace: gathered batch rows, max_batch x dy (independent batches:
                     // instance b's s x dy block at b s dy)
  Array<T> proj_;    // workspace: M_b v, max_batch x B
  Array<T> tmp_y_;   // workspace: dy x B
  Array<T> tmp_x_;   // workspace: dx x B
  Array<T> scalar_;  // workspace: B
  Array<T> ones_;    // 1 x B
  index_t reserved_instances_ = 0;
  index_t reserved_batch_ = 0;
};

extern template class QuadraticProblem<float>;
extern template class QuadraticProblem<double>;

}  // namespace bilevel
