// benchopt's quadratics (benchmark_bilevel's datasets/simulated.py and
// benchmark_utils/gen_matrices.py, 3ad65dc): both levels are means of per-sample quadratics
//   h_i(y, x) = 1/2 y' Hyy_i y + 1/2 x' Hxx_i x + x' C_i y + ly_i' y + lx_i' x
// with dense per-sample matrices (g over n_inner samples, f over n_outer), so that a minibatch
// draws whole matrices. The closed forms come from the full means: y*(x) solves
// Hyy_g y = -(C_g' x + ly_g), x* zeroes grad F, and benchopt's metric is ||grad F(x)||^2.
//
// On the executor each level is one matrix with a column per sample, the sample's Hyy, Hxx, C
// (column-major), ly and lx stacked: a minibatch's mean is a column gather and one GEMM with
// ones / s, and every oracle is then GEMMs with that mean. Both backends run the same code.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

/// One level's samples, in double on the host; sample i's values at i times their size,
/// matrices column-major: hyy (dy x dy), hxx (dx x dx), cross C (dx x dy), ly (dy), lx (dx).
struct FiniteSumQuadraticLevel {
  index_t n = 0;
  std::vector<double> hyy, hxx, cross, ly, lx;
};

struct FiniteSumQuadraticData {
  index_t dx = 0, dy = 0;
  FiniteSumQuadraticLevel inner;  ///< g
  FiniteSumQuadraticLevel outer;  ///< f

  /// A file that bench/compare/benchopt_quadratic_data.py writes from benchopt's generator:
  /// "BLQUAD01", then dx, dy, n_inner, n_outer as little-endian uint64, then the inner and the
  /// outer level's hyy, hxx, cross, ly, lx as little-endian float64, each sample's matrices
  /// column-major. Throws InvalidArgument naming the file and what is wrong (size, a value
  /// that is not finite, a Hyy that is not symmetric, a lower level that is not strongly
  /// convex); nothing is read past what the header announces.
  static FiniteSumQuadraticData read(const std::string& path);
  void write(const std::string& path) const;

  /// benchopt's recipe at small scale, with this library's random numbers (not its JAX draws):
  /// Hyy_i = z z' with z ~ N(0, A^2), A with spectrum sqrt(logspace(mu, 1)) (Hxx_i alike, one
  /// zero eigenvalue), C_i rank one, ly_i and lx_i N(0, 1); regenerated (as benchopt) until the
  /// value function is strongly convex.
  static FiniteSumQuadraticData random(index_t dx, index_t dy, index_t n_inner, index_t n_outer,
                                       double mu, std::uint64_t seed);

  /// Throws InvalidArgument naming the first inconsistency.
  void validate() const;

  /// The full-batch means of one level, packed as on the executor: [hyy | hxx | cross | ly | lx].
  std::vector<double> mean(const FiniteSumQuadraticLevel& level) const;
  /// Rows of one packed sample: dy^2 + dx^2 + dx dy + dy + dx.
  index_t packed_rows() const { return dy * dy + dx * dx + dx * dy + dy + dx; }

  /// y*(x) = -Hyy_g^{-1} (C_g' x + ly_g), with the full means.
  std::vector<double> solution_y(const std::vector<double>& x) const;
  /// grad F(x) = grad_x f + J' grad_y f at y*(x), with J = dy*/dx = -Hyy_g^{-1} C_g'.
  std::vector<double> hypergradient(const std::vector<double>& x) const;
  /// The Hessian of F (dx x dx): J' Hf_yy J + Hf_xx + C_f J + (C_f J)'.
  std::vector<double> value_function_hessian() const;
  /// The x with grad F(x) = 0 (F is quadratic: one solve with its Hessian).
  std::vector<double> solution_x() const;
  /// Smallest and largest eigenvalues of the mean Hyy of g.
  std::pair<double, double> lower_hessian_spectrum() const;
};

template <typename T>
class FiniteSumQuadraticProblem final : public Problem<T> {
 public:
  FiniteSumQuadraticProblem(std::shared_ptr<Executor> exec, const FiniteSumQuadraticData& data);

  std::string name() const override { return "finite-sum quadratic"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return dx_; }
  index_t dim_y() const override { return dy_; }
  index_t lower_samples() const override { return levels_[0].n; }
  index_t upper_samples() const override { return levels_[1].n; }
  bool supports_independent_batches() const override { return true; }
  /// benchopt's metric at every evaluation: ||grad F(x)||^2 = ||G x + grad F(0)||^2 with the
  /// closed form's G (value_function_hessian), per instance.
  std::vector<std::string> evaluation_metric_names() const override {
    return {"hypergradient_norm_squared"};
  }
  void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;

  void reserve(index_t instances, index_t max_batch) override;
  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_x_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

 private:
  struct Level {
    index_t n = 0;
    Array<T> packed;  ///< packed_rows x n: a column per sample
    Array<T> full;    ///< packed_rows x 1: the full mean
  };
  /// Where one instance's (or every instance's) batch mean lives: stride 0 when all share one.
  struct Means {
    const T* data = nullptr;
    index_t stride = 0;
  };
  Means batch_means(int level, const Batch& batch, index_t instances);
  /// out = alpha op(M) in + beta out for the block of the means at `offset` (rows x cols,
  /// column-major), per instance when each has its own mean.
  void apply(const Means& m, index_t offset, index_t rows, index_t cols, Op op, T alpha,
             ConstMatrixView<T> in, T beta, MatrixView<T> out);
  /// out += the vector of the means at `offset` (rows), in every instance's column.
  void add_vector(const Means& m, index_t offset, index_t rows, MatrixView<T> out);
  /// grad_y (gy) and grad_x (gx) of one level's mean quadratic; either may be empty.
  void gradients(const Means& m, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> gx,
                 MatrixView<T> gy);
  /// hv = Hyy v and jv = C v of one level (0: g, 1: f) on `batch`; either may be empty.
  void second_order(int level, const Batch& batch, index_t instances, ConstMatrixView<T> v,
                    MatrixView<T> hv, MatrixView<T> jv);
  void level_values(const Means& m, ConstMatrixView<T> x, ConstMatrixView<T> y, T* out);
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;

  std::shared_ptr<Executor> exec_;
  index_t dx_ = 0, dy_ = 0, rows_ = 0;
  index_t off_hxx_ = 0, off_cross_ = 0, off_ly_ = 0, off_lx_ = 0;
  Level levels_[2];
  index_t reserved_instances_ = 0, reserved_batch_ = 0;
  Array<T> gathered_, means_, ones_, tmp_y_, tmp_x_, dots_;
  Array<T> value_hessian_, gradient_at_zero_;  ///< G and grad F(0), for the metric
};

extern template class FiniteSumQuadraticProblem<float>;
extern template class FiniteSumQuadraticProblem<double>;

}  // namespace bilevel
