// The small hyper-cleaning data set the linear-model tests share (test_linear_model.cpp,
// test_linear_model_draws.cpp): synthetic, train + 70 validation + 20 test samples, p = 0.4.
#pragma once

#include "test_support.hpp"

namespace bilevel::test {

inline HypercleanData linear_model_data(index_t train, index_t features, int classes,
                                 std::uint64_t seed = 3) {
  const Dataset pool = make_synthetic(train + 70 + 20, features, classes, seed, 2.0);
  return prepare_hyperclean(pool, std::nullopt, SplitSizes{train, 70, 20}, 0.4, seed + 1);
}

}  // namespace bilevel::test
