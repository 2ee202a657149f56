#include <bilevel/array.hpp>
#include <bilevel/estimators.hpp>
#include <bilevel/sampling.hpp>
#include <bilevel/solvers/lower_level.hpp>

#include <cmath>
#include <random>

namespace bilevel {

template <typename T>
void train_lower_level(Problem<T>& problem, ConstMatrixView<T> x, MatrixView<T> y,
                       const LowerLevelOptions& o) {
  auto exec = problem.executor();
  Ops<T>& ops = exec->template ops<T>();
  const index_t nb = y.cols;
  Array<T> alpha = per_instance_array<T>(exec, o.step, nb, "lower-level step");
  Array<T> gy(exec, problem.dim_y(), nb);
  MinibatchSampler<T> sampler(exec, o.seed, problem.lower_samples(), o.batch);
  problem.reserve(nb, sampler.batch_size());
  for (index_t t = 0; t < o.steps; ++t) {
    const Batch batch = sampler.draw(SampleStream::lower_step, 0, t);
    // gy = grad_y g(x, y)
    problem.grad_y_g(batch, x, y, gy.view());
    // y <- Proj_Y(y - alpha gy)
    ops.batch_axpy(T(-1), alpha.data(), gy.view(), y);
    problem.project_y(y);
  }
}

template <typename T>
std::vector<double> estimate_lower_smoothness(Problem<T>& problem, ConstMatrixView<T> x,
                                              ConstMatrixView<T> y, index_t batch,
                                              index_t iterations, std::uint64_t seed) {
  auto exec = problem.executor();
  Ops<T>& ops = exec->template ops<T>();
  const index_t nb = y.cols, dy = problem.dim_y();
  MinibatchSampler<T> sampler(exec, seed, problem.lower_samples(), batch);
  problem.reserve(nb, sampler.batch_size());
  const Batch b = sampler.draw(SampleStream::evaluation, 0, 0);
  Array<T> v(exec, dy, nb), hv(exec, dy, nb), norm(exec, nb, 1), ones(exec, nb, 1);
  ops.fill(ones.view(), T(1));
  // v = a random start (a constant one can lie in H's null space: softmax is shift-invariant)
  {
    std::mt19937_64 rng(seed + 1);
    std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(static_cast<double>(dy)));
    std::vector<T> start(static_cast<std::size_t>(dy * nb));
    for (auto& s : start) s = static_cast<T>(normal(rng));
    v.upload(start);
  }
  for (index_t it = 0; it < iterations; ++it) {
    // hv = H v
    problem.hvp_jvp(b, x, y, v.view(), hv.view(), MatrixView<T>());
    // norm = ||H v||; v = H v / ||H v||
    ops.batch_nrm2(hv.view(), norm.data());
    ops.fill(v.view(), T(0));
    ops.batch_axpy_ratio(T(1), ones.data(), norm.data(), hv.view(), v.view());
  }
  const std::vector<T> host = norm.to_host();
  return std::vector<double>(host.begin(), host.end());
}

template void train_lower_level(Problem<float>&, ConstMatrixView<float>, MatrixView<float>,
                                const LowerLevelOptions&);
template void train_lower_level(Problem<double>&, ConstMatrixView<double>, MatrixView<double>,
                                const LowerLevelOptions&);
template std::vector<double> estimate_lower_smoothness(Problem<float>&, ConstMatrixView<float>,
                                                       ConstMatrixView<float>, index_t, index_t,
                                                       std::uint64_t);
template std::vector<double> estimate_lower_smoothness(Problem<double>&, ConstMatrixView<double>,
                                                       ConstMatrixView<double>, index_t, index_t,
                                                       std::uint64_t);

}  // namespace bilevel
