// The main() of the benchmark programs: registers the benchmarks once per available backend
// (the CPU always, CUDA where a device exists, saying why not otherwise) and runs them.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel::bench {

/// The timing of the solver benchmarks: per benchmark iteration (one, after the caller's
/// warm-up), `run` timed with device events, the manual time set per solver iteration
/// (`iterations` of them in a run) and "launches" per solver iteration counted. Returns the
/// last run's milliseconds, for the caller's rate counters.
template <typename Run>
double time_solver_runs(benchmark::State& state, Executor& exec, index_t iterations, Run&& run) {
  double ms = 0.0;
  for (auto _ : state) {
    const std::uint64_t launches = launch_count();
    ms = exec.time_ms(run);
    state.SetIterationTime(ms / 1e3 / static_cast<double>(iterations));
    state.counters["launches"] =
        static_cast<double>(launch_count() - launches) / static_cast<double>(iterations);
  }
  return ms;
}

inline int run_on_every_backend(
    int argc, char** argv, const char* program,
    const std::function<void(const std::shared_ptr<Executor>&)>& register_for) {
  std::vector<std::shared_ptr<Executor>> executors{make_executor(Backend::cpu)};
  std::string reason;
  if (cuda_device_count(&reason) > 0)
    executors.push_back(make_executor(Backend::cuda));
  else
    std::fprintf(stderr, "%s: no CUDA device (%s): CPU only\n", program, reason.c_str());
  for (const auto& exec : executors) {
    benchmark::AddCustomContext("device." + to_string(exec->backend()), exec->device_name());
    register_for(exec);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bilevel::bench
