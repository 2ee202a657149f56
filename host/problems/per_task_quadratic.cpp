// Per-task quadratics (problems/per_task_quadratic.hpp): the quadratic problem's oracles with
// every product over the tasks as one strided-batched GEMM.
#include <bilevel/problems/per_task_quadratic.hpp>

#include <algorithm>

namespace bilevel {

template <typename T>
PerTaskQuadraticProblem<T>::PerTaskQuadraticProblem(std::shared_ptr<Executor> exec,
                                                    std::vector<QuadraticData> task_data)
    : exec_(std::move(exec)), tasks_(std::move(task_data)) {
  BILEVEL_EXPECTS(exec_ != nullptr, "PerTaskQuadraticProblem needs an executor");
  BILEVEL_EXPECTS(!tasks_.empty(), "per-task quadratic: no tasks given");
  const QuadraticData& t0 = tasks_.front();
  dx_ = t0.dx, dy_ = t0.dy, n_ = t0.n, mu_ = t0.mu, d_ = t0.d;
  const index_t nt = tasks();
  std::vector<T> m(static_cast<std::size_t>(n_ * dy_ * nt)), b(static_cast<std::size_t>(dx_ * dy_ * nt)),
      xh(static_cast<std::size_t>(dx_ * nt));
  for (index_t t = 0; t < nt; ++t) {
    const QuadraticData& q = tasks_[static_cast<std::size_t>(t)];
    q.validate();
    BILEVEL_EXPECTS(q.dx == dx_ && q.dy == dy_ && q.n == n_ && q.mu == mu_ && q.d == d_,
                    "per-task quadratic: task " << t << " has dx, dy, n, mu, d = " << q.dx << ", "
                                                << q.dy << ", " << q.n << ", " << q.mu << ", "
                                                << q.d << "; task 0 has " << dx_ << ", " << dy_
                                                << ", " << n_ << ", " << mu_ << ", " << d_);
    std::copy(q.m.begin(), q.m.end(), m.begin() + t * n_ * dy_);
    std::copy(q.b.begin(), q.b.end(), b.begin() + t * dx_ * dy_);
    std::copy(q.xh.begin(), q.xh.end(), xh.begin() + t * dx_);
  }
  if (n_ > 0) m_ = Array<T>(exec_, n_, dy_ * nt, m);
  b_ = Array<T>(exec_, dx_, dy_ * nt, b);
  xh_ = Array<T>(exec_, dx_, nt, xh);
}

template <typename T>
void PerTaskQuadraticProblem<T>::reserve(index_t instances, index_t max_batch) {
  BILEVEL_EXPECTS(instances == tasks(), "per-task quadratic: " << instances
                                            << " instances for " << tasks()
                                            << " tasks (one instance per task)");
  max_batch = std::min(std::max<index_t>(max_batch, 0), n_);
  if (reserved_ && max_batch <= reserved_batch_) return;
  reserved_ = true;
  reserved_batch_ = std::max(reserved_batch_, max_batch);
  const index_t nt = tasks();
  tmp_y_ = Array<T>(exec_, dy_, nt);
  tmp_x_ = Array<T>(exec_, dx_, nt);
  scalar_ = Array<T>(exec_, nt, 1);
  if (n_ > 0) {
    rows_ = Array<T>(exec_, std::max<index_t>(reserved_batch_, 1), dy_ * nt);
    proj_ = Array<T>(exec_, n_, nt);
  }
}

template <typename T>
void PerTaskQuadraticProblem<T>::check_state(const char* oracle, ConstMatrixView<T> x,
                                             ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dx_ && y.rows == dy_ && x.cols == tasks() && y.cols == tasks() &&
                      x.ld == dx_ && y.ld == dy_,
                  "per-task quadratic " << oracle << ": x must be a contiguous " << dx_ << " x "
                                        << tasks() << " and y " << dy_ << " x " << tasks()
                                        << ", got " << x.rows << " x " << x.cols << " and "
                                        << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(reserved_, "per-task quadratic " << oracle << ": call reserve first");
}

template <typename T>
void PerTaskQuadraticProblem<T>::apply_hessian(const Batch& batch, ConstMatrixView<T> v,
                                               MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nt = tasks();
  // out = mu v
  ops.axpby(static_cast<T>(mu_), v, T(0), out);
  if (n_ == 0) return;
  ConstMatrixView<T> rows = m_.view();
  index_t s = n_;
  if (!batch.full() && batch.size < n_) {
    s = batch.size;
    BILEVEL_EXPECTS(batch.population <= n_, "per-task quadratic: a batch drawn from "
                                                << batch.population << " samples used on " << n_);
    BILEVEL_EXPECTS(s > 0 && s <= reserved_batch_,
                    "per-task quadratic: batch of " << s << " samples but workspace for "
                                                    << reserved_batch_ << " (call reserve first)");
    MatrixView<T> gathered(rows_.data(), s, dy_ * nt, rows_.rows());
    // M_b[batch] for every task: one gather over all tasks' columns
    ops.gather_rows(m_.view(), batch.indices, gathered);
    rows = gathered;
  }
  const index_t ld = rows.ld;
  MatrixView<T> proj(proj_.data(), s, 1, proj_.rows());
  // proj_b = M_b[batch] v_b
  ops.gemm_strided_batched(Op::none, Op::none, T(1), ConstMatrixView<T>(rows.data, s, dy_, ld),
                           ld * dy_, ConstMatrixView<T>(v.data, dy_, 1, v.ld), v.ld, T(0), proj,
                           proj_.rows(), nt);
  // out_b += (1/s) M_b[batch]' proj_b
  ops.gemm_strided_batched(Op::transpose, Op::none, T(1) / static_cast<T>(s),
                           ConstMatrixView<T>(rows.data, s, dy_, ld), ld * dy_, proj,
                           proj_.rows(), T(1), MatrixView<T>(out.data, dy_, 1, out.ld), out.ld,
                           nt);
}

template <typename T>
void PerTaskQuadraticProblem<T>::apply_coupling(Op op, T alpha, ConstMatrixView<T> in, T beta,
                                                MatrixView<T> out) {
  // out_b = alpha op(B_b) in_b + beta out_b
  exec_->ops<T>().gemm_strided_batched(op, Op::none, alpha, ConstMatrixView<T>(b_.data(), dx_, dy_, dx_),
                                       dx_ * dy_, ConstMatrixView<T>(in.data, in.rows, 1, in.ld),
                                       in.ld, beta, MatrixView<T>(out.data, out.rows, 1, out.ld),
                                       out.ld, tasks());
}

template <typename T>
void PerTaskQuadraticProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                          ConstMatrixView<T> y, MatrixView<T> out) {
  check_state("grad_y_g", x, y);
  // out_b = A_b y_b - B_b' x_b
  apply_hessian(batch, y, out);
  apply_coupling(Op::transpose, T(-1), x, T(1), out);
}

template <typename T>
void PerTaskQuadraticProblem<T>::grad_x_g(const Batch&, ConstMatrixView<T> x,
                                          ConstMatrixView<T> y, MatrixView<T> out) {
  check_state("grad_x_g", x, y);
  // out_b = -B_b y_b
  apply_coupling(Op::none, T(-1), y, T(0), out);
}

template <typename T>
void PerTaskQuadraticProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x,
                                        ConstMatrixView<T> y, MatrixView<T> fx,
                                        MatrixView<T> fy) {
  check_state("grad_f", x, y);
  Ops<T>& ops = exec_->ops<T>();
  // fx_b = d (x_b - xh_b)
  ops.copy(x, fx);
  ops.axpby(static_cast<T>(-d_), xh_.view(), static_cast<T>(d_), fx);
  // fy_b = A_b y_b
  apply_hessian(batch, y, fy);
}

template <typename T>
void PerTaskQuadraticProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y, ConstMatrixView<T> v,
                                         MatrixView<T> hv, MatrixView<T> jv) {
  check_state("hvp_jvp", x, y);
  BILEVEL_EXPECTS(v.rows == dy_ && v.cols == tasks(),
                  "per-task quadratic hvp_jvp: v must be " << dy_ << " x " << tasks());
  // hv_b = A_b v_b
  if (!hv.empty()) apply_hessian(batch, v, hv);
  // jv_b = -B_b v_b
  if (!jv.empty()) apply_coupling(Op::none, T(-1), v, T(0), jv);
}

template <typename T>
void PerTaskQuadraticProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x,
                                           ConstMatrixView<T> y, ConstMatrixView<T> v,
                                           MatrixView<T> hv, MatrixView<T> jv) {
  check_state("hvp_jvp_f", x, y);
  // hv_b = A_b v_b; f has no x-y coupling
  if (!hv.empty()) apply_hessian(batch, v, hv);
  if (!jv.empty()) exec_->ops<T>().fill(jv, T(0));
}

template <typename T>
void PerTaskQuadraticProblem<T>::values(const Batch& lower, const Batch& upper,
                                        ConstMatrixView<T> x, ConstMatrixView<T> y, T* f_out,
                                        T* g_out) {
  check_state("values", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nt = tasks();
  MatrixView<T> ay = tmp_y_.view(), bty = tmp_x_.view();
  T* s = scalar_.data();
  if (f_out != nullptr) {
    MatrixView<T> f(f_out, nt, 1);
    // f_b = y_b' A_b y_b
    apply_hessian(upper, y, ay);
    ops.batch_dot(y, ay, f_out);
    // s_b = ||x_b - xh_b||^2;  f = 0.5 f + 0.5 d s
    ops.copy(x, bty);
    ops.axpby(T(-1), xh_.view(), T(1), bty);
    ops.batch_dot(bty, bty, s);
    ops.axpby(static_cast<T>(0.5 * d_), MatrixView<T>(s, nt, 1), T(0.5), f);
  }
  if (g_out != nullptr) {
    MatrixView<T> g(g_out, nt, 1);
    // g_b = y_b' A_b y_b
    apply_hessian(lower, y, ay);
    ops.batch_dot(y, ay, g_out);
    // s_b = x_b' B_b y_b;  g = 0.5 g - s
    apply_coupling(Op::none, T(1), y, T(0), bty);
    ops.batch_dot(x, bty, s);
    ops.axpby(T(-1), MatrixView<T>(s, nt, 1), T(0.5), g);
  }
}

template class PerTaskQuadraticProblem<float>;
template class PerTaskQuadraticProblem<double>;

}  // namespace bilevel
