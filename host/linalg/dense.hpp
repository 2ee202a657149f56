// Small dense linear algebra in double on the host, for closed-form reference answers only
// (never on a solver's path). Column-major std::vector storage.
#pragma once

#include <bilevel/types.hpp>

#include <utility>
#include <vector>

namespace bilevel::linalg {

/// C (m x n) = op(A) op(B), A is m x k (or k x m when transposed), B is k x n (or n x k).
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b,
                           index_t m, index_t n, index_t k, bool trans_a = false,
                           bool trans_b = false);
/// Solves S X = R for symmetric positive definite S (n x n), R n x nrhs, by Cholesky.
/// Throws InvalidArgument if S is not positive definite.
std::vector<double> spd_solve(std::vector<double> s, std::vector<double> r, index_t n,
                              index_t nrhs);
/// Eigenvalues of a symmetric matrix (cyclic Jacobi), ascending.
std::vector<double> symmetric_eigenvalues(std::vector<double> s, index_t n);
/// I (n x n).
std::vector<double> identity(index_t n);

}  // namespace bilevel::linalg
