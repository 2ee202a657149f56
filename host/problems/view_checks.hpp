// Checks of the views a problem's oracles receive, with messages that name the problem and the
// argument.
#pragma once

#include <bilevel/error.hpp>
#include <bilevel/types.hpp>

namespace bilevel::detail {

/// Throws InvalidArgument "<problem>: <what> must be rows x cols (contiguous)" unless `v` is
/// empty or exactly rows x cols with its columns back to back (the kernels take it as one
/// array).
template <typename T>
void expect_contiguous(const char* problem, const char* what, ConstMatrixView<T> v, index_t rows,
                       index_t cols) {
  BILEVEL_EXPECTS(v.empty() || (v.rows == rows && v.cols == cols && v.ld == rows),
                  problem << ": " << what << " must be " << rows << " x " << cols
                          << " (contiguous)");
}

}  // namespace bilevel::detail
