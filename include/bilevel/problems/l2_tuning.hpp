// L2-regularization tuning of (multinomial) logistic regression (benchopt's bilevel benchmark,
// the ijcnn1 / covtype tasks; Pedregosa 2016, "Hyperparameter optimization with approximate
// gradient"), with one of two maps from x to the penalty:
//
//   y = W in R^{r x C} (as hyper-cleaning's: r = d + 1 with the bias as feature d, or r = d
//       without a bias, HypercleanData::bias = false; column-major),
//   per_feature: x = lambda in R^d, feature j's row penalised by exp(lambda_j) (ijcnn1's map),
//   per_class:   x = lambda in R^C, class c's column penalised by exp(lambda_c) (covtype's map),
//   g(lambda, W) = mean CE(W' a_i, label_i) over train + (1/2) sum_{jc} E_jc W_jc^2
//   f(W)         = mean CE over validation
//
// with E the penalty map's exp(lambda) expanded to W's shape (0 on the bias row: the bias is
// never penalised). The cross-entropy oracles are hyper-cleaning's fused kernels with every
// sample weight 1 (its problem holds the data; sigmoid(40) = 1 in float and double); the
// penalty adds
//   gy += E .* W,  H v += E .* V,  J v = the sums of E .* W .* V over each lambda's entries
// (over the classes of a feature row, or over the rows of a class column): entrywise kernels,
// one gather that expands exp(lambda) and one GEMM that sums.
//
// benchopt's covtype task is per_class without a bias, exactly (datasets/covtype.py at 3ad65dc;
// tests/test_l2_tuning.cpp checks g and f against its formula). Its ijcnn1 task is binary
// logistic regression with one weight vector w and per-feature exp(lambda) ||w_j||^2 / 2; with
// two classes and no bias this problem is the same problem up to a shift of lambda: the loss
// depends on W only through u = W_1 - W_0, so at the lower solution W_0 = -W_1 = -u/2 and the
// penalty is (1/2) sum_j (exp(lambda_j) / 2) u_j^2 - F(lambda) here is benchopt's F(lambda -
// log 2) (tested), though the iterates before convergence differ.
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

/// Which entries of W one L2 weight exp(lambda_k) penalises.
enum class L2Penalty { per_feature, per_class };
/// "per-feature" | "per-class"; InvalidArgument naming the text otherwise.
L2Penalty parse_l2_penalty(const std::string& text);
std::string to_string(L2Penalty penalty);

template <typename T>
class L2TuningProblem final : public Problem<T> {
 public:
  /// The three splits (labels uncorrupted; classes from the training split; a bias row when
  /// data.bias).
  L2TuningProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                  L2Penalty penalty = L2Penalty::per_feature);

  std::string name() const override { return "l2-tuning"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return penalty_map_ == L2Penalty::per_feature ? features_ : model_.classes(); }
  L2Penalty penalty_map() const { return penalty_map_; }
  bool has_bias() const { return model_.has_bias(); }
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
  /// penalty_ (dy x B) = exp(lambda) expanded to W's entries by the map, 0 on the bias row.
  void expand_penalty(ConstMatrixView<T> x);
  /// The fixed sample weights' logits (40: weight 1) for B instances.
  ConstMatrixView<T> unit_weights(index_t instances) const;

  std::shared_ptr<Executor> exec_;
  HypercleanProblem<T> model_;  // the data and the cross-entropy oracles (no penalty)
  index_t features_ = 0;
  L2Penalty penalty_map_ = L2Penalty::per_feature;
  T max_lambda_ = std::numeric_limits<T>::infinity();
  index_t reserved_ = 0;
  Array<T> weights_;      // n_train x B: 40
  Array<T> source_;       // (dim_x + 1) x B: exp(lambda), then a 0 (what the bias rows get)
  Array<sample_index_t> source_of_entry_;  // dy: the row of source_ that entry k of W gets
  Array<T> penalty_;      // dy x B
  Array<T> product_;      // dy x B scratch
  Array<T> class_sums_;   // per_feature: (C B) x B block ones that sum an instance's C columns
  Array<T> row_ones_;     // per_class: r ones that sum a column's rows
  Array<T> per_row_;      // per_feature: r x B
  Array<T> scalars_;      // B
};

extern template class L2TuningProblem<float>;
extern template class L2TuningProblem<double>;

}  // namespace bilevel
