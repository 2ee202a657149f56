// Per-task quadratics: instance b solves the quadratic problem of task b (see
// problems/quadratic.hpp) with data of its own - M_b, B_b, xh_b - so that B instances
// are B different problems, as in multi-task and meta-learning workloads. Every product is one
// strided-batched GEMM over the tasks (Ops::gemm_strided_batched) instead of B GEMMs; minibatch
// rows are shared by the tasks (the same row indices of each task's M_b).
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>
#include <bilevel/problems/quadratic.hpp>

#include <memory>
#include <vector>

namespace bilevel {

template <typename T>
class PerTaskQuadraticProblem final : public Problem<T> {
 public:
  /// `task_data`: one QuadraticData per instance, all with the same dx, dy, n, mu and d.
  PerTaskQuadraticProblem(std::shared_ptr<Executor> exec, std::vector<QuadraticData> task_data);

  std::string name() const override { return "per-task quadratic"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return dx_; }
  index_t dim_y() const override { return dy_; }
  index_t lower_samples() const override { return n_; }
  index_t upper_samples() const override { return n_; }
  index_t tasks() const { return static_cast<index_t>(tasks_.size()); }
  const QuadraticData& task(index_t b) const { return tasks_.at(static_cast<std::size_t>(b)); }

  /// `instances` must be the number of tasks.
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
  /// out_b = A_b v_b = (1/|batch|) M_b[batch]' (M_b[batch] v_b) + mu v_b for every task b.
  void apply_hessian(const Batch& batch, ConstMatrixView<T> v, MatrixView<T> out);
  /// out_b = alpha op(B_b) in_b + beta out_b for every task b.
  void apply_coupling(Op op, T alpha, ConstMatrixView<T> in, T beta, MatrixView<T> out);
  void check_state(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;

  std::shared_ptr<Executor> exec_;
  std::vector<QuadraticData> tasks_;
  index_t dx_ = 0, dy_ = 0, n_ = 0;
  double mu_ = 1.0, d_ = 1.0;
  Array<T> m_;       // n x (dy B): task b's M in columns [b dy, (b + 1) dy)
  Array<T> b_;       // dx x (dy B): task b's B likewise
  Array<T> xh_;      // dx x B
  Array<T> rows_;    // workspace: gathered batch rows, max_batch x (dy B)
  Array<T> proj_;    // workspace: M_b v_b, n x B
  Array<T> tmp_y_;   // dy x B
  Array<T> tmp_x_;   // dx x B
  Array<T> scalar_;  // B
  index_t reserved_batch_ = 0;
  bool reserved_ = false;
};

extern template class PerTaskQuadraticProblem<float>;
extern template class PerTaskQuadraticProblem<double>;

}  // namespace bilevel
