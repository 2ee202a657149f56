// Binary logistic regression in the linear-model family (LinearModelLoss::binary_logistic):
// W = [0 w] per instance. The softmax of the logits (0, z) is (1 - sigmoid(z), sigmoid(z)), so
// the two-class cross-entropy with class 0's column held at 0 is log(1 + exp(-s z)), s = +1 for
// class 1 and -1 for class 0 - benchopt's ijcnn1 loss - and its gradient, H v and J v in w are
// the class-1 columns of the two-class ones at [0 w], [0 v]. The public oracles widen y and v
// here and keep the class-1 columns of their outputs.
#include <bilevel/problems/linear_model.hpp>

#include <bilevel/error.hpp>

namespace bilevel {

LinearModelLoss parse_linear_model_loss(const std::string& text) {
  if (text == "softmax") return LinearModelLoss::softmax;
  if (text == "binary") return LinearModelLoss::binary_logistic;
  throw InvalidArgument("unknown loss '" + text + "': use softmax or binary");
}

template <typename T>
ConstMatrixView<T> LinearModelProblem<T>::widen(ConstMatrixView<T> y, int slot) {
  if (y.empty()) return y;
  BILEVEL_EXPECTS(y.rows == rows_ && y.ld == y.rows && y.cols <= reserved_instances_,
                  name() << ": a binary logistic model's y and v must be contiguous " << rows_
                         << " x B (B <= " << reserved_instances_ << "), got " << y.rows << " x "
                         << y.cols);
  T* wide = wide_in_[slot].data();
  // class 1's columns = y (class 0's stay 0 from reserve)
  exec_->ops<T>().copy(y, MatrixView<T>(wide + rows_, rows_, y.cols, 2 * rows_));
  return ConstMatrixView<T>(wide, model_dim_y(), y.cols);
}

template <typename T>
MatrixView<T> LinearModelProblem<T>::wide_output(MatrixView<T> out, int slot) {
  if (out.empty()) return out;
  BILEVEL_EXPECTS(out.rows == rows_ && out.cols <= reserved_instances_,
                  name() << ": a binary logistic model's y-shaped outputs are " << rows_
                         << " x B (B <= " << reserved_instances_ << "), got " << out.rows
                         << " x " << out.cols);
  return MatrixView<T>(wide_out_[slot].data(), model_dim_y(), out.cols);
}

template <typename T>
void LinearModelProblem<T>::narrow(int slot, MatrixView<T> out) {
  if (out.empty()) return;
  // out = the class-1 columns
  exec_->ops<T>().copy(
      ConstMatrixView<T>(wide_out_[slot].data() + rows_, rows_, out.cols, 2 * rows_), out);
}

// The members defined above, for both precisions (linear_model.cpp instantiates the class and
// the members defined there).
#define BILEVEL_LINEAR_MODEL_ONE_LOGIT(T)                                                       \
  template ConstMatrixView<T> LinearModelProblem<T>::widen(ConstMatrixView<T>, int);            \
  template MatrixView<T> LinearModelProblem<T>::wide_output(MatrixView<T>, int);                \
  template void LinearModelProblem<T>::narrow(int, MatrixView<T>);
BILEVEL_LINEAR_MODEL_ONE_LOGIT(float)
BILEVEL_LINEAR_MODEL_ONE_LOGIT(double)
#undef BILEVEL_LINEAR_MODEL_ONE_LOGIT

}  // namespace bilevel
