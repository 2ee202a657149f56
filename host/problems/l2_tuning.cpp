// L2TuningProblem: per-feature or per-class L2 weights of logistic regression (see the header).
#include <bilevel/problems/l2_tuning.hpp>

#include <bilevel/error.hpp>

#include <cmath>

namespace bilevel {

namespace {
/// The logit of a sample weight of 1: sigmoid(40) rounds to 1 in float and double.
constexpr double kUnitWeightLogit = 40.0;
}  // namespace

L2Penalty parse_l2_penalty(const std::string& text) {
  if (text == "per-feature") return L2Penalty::per_feature;
  if (text == "per-class") return L2Penalty::per_class;
  throw InvalidArgument("unknown L2 penalty map '" + text + "': use per-feature or per-class");
}

std::string to_string(L2Penalty penalty) {
  return penalty == L2Penalty::per_feature ? "per-feature" : "per-class";
}

template <typename T>
L2TuningProblem<T>::L2TuningProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                    L2Penalty penalty)
    : exec_(exec), model_(exec, data, 0.0), features_(data.train.features), penalty_map_(penalty) {
  const index_t rows = model_.feature_rows(), dy = model_.dim_y(), zero = dim_x();
  // entry k of W is row k % r of class column k / r; the bias row (row d, when there is one)
  // reads source_'s last row, which stays 0
  std::vector<sample_index_t> source_of(static_cast<std::size_t>(dy));
  for (index_t k = 0; k < dy; ++k) {
    const index_t row = k % rows, cls = k / rows;
    const index_t src = row >= features_ ? zero : (penalty == L2Penalty::per_feature ? row : cls);
    source_of[static_cast<std::size_t>(k)] = static_cast<sample_index_t>(src);
  }
  source_of_entry_ = Array<sample_index_t>(exec_, dy, 1, source_of);
  if (penalty == L2Penalty::per_class)
    row_ones_ = Array<T>(exec_, rows, 1, std::vector<T>(static_cast<std::size_t>(rows), T(1)));
}

template <typename T>
void L2TuningProblem<T>::reserve(index_t instances, index_t max_batch) {
  model_.reserve(instances, max_batch);
  if (instances <= reserved_) return;
  reserved_ = instances;
  const index_t rows = model_.feature_rows(), dy = model_.dim_y(), c = model_.classes();
  weights_ = Array<T>(exec_, model_.dim_x(), instances);
  exec_->ops<T>().fill(weights_.view(), static_cast<T>(kUnitWeightLogit));
  source_ = Array<T>(exec_, dim_x() + 1, instances);
  exec_->ops<T>().fill(source_.view(), T(0));
  penalty_ = Array<T>(exec_, dy, instances);
  product_ = Array<T>(exec_, dy, instances);
  scalars_ = Array<T>(exec_, instances, 1);
  if (penalty_map_ == L2Penalty::per_feature) {
    per_row_ = Array<T>(exec_, rows, instances);
    // block ones: column b has ones at rows b C .. (b + 1) C
    std::vector<T> ones(static_cast<std::size_t>(c * instances * instances), T(0));
    for (index_t b = 0; b < instances; ++b)
      for (index_t k = 0; k < c; ++k) ones[static_cast<std::size_t>(b * c + k + b * c * instances)] = T(1);
    class_sums_ = Array<T>(exec_, c * instances, instances, ones);
  }
}

template <typename T>
void L2TuningProblem<T>::check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && y.rows == model_.dim_y() && x.cols == y.cols &&
                      x.ld == x.rows && y.ld == y.rows,
                  "l2-tuning " << oracle << ": x must be a contiguous " << dim_x()
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
  const index_t nb = x.cols, sources = dim_x() + 1;
  MatrixView<T> source(source_.data(), sources, nb, sources);
  // exp(lambda) in rows 0 .. dim_x - 1 (the last row stays 0: the bias rows' entry)
  ops.exp(x, MatrixView<T>(source.data, dim_x(), nb, sources));
  // E = each entry of W gets its lambda's weight (per feature row, or per class column)
  ops.gather_rows(source, source_of_entry_.data(), MatrixView<T>(penalty_.data(), model_.dim_y(), nb));
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
  const index_t nb = x.cols, rows = model_.feature_rows();
  expand_penalty(x);
  const ConstMatrixView<T> e(penalty_.data(), y.rows, nb);
  if (!hv.empty()) {
    // hv = H_CE v + E .* V
    model_.hvp_jvp(batch, unit_weights(nb), y, v, hv, MatrixView<T>());
    ops.hadamard(T(1), e, v, T(1), hv);
  }
  if (!jv.empty()) {
    // P = E .* W .* V
    MatrixView<T> p(product_.data(), y.rows, nb);
    ops.hadamard(T(1), e, y, T(0), p);
    ops.hadamard(T(1), p, v, T(0), p);
    const index_t c = model_.classes();
    const ConstMatrixView<T> columns(p.data, rows, c * nb, rows);  // instance b: columns bC..
    if (penalty_map_ == L2Penalty::per_feature) {
      // per_row (r x B) = the sum of each instance's C columns of P
      ops.gemm(Op::none, Op::none, T(1), columns,
               ConstMatrixView<T>(class_sums_.data(), c * nb, nb, c * reserved_), T(0),
               MatrixView<T>(per_row_.data(), rows, nb, rows));
      // jv = its feature rows (the bias is not penalised)
      ops.copy(ConstMatrixView<T>(per_row_.data(), features_, nb, rows), jv);
    } else {
      // jv (C x B, contiguous) = the sum of each column's rows: 1' P as one row of C B
      // (the bias row of P is 0: E is 0 there)
      BILEVEL_EXPECTS(jv.ld == jv.rows, "l2-tuning hvp_jvp: jv must be contiguous (ld "
                                            << jv.ld << ", rows " << jv.rows << ")");
      ops.gemm(Op::transpose, Op::none, T(1), row_ones_.cview(), columns, T(0),
               MatrixView<T>(jv.data, 1, c * nb, 1));
    }
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
