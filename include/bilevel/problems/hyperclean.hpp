// Data hyper-cleaning (Franceschi et al., ICML 2017; Ji et al. 2021): one weight logit per
// training sample, a weighted softmax regression below, the clean validation loss above.
//
//   x in R^n_train,  y = W in R^{(d+1) x C} (column-major, bias as feature d; R^{d x C}
//   without a bias, HypercleanData::bias = false, as benchopt's protocol),
//   g(x, W) = (1/|b|) sum_{i in b} sigmoid(x_i) CE(W' a_i, label~_i) + reg ||W||^2   (train)
//   f(W)    = (1/|b'|) sum_{j in b'} CE(W' a_j, label_j)                              (validation)
//
// It is the linear-model family's sample-weight map (linear_model.hpp, OuterMap::
// sample_weights): the problem is a LinearModelProblem built by one of its hyper-cleaning
// constructors (data and reg, optionally shards, precision, residence; or synthetic data).
#pragma once

#include <bilevel/problems/linear_model.hpp>

namespace bilevel {

template <typename T>
using HypercleanProblem = LinearModelProblem<T>;

}  // namespace bilevel
