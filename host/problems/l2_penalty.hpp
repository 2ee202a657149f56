// The L2 outer maps' terms of the linear-model family (LinearModelProblem with
// OuterMap::per_feature_l2 or per_class_l2): E = exp(lambda) expanded to W's entries, and what
// the penalty (1/2) sum E .* W .* W adds to each oracle. Private to host/problems.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problems/linear_model.hpp>

#include <limits>
#include <memory>

namespace bilevel {

template <typename T>
class L2PenaltyTerms {
 public:
  /// W is rows x C per instance (the bias row, row `features` when rows > features, is never
  /// penalised).
  L2PenaltyTerms(std::shared_ptr<Executor> exec, index_t rows, index_t features, int classes,
                 L2Penalty map);

  L2Penalty map() const { return map_; }
  index_t dim_x() const { return map_ == L2Penalty::per_feature ? features_ : classes_; }
  void reserve(index_t instances);

  /// E (dy x B) = exp(lambda) expanded to W's entries by the map, 0 on the bias row: what the
  /// terms below take (one expansion serves every term of a call). Valid until the next call.
  ConstMatrixView<T> expand(ConstMatrixView<T> x);

  /// out += E .* M (M = W: the gradient's term; M = V: the H v term)
  void add_product(ConstMatrixView<T> e, ConstMatrixView<T> m, MatrixView<T> out);
  /// out_k = factor * exp(lambda_k) sum of W .* V over the entries lambda_k penalises
  /// (factor 1: J v; V = W and factor 1/2: grad_x g)
  void jvp(ConstMatrixView<T> e, ConstMatrixView<T> w, ConstMatrixView<T> v, T factor,
           MatrixView<T> out);
  /// g_out[b] += (1/2) sum E .* W .* W
  void add_value(ConstMatrixView<T> e, ConstMatrixView<T> w, T* g_out);

  void set_max_weight(double max_weight);
  /// lambda <- min(lambda, log max_weight)
  void project(MatrixView<T> x);

 private:
  std::shared_ptr<Executor> exec_;
  index_t rows_ = 0, features_ = 0, classes_ = 0, reserved_ = 0;
  L2Penalty map_ = L2Penalty::per_feature;
  T max_lambda_ = std::numeric_limits<T>::infinity();
  Array<T> source_;       // (dim_x + 1) x B: exp(lambda), then a 0 (what the bias rows get)
  Array<sample_index_t> source_of_entry_;  // dy: the row of source_ that entry k of W gets
  Array<T> penalty_;      // dy x B
  Array<T> product_;      // dy x B scratch
  Array<T> class_sums_;   // per_feature: (C B) x B block ones that sum an instance's C columns
  Array<T> row_ones_;     // per_class: r ones that sum a column's rows
  Array<T> per_row_;      // per_feature: r x B
  Array<T> scalars_;      // B
};

extern template class L2PenaltyTerms<float>;
extern template class L2PenaltyTerms<double>;

}  // namespace bilevel
