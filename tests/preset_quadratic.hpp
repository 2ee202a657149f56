// The quadratic with a known answer that the preset tests share (test_presets.cpp,
// test_momentum_presets.cpp, test_first_order_presets.cpp): its data, each preset's options on
// it, and a run's distance to x* (one run, or the mean over seeds).
#pragma once

#include "test_support.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bilevel::test::presets {

/// dx = 5, dy = 10, n = 200, mu = 0.5 (spectrum of A in about [1.1, 2.1]).
inline QuadraticData problem() { return QuadraticData::random(5, 10, 200, 31); }

inline AlgorithmOptions base_options(const QuadraticData& q, const std::string& name, index_t iterations) {
  const double big_l = q.lower_hessian_spectrum().second;
  AlgorithmOptions o;
  o.name = name;
  o.loop.iterations = iterations;
  o.loop.inner_steps = 10;
  o.loop.inner_step = {1.0 / big_l};
  o.loop.outer_step = {0.25};
  o.neumann = NeumannOptions{40, {1.0 / big_l}};
  o.fixed_point = FixedPointOptions{5, {1.0 / big_l}, true};
  o.truncated_neumann = TruncatedNeumannOptions{40, {1.0 / big_l}, 0};
  o.loop.reference_x = q.solution_x();
  return o;
}

inline double run_distance(const AlgorithmOptions& o, const QuadraticData& q, SolveResult<double>* out = nullptr) {
  QuadraticProblem<double> p(cpu(), q);
  SolveResult<double> r = make_solver(p, o)->run(std::vector<double>(5, 0.0), std::vector<double>(10, 0.0));
  const double d = distance(r.x, q.solution_x());
  if (out) *out = std::move(r);
  return d;
}

/// run_distance averaged over `seeds` runs of `o` with loop seeds first_seed, first_seed + 1, ...
/// (the presets whose noise or random depth makes one run say little).
inline double mean_distance(AlgorithmOptions o, const QuadraticData& q, int seeds,
                            std::uint64_t first_seed) {
  double sum = 0;
  for (int s = 0; s < seeds; ++s) {
    o.loop.seed = first_seed + static_cast<std::uint64_t>(s);
    sum += run_distance(o, q) / seeds;
  }
  return sum;
}

}  // namespace bilevel::test::presets
