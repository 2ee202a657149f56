// The counterexample of BDA (Liu et al., arXiv 2006.04045): a lower
// level with many solutions.
//
//   x in R^n, y = (y1, y2) in R^2n (y1 first),
//   f(x, y) = 0.5 ||x - y2||^2 + 0.5 ||y1 - e||^2,   g(x, y) = 0.5 ||y1||^2 - x'y1.
//
// argmin_y g = {(x, y2): any y2}; the optimistic solution is x* = y1* = y2* = e with F* = 0.
// Methods that assume a unique lower-level solution never move y2 (grad_y2 g = 0) and stop at
// x = (e + y2_0) / 2. (The paper's box x in [-100, 100]^n is never active from the standard
// starts and is not applied.)
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>

namespace bilevel {

template <typename T>
class BdaCounterexample : public Problem<T> {
 public:
  BdaCounterexample(std::shared_ptr<Executor> exec, index_t n);

  std::string name() const override { return "bda-counterexample"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return n_; }
  index_t dim_y() const override { return 2 * n_; }

  void reserve(index_t instances, index_t max_batch) override;
  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_x_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  /// grad2_yy f = I; grad2_xy f v = -v2.
  void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

 protected:
  /// Rows [first, first + n) of a 2n x B view: y1 (first = 0) or y2 (first = n).
  MatrixView<T> block(MatrixView<T> y, index_t first) const;
  ConstMatrixView<T> block(ConstMatrixView<T> y, index_t first) const;

  std::shared_ptr<Executor> exec_;
  index_t n_;
  Array<T> ones_;     // n x B: e for every instance
  Array<T> tmp_;      // n x B
  Array<T> scalar_;   // B
  index_t reserved_ = 0;
};

/// The LV-HBA toy (Yao et al., arXiv 2401.16164; the authors'
/// Toy-example/LLC code): the same f, a lower level that is merely convex, and an equality
/// constraint coupling both levels:
///
///   g(x, y) = 0.5 ||y1||^2 - x'y1 + e'y2,   c(x, y) = e'x + e'y = 0.
///
/// Lower-level stationarity gives multiplier -1, y1 = x + e and e'y2 = -2 e'x - n; the
/// optimistic upper level then gives x* = -0.3 e, y1* = 0.7 e, y2* = -0.4 e. The joint
/// projection is onto the hyperplane e'x + e'y = 0.
template <typename T>
class LvHbaToy final : public BdaCounterexample<T> {
 public:
  LvHbaToy(std::shared_ptr<Executor> exec, index_t n) : BdaCounterexample<T>(std::move(exec), n) {}
  std::string name() const override { return "lv-hba-toy"; }

  void reserve(index_t instances, index_t max_batch) override;
  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;
  index_t constraint_count() const override { return 1; }
  bool constraints_are_equalities() const override { return true; }
  void constraint_values(ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> out) override;
  void constraint_vjp(ConstMatrixView<T> x, ConstMatrixView<T> y, ConstMatrixView<T> lambda,
                      MatrixView<T> gx, MatrixView<T> gy) override;
  /// Projection onto the hyperplane e'x + e'y = 0: (x, y) -= c / 3n (e, e).
  void project_joint(MatrixView<T> x, MatrixView<T> y) override;

 private:
  Array<T> ones_y_;   // 2n x B
  Array<T> sum_;      // B
  Array<T> violation_;// 1 x B
};

extern template class BdaCounterexample<float>;
extern template class BdaCounterexample<double>;
extern template class LvHbaToy<float>;
extern template class LvHbaToy<double>;

}  // namespace bilevel
