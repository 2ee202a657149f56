// Diagnostics for a problem you wrote yourself: finite-difference checks of every oracle it
// provides (check_oracles), and one hypergradient at a point (hypergradient) - for tests and for
// debugging, not for speed.
#pragma once

#include <bilevel/problem.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bilevel {

/// One directional check of one oracle for one instance: the oracle's value along a random
/// direction against central differences of the oracle below it.
struct OracleCheck {
  std::string oracle;             ///< "grad_y g", "grad_y f", "grad_x f", "grad_x g", "H v", "J v"
  std::string against;            ///< what the difference is taken of, e.g. "g along y"
  index_t instance = 0;
  double analytic = 0;            ///< <oracle, w> for a random direction w
  double finite_difference = 0;   ///< the same from central differences
  double relative_error = 0;      ///< |analytic - fd| / max(|analytic|, |fd|, floor)
  bool passed = false;
};

struct OracleCheckReport {
  std::vector<OracleCheck> checks;
  std::vector<std::string> skipped;  ///< oracles the problem does not provide, and why
  bool passed() const;
  /// A table: one line per check (oracle, instance, the two values, the error, ok / WRONG),
  /// then the skipped oracles.
  std::string text() const;
};

struct OracleCheckOptions {
  /// Central-difference step along unit-norm directions; <= 0: 1e-5 in double, 3e-2 in float.
  double step = 0;
  /// Largest relative error that passes; <= 0: 1e-5 in double, 5e-2 in float.
  double tolerance = 0;
  std::uint64_t seed = 0;  ///< of the random directions
};

/// Checks, on full batches (the problem's whole data), for every instance (the columns of x
/// and y): grad_y g against differences of g along y; grad_y f and grad_x f (when
/// upper_depends_on_x) against differences of f; H v against differences of grad_y g along y;
/// J v against differences of <grad_y g, v> along x; grad_x g (when provided) against
/// differences of g along x. Values come from Problem::values. Use double: float differences
/// are too coarse for tight tolerances. Throws InvalidArgument for shapes that do not match.
template <typename T>
OracleCheckReport check_oracles(Problem<T>& problem, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                const OracleCheckOptions& options = {});

struct HypergradientOptions {
  /// "cg" (conjugate gradient on H v = grad_y f; with iterations >= dim_y this is the exact
  /// implicit hypergradient at the given y) or "neumann" (eta sum_{q<Q} (I - eta H)^q grad_y f).
  std::string method = "cg";
  index_t iterations = 0;  ///< CG iterations or Neumann terms; 0: dim_y for CG, 100 for Neumann
  double neumann_eta = 0;  ///< Neumann step; needed (> 0) with "neumann"
};

/// One hypergradient per instance at (x, y): h = grad_x f - J v with v ~ H^{-1} grad_y f, every
/// oracle on full batches. At y = y*(x) this is grad F(x). h: dim_x x B on the executor.
template <typename T>
void hypergradient(Problem<T>& problem, ConstMatrixView<T> x, ConstMatrixView<T> y,
                   MatrixView<T> h, const HypergradientOptions& options = {});

}  // namespace bilevel
