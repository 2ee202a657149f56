// Data-parallel costs under MPI (run with mpirun; rank 0 reports): the all-reduce of a float
// buffer against its size, one stocBiO iteration on the sharded quadratic (dy = 256,
// n = 65536 samples shared by the ranks, batch 512), and one SOBA and one stocBiO iteration on
// sharded hyper-cleaning (Fashion-MNIST-sized synthetic data: 20000 / 5000 / 10000 samples,
// 784 features, 10 classes, batch 512; x_i with its sample). Every case runs a fixed number of
// iterations on every rank (collectives must match), after a barrier; the time is rank 0's.
//   mpirun -np 2 build/release/bench/bench_distributed
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace bilevel;

std::shared_ptr<Communicator> world() {
  static const auto comm = launched_by_mpi() ? mpi_communicator() : local_communicator();
  return comm;
}

void bm_allreduce(benchmark::State& state, index_t count) {
  auto exec = make_executor(Backend::cpu);
  Array<float> data(exec, count, 1);
  exec->ops<float>().fill(data.view(), 1.0f);
  const auto comm = world();
  comm->allreduce_sum(*exec, data.data(), count);  // warm-up
  for (auto _ : state) {
    comm->barrier();
    const auto start = std::chrono::steady_clock::now();
    comm->allreduce_sum(*exec, data.data(), count);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.counters["bytes"] = 4.0 * static_cast<double>(count);
  // ring all-reduce moves 2 (P - 1) / P of the buffer per rank
  const double p = comm->size();
  state.counters["bus_GB/s"] = benchmark::Counter(
      4.0 * static_cast<double>(count) * 2.0 * (p - 1) / p * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
  state.counters["ranks"] = p;
}

/// Times runs of `iterations` iterations after a warm-up, every rank starting together; the
/// time per iteration is rank 0's.
void time_iterations(benchmark::State& state, Solver<float>& solver, const std::vector<float>& x0,
                     const std::vector<float>& y0, index_t iterations) {
  solver.run(x0, y0);  // warm-up
  for (auto _ : state) {
    world()->barrier();
    const auto start = std::chrono::steady_clock::now();
    solver.run(x0, y0);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
        static_cast<double>(iterations));
  }
  state.counters["ranks"] = world()->size();
}

void bm_stocbio_iteration(benchmark::State& state) {
  auto exec = make_executor(Backend::cpu);
  const QuadraticData q = QuadraticData::random(64, 256, 65536, 3);
  QuadraticProblem<float> problem(exec, q, world());
  AlgorithmOptions o = default_options("stocbio");
  o.loop.iterations = 10;
  o.loop.inner_steps = 10;
  o.loop.lower_batch = o.loop.upper_batch = 512;
  o.loop.final_evaluation = false;
  o.loop.divergence_check_every = 0;
  o.neumann = NeumannOptions{10, {0.1}};
  auto solver = make_solver(problem, o);
  const std::vector<float> x0(64, 0.0f), y0(256, 0.0f);
  time_iterations(state, *solver, x0, y0, o.loop.iterations);
}

void bm_hyperclean_iteration(benchmark::State& state, const char* algo) {
  auto exec = make_executor(Backend::cpu);
  static const HypercleanData data = [] {
    const Dataset pool = make_synthetic(35000, 784, 10, 3, 3.0);
    return prepare_hyperclean(pool, std::nullopt, SplitSizes{20000, 5000, 10000}, 0.5, 4);
  }();
  HypercleanProblem<float> problem(exec, data, 3e-3, world());
  AlgorithmOptions o = default_options(algo);
  o.loop.iterations = 10;
  o.loop.inner_steps = 5;
  o.loop.lower_batch = o.loop.upper_batch = 512;
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {1000.0};
  o.loop.final_evaluation = false;
  o.loop.divergence_check_every = 0;
  o.neumann = NeumannOptions{10, {0.1}};
  auto solver = make_solver(problem, o);
  const std::vector<float> x0(static_cast<std::size_t>(problem.dim_x()), 0.0f),
      y0(static_cast<std::size_t>(problem.dim_y()), 0.0f);
  time_iterations(state, *solver, x0, y0, o.loop.iterations);
}

/// Ranks other than 0 run the same cases silently.
class Silent : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  const auto comm = world();
  for (const index_t count : {index_t(1), index_t(1024), index_t(65536), index_t(1) << 20,
                              index_t(1) << 24})
    benchmark::RegisterBenchmark(("allreduce/cpu/float/count:" + std::to_string(count)).c_str(),
                                 bm_allreduce, count)
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(count >= (1 << 20) ? 5 : 50);
  benchmark::RegisterBenchmark("stocbio_iteration_sharded/cpu/float/dy:256/n:65536/batch:512",
                               bm_stocbio_iteration)
      ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(3);
  for (const char* algo : {"soba", "stocbio"})
    benchmark::RegisterBenchmark((std::string(algo) + "_iteration_sharded/hyperclean/cpu/float/n:20000/d:784/batch:512").c_str(),
                                 bm_hyperclean_iteration, algo)
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(5);
  benchmark::AddCustomContext("ranks", std::to_string(comm->size()));
  benchmark::AddCustomContext("transport", comm->transport());
  // ranks other than 0 drop --benchmark_out*: only rank 0 writes the file
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i)
    if (comm->rank() == 0 || std::string(argv[i]).rfind("--benchmark_out", 0) != 0)
      args.push_back(argv[i]);
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (comm->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    Silent silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
