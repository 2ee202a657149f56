// L2TuningProblem: per-feature L2 weights of logistic regression (see the header).
#include <bilevel/problems/l2_tuning.hpp>

#include <bilevel/error.hpp>

#include <cmath>

namespace bilevel {

namespace {
/// The logit of a sample weight of 1: sigmoid(40) rounds to 1 in float and double.
constexpr double kUnitWeightLogit = 40.0;
}  // namespace

template <typename T>
L2TuningProblem<T>::L2TuningProblem(std::shared_ptr<Executor> exec, const HypercleanData& data)
    : exec_(exec), model_(exec, data, 0.0), features_(data.train.features) {
  const index_t rows = features_ + 1, dy = model_.dim_y();
  // entry k of a W column (C columns of d + 1 rows) belongs to feature k % (d + 1)
  std::vector<sample_index_t> row_of(static_cast<std::size_t>(dy));
  for (index_t k = 0; k < dy; ++k) row_of[static_cast<std::size_t>(k)] = static_cast<sample_index_t>(k % rows);
  row_of_entry_ = Array<sample_index_t>(exec_, dy, 1, row_of);
}

template <typename T>
void L2TuningProblem<T>::reserve(index_t instances, index_t max_batch) {
  model_.reserve(instances, max_batch);
  if (instances <= reserved_) return;
  reserved_ = instances;
  const index_t rows = features_ + 1, dy = model_.dim_y(), c = model_.classes();
  weights_ = Array<T>(exec_, model_.dim_x(), instances);
  exec_->ops<T>().fill(weights_.view(), static_cast<T>(kUnitWeightLogit));
  rows_exp_ = Array<T>(exec_, rows, instances);
  exec_->ops<T>().fill(rows_exp_.view(), T(0));
  penalty_ = Array<T>(exec_, dy, instances);
  product_ = Array<T>(exec_, dy, instances);
  per_row_ = Array<T>(exec_, rows, instances);
  scalars_ = Array<T>(exec_, instances, 1);
  // block ones: column b has ones at rows b C .. (b + 1) C
  std::vector<T> ones(static_cast<std::size_t>(c * instances * instances), T(0));
  for (index_t b = 0; b < instances; ++b)
    for (index_t k = 0; k < c; ++k) ones[static_cast<std::size_t>(b * c + k + b * c * instances)] = T(1);
  class_sums_ = Array<T>(exec_, c * instances, instances, ones);
}

template <typename T>
void L2TuningProblem<T>::check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == features_ && y.rows == model_.dim_y() && x.cols == y.cols &&
                      x.ld == x.rows && y.ld == y.rows,
                  "l2-tuning " << oracle << ": x must be a contiguous " << features_
                               << " x B and y " << model_.dim_y() << " x B, got " << x.rows
                               << " x " << x.cols << " and " << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(x.cols <= reserved_, "l2-tuning " << oracle << ": " << x.cols
                                                    << " instances but workspace for "
                                                    << reserved_ << " (call reserve first)");
}

template <typename T>
ConstMatrixView<T> L2TuningProblem<T>::unit_weights(index_t instances) const {
  return ConstMatrixView<T>(weights_.data(), model_.dim_x(), instances, model_.dim_x());
}

template <typename T>
void L2TuningProblem<T>::expand_penalty(ConstMatrixView<T> x) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, rows = features_ + 1;
  MatrixView<T> rows_exp(rows_exp_.data(), rows, nb, rows);
  // exp(lambda) in rows 0 .. d - 1 (the bias row stays 0)
  ops.exp(x, MatrixView<T>(rows_exp.data, features_, nb, rows));
  // E = the rows broadcast over the C classes
  ops.gather_rows(rows_exp, row_of_entry_.data(), MatrixView<T>(penalty_.data(), model_.dim_y(), nb));
}

template <typename T>
void L2TuningProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  MatrixView<T> out) {
  check("grad_y_g", x, y);
  // gy = grad CE (train batch)
  model_.grad_y_g(batch, unit_weights(x.cols), y, out);
  expand_penalty(x);
  // gy += E .* W
  exec_->ops<T>().hadamard(T(1), ConstMatrixView<T>(penalty_.data(), y.rows, y.cols), y, T(1), out);
}

template <typename T>
void L2TuningProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                MatrixView<T> fx, MatrixView<T> fy) {
  check("grad_f", x, y);
  // fx = 0 (f does not depend on lambda); fy = grad CE (validation batch)
  model_.grad_f(batch, unit_weights(x.cols), y, MatrixView<T>(), fy);
  if (!fx.empty()) exec_->ops<T>().fill(fx, T(0));
}

template <typename T>
void L2TuningProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, rows = features_ + 1;
  expand_penalty(x);
  const ConstMatrixView<T> e(penalty_.data(), y.rows, nb);
  if (!hv.empty()) {
    // hv = H_CE v + E .* V
    model_.hvp_jvp(batch, unit_weights(nb), y, v, hv, MatrixView<T>());
    ops.hadamard(T(1), e, v, T(1), hv);
  }
  if (!jv.empty()) {
    // P = E .* W .* V;  per_row (d + 1 x B) = the sum of each instance's C columns of P
    MatrixView<T> p(product_.data(), y.rows, nb);
    ops.hadamard(T(1), e, y, T(0), p);
    ops.hadamard(T(1), p, v, T(0), p);
    const index_t c = model_.classes();
    ops.gemm(Op::none, Op::none, T(1), ConstMatrixView<T>(p.data, rows, c * nb, rows),
             ConstMatrixView<T>(class_sums_.data(), c * nb, nb, c * reserved_), T(0),
             MatrixView<T>(per_row_.data(), rows, nb, rows));
    // jv = its feature rows (the bias is not penalised)
    ops.copy(ConstMatrixView<T>(per_row_.data(), features_, nb, rows), jv);
  }
}

template <typename T>
void L2TuningProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                   ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp_f", x, y);
  // f's Hessian in W (validation); J_f = 0
  model_.hvp_jvp_f(batch, unit_weights(x.cols), y, v, hv, MatrixView<T>());
  if (!jv.empty()) exec_->ops<T>().fill(jv, T(0));
}

template <typename T>
void L2TuningProblem<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                                ConstMatrixView<T> y, T* f_out, T* g_out) {
  check("values", x, y);
  const index_t nb = x.cols;
  // f = mean validation CE; g = mean train CE
  model_.values(lower, upper, unit_weights(nb), y, f_out, g_out);
  if (g_out == nullptr) return;
  Ops<T>& ops = exec_->ops<T>();
  expand_penalty(x);
  // g += (1/2) sum E .* W .* W
  MatrixView<T> p(product_.data(), y.rows, nb);
  ops.hadamard(T(1), ConstMatrixView<T>(penalty_.data(), y.rows, nb), y, T(0), p);
  ops.batch_dot(p, y, scalars_.data());
  ops.axpby(T(0.5), ConstMatrixView<T>(scalars_.data(), nb, 1), T(1), MatrixView<T>(g_out, nb, 1));
}

template <typename T>
void L2TuningProblem<T>::set_max_weight(double max_weight) {
  BILEVEL_EXPECTS(max_weight > 0, "l2-tuning: the largest weight must be > 0, got " << max_weight);
  max_lambda_ = static_cast<T>(std::log(max_weight));
}

template <typename T>
void L2TuningProblem<T>::project_x(MatrixView<T> x) {
  // lambda <- min(lambda, log max_weight)
  if (max_lambda_ < std::numeric_limits<T>::infinity())
    exec_->ops<T>().clamp(x, -std::numeric_limits<T>::infinity(), max_lambda_);
}

template <typename T>
std::vector<std::string> L2TuningProblem<T>::evaluation_metric_names() const {
  return {"test_accuracy"};
}

template <typename T>
void L2TuningProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
  check("evaluation_metrics", x, y);
  model_.evaluation_metrics(unit_weights(x.cols), y, out);
}

template class L2TuningProblem<float>;
template class L2TuningProblem<double>;

}  // namespace bilevel
