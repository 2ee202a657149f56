// Policy-alignment throughput on every available backend: solver iterations of A-PARL and of
// reward learning on B batched 5 x 5 gridworlds (one MDP per instance): 10 soft
// value-iteration sweeps, 32 preference pairs of 15-step trajectories per gridworld, the
// Neumann hypergradient (66 transposed-Jacobian products), an SGD step. B = 1 and 1,000 (the
// issue's "1,000 gridworlds at once"). Each case: a warm-up run, then one timed run of 20
// iterations (CUDA: 200) divided by their count; counters: iterations and gridworld-steps per
// second, kernels launched per iteration.
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <string>
#include <vector>

namespace {

using namespace bilevel;

template <typename T>
void bm_gridworld_iteration(benchmark::State& state, std::shared_ptr<Executor> exec,
                            std::string algo, index_t instances) {
  AlignmentOptions o;
  o.name = algo;
  const index_t iterations = exec->backend() == Backend::cuda ? 200 : 20;
  o.loop.iterations = iterations;
  o.loop.upper_batch = 32;
  o.loop.independent_batches = true;
  o.loop.final_evaluation = false;
  o.loop.divergence_check_every = 0;
  GridworldAlignmentSpec spec;
  spec.instances = instances;
  apply_alignment_preset(o, spec);
  GridworldAlignmentProblem<T> problem(exec, spec);
  const std::vector<double>& nu = problem.initial_reward();
  const std::vector<double> q = problem.soft_optimal_q(nu);
  const std::vector<T> x0(nu.begin(), nu.end()), y0(q.begin(), q.end());
  auto solver = make_alignment_solver(problem, o);
  solver->run(x0, y0);  // warm-up (and graph capture on CUDA)
  const double ms =
      bench::time_solver_runs(state, *exec, iterations, [&] { solver->run(x0, y0); });
  state.counters["it/s"] = 1e3 * static_cast<double>(iterations) / ms;
  state.counters["gridworld_it/s"] = 1e3 * static_cast<double>(iterations * instances) / ms;
}

void register_all(const std::shared_ptr<Executor>& exec) {
  const std::string backend = to_string(exec->backend());
  for (const char* algo : {"a-parl", "reward-learning"})
    for (const index_t instances : {index_t(1), index_t(1000)}) {
      const std::string name = std::string("gridworld_iteration_") + algo + "/" + backend +
                               "/float/side:5/pairs:32/instances:" + std::to_string(instances);
      benchmark::RegisterBenchmark(name.c_str(), bm_gridworld_iteration<float>, exec,
                                   std::string(algo), instances)
          ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_alignment", register_all);
}
