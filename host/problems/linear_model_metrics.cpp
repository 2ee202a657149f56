// The linear-model family's evaluation: whole-split losses and accuracies, the metrics a
// run reports (test accuracy, and the flagged samples against the corruption truth), and the
// features and per-instance reductions that tests and the Python module read back.
#include <bilevel/problems/linear_model.hpp>

#include "../../kernels/linear_model_kernels.hpp"
#include "../../kernels/softmax_kernels.hpp"
#include "linear_model_chunks.hpp"

#include <algorithm>
#include <cmath>

namespace bilevel {

template <typename T>
std::vector<double> LinearModelProblem<T>::reduce_part(DataSplit split, ConstMatrixView<T> y,
                                                      bool accuracy) {
  reduce_part_into(split, y, accuracy, scalars_.data());
  std::vector<T> host(static_cast<std::size_t>(y.cols));
  exec_->copy_to_host(host.data(), scalars_.data(), host.size() * sizeof(T));
  return std::vector<double>(host.begin(), host.end());
}

template <typename T>
void LinearModelProblem<T>::reduce_part_into(DataSplit split, ConstMatrixView<T> y, bool accuracy,
                                            T* out) {
  BILEVEL_EXPECTS(y.rows == call_dim_y() && y.ld == y.rows && y.cols <= reserved_instances_,
                  name() << ": y must be a contiguous " << call_dim_y() << " x B (B <= "
                         << reserved_instances_ << ")");
  if (narrow_call()) {
    // binary logistic: the two-class logits (0, w' a)
    const WideCall wide(*this);
    reduce_part_into(split, widen(y, 0), accuracy, out);
    return;
  }
  const Part& p = part(split);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = y.cols, cb = classes_ * nb;
  bool first = true;
  for_each_chunk(p, Batch{nullptr, p.samples}, 1, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    MatrixView<T> l(per_sample_.data(), c.count, nb, per_sample_.rows());
    // Z = A_c' W
    logits(c, y, z, nb);
    const kernels::SoftmaxBatch<T> b{c.count, classes_, nb, p.labels.data() + c.offset, nullptr,
                                     nullptr, 0, T(1) / static_cast<T>(p.total)};
    // L = [argmax Z == label] or CE(Z, label) / n
    if (accuracy)
      softmax_->correct(b, z.data, z.ld, l.data, l.ld);
    else
      softmax_->loss(b, z.data, z.ld, l.data, l.ld);
    // out (+)= L' 1 (accuracy: / n)
    const T scale = accuracy ? T(1) / static_cast<T>(p.total) : T(1);
    ops.gemm(Op::transpose, Op::none, scale, l, ConstMatrixView<T>(ones_.data(), c.count, 1),
             first ? T(0) : T(1), MatrixView<T>(out, nb, 1));
    first = false;
  });
  reduce(out, nb);
}

template <typename T>
void LinearModelProblem<T>::set_detection_truth(const std::vector<std::uint8_t>& corrupted) {
  BILEVEL_EXPECTS(map_ == OuterMap::sample_weights,
                  name() << ": a detection truth flags sample weights; this problem's x are L2 "
                            "weights");
  BILEVEL_EXPECTS(static_cast<index_t>(corrupted.size()) == train_.total,
                  "hyperclean: the detection truth needs " << train_.total << " values, got "
                                                           << corrupted.size());
  // this rank's samples' entries
  const auto begin = corrupted.begin() + train_.first;
  corrupted_ = Array<T>(exec_, train_.samples, 1, std::vector<T>(begin, begin + train_.samples));
}

template <typename T>
std::vector<std::string> LinearModelProblem<T>::evaluation_metric_names() const {
  if (corrupted_.size() == 0) return {"test_accuracy"};
  return {"test_accuracy", "flagged", "true_positives"};
}

template <typename T>
void LinearModelProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                              T* out) {
  const index_t nb = y.cols;
  // accuracy of W on the test split
  reduce_part_into(DataSplit::test, y, true, out);
  if (corrupted_.size() == 0) return;
  Ops<T>& ops = exec_->ops<T>();
  // flagged = #{i : x_i < 0} (sigmoid(x_i) < 0.5); true positives = those corrupted
  ops.batch_count_below(x, T(0), nullptr, out + nb);
  ops.batch_count_below(x, T(0), corrupted_.data(), out + 2 * nb);
  reduce(out + nb, 2 * nb);
}

template <typename T>
std::vector<T> LinearModelProblem<T>::features_of(DataSplit split) {
  const Part& p = part(split);
  Array<T> out(exec_, rows_, p.samples);
  columns_as_t(p, nullptr, 0, p.samples, out.data());
  return out.to_host();
}

template <typename T>
std::vector<double> LinearModelProblem<T>::accuracy(DataSplit split, ConstMatrixView<T> y) {
  return reduce_part(split, y, true);
}

template <typename T>
std::vector<double> LinearModelProblem<T>::mean_loss(DataSplit split, ConstMatrixView<T> y) {
  return reduce_part(split, y, false);
}
// The members defined above, for both precisions (linear_model.cpp instantiates the class and
// the members defined there).
#define BILEVEL_LINEAR_MODEL_METRICS(T)                                                            \
  template std::vector<double> LinearModelProblem<T>::reduce_part(DataSplit, ConstMatrixView<T>,  \
                                                                 bool);                          \
  template void LinearModelProblem<T>::reduce_part_into(DataSplit, ConstMatrixView<T>, bool, T*); \
  template void LinearModelProblem<T>::set_detection_truth(const std::vector<std::uint8_t>&);     \
  template std::vector<std::string> LinearModelProblem<T>::evaluation_metric_names() const;       \
  template void LinearModelProblem<T>::evaluation_metrics(ConstMatrixView<T>, ConstMatrixView<T>, \
                                                         T*);                                    \
  template std::vector<T> LinearModelProblem<T>::features_of(DataSplit);                          \
  template std::vector<double> LinearModelProblem<T>::accuracy(DataSplit, ConstMatrixView<T>);    \
  template std::vector<double> LinearModelProblem<T>::mean_loss(DataSplit, ConstMatrixView<T>);
BILEVEL_LINEAR_MODEL_METRICS(float)
BILEVEL_LINEAR_MODEL_METRICS(double)
#undef BILEVEL_LINEAR_MODEL_METRICS

}  // namespace bilevel
