// L2-regularization tuning of (multinomial) logistic regression, one weight per feature
// (benchopt's bilevel benchmark, the ijcnn1 / covtype task; Pedregosa 2016, "Hyperparameter
// optimization with approximate gradient"):
//
//   x = lambda in R^d (log-weights: feature j is penalised by exp(lambda_j); the bias is not),
//   y = W in R^{(d+1) x C} (as hyper-cleaning's: bias as feature d, column-major),
//   g(lambda, W) = mean CE(W' a_i, label_i) over train + (1/2) sum_{j<d} exp(lambda_j) ||W_j,:||^2
//   f(W)         = mean CE over validation
//
// The cross-entropy oracles are hyper-cleaning's fused kernels with every sample weight 1 (its
// problem holds the data; sigmoid(40) = 1 in float and double); the penalty adds
//   gy += E .* W,  H v += E .* V,  (J v)_j = exp(lambda_j) sum_c W_jc V_jc,
// with E = exp(lambda) broadcast over the classes (bias row 0): entrywise kernels and one GEMM
// that sums over the classes of every instance.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/data.hpp>
#include <bilevel/problem.hpp>
#include <bilevel/problems/hyperclean.hpp>

#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

template <typename T>
class L2TuningProblem final : public Problem<T> {
 public:
  /// The three splits (labels uncorrupted; classes from the training split).
  L2TuningProblem(std::shared_ptr<Executor> exec, const HypercleanData& data);

  std::string name() const override { return "l2-tuning"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return features_; }
  index_t dim_y() const override { return model_.dim_y(); }
  index_t lower_samples() const override { return model_.lower_samples(); }
  index_t upper_samples() const override { return model_.upper_samples(); }
  bool upper_depends_on_x() const override { return false; }
  int classes() const { return model_.classes(); }
  /// Keeps every weight at most `max_weight` (project_x clamps lambda to log max_weight): a
  /// larger one would make the lower level's curvature, and so its stable step, depend on the
  /// upper iterate. Default: no bound.
  void set_max_weight(double max_weight);
  void project_x(MatrixView<T> x) override;

  void reserve(index_t instances, index_t max_batch) override;
  std::vector<std::string> evaluation_metric_names() const override;
  /// test_accuracy
  void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;

  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

  /// Per-instance mean cross-entropy and accuracy of W on a split (unpenalised). Synchronise.
  std::vector<double> mean_loss(DataSplit split, ConstMatrixView<T> y) { return model_.mean_loss(split, y); }
  std::vector<double> accuracy(DataSplit split, ConstMatrixView<T> y) { return model_.accuracy(split, y); }

 private:
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;
  /// penalty_ (dy x B) = exp(lambda) broadcast over the classes, 0 on the bias row.
  void expand_penalty(ConstMatrixView<T> x);
  /// The fixed sample weights' logits (40: weight 1) for B instances.
  ConstMatrixView<T> unit_weights(index_t instances) const;

  std::shared_ptr<Executor> exec_;
  HypercleanProblem<T> model_;  // the data and the cross-entropy oracles (no penalty)
  index_t features_ = 0;
  T max_lambda_ = std::numeric_limits<T>::infinity();
  index_t reserved_ = 0;
  Array<T> weights_;      // n_train x B: 40
  Array<T> rows_exp_;     // (d + 1) x B: exp(lambda), bias row 0
  Array<sample_index_t> row_of_entry_;  // dy: entry k of a W column is feature k % (d + 1)
  Array<T> penalty_;      // dy x B
  Array<T> product_;      // dy x B scratch
  Array<T> class_sums_;   // (C B) x B: block ones that sum an instance's C columns
  Array<T> per_row_;      // (d + 1) x B
  Array<T> scalars_;      // B
};

extern template class L2TuningProblem<float>;
extern template class L2TuningProblem<double>;

}  // namespace bilevel
