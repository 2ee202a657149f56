// benchopt's quadratics on the executor: a minibatch's mean of the packed per-sample columns
// (gather + one GEMM), then GEMMs with blocks of that mean. See problems/finite_sum_quadratic.hpp.
#include <bilevel/problems/finite_sum_quadratic.hpp>

#include <algorithm>

namespace bilevel {

template <typename T>
FiniteSumQuadraticProblem<T>::FiniteSumQuadraticProblem(std::shared_ptr<Executor> exec,
                                                        const FiniteSumQuadraticData& data)
    : exec_(std::move(exec)), dx_(data.dx), dy_(data.dy), rows_(data.packed_rows()) {
  BILEVEL_EXPECTS(exec_ != nullptr, "FiniteSumQuadraticProblem needs an executor");
  data.validate();
  off_hxx_ = dy_ * dy_;
  off_cross_ = off_hxx_ + dx_ * dx_;
  off_ly_ = off_cross_ + dx_ * dy_;
  off_lx_ = off_ly_ + dy_;
  const FiniteSumQuadraticLevel* in[2] = {&data.inner, &data.outer};
  for (int k = 0; k < 2; ++k) {
    const FiniteSumQuadraticLevel& l = *in[k];
    const std::vector<double>* parts[5] = {&l.hyy, &l.hxx, &l.cross, &l.ly, &l.lx};
    const index_t sizes[5] = {dy_ * dy_, dx_ * dx_, dx_ * dy_, dy_, dx_};
    // column i: sample i's parts, one after the other
    std::vector<T> packed(static_cast<std::size_t>(rows_ * l.n));
    for (index_t i = 0; i < l.n; ++i) {
      T* column = packed.data() + i * rows_;
      for (int p = 0; p < 5; ++p) {
        const double* src = parts[p]->data() + i * sizes[p];
        for (index_t r = 0; r < sizes[p]; ++r) *column++ = static_cast<T>(src[r]);
      }
    }
    levels_[k].n = l.n;
    levels_[k].packed = Array<T>(exec_, rows_, l.n, packed);
    const std::vector<double> mean = data.mean(l);
    levels_[k].full = Array<T>(exec_, rows_, 1, std::vector<T>(mean.begin(), mean.end()));
  }
  const std::vector<double> g = data.value_function_hessian();
  const std::vector<double> c = data.hypergradient(std::vector<double>(static_cast<std::size_t>(dx_), 0.0));
  value_hessian_ = Array<T>(exec_, dx_, dx_, std::vector<T>(g.begin(), g.end()));
  gradient_at_zero_ = Array<T>(exec_, dx_, 1, std::vector<T>(c.begin(), c.end()));
}

template <typename T>
void FiniteSumQuadraticProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                                      T* out) {
  check("evaluation_metrics", x, y);
  Ops<T>& ops = exec_->ops<T>();
  MatrixView<T> h(tmp_x_.data(), dx_, x.cols, dx_);
  // h = G x + grad F(0) 1'
  ops.gemm(Op::none, Op::none, T(1), value_hessian_.view(), x, T(0), h);
  ops.gemm(Op::none, Op::none, T(1), gradient_at_zero_.view(),
           ConstMatrixView<T>(ones_.data(), 1, x.cols, 1), T(1), h);
  // out = ||h||^2 per instance
  ops.batch_dot(h, h, out);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::reserve(index_t instances, index_t max_batch) {
  BILEVEL_EXPECTS(instances > 0, "finite-sum quadratic: reserve needs instances > 0, got " << instances);
  // one instance's batch is gathered at a time: at most every sample of the larger level
  const index_t most = std::max(levels_[0].n, levels_[1].n);
  max_batch = std::clamp<index_t>(max_batch, 1, most);
  if (instances <= reserved_instances_ && max_batch <= reserved_batch_) return;
  reserved_instances_ = std::max(reserved_instances_, instances);
  reserved_batch_ = std::max(reserved_batch_, max_batch);
  gathered_ = Array<T>(exec_, rows_, reserved_batch_);
  means_ = Array<T>(exec_, rows_, reserved_instances_);
  ones_ = Array<T>(exec_, std::max(reserved_batch_, reserved_instances_), 1);
  exec_->ops<T>().fill(ones_.view(), T(1));
  tmp_y_ = Array<T>(exec_, dy_, reserved_instances_);
  tmp_x_ = Array<T>(exec_, dx_, reserved_instances_);
  dots_ = Array<T>(exec_, reserved_instances_, 1);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::check(const char* oracle, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dx_ && y.rows == dy_ && x.cols == y.cols,
                  "finite-sum quadratic " << oracle << ": x must be " << dx_ << " x B and y "
                                          << dy_ << " x B, got " << x.rows << " x " << x.cols
                                          << " and " << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(x.cols <= reserved_instances_,
                  "finite-sum quadratic " << oracle << ": " << x.cols
                                          << " instances but workspace for "
                                          << reserved_instances_ << " (call reserve first)");
}

template <typename T>
typename FiniteSumQuadraticProblem<T>::Means FiniteSumQuadraticProblem<T>::batch_means(
    int level, const Batch& batch, index_t instances) {
  Ops<T>& ops = exec_->ops<T>();
  const Level& l = levels_[level];
  if (batch.full()) return {l.full.data(), 0};
  BILEVEL_EXPECTS(batch.population <= l.n,
                  "finite-sum quadratic: a batch drawn from " << batch.population
                                                              << " samples used on " << l.n);
  const index_t s = batch.size;
  BILEVEL_EXPECTS(s > 0 && s <= reserved_batch_,
                  "finite-sum quadratic: batch of " << s << " samples but workspace for "
                                                    << reserved_batch_ << " (call reserve first)");
  const index_t sets = batch.independent() ? instances : 1;
  for (index_t b = 0; b < sets; ++b) {
    MatrixView<T> g(gathered_.data(), rows_, s, rows_);
    // G = the batch's columns
    ops.gather_columns(l.packed.view(), batch.indices + b * batch.stride, g);
    // mean_b = G 1 / s
    ops.gemm(Op::none, Op::none, T(1) / static_cast<T>(s), g,
             ConstMatrixView<T>(ones_.data(), s, 1, ones_.rows()), T(0),
             MatrixView<T>(means_.data() + b * rows_, rows_, 1, rows_));
  }
  return {means_.data(), batch.independent() ? rows_ : 0};
}

template <typename T>
void FiniteSumQuadraticProblem<T>::apply(const Means& m, index_t offset, index_t rows,
                                         index_t cols, Op op, T alpha, ConstMatrixView<T> in,
                                         T beta, MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  const ConstMatrixView<T> block(m.data + offset, rows, cols, rows);
  if (m.stride == 0) {
    ops.gemm(op, Op::none, alpha, block, in, beta, out);
    return;
  }
  // each instance its own mean: out_b = alpha op(M_b) in_b + beta out_b
  ops.gemm_strided_batched(op, Op::none, alpha, block, m.stride,
                           ConstMatrixView<T>(in.data, in.rows, 1, in.ld), in.ld, beta,
                           MatrixView<T>(out.data, out.rows, 1, out.ld), out.ld, in.cols);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::add_vector(const Means& m, index_t offset, index_t rows,
                                              MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = out.cols;
  if (m.stride == 0) {
    // out += l 1'
    ops.gemm(Op::none, Op::none, T(1), ConstMatrixView<T>(m.data + offset, rows, 1, rows),
             ConstMatrixView<T>(ones_.data(), 1, nb, 1), T(1), out);
    return;
  }
  // out_b += l_b
  ops.axpby(T(1), ConstMatrixView<T>(m.data + offset, rows, nb, m.stride), T(1), out);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::gradients(const Means& m, ConstMatrixView<T> x,
                                             ConstMatrixView<T> y, MatrixView<T> gx,
                                             MatrixView<T> gy) {
  if (!gy.empty()) {
    // gy = Hyy y + C' x + ly
    apply(m, 0, dy_, dy_, Op::none, T(1), y, T(0), gy);
    apply(m, off_cross_, dx_, dy_, Op::transpose, T(1), x, T(1), gy);
    add_vector(m, off_ly_, dy_, gy);
  }
  if (!gx.empty()) {
    // gx = Hxx x + C y + lx
    apply(m, off_hxx_, dx_, dx_, Op::none, T(1), x, T(0), gx);
    apply(m, off_cross_, dx_, dy_, Op::none, T(1), y, T(1), gx);
    add_vector(m, off_lx_, dx_, gx);
  }
}

template <typename T>
void FiniteSumQuadraticProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                            ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_y_g", x, y);
  gradients(batch_means(0, batch, x.cols), x, y, MatrixView<T>(), out);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::grad_x_g(const Batch& batch, ConstMatrixView<T> x,
                                            ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_x_g", x, y);
  gradients(batch_means(0, batch, x.cols), x, y, out, MatrixView<T>());
}

template <typename T>
void FiniteSumQuadraticProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x,
                                          ConstMatrixView<T> y, MatrixView<T> fx,
                                          MatrixView<T> fy) {
  check("grad_f", x, y);
  gradients(batch_means(1, batch, x.cols), x, y, fx, fy);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::second_order(int level, const Batch& batch, index_t instances,
                                                ConstMatrixView<T> v, MatrixView<T> hv,
                                                MatrixView<T> jv) {
  const Means m = batch_means(level, batch, instances);
  // hv = Hyy v;  jv = C v
  if (!hv.empty()) apply(m, 0, dy_, dy_, Op::none, T(1), v, T(0), hv);
  if (!jv.empty()) apply(m, off_cross_, dx_, dy_, Op::none, T(1), v, T(0), jv);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x,
                                           ConstMatrixView<T> y, ConstMatrixView<T> v,
                                           MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp", x, y);
  second_order(0, batch, x.cols, v, hv, jv);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x,
                                             ConstMatrixView<T> y, ConstMatrixView<T> v,
                                             MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp_f", x, y);
  second_order(1, batch, x.cols, v, hv, jv);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::level_values(const Means& m, ConstMatrixView<T> x,
                                                ConstMatrixView<T> y, T* out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols;
  MatrixView<T> ty(tmp_y_.data(), dy_, nb, dy_), tx(tmp_x_.data(), dx_, nb, dx_);
  const MatrixView<T> result(out, nb, 1, nb);
  const MatrixView<T> dots(dots_.data(), nb, 1, nb);
  // ty = 1/2 Hyy y + C' x + ly;  out = y' ty
  apply(m, 0, dy_, dy_, Op::none, T(0.5), y, T(0), ty);
  apply(m, off_cross_, dx_, dy_, Op::transpose, T(1), x, T(1), ty);
  add_vector(m, off_ly_, dy_, ty);
  ops.batch_dot(y, ty, out);
  // tx = 1/2 Hxx x + lx;  out += x' tx
  apply(m, off_hxx_, dx_, dx_, Op::none, T(0.5), x, T(0), tx);
  add_vector(m, off_lx_, dx_, tx);
  ops.batch_dot(x, tx, dots.data);
  ops.axpby(T(1), dots, T(1), result);
}

template <typename T>
void FiniteSumQuadraticProblem<T>::values(const Batch& lower, const Batch& upper,
                                          ConstMatrixView<T> x, ConstMatrixView<T> y, T* f_out,
                                          T* g_out) {
  check("values", x, y);
  if (f_out != nullptr) level_values(batch_means(1, upper, x.cols), x, y, f_out);
  if (g_out != nullptr) level_values(batch_means(0, lower, x.cols), x, y, g_out);
}

template class FiniteSumQuadraticProblem<float>;
template class FiniteSumQuadraticProblem<double>;

}  // namespace bilevel
