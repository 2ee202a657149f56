// The BDA counterexample's oracles, in the kernel set (both backends).
#include <bilevel/problems/bda_counterexample.hpp>

namespace bilevel {

template <typename T>
BdaCounterexample<T>::BdaCounterexample(std::shared_ptr<Executor> exec, index_t n)
    : exec_(std::move(exec)), n_(n) {
  BILEVEL_EXPECTS(exec_ != nullptr, "BdaCounterexample needs an executor");
  BILEVEL_EXPECTS(n > 0, "bda-counterexample: n must be > 0, got " << n);
}

template <typename T>
void BdaCounterexample<T>::reserve(index_t instances, index_t) {
  if (instances <= reserved_) return;
  reserved_ = instances;
  ones_ = Array<T>(exec_, n_, instances);
  tmp_ = Array<T>(exec_, n_, instances);
  scalar_ = Array<T>(exec_, instances, 1);
  exec_->ops<T>().fill(ones_.view(), T(1));
}

template <typename T>
MatrixView<T> BdaCounterexample<T>::block(MatrixView<T> y, index_t first) const {
  return MatrixView<T>(y.data + first, n_, y.cols, y.ld);
}
template <typename T>
ConstMatrixView<T> BdaCounterexample<T>::block(ConstMatrixView<T> y, index_t first) const {
  return ConstMatrixView<T>(y.data + first, n_, y.cols, y.ld);
}

template <typename T>
void BdaCounterexample<T>::grad_y_g(const Batch&, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                    MatrixView<T> out) {
  BILEVEL_EXPECTS(x.cols <= reserved_, "bda-counterexample: call reserve first");
  Ops<T>& ops = exec_->ops<T>();
  // gy1 = y1 - x; gy2 = 0
  ops.copy(block(y, 0), block(out, 0));
  ops.axpby(T(-1), x, T(1), block(out, 0));
  ops.fill(block(out, n_), T(0));
}

template <typename T>
void BdaCounterexample<T>::grad_x_g(const Batch&, ConstMatrixView<T>, ConstMatrixView<T> y,
                                    MatrixView<T> out) {
  // gx = -y1
  exec_->ops<T>().axpby(T(-1), block(y, 0), T(0), out);
}

template <typename T>
void BdaCounterexample<T>::grad_f(const Batch&, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  MatrixView<T> fx, MatrixView<T> fy) {
  BILEVEL_EXPECTS(x.cols <= reserved_, "bda-counterexample: call reserve first");
  Ops<T>& ops = exec_->ops<T>();
  const ConstMatrixView<T> e(ones_.data(), n_, x.cols);
  // fx = x - y2
  ops.copy(x, fx);
  ops.axpby(T(-1), block(y, n_), T(1), fx);
  // fy1 = y1 - e; fy2 = y2 - x
  ops.copy(block(y, 0), block(fy, 0));
  ops.axpby(T(-1), e, T(1), block(fy, 0));
  ops.copy(block(y, n_), block(fy, n_));
  ops.axpby(T(-1), x, T(1), block(fy, n_));
}

template <typename T>
void BdaCounterexample<T>::hvp_jvp(const Batch&, ConstMatrixView<T>, ConstMatrixView<T>,
                                   ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  Ops<T>& ops = exec_->ops<T>();
  // H v = (v1, 0)
  if (!hv.empty()) {
    ops.copy(block(v, 0), block(hv, 0));
    ops.fill(block(hv, n_), T(0));
  }
  // J v = -v1
  if (!jv.empty()) ops.axpby(T(-1), block(v, 0), T(0), jv);
}

template <typename T>
void BdaCounterexample<T>::hvp_jvp_f(const Batch&, ConstMatrixView<T>, ConstMatrixView<T>,
                                     ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  Ops<T>& ops = exec_->ops<T>();
  // H_f v = v
  if (!hv.empty()) ops.copy(v, hv);
  // J_f v = grad_x <(y1 - e, y2 - x), v> = -v2
  if (!jv.empty()) ops.axpby(T(-1), block(v, n_), T(0), jv);
}

template <typename T>
void BdaCounterexample<T>::values(const Batch&, const Batch&, ConstMatrixView<T> x,
                                  ConstMatrixView<T> y, T* f_out, T* g_out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols;
  MatrixView<T> d(tmp_.data(), n_, nb);
  const ConstMatrixView<T> e(ones_.data(), n_, nb);
  MatrixView<T> s(scalar_.data(), nb, 1);
  if (f_out != nullptr) {
    MatrixView<T> f(f_out, nb, 1);
    // f = ||x - y2||^2
    ops.copy(x, d);
    ops.axpby(T(-1), block(y, n_), T(1), d);
    ops.batch_dot(d, d, f_out);
    // s = ||y1 - e||^2;  f = 0.5 f + 0.5 s
    ops.copy(block(y, 0), d);
    ops.axpby(T(-1), e, T(1), d);
    ops.batch_dot(d, d, s.data);
    ops.axpby(T(0.5), s, T(0.5), f);
  }
  if (g_out != nullptr) {
    MatrixView<T> g(g_out, nb, 1);
    // g = ||y1||^2;  s = x'y1;  g = 0.5 g - s
    ops.batch_dot(block(y, 0), block(y, 0), g_out);
    ops.batch_dot(x, block(y, 0), s.data);
    ops.axpby(T(-1), s, T(0.5), g);
  }
}

template <typename T>
void LvHbaToy<T>::reserve(index_t instances, index_t max_batch) {
  BdaCounterexample<T>::reserve(instances, max_batch);
  if (ones_y_.cols() >= instances) return;
  ones_y_ = Array<T>(this->exec_, 2 * this->n_, instances);
  sum_ = Array<T>(this->exec_, instances, 1);
  violation_ = Array<T>(this->exec_, 1, instances);
  this->exec_->template ops<T>().fill(ones_y_.view(), T(1));
}

template <typename T>
void LvHbaToy<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                           MatrixView<T> out) {
  // gy1 = y1 - x (as the counterexample); gy2 = e
  BdaCounterexample<T>::grad_y_g(batch, x, y, out);
  this->exec_->template ops<T>().fill(this->block(out, this->n_), T(1));
}

template <typename T>
void LvHbaToy<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                         ConstMatrixView<T> y, T* f_out, T* g_out) {
  BdaCounterexample<T>::values(lower, upper, x, y, f_out, g_out);
  if (g_out == nullptr) return;
  Ops<T>& ops = this->exec_->template ops<T>();
  const index_t nb = x.cols;
  // g += e'y2
  ops.batch_dot(this->block(y, this->n_), ConstMatrixView<T>(ones_y_.data(), this->n_, nb),
                sum_.data());
  ops.axpby(T(1), ConstMatrixView<T>(sum_.data(), nb, 1), T(1), MatrixView<T>(g_out, nb, 1));
}

template <typename T>
void LvHbaToy<T>::constraint_values(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                    MatrixView<T> out) {
  BILEVEL_EXPECTS(out.rows == 1 && out.cols == x.cols && out.ld == 1,
                  "lv-hba-toy: constraint values are 1 x B, got " << out.rows << " x " << out.cols);
  Ops<T>& ops = this->exec_->template ops<T>();
  const index_t nb = x.cols;
  // c = e'x + e'y
  ops.batch_dot(x, ConstMatrixView<T>(ones_y_.data(), this->n_, nb, 2 * this->n_), out.data);
  ops.batch_dot(y, ConstMatrixView<T>(ones_y_.data(), 2 * this->n_, nb), sum_.data());
  ops.axpby(T(1), ConstMatrixView<T>(sum_.data(), nb, 1), T(1), MatrixView<T>(out.data, nb, 1));
}

template <typename T>
void LvHbaToy<T>::constraint_vjp(ConstMatrixView<T>, ConstMatrixView<T>,
                                 ConstMatrixView<T> lambda, MatrixView<T> gx, MatrixView<T> gy) {
  BILEVEL_EXPECTS(lambda.rows == 1 && lambda.ld == 1, "lv-hba-toy: lambda must be 1 x B");
  Ops<T>& ops = this->exec_->template ops<T>();
  // grad_x c' lambda = lambda e;  grad_y c' lambda = lambda e
  if (!gx.empty()) {
    ops.fill(gx, T(0));
    ops.batch_axpy(T(1), lambda.data,
                   ConstMatrixView<T>(ones_y_.data(), this->n_, gx.cols, 2 * this->n_), gx);
  }
  if (!gy.empty()) {
    ops.fill(gy, T(0));
    ops.batch_axpy(T(1), lambda.data, ConstMatrixView<T>(ones_y_.data(), 2 * this->n_, gy.cols), gy);
  }
}

template <typename T>
void LvHbaToy<T>::project_joint(MatrixView<T> x, MatrixView<T> y) {
  Ops<T>& ops = this->exec_->template ops<T>();
  const index_t nb = x.cols, n = this->n_;
  MatrixView<T> v(violation_.data(), 1, nb, 1);
  // v = c(x, y) = e'x + e'y
  constraint_values(x, y, v);
  // (x, y) -= v / 3n (e, e)
  ops.batch_axpy(T(-1) / static_cast<T>(3 * n), v.data,
                 ConstMatrixView<T>(ones_y_.data(), n, nb, 2 * n), x);
  ops.batch_axpy(T(-1) / static_cast<T>(3 * n), v.data,
                 ConstMatrixView<T>(ones_y_.data(), 2 * n, nb), y);
}

template class BdaCounterexample<float>;
template class BdaCounterexample<double>;
template class LvHbaToy<float>;
template class LvHbaToy<double>;

}  // namespace bilevel
