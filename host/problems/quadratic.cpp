// The quadratic problem's oracles, written in the kernel set: the same code runs on both
// backends. A minibatch of rows of M turns every Hessian product into two GEMMs of width B.
#include <bilevel/problems/quadratic.hpp>

#include <algorithm>

namespace bilevel {
namespace {

template <typename T>
std::vector<T> to_precision(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

template <typename T>
QuadraticProblem<T>::QuadraticProblem(std::shared_ptr<Executor> exec, QuadraticData data)
    : QuadraticProblem(std::move(exec), std::move(data), local_communicator()) {}

template <typename T>
QuadraticProblem<T>::QuadraticProblem(std::shared_ptr<Executor> exec, QuadraticData data,
                                      std::shared_ptr<Communicator> comm)
    : exec_(std::move(exec)), data_(std::move(data)), comm_(std::move(comm)) {
  BILEVEL_EXPECTS(exec_ != nullptr, "QuadraticProblem needs an executor");
  BILEVEL_EXPECTS(comm_ != nullptr, "QuadraticProblem needs a communicator");
  data_.validate();
  BILEVEL_EXPECTS(comm_->size() == 1 || data_.n >= comm_->size(),
                  "quadratic: " << data_.n << " samples cannot be shared by " << comm_->size()
                                << " ranks (each needs one at least)");
  shard_ = comm_->shard(data_.n);
  if (data_.n > 0) {
    // this rank's rows [begin, end) of M (column-major n x dy)
    std::vector<T> rows(static_cast<std::size_t>(shard_.size() * data_.dy));
    for (index_t j = 0; j < data_.dy; ++j)
      for (index_t i = 0; i < shard_.size(); ++i)
        rows[static_cast<std::size_t>(i + j * shard_.size())] =
            static_cast<T>(data_.m[static_cast<std::size_t>(shard_.begin + i + j * data_.n)]);
    m_ = Array<T>(exec_, shard_.size(), data_.dy, rows);
  }
  b_ = Array<T>(exec_, data_.dx, data_.dy, to_precision<T>(data_.b));
  xh_ = Array<T>(exec_, data_.dx, 1, to_precision<T>(data_.xh));
}

template <typename T>
void QuadraticProblem<T>::reserve(index_t instances, index_t max_batch) {
  BILEVEL_EXPECTS(instances > 0, "quadratic: reserve needs instances > 0, got " << instances);
  // (independent batches gather s rows per instance: max_batch may exceed n)
  max_batch = std::max<index_t>(max_batch, 0);
  if (instances <= reserved_instances_ && max_batch <= reserved_batch_) return;
  reserved_instances_ = std::max(reserved_instances_, instances);
  reserved_batch_ = std::max(reserved_batch_, max_batch);
  tmp_y_ = Array<T>(exec_, data_.dy, reserved_instances_);
  tmp_x_ = Array<T>(exec_, data_.dx, reserved_instances_);
  scalar_ = Array<T>(exec_, reserved_instances_, 1);
  ones_ = Array<T>(exec_, 1, reserved_instances_);
  exec_->ops<T>().fill(ones_.view(), T(1));
  if (data_.n > 0) {
    rows_ = Array<T>(exec_, std::max<index_t>(reserved_batch_, 1), data_.dy);
    // M_b v: the shard's rows for a full batch, the batch's rows for a minibatch
    proj_ = Array<T>(exec_, std::max(shard_.size(), reserved_batch_), reserved_instances_);
  }
}

template <typename T>
ConstMatrixView<T> QuadraticProblem<T>::ones(index_t instances) const {
  return ConstMatrixView<T>(ones_.data(), 1, instances, 1);
}

template <typename T>
void QuadraticProblem<T>::check_state(const char* oracle, ConstMatrixView<T> x,
                                      ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == data_.dx && y.rows == data_.dy && x.cols == y.cols,
                  "quadratic " << oracle << ": x must be " << data_.dx << " x B and y "
                               << data_.dy << " x B, got " << x.rows << " x " << x.cols
                               << " and " << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(x.cols <= reserved_instances_,
                  "quadratic " << oracle << ": " << x.cols << " instances but workspace for "
                               << reserved_instances_ << " (call reserve first)");
}

template <typename T>
void QuadraticProblem<T>::apply_hessian(const Batch& batch, ConstMatrixView<T> v,
                                        MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  if (data_.n > 0 && comm_->size() > 1) {
    apply_hessian_sharded(batch, v, out);
    return;
  }
  // out = mu v
  ops.axpby(static_cast<T>(data_.mu), v, T(0), out);
  if (data_.n == 0) return;
  if (batch.independent()) {
    apply_hessian_independent(batch, v, out);
    return;
  }
  ConstMatrixView<T> rows = m_.view();
  index_t s = data_.n;
  if (!batch.full() && batch.size < data_.n) {
    s = batch.size;
    BILEVEL_EXPECTS(batch.population <= data_.n,
                    "quadratic: a batch drawn from " << batch.population << " samples used on "
                                                     << data_.n);
    BILEVEL_EXPECTS(s > 0 && s <= reserved_batch_,
                    "quadratic: batch of " << s << " samples but workspace for "
                                           << reserved_batch_ << " (call reserve first)");
    MatrixView<T> gathered(rows_.data(), s, data_.dy, rows_.rows());
    // M_b = M[batch, :]
    ops.gather_rows(m_.view(), batch.indices, gathered);
    rows = gathered;
  }
  MatrixView<T> proj(proj_.data(), s, v.cols, proj_.rows());
  // proj = M_b v
  ops.gemm(Op::none, Op::none, T(1), rows, v, T(0), proj);
  // out += (1/s) M_b' proj
  ops.gemm(Op::transpose, Op::none, T(1) / static_cast<T>(s), rows, proj, T(1), out);
}

template <typename T>
void QuadraticProblem<T>::apply_hessian_sharded(const Batch& batch, ConstMatrixView<T> v,
                                                MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  BILEVEL_EXPECTS(out.ld == out.rows, "quadratic: a sharded product needs a contiguous output");
  const index_t local = shard_.size(), dy = data_.dy, nb = v.cols;
  if (batch.independent()) {
    const index_t s = batch.size;
    BILEVEL_EXPECTS(s > 0 && s * nb <= reserved_batch_,
                    "quadratic: independent batches of " << s << " samples for " << nb
                                                         << " instances but workspace for "
                                                         << reserved_batch_ << " rows");
    // M_b = this rank's rows of M[batch_b, :] (others' samples: zero rows)
    for (index_t b = 0; b < nb; ++b)
      ops.gather_rows(m_.view(), batch.indices + b * batch.stride,
                      MatrixView<T>(rows_.data() + b * s * dy, s, dy, s), shard_.begin);
    const ConstMatrixView<T> rows(rows_.data(), s, dy, s);
    MatrixView<T> proj(proj_.data(), s, 1, proj_.rows());
    // proj_b = M_b v_b;  out_b = (1/s) M_b' proj_b
    ops.gemm_strided_batched(Op::none, Op::none, T(1), rows, s * dy,
                             ConstMatrixView<T>(v.data, dy, 1, v.ld), v.ld, T(0), proj,
                             proj_.rows(), nb);
    ops.gemm_strided_batched(Op::transpose, Op::none, T(1) / static_cast<T>(s), rows, s * dy,
                             proj, proj_.rows(), T(0), MatrixView<T>(out.data, dy, 1, out.ld),
                             out.ld, nb);
  } else {
    ConstMatrixView<T> rows = m_.view();
    index_t s = data_.n, count = local;
    if (!batch.full() && batch.size < data_.n) {
      s = count = batch.size;
      BILEVEL_EXPECTS(batch.population <= data_.n && s <= reserved_batch_,
                      "quadratic: batch of " << s << " from " << batch.population
                                             << " samples (workspace " << reserved_batch_ << ")");
      MatrixView<T> gathered(rows_.data(), s, dy, rows_.rows());
      // M_b = this rank's rows of M[batch, :] (others' samples: zero rows)
      ops.gather_rows(m_.view(), batch.indices, gathered, shard_.begin);
      rows = gathered;
    }
    MatrixView<T> proj(proj_.data(), count, nb, proj_.rows());
    // proj = M_b v;  out = (1/s) M_b' proj   (this rank's part of the sum)
    ops.gemm(Op::none, Op::none, T(1), rows, v, T(0), proj);
    ops.gemm(Op::transpose, Op::none, T(1) / static_cast<T>(s), rows, proj, T(0), out);
  }
  // out = sum over the ranks; out += mu v
  comm_->allreduce_sum(*exec_, out.data, out.rows * out.cols);
  ops.axpby(static_cast<T>(data_.mu), v, T(1), out);
}

template <typename T>
void QuadraticProblem<T>::apply_hessian_independent(const Batch& batch, ConstMatrixView<T> v,
                                                    MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t s = batch.size, nb = v.cols, dy = data_.dy;
  BILEVEL_EXPECTS(batch.population <= data_.n,
                  "quadratic: a batch drawn from " << batch.population << " samples used on "
                                                   << data_.n);
  BILEVEL_EXPECTS(s > 0 && s * nb <= reserved_batch_,
                  "quadratic: independent batches of " << s << " samples for " << nb
                                                       << " instances but workspace for "
                                                       << reserved_batch_
                                                       << " rows (call reserve first)");
  // M_b = M[batch_b, :], instance b's rows in its own s x dy block
  for (index_t b = 0; b < nb; ++b)
    ops.gather_rows(m_.view(), batch.indices + b * batch.stride,
                    MatrixView<T>(rows_.data() + b * s * dy, s, dy, s));
  const ConstMatrixView<T> rows(rows_.data(), s, dy, s);
  MatrixView<T> proj(proj_.data(), s, 1, proj_.rows());
  // proj_b = M_b v_b
  ops.gemm_strided_batched(Op::none, Op::none, T(1), rows, s * dy,
                           ConstMatrixView<T>(v.data, dy, 1, v.ld), v.ld, T(0), proj,
                           proj_.rows(), nb);
  // out_b += (1/s) M_b' proj_b
  ops.gemm_strided_batched(Op::transpose, Op::none, T(1) / static_cast<T>(s), rows, s * dy, proj,
                           proj_.rows(), T(1), MatrixView<T>(out.data, dy, 1, out.ld), out.ld, nb);
}

template <typename T>
void QuadraticProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                   ConstMatrixView<T> y, MatrixView<T> out) {
  check_state("grad_y_g", x, y);
  // out = A_b y
  apply_hessian(batch, y, out);
  // out -= B' x
  exec_->ops<T>().gemm(Op::transpose, Op::none, T(-1), b_.view(), x, T(1), out);
}

template <typename T>
void QuadraticProblem<T>::grad_x_g(const Batch&, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                   MatrixView<T> out) {
  check_state("grad_x_g", x, y);
  // out = -B y
  exec_->ops<T>().gemm(Op::none, Op::none, T(-1), b_.view(), y, T(0), out);
}

template <typename T>
void QuadraticProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                 MatrixView<T> fx, MatrixView<T> fy) {
  check_state("grad_f", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const T d = static_cast<T>(data_.d);
  // fx = d x - d xh 1'  (1: ones over the instances)
  ops.copy(x, fx);
  ops.gemm(Op::none, Op::none, -d, xh_.view(), ones(x.cols), d, fx);
  // fy = A_b y
  apply_hessian(batch, y, fy);
}

template <typename T>
void QuadraticProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  check_state("hvp_jvp", x, y);
  BILEVEL_EXPECTS(v.rows == data_.dy && v.cols == x.cols,
                  "quadratic hvp_jvp: v must be " << data_.dy << " x " << x.cols << ", got "
                                                  << v.rows << " x " << v.cols);
  // hv = A_b v
  if (!hv.empty()) apply_hessian(batch, v, hv);
  // jv = grad_x <grad_y g, v> = -B v
  if (!jv.empty()) exec_->ops<T>().gemm(Op::none, Op::none, T(-1), b_.view(), v, T(0), jv);
}

template <typename T>
void QuadraticProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, ConstMatrixView<T> v, MatrixView<T> hv,
                                    MatrixView<T> jv) {
  check_state("hvp_jvp_f", x, y);
  // hv = A_b v
  if (!hv.empty()) apply_hessian(batch, v, hv);
  // jv = grad_x <grad_y f, v> = 0
  if (!jv.empty()) exec_->ops<T>().fill(jv, T(0));
}

template <typename T>
void QuadraticProblem<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                                 ConstMatrixView<T> y, T* f_out, T* g_out) {
  check_state("values", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols;
  MatrixView<T> ay(tmp_y_.data(), data_.dy, nb);
  MatrixView<T> bty(tmp_x_.data(), data_.dx, nb);
  T* s = scalar_.data();
  if (f_out != nullptr) {
    MatrixView<T> f(f_out, nb, 1);
    // f = y' A_b y
    apply_hessian(upper, y, ay);
    ops.batch_dot(y, ay, f_out);
    // s = ||x - xh 1'||^2
    ops.copy(x, bty);
    ops.gemm(Op::none, Op::none, T(-1), xh_.view(), ones(nb), T(1), bty);
    ops.batch_dot(bty, bty, s);
    // f = 0.5 f + 0.5 d s
    ops.axpby(static_cast<T>(0.5 * data_.d), MatrixView<T>(s, nb, 1), T(0.5), f);
  }
  if (g_out != nullptr) {
    MatrixView<T> g(g_out, nb, 1);
    // g = y' A_b y
    apply_hessian(lower, y, ay);
    ops.batch_dot(y, ay, g_out);
    // s = x' B y
    ops.gemm(Op::none, Op::none, T(1), b_.view(), y, T(0), bty);
    ops.batch_dot(x, bty, s);
    // g = 0.5 g - s
    ops.axpby(T(-1), MatrixView<T>(s, nb, 1), T(0.5), g);
  }
}

template class QuadraticProblem<float>;
template class QuadraticProblem<double>;

}  // namespace bilevel
