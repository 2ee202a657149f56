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
// never penalised). It is the linear-model family's L2 maps (linear_model.hpp, OuterMap::
// per_feature_l2 and per_class_l2): a LinearModelProblem built by its L2 constructor. The
// cross-entropy part of every oracle is the family's fused kernels with no sample weights; the
// penalty adds (host/problems/l2_penalty.cpp)
//   gy += E .* W,  H v += E .* V,  J v = the sums of E .* W .* V over each lambda's entries
// (over the classes of a feature row, or over the rows of a class column), grad_x g = half
// those sums with V = W: entrywise kernels, one gather that expands exp(lambda) and one GEMM
// that sums.
//
// benchopt's covtype task is per_class without a bias, exactly (datasets/covtype.py at 3ad65dc;
// tests/test_l2_tuning.cpp checks g and f against its formula). Its ijcnn1 task is binary
// logistic regression with one weight vector w and per-feature exp(lambda_j) w_j^2 / 2: exactly
// per_feature without a bias with LinearModelLoss::binary_logistic (y = w, r entries; tested
// against its formula). The two-class softmax model is the same problem only up to a shift of
// lambda: its loss depends on W only through u = W_1 - W_0, so at the lower solution
// W_0 = -W_1 = -u/2 and its F(lambda) is benchopt's F(lambda - log 2) (tested), though the
// iterates before convergence differ.
#pragma once

#include <bilevel/problems/linear_model.hpp>

namespace bilevel {

template <typename T>
using L2TuningProblem = LinearModelProblem<T>;

}  // namespace bilevel
