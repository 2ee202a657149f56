// Meta-learning throughput on every available backend: one meta-iteration of MAML (ITD through
// D = 5 adaptation steps), first-order MAML and ANIL on sinusoid tasks, 4-layer MLP
// 1-40-40-40-1 (ReLU), K = 10 support and 10 query points, meta-batch 32 (the meta-learning
// issue's case; bench/compare/maml_{jax,torch}.py run the same MAML). Each case: a warm-up run,
// then one timed run of 50 meta-iterations (CUDA: 500) divided by their count; counters:
// meta-iterations per second and kernels launched per meta-iteration.
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <string>
#include <vector>

namespace {

using namespace bilevel;

template <typename T>
void bm_meta_iteration(benchmark::State& state, std::shared_ptr<Executor> exec,
                       std::string algo, index_t meta_batch, index_t inner_steps) {
  MetaAlgorithmOptions o;
  o.name = algo;
  o.inner_steps = inner_steps;
  o.inner_step = 0.01;
  o.loop.upper = UpperUpdate::sgd;
  o.loop.outer_step = {0.01};
  o.loop.final_evaluation = false;
  o.loop.divergence_check_every = 0;
  const index_t iterations = exec->backend() == Backend::cuda ? 500 : 50;
  o.loop.iterations = iterations;
  MetaMlpSpec spec;
  spec.mlp.widths = {1, 40, 40, 40, 1};
  apply_meta_preset(o, spec);
  MetaMlpProblem<T> problem(exec, spec, meta_batch);
  const std::vector<double> start = mlp_initial_parameters(spec.mlp, 1);
  std::vector<T> x0;
  for (index_t b = 0; b < meta_batch; ++b)
    for (double v : start) x0.push_back(static_cast<T>(v));
  const std::vector<T> y0(static_cast<std::size_t>(problem.dim_y() * meta_batch), T(0));
  auto solver = make_meta_solver(problem, o);
  solver->run(x0, y0);  // warm-up (and graph capture on CUDA)
  const double ms =
      bench::time_solver_runs(state, *exec, iterations, [&] { solver->run(x0, y0); });
  state.counters["meta_it/s"] = 1e3 * static_cast<double>(iterations) / ms;
}

void register_all(const std::shared_ptr<Executor>& exec) {
  const std::string backend = to_string(exec->backend());
  for (const char* algo : {"maml", "fomaml", "anil"})
    for (const index_t batch : {index_t(1), index_t(32)}) {
      const std::string name = std::string("meta_iteration_") + algo + "/" + backend +
                               "/float/mlp:1-40-40-40-1/meta_batch:" + std::to_string(batch) +
                               "/inner_steps:5";
      benchmark::RegisterBenchmark(name.c_str(), bm_meta_iteration<float>, exec,
                                   std::string(algo), batch, index_t(5))
          ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_meta", register_all);
}
