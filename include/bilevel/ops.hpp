// The kernel set of a backend: GEMM and the batched (per-instance) vector kernels that every
// algorithm is written in. Each kernel exists on the CPU (OpenMP + BLAS) and on CUDA (custom
// kernels + cuBLAS); tests compare the two.
//
// Conventions: matrices are column-major views on the executor's memory; for the batched
// kernels column b is instance b and per-instance scalars (`const T* alpha`) are arrays of
// length cols on the executor's memory. Kernels are enqueued on the executor's stream and never
// synchronise. The public functions check shapes and throw InvalidArgument naming the kernel.
#pragma once

#include <bilevel/error.hpp>
#include <bilevel/types.hpp>

#include <cstdint>

namespace bilevel {

/// Index of a sample in a data set (minibatch indices).
using sample_index_t = std::int32_t;

/// Kernels enqueued so far by this process, on every executor: each kernel-set call counts
/// once (a cuBLAS GEMM that splits K, or a split reduction, still counts once), and so does
/// each kernel of a problem's own kernel families. Benchmarks report launches per iteration
/// from differences of it; on CUDA, captured graphs also report their exact node counts
/// (CapturedWork::nodes).
std::uint64_t launch_count();
/// Floating-point operations of the fused linear-model kernels so far in this process, on every
/// executor (a multiply-add counts two): each call's logits and back-products, counted from its
/// shape (kernels/linear_model_kernels.hpp, linear_model_flops); the regularizer, the softmax
/// and the composed (BLAS) path are not counted. Benchmarks report GFLOP/s from differences of
/// it, against the FMA peak of the instruction set in use.
std::uint64_t fused_flop_count();
namespace detail {
/// Adds n to launch_count() (kernel families outside Ops call it for their launches).
void note_launches(std::uint64_t n = 1);
/// Adds n to fused_flop_count().
void note_fused_flops(std::uint64_t n);
}  // namespace detail

/// (offset + slope k)^(-power) of the iteration k: power > 0 decays (alpha (k + 1)^-0.4 is
/// {1, 1, 0.4}), power < 0 grows (lambda_0 + g k is {lambda_0, g, -1}).
struct Schedule {
  double offset = 1.0;
  double slope = 1.0;
  double power = 0.0;
};

template <typename T>
class Ops {
 public:
  virtual ~Ops() = default;

  /// C = alpha * op(A) * op(B) + beta * C.
  void gemm(Op op_a, Op op_b, T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
            MatrixView<T> c) {
    const index_t m = op_a == Op::none ? a.rows : a.cols;
    const index_t k = op_a == Op::none ? a.cols : a.rows;
    const index_t kb = op_b == Op::none ? b.rows : b.cols;
    const index_t n = op_b == Op::none ? b.cols : b.rows;
    BILEVEL_EXPECTS(k == kb && c.rows == m && c.cols == n,
                    "gemm: shapes do not match: op(A) is " << m << " x " << k << ", op(B) is "
                                                           << kb << " x " << n << ", C is "
                                                           << c.rows << " x " << c.cols);
    check_ld("gemm", a);
    check_ld("gemm", b);
    check_ld("gemm", c);
    if (m == 0 || n == 0) return;
    counted().do_gemm(op_a, op_b, m, n, k, alpha, a.data, a.ld, b.data, b.ld, beta, c.data, c.ld);
  }

  /// C_i = alpha * op(A_i) * op(B_i) + beta * C_i for i < count, where the views describe the
  /// first matrix of each batch and A_i starts stride_a elements after A_{i-1} (likewise B, C):
  /// instances with data of their own (per-task problems) in one call.
  void gemm_strided_batched(Op op_a, Op op_b, T alpha, ConstMatrixView<T> a, index_t stride_a,
                            ConstMatrixView<T> b, index_t stride_b, T beta, MatrixView<T> c,
                            index_t stride_c, index_t count) {
    const index_t m = op_a == Op::none ? a.rows : a.cols;
    const index_t k = op_a == Op::none ? a.cols : a.rows;
    const index_t kb = op_b == Op::none ? b.rows : b.cols;
    const index_t n = op_b == Op::none ? b.cols : b.rows;
    BILEVEL_EXPECTS(k == kb && c.rows == m && c.cols == n,
                    "gemm_strided_batched: shapes do not match: op(A) is "
                        << m << " x " << k << ", op(B) is " << kb << " x " << n << ", C is "
                        << c.rows << " x " << c.cols);
    BILEVEL_EXPECTS(count >= 0 && stride_a >= 0 && stride_b >= 0 && stride_c >= c.ld * c.cols,
                    "gemm_strided_batched: count and strides must be >= 0 and C's stride must "
                    "separate the C_i (got count "
                        << count << ", stride_c " << stride_c << " for " << c.ld << " x " << c.cols
                        << ")");
    check_ld("gemm_strided_batched", a);
    check_ld("gemm_strided_batched", b);
    check_ld("gemm_strided_batched", c);
    if (m == 0 || n == 0 || count == 0) return;
    counted().do_gemm_strided_batched(op_a, op_b, m, n, k, alpha, a.data, a.ld, stride_a, b.data, b.ld,
                            stride_b, beta, c.data, c.ld, stride_c, count);
  }

  /// x = value.
  void fill(MatrixView<T> x, T value) {
    check_ld("fill", x);
    if (x.size() > 0) counted().do_fill(x, value);
  }
  /// y = x.
  void copy(ConstMatrixView<T> x, MatrixView<T> y) {
    same_shape("copy", x, y);
    if (x.size() > 0) counted().do_copy(x, y);
  }
  /// y = a * x + b * y (elementwise: x may be y itself).
  void axpby(T a, ConstMatrixView<T> x, T b, MatrixView<T> y) {
    same_shape("axpby", x, y);
    if (x.size() > 0) counted().do_axpby(a, x, b, y);
  }
  /// y_j += a * alpha_j * x_j for each column j (alpha: per-instance, length cols).
  void batch_axpy(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y) {
    same_shape("batch_axpy", x, y);
    BILEVEL_EXPECTS(alpha != nullptr, "batch_axpy: per-instance scalars are null");
    if (x.size() > 0) counted().do_batch_axpy(a, alpha, x, y);
  }
  /// x_j *= a * alpha_j.
  /// y += a * alpha[j] * x (as batch_axpy), then counter += 1: the last kernel of an
  /// iteration advances the device-resident iteration counter without a launch of its own.
  void batch_axpy_and_advance(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y,
                              std::uint32_t* counter) {
    same_shape("batch_axpy_and_advance", x, y);
    BILEVEL_EXPECTS(alpha != nullptr && counter != nullptr,
                    "batch_axpy_and_advance: per-instance scalars or counter are null");
    if (x.size() > 0)
      counted().do_batch_axpy_and_advance(a, alpha, x, y, counter);
    else
      counted().do_advance_counter(counter);
  }
  void batch_scale(T a, const T* alpha, MatrixView<T> x) {
    check_ld("batch_scale", x);
    BILEVEL_EXPECTS(alpha != nullptr, "batch_scale: per-instance scalars are null");
    if (x.size() > 0) counted().do_batch_scale(a, alpha, x);
  }
  /// out_j = <x_j, y_j>.
  void batch_dot(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
    same_shape("batch_dot", x, y);
    BILEVEL_EXPECTS(out != nullptr || x.cols == 0, "batch_dot: output is null");
    if (x.cols > 0) counted().do_batch_dot(x, y, out);
  }
  /// out_j = ||x_j||_2.
  void batch_nrm2(ConstMatrixView<T> x, T* out) {
    check_ld("batch_nrm2", x);
    BILEVEL_EXPECTS(out != nullptr || x.cols == 0, "batch_nrm2: output is null");
    if (x.cols > 0) counted().do_batch_nrm2(x, out);
  }
  /// out_j = sum_i [x_ij < threshold] w_i (w: rows weights on the executor, or nullptr for 1):
  /// counts below a threshold, e.g. the samples a hyper-cleaning run flags (x_i < 0) and how
  /// many of them are truly corrupted (w = the corruption mask), without reading x back.
  void batch_count_below(ConstMatrixView<T> x, T threshold, const T* weights, T* out) {
    check_ld("batch_count_below", x);
    BILEVEL_EXPECTS(out != nullptr || x.cols == 0, "batch_count_below: output is null");
    if (x.cols > 0) counted().do_batch_count_below(x, threshold, weights, out);
  }
  /// One Neumann term, fused with the running sum: r_j -= eta_j * hr_j; v_j += r_j.
  void neumann_step(const T* eta, ConstMatrixView<T> hr, MatrixView<T> r, MatrixView<T> v) {
    same_shape("neumann_step", hr, r);
    same_shape("neumann_step", r, v);
    BILEVEL_EXPECTS(eta != nullptr, "neumann_step: per-instance step sizes are null");
    if (r.size() > 0) counted().do_neumann_step(eta, hr, r, v);
  }
  /// y_j += sign * (num_j / den_j) * x_j; a zero or negative denominator contributes nothing
  /// (CG: a direction of non-positive curvature makes no step).
  void batch_axpy_ratio(T sign, const T* num, const T* den, ConstMatrixView<T> x,
                        MatrixView<T> y) {
    same_shape("batch_axpy_ratio", x, y);
    BILEVEL_EXPECTS(num != nullptr && den != nullptr, "batch_axpy_ratio: scalars are null");
    if (x.size() > 0) counted().do_batch_axpy_ratio(sign, num, den, x, y);
  }
  /// y_j = x_j + (num_j / den_j) * y_j; a zero or negative denominator gives y_j = x_j.
  void batch_xpay_ratio(const T* num, const T* den, ConstMatrixView<T> x, MatrixView<T> y) {
    same_shape("batch_xpay_ratio", x, y);
    BILEVEL_EXPECTS(num != nullptr && den != nullptr, "batch_xpay_ratio: scalars are null");
    if (x.size() > 0) counted().do_batch_xpay_ratio(num, den, x, y);
  }
  /// out[i] = uniform index in [0, population), i < count, from Philox4x32-10 keyed by `seed`
  /// with counter (i / 4, instance, stream, step): the same values on every backend. With
  /// `step_on_device` (a counter on the executor's memory, e.g. the solver's iteration) the
  /// step is `step + *step_on_device`, read by the kernel: the launch does not change from one
  /// iteration to the next, so a captured graph can replay it. With `sets` > 1, set b (at
  /// out + b count) is drawn with instance word instance + b.
  /// With `epochs` the indices walk the data in epochs instead, a new random order each
  /// (common::reshuffled_index: batch `step` holds positions step count .. step count + count
  /// - 1 of the walk; every sample once per epoch).
  void sample_indices(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                      std::uint32_t instance, index_t population, index_t count,
                      sample_index_t* out, const std::uint32_t* step_on_device = nullptr,
                      index_t sets = 1, bool epochs = false) {
    BILEVEL_EXPECTS(population > 0 && population <= INT32_MAX,
                    "sample_indices: population must be in [1, 2^31), got " << population);
    BILEVEL_EXPECTS(count >= 0 && sets >= 1,
                    "sample_indices: count must be >= 0 and sets >= 1, got " << count << " and "
                                                                             << sets);
    if (count > 0)
      counted().do_sample_indices(seed, stream, step, step_on_device, instance, population, count,
                                  sets, epochs, out);
  }
  /// *counter += 1 on the executor (the device-resident iteration counter).
  void advance_counter(std::uint32_t* counter) {
    BILEVEL_EXPECTS(counter != nullptr, "advance_counter: counter is null");
    counted().do_advance_counter(counter);
  }
  /// out_j = base_j * (offset + slope k)^(-power) with k = *counter, j < count: step sizes and
  /// weights that change with the iteration (decaying steps, growing penalties), computed on
  /// the executor from the device-resident iteration counter.
  void schedule(const T* base, index_t count, Schedule s, const std::uint32_t* counter, T* out) {
    BILEVEL_EXPECTS(base != nullptr && counter != nullptr && out != nullptr,
                    "schedule: null argument");
    BILEVEL_EXPECTS(s.offset > 0 && s.slope >= 0,
                    "schedule: offset must be > 0 and slope >= 0, got " << s.offset << " and "
                                                                        << s.slope);
    if (count > 0) counted().do_schedule(base, count, s, counter, out);
  }
  /// Normalized momentum, fused with its per-instance norm (BO-REP's upper update):
  /// m_j = mu m_j + (1 - mu) h_j;  x_j += a * beta_j * m_j / ||m_j||  (no move where m_j = 0).
  void normalized_momentum_step(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                const T* beta, MatrixView<T> x) {
    same_shape("normalized_momentum_step", h, m);
    same_shape("normalized_momentum_step", m, x);
    BILEVEL_EXPECTS(beta != nullptr, "normalized_momentum_step: per-instance steps are null");
    if (x.size() > 0) counted().do_normalized_momentum_step(mu, h, m, a, beta, x);
  }
  /// The step of normalized momentum with norms computed elsewhere (x split over ranks: the
  /// squared norms are all-reduced first): x_j += a * beta_j * m_j / sqrt(sq_j) (no move
  /// where sq_j = 0).
  void normalized_axpy(T a, const T* beta, const T* sq, ConstMatrixView<T> m, MatrixView<T> x) {
    same_shape("normalized_axpy", m, x);
    BILEVEL_EXPECTS(beta != nullptr && sq != nullptr, "normalized_axpy: null steps or norms");
    if (x.size() > 0) counted().do_normalized_axpy(a, beta, sq, m, x);
  }
  /// out = alpha a .* b + beta out (entrywise product; beta = 0: out is not read).
  void hadamard(T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta, MatrixView<T> out) {
    same_shape("hadamard", a, b);
    same_shape("hadamard", b, out);
    if (out.size() > 0) counted().do_hadamard(alpha, a, b, beta, out);
  }
  /// out = exp(a) entrywise.
  void exp(ConstMatrixView<T> a, MatrixView<T> out) {
    same_shape("exp", a, out);
    if (out.size() > 0) counted().do_exp(a, out);
  }
  /// x = min(max(x, lo), hi) (projection onto a box; -inf / inf for a one-sided bound).
  /// The single-point update of SOBA and sl-BAMM, one launch for what were four, per instance
  /// b with step sizes s[b], eta[b] and aggregation weight mu[b] (mu == nullptr: none):
  ///   g = gy + mu (fy - gy);  y -= s g;  v -= eta (hv - fy)      (dy x B)
  ///   h = fx - h   (h holds J v on entry; fx empty: f does not depend on x, h = -J v)  (dx x B)
  void single_point_step(const T* s, const T* eta, const T* mu, ConstMatrixView<T> gy,
                         ConstMatrixView<T> fy, ConstMatrixView<T> hv, ConstMatrixView<T> fx,
                         MatrixView<T> y, MatrixView<T> v, MatrixView<T> h) {
    same_shape("single_point_step", gy, y);
    same_shape("single_point_step", fy, y);
    same_shape("single_point_step", hv, y);
    same_shape("single_point_step", v, y);
    check_ld("single_point_step", h);
    if (!fx.empty()) same_shape("single_point_step", fx, h);
    BILEVEL_EXPECTS(h.cols == y.cols, "single_point_step: h has " << h.cols << " instances, y "
                                                                  << y.cols);
    BILEVEL_EXPECTS(s != nullptr && eta != nullptr,
                    "single_point_step: per-instance step sizes are null");
    if (y.cols > 0) counted().do_single_point_step(s, eta, mu, gy, fy, hv, fx, y, v, h);
  }
  void clamp(MatrixView<T> x, T lo, T hi) {
    check_ld("clamp", x);
    BILEVEL_EXPECTS(!(lo > hi), "clamp: lower bound " << lo << " above upper bound " << hi);
    if (x.size() > 0) counted().do_clamp(x, lo, hi);
  }
  /// x(i, j) += scale * N(0, 1), the normals drawn by Philox from (seed, stream) and the
  /// element's position i + j * rows: the same numbers on every backend (to the last bits of
  /// log and cos), whatever the view's leading dimension.
  /// With `first` > 0 the positions start there: a view of columns [c, c + cols) of a larger
  /// matrix of the same rows, passed with first = c * rows, gets that matrix's numbers (data
  /// generated chunk by chunk equals data generated at once).
  void add_normal(std::uint64_t seed, std::uint32_t stream, T scale, MatrixView<T> x,
                  std::int64_t first = 0) {
    check_ld("add_normal", x);
    BILEVEL_EXPECTS(first >= 0, "add_normal: first must be >= 0, got " << first);
    if (x.size() > 0) counted().do_add_normal(seed, stream, scale, x, first);
  }
  /// dst(r, c) = src(idx[r] - first, c) for r < dst.rows, where src holds the samples
  /// [first, first + src.rows) of a larger set (a rank's shard); a sample outside them gives a
  /// row of zeros (it belongs to another rank and adds nothing to this rank's partial sums).
  void gather_rows(ConstMatrixView<T> src, const sample_index_t* idx, MatrixView<T> dst,
                   index_t first = 0) {
    check_ld("gather_rows", src);
    check_ld("gather_rows", dst);
    BILEVEL_EXPECTS(src.cols == dst.cols, "gather_rows: src has " << src.cols
                                              << " columns, dst " << dst.cols);
    BILEVEL_EXPECTS(first >= 0, "gather_rows: first must be >= 0, got " << first);
    if (dst.size() > 0) counted().do_gather_rows(src, idx, dst, first);
  }
  /// dst(:, c) = src(:, idx[c]) for c < dst.cols (gathers samples stored as columns).
  void gather_columns(ConstMatrixView<T> src, const sample_index_t* idx, MatrixView<T> dst) {
    check_ld("gather_columns", src);
    check_ld("gather_columns", dst);
    BILEVEL_EXPECTS(src.rows == dst.rows, "gather_columns: src has " << src.rows
                                              << " rows, dst " << dst.rows);
    if (dst.size() > 0) counted().do_gather_columns(src, idx, dst);
  }

 protected:
  virtual void do_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                       index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) = 0;
  virtual void do_gemm_strided_batched(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha,
                                       const T* a, index_t lda, index_t stride_a, const T* b,
                                       index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                                       index_t stride_c, index_t count) = 0;
  virtual void do_fill(MatrixView<T> x, T value) = 0;
  virtual void do_copy(ConstMatrixView<T> x, MatrixView<T> y) = 0;
  virtual void do_axpby(T a, ConstMatrixView<T> x, T b, MatrixView<T> y) = 0;
  virtual void do_batch_axpy(T a, const T* alpha, ConstMatrixView<T> x, MatrixView<T> y) = 0;
  virtual void do_batch_axpy_and_advance(T a, const T* alpha, ConstMatrixView<T> x,
                                         MatrixView<T> y, std::uint32_t* counter) = 0;
  virtual void do_batch_scale(T a, const T* alpha, MatrixView<T> x) = 0;
  virtual void do_batch_dot(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) = 0;
  virtual void do_batch_nrm2(ConstMatrixView<T> x, T* out) = 0;
  virtual void do_batch_count_below(ConstMatrixView<T> x, T threshold, const T* weights,
                                    T* out) = 0;
  virtual void do_neumann_step(const T* eta, ConstMatrixView<T> hr, MatrixView<T> r,
                               MatrixView<T> v) = 0;
  virtual void do_batch_axpy_ratio(T sign, const T* num, const T* den, ConstMatrixView<T> x,
                                   MatrixView<T> y) = 0;
  virtual void do_batch_xpay_ratio(const T* num, const T* den, ConstMatrixView<T> x,
                                   MatrixView<T> y) = 0;
  virtual void do_sample_indices(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                                 const std::uint32_t* step_on_device, std::uint32_t instance,
                                 index_t population, index_t count, index_t sets, bool epochs,
                                 sample_index_t* out) = 0;
  virtual void do_advance_counter(std::uint32_t* counter) = 0;
  virtual void do_schedule(const T* base, index_t count, Schedule s,
                           const std::uint32_t* counter, T* out) = 0;
  virtual void do_normalized_momentum_step(T mu, ConstMatrixView<T> h, MatrixView<T> m, T a,
                                           const T* beta, MatrixView<T> x) = 0;
  virtual void do_single_point_step(const T* s, const T* eta, const T* mu,
                                    ConstMatrixView<T> gy, ConstMatrixView<T> fy,
                                    ConstMatrixView<T> hv, ConstMatrixView<T> fx, MatrixView<T> y,
                                    MatrixView<T> v, MatrixView<T> h) = 0;
  virtual void do_normalized_axpy(T a, const T* beta, const T* sq, ConstMatrixView<T> m,
                                  MatrixView<T> x) = 0;
  virtual void do_hadamard(T alpha, ConstMatrixView<T> a, ConstMatrixView<T> b, T beta,
                           MatrixView<T> out) = 0;
  virtual void do_exp(ConstMatrixView<T> a, MatrixView<T> out) = 0;
  virtual void do_clamp(MatrixView<T> x, T lo, T hi) = 0;
  virtual void do_add_normal(std::uint64_t seed, std::uint32_t stream, T scale,
                             MatrixView<T> x, std::int64_t first) = 0;
  virtual void do_gather_rows(ConstMatrixView<T> src, const sample_index_t* idx,
                              MatrixView<T> dst, index_t first) = 0;
  virtual void do_gather_columns(ConstMatrixView<T> src, const sample_index_t* idx,
                                 MatrixView<T> dst) = 0;

 private:
  /// This kernel set, after counting one launch.
  Ops& counted() {
    detail::note_launches();
    return *this;
  }
  template <typename V>
  static void check_ld(const char* kernel, const V& x) {
    BILEVEL_EXPECTS(x.rows >= 0 && x.cols >= 0 && x.ld >= x.rows && x.ld >= 1,
                    kernel << ": invalid view " << x.rows << " x " << x.cols << " with ld "
                           << x.ld);
    BILEVEL_EXPECTS(x.data != nullptr || x.rows * x.cols == 0, kernel << ": view has no data");
  }
  template <typename V, typename W>
  static void same_shape(const char* kernel, const V& x, const W& y) {
    check_ld(kernel, x);
    check_ld(kernel, y);
    BILEVEL_EXPECTS(x.rows == y.rows && x.cols == y.cols,
                    kernel << ": shapes differ: " << x.rows << " x " << x.cols << " vs "
                           << y.rows << " x " << y.cols);
  }
};

}  // namespace bilevel
