// Throughput of the core operations on every available backend: the Hessian-vector product of
// the quadratic problem (full batch and minibatch), the Neumann estimator, and one stocBiO outer
// iteration, over sizes and instance counts B. Times are device events on CUDA and a steady
// clock on the CPU (manual time); counters report the bytes each operation must move and the
// achieved bandwidth, to compare with the memory-bandwidth floor.
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace bilevel;

struct Size {
  index_t dy, n, instances;
};

template <typename T>
void set_counters(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes"] = bytes_per_iteration;
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  // kIsRate divides by the manual time, which is what the executor measured.
}

/// One timed run of fixed length after a warm-up call (no Google Benchmark repetitions): the
/// time per call of `calls` calls of f (CUDA: 200, CPU: 20, times `scale`).
template <typename F>
void time_calls(benchmark::State& state, const std::shared_ptr<Executor>& exec, F f,
                double scale = 1.0) {
  const auto calls = static_cast<index_t>((exec->backend() == Backend::cuda ? 200 : 20) * scale);
  f();  // warm-up
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      for (index_t c = 0; c < calls; ++c) f();
    });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(calls));
  }
}

/// hv = A v = (1/n) M' (M v) + mu v on the full data: two GEMMs reading M (n x dy) each.
template <typename T>
void bm_hvp(benchmark::State& state, std::shared_ptr<Executor> exec, Size s, index_t batch) {
  const QuadraticData q = QuadraticData::random(16, s.dy, s.n, 1);
  QuadraticProblem<T> p(exec, q);
  p.reserve(s.instances, batch);
  Array<T> x(exec, 16, s.instances), y(exec, s.dy, s.instances), v(exec, s.dy, s.instances),
      hv(exec, s.dy, s.instances);
  exec->ops<T>().fill(v.view(), T(1));
  MinibatchSampler<T> sampler(exec, 1, s.n, batch);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  const index_t rows = batch > 0 ? batch : s.n;
  time_calls(state, exec,
             [&] { p.hvp_jvp(b, x.view(), y.view(), v.view(), hv.view(), MatrixView<T>()); });
  // minibatch: gather (read + write rows x dy) then the two GEMMs on the gathered rows
  const double gather = batch > 0 ? 2.0 * rows * s.dy : 0.0;
  set_counters<T>(state, sizeof(T) * (gather + 2.0 * rows * s.dy + 2.0 * rows * s.instances +
                                      3.0 * s.dy * s.instances));
}

/// v = eta sum_i (I - eta H_i)^i fy, Q = 10 terms on minibatches, then h = fx - J v.
template <typename T>
void bm_neumann(benchmark::State& state, std::shared_ptr<Executor> exec, Size s, index_t batch) {
  const QuadraticData q = QuadraticData::random(64, s.dy, s.n, 2);
  QuadraticProblem<T> p(exec, q);
  p.reserve(s.instances, batch);
  MinibatchSampler<T> lower(exec, 1, s.n, batch), upper(exec, 2, s.n, batch);
  auto est = make_neumann_estimator<T>(NeumannOptions{10, {0.1}});
  est->prepare(p, s.instances);
  Array<T> x(exec, 64, s.instances), y(exec, s.dy, s.instances), h(exec, 64, s.instances);
  exec->ops<T>().fill(x.view(), T(0.5));
  exec->ops<T>().fill(y.view(), T(0.5));
  index_t k = 0;
  time_calls(
      state, exec,
      [&] { est->estimate(EstimateContext<T>{p, lower, upper, k++}, x.view(), y.view(), h.view()); },
      0.25);
  // 11 minibatch HVPs plus fy: each gathers and reads the batch rows twice
  set_counters<T>(state, sizeof(T) * 12.0 * 4.0 * batch * s.dy);
}

/// One stocBiO outer iteration: D = 10 lower steps, Q = 10 Neumann terms, batch 256.
template <typename T>
void bm_stocbio_iteration(benchmark::State& state, std::shared_ptr<Executor> exec, Size s) {
  const QuadraticData q = QuadraticData::random(64, s.dy, s.n, 3);
  QuadraticProblem<T> p(exec, q);
  AlgorithmOptions o;
  o.loop.iterations = 1;
  o.loop.inner_steps = 10;
  o.loop.lower_batch = o.loop.upper_batch = 256;
  o.neumann = NeumannOptions{10, {0.1}};
  const std::vector<T> x0(static_cast<std::size_t>(64 * s.instances), T(0)),
      y0(static_cast<std::size_t>(s.dy * s.instances), T(0));
  // Iterations of `iterations` outer steps each; the per-run setup is amortised by timing
  // 20-iteration runs and dividing.
  o.loop.iterations = 20;
  o.loop.final_evaluation = false;
  auto solver = make_solver(p, o);
  solver->run(x0, y0);  // warm-up
  for (auto _ : state) {
    const double ms = exec->time_ms([&] { solver->run(x0, y0); });
    state.SetIterationTime(ms / 1e3 / 20.0);
  }
  set_counters<T>(state, sizeof(T) * 21.0 * 4.0 * 256 * s.dy);
}

/// Per-task data (B tasks, each its own M_b): hv_b = A_b v_b on a minibatch of 512 rows, one
/// gather over all tasks' columns and two strided-batched GEMMs. items/s = task-HVPs per second.
template <typename T>
void bm_per_task_hvp(benchmark::State& state, std::shared_ptr<Executor> exec, Size s) {
  std::vector<QuadraticData> tasks;
  for (index_t t = 0; t < s.instances; ++t) tasks.push_back(QuadraticData::random(16, s.dy, s.n, 10 + t));
  PerTaskQuadraticProblem<T> p(exec, std::move(tasks));
  const index_t batch = 512;
  p.reserve(s.instances, batch);
  Array<T> x(exec, 16, s.instances), y(exec, s.dy, s.instances), v(exec, s.dy, s.instances),
      hv(exec, s.dy, s.instances);
  exec->ops<T>().fill(v.view(), T(1));
  MinibatchSampler<T> sampler(exec, 1, s.n, batch);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  time_calls(state, exec,
             [&] { p.hvp_jvp(b, x.view(), y.view(), v.view(), hv.view(), MatrixView<T>()); });
  // gather (read + write) and two GEMM reads of the 512 x dy rows of every task
  set_counters<T>(state, sizeof(T) * 4.0 * batch * s.dy * s.instances);
  state.SetItemsProcessed(state.iterations() * s.instances);
}

template <typename T>
void register_all(const std::shared_ptr<Executor>& exec, const char* precision) {
  const std::string backend = to_string(exec->backend());
  const bool gpu = exec->backend() == Backend::cuda;
  const std::vector<Size> sizes = gpu ? std::vector<Size>{{256, 65536, 1}, {256, 65536, 8},
                                                          {256, 65536, 64}, {1024, 262144, 1},
                                                          {1024, 262144, 64}}
                                      : std::vector<Size>{{256, 16384, 1}, {256, 16384, 8},
                                                          {256, 16384, 64}};
  for (const Size s : sizes) {
    const std::string suffix = "/" + backend + "/" + precision + "/dy:" + std::to_string(s.dy) +
                               "/n:" + std::to_string(s.n) + "/B:" + std::to_string(s.instances);
    benchmark::RegisterBenchmark(("hvp_full" + suffix).c_str(), bm_hvp<T>, exec, s, index_t(0))
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    benchmark::RegisterBenchmark(("hvp_batch512" + suffix).c_str(), bm_hvp<T>, exec, s, index_t(512))
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    benchmark::RegisterBenchmark(("neumann_q10_batch512" + suffix).c_str(), bm_neumann<T>, exec, s,
                                 index_t(512))
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    benchmark::RegisterBenchmark(("stocbio_iteration" + suffix).c_str(), bm_stocbio_iteration<T>,
                                 exec, s)
        ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
  }
  // per-task data: n rows per task (the CPU's host memory and generation time bound n)
  if (std::string(precision) == "float")
    for (const index_t tasks : {index_t(1), index_t(8), index_t(64)}) {
      const Size s{256, gpu ? 16384 : 2048, tasks};
      benchmark::RegisterBenchmark(("per_task_hvp_batch512/" + backend + "/" + precision + "/dy:256/n:" +
                                    std::to_string(s.n) + "/B:" + std::to_string(tasks)).c_str(),
                                   bm_per_task_hvp<T>, exec, s)
          ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_core", [](const auto& exec) {
    register_all<float>(exec, "float");
    register_all<double>(exec, "double");
  });
}
