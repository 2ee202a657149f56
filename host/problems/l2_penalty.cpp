// L2PenaltyTerms: the per-feature and per-class L2 maps' terms of the linear-model family (see
// l2_penalty.hpp and include/bilevel/problems/l2_tuning.hpp).
#include "l2_penalty.hpp"

#include <bilevel/error.hpp>

#include <cmath>
#include <vector>

namespace bilevel {

L2Penalty parse_l2_penalty(const std::string& text) {
  if (text == "per-feature") return L2Penalty::per_feature;
  if (text == "per-class") return L2Penalty::per_class;
  throw InvalidArgument("unknown L2 penalty map '" + text + "': use per-feature or per-class");
}

std::string to_string(L2Penalty penalty) {
  return penalty == L2Penalty::per_feature ? "per-feature" : "per-class";
}

template <typename T>
L2PenaltyTerms<T>::L2PenaltyTerms(std::shared_ptr<Executor> exec, index_t rows, index_t features,
                                  int classes, L2Penalty map)
    : exec_(std::move(exec)), rows_(rows), features_(features), classes_(classes), map_(map) {
  const index_t dy = rows_ * classes_, zero = dim_x();
  // entry k of W is row k % r of class column k / r; the bias row (row d, when there is one)
  // reads source_'s last row, which stays 0
  std::vector<sample_index_t> source_of(static_cast<std::size_t>(dy));
  for (index_t k = 0; k < dy; ++k) {
    const index_t row = k % rows_, cls = k / rows_;
    const index_t src = row >= features_ ? zero : (map_ == L2Penalty::per_feature ? row : cls);
    source_of[static_cast<std::size_t>(k)] = static_cast<sample_index_t>(src);
  }
  source_of_entry_ = Array<sample_index_t>(exec_, dy, 1, source_of);
  if (map_ == L2Penalty::per_class)
    row_ones_ = Array<T>(exec_, rows_, 1, std::vector<T>(static_cast<std::size_t>(rows_), T(1)));
}

template <typename T>
void L2PenaltyTerms<T>::reserve(index_t instances) {
  if (instances <= reserved_) return;
  reserved_ = instances;
  const index_t dy = rows_ * classes_, c = classes_;
  source_ = Array<T>(exec_, dim_x() + 1, instances);
  exec_->ops<T>().fill(source_.view(), T(0));
  penalty_ = Array<T>(exec_, dy, instances);
  product_ = Array<T>(exec_, dy, instances);
  scalars_ = Array<T>(exec_, instances, 1);
  if (map_ == L2Penalty::per_feature) {
    per_row_ = Array<T>(exec_, rows_, instances);
    // block ones: column b has ones at rows b C .. (b + 1) C
    std::vector<T> ones(static_cast<std::size_t>(c * instances * instances), T(0));
    for (index_t b = 0; b < instances; ++b)
      for (index_t k = 0; k < c; ++k) ones[static_cast<std::size_t>(b * c + k + b * c * instances)] = T(1);
    class_sums_ = Array<T>(exec_, c * instances, instances, ones);
  }
}

template <typename T>
ConstMatrixView<T> L2PenaltyTerms<T>::expand(ConstMatrixView<T> x) {
  BILEVEL_EXPECTS(x.cols <= reserved_, "l2-tuning: " << x.cols << " instances but workspace for "
                                                     << reserved_ << " (call reserve first)");
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, sources = dim_x() + 1, dy = rows_ * classes_;
  MatrixView<T> source(source_.data(), sources, nb, sources);
  // exp(lambda) in rows 0 .. dim_x - 1 (the last row stays 0: the bias rows' entry)
  ops.exp(x, MatrixView<T>(source.data, dim_x(), nb, sources));
  // E = each entry of W gets its lambda's weight (per feature row, or per class column)
  ops.gather_rows(source, source_of_entry_.data(), MatrixView<T>(penalty_.data(), dy, nb));
  return ConstMatrixView<T>(penalty_.data(), dy, nb);
}

template <typename T>
void L2PenaltyTerms<T>::add_product(ConstMatrixView<T> e, ConstMatrixView<T> m,
                                    MatrixView<T> out) {
  // out += E .* M
  exec_->ops<T>().hadamard(T(1), e, m, T(1), out);
}

template <typename T>
void L2PenaltyTerms<T>::jvp(ConstMatrixView<T> e, ConstMatrixView<T> w, ConstMatrixView<T> v,
                            T factor, MatrixView<T> out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = e.cols, dy = rows_ * classes_;
  // P = factor E .* W .* V
  MatrixView<T> p(product_.data(), dy, nb);
  ops.hadamard(factor, e, w, T(0), p);
  ops.hadamard(T(1), p, v, T(0), p);
  const ConstMatrixView<T> columns(p.data, rows_, classes_ * nb, rows_);  // instance b: columns bC..
  if (map_ == L2Penalty::per_feature) {
    // per_row (r x B) = the sum of each instance's C columns of P
    ops.gemm(Op::none, Op::none, T(1), columns,
             ConstMatrixView<T>(class_sums_.data(), classes_ * nb, nb, classes_ * reserved_), T(0),
             MatrixView<T>(per_row_.data(), rows_, nb, rows_));
    // out = its feature rows (the bias is not penalised)
    ops.copy(ConstMatrixView<T>(per_row_.data(), features_, nb, rows_), out);
    return;
  }
  // out (C x B, contiguous) = the sum of each column's rows: 1' P as one row of C B (the bias
  // row of P is 0: E is 0 there)
  BILEVEL_EXPECTS(out.ld == out.rows, "l2-tuning: the per-class J v must be contiguous (ld "
                                          << out.ld << ", rows " << out.rows << ")");
  ops.gemm(Op::transpose, Op::none, T(1), row_ones_.cview(), columns, T(0),
           MatrixView<T>(out.data, 1, classes_ * nb, 1));
}

template <typename T>
void L2PenaltyTerms<T>::add_value(ConstMatrixView<T> e, ConstMatrixView<T> w, T* g_out) {
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = e.cols;
  // g += (1/2) sum E .* W .* W
  MatrixView<T> p(product_.data(), w.rows, nb);
  ops.hadamard(T(1), e, w, T(0), p);
  ops.batch_dot(p, w, scalars_.data());
  ops.axpby(T(0.5), ConstMatrixView<T>(scalars_.data(), nb, 1), T(1), MatrixView<T>(g_out, nb, 1));
}

template <typename T>
void L2PenaltyTerms<T>::set_max_weight(double max_weight) {
  BILEVEL_EXPECTS(max_weight > 0, "l2-tuning: the largest weight must be > 0, got " << max_weight);
  max_lambda_ = static_cast<T>(std::log(max_weight));
}

template <typename T>
void L2PenaltyTerms<T>::project(MatrixView<T> x) {
  // lambda <- min(lambda, log max_weight)
  if (max_lambda_ < std::numeric_limits<T>::infinity())
    exec_->ops<T>().clamp(x, -std::numeric_limits<T>::infinity(), max_lambda_);
}

template class L2PenaltyTerms<float>;
template class L2PenaltyTerms<double>;

}  // namespace bilevel
