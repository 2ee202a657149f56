// set_steps_from_smoothness: a preset's lower-level and linear-system steps from the problem's
// estimated L_g (see solver.hpp).
#include <bilevel/solvers/lower_level.hpp>
#include <bilevel/solvers/solver.hpp>

#include <cmath>

namespace bilevel {

template <typename T>
std::vector<double> set_steps_from_smoothness(Problem<T>& problem, AlgorithmOptions& options,
                                              ConstMatrixView<T> x0, ConstMatrixView<T> y0,
                                              index_t batch, double fraction, index_t iterations) {
  BILEVEL_EXPECTS(fraction > 0 && fraction < 2,
                  "set_steps_from_smoothness: fraction must be in (0, 2) (a step of 2 / L_g or "
                  "more diverges), got " << fraction);
  BILEVEL_EXPECTS(iterations > 0,
                  "set_steps_from_smoothness: iterations must be > 0, got " << iterations);
  const std::vector<double> l_g =
      estimate_lower_smoothness(problem, x0, y0, batch, iterations, options.loop.seed);
  std::vector<double> steps;
  for (std::size_t b = 0; b < l_g.size(); ++b) {
    BILEVEL_EXPECTS(std::isfinite(l_g[b]) && l_g[b] > 0,
                    "set_steps_from_smoothness: the estimate of L_g of instance "
                        << b << " is " << l_g[b]
                        << " (H v is zero or not finite at the start point: check hvp_jvp with "
                           "check_oracles)");
    steps.push_back(fraction / l_g[b]);
  }
  options.loop.inner_step = steps;
  options.neumann.eta = steps;
  options.fixed_point.nu = steps;
  options.truncated_neumann.eta = steps;
  options.sl_bamm.s = steps;
  options.sl_bamm.eta = steps;
  return l_g;
}

template std::vector<double> set_steps_from_smoothness(Problem<float>&, AlgorithmOptions&,
                                                       ConstMatrixView<float>,
                                                       ConstMatrixView<float>, index_t, double,
                                                       index_t);
template std::vector<double> set_steps_from_smoothness(Problem<double>&, AlgorithmOptions&,
                                                       ConstMatrixView<double>,
                                                       ConstMatrixView<double>, index_t, double,
                                                       index_t);

}  // namespace bilevel
