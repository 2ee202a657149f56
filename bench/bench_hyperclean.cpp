// Hyper-cleaning throughput on every available backend: the fused oracles (gy, H v + J v) at a
// minibatch of 512 and one iteration of stocBiO (D = 10, Q = 10), SOBA and BO-REP, for B in
// {1, 8, 64}, on Fashion-MNIST-sized data (20000 train / 5000 validation samples, 784 features,
// 10 classes; synthetic, generated on the executor). Counters: bytes of the batch's feature
// columns that each oracle must read (the gather reads and writes them, the two GEMMs read
// them), and GB/s.
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace bilevel;

constexpr index_t kFeatures = 784, kClasses = 10, kBatch = 512;

template <typename T>
std::unique_ptr<HypercleanProblem<T>> make_problem(std::shared_ptr<Executor> exec) {
  return std::make_unique<HypercleanProblem<T>>(
      exec, SyntheticHypercleanSpec{20000, 5000, 1000, kFeatures, static_cast<int>(kClasses), 0.5, 1},
      3e-3, nullptr);
}

template <typename T>
void set_counters(benchmark::State& state, double bytes) {
  state.counters["bytes"] = bytes;
  state.counters["GB/s"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

/// One oracle call at a minibatch: which = 0: gy; 1: fused H v and J v.
template <typename T>
void bm_oracle(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb, int which) {
  auto p = make_problem<T>(exec);
  p->reserve(nb, kBatch);
  const index_t dx = p->dim_x(), dy = p->dim_y();
  Array<T> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), out(exec, dy, nb), jv(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  exec->ops<T>().fill(v.view(), T(0.02));
  MinibatchSampler<T> sampler(exec, 1, dx, kBatch);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      if (which == 0)
        p->grad_y_g(b, x.cview(), y.cview(), out.view());
      else
        p->hvp_jvp(b, x.cview(), y.cview(), v.cview(), out.view(), jv.view());
    });
    state.SetIterationTime(ms / 1e3);
  }
  const double rows = kFeatures + 1;
  // gather (read + write) + 2 GEMMs (gy) or 3 GEMMs (Z, U, back) over the batch's columns
  set_counters<T>(state, sizeof(T) * rows * kBatch * (which == 0 ? 4.0 : 5.0));
}

/// Iterations of a preset, timed over runs of 10 iterations (run() allocates its state once per
/// run: amortized over the 10).
template <typename T>
void bm_iteration(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb,
                  std::string name) {
  auto p = make_problem<T>(exec);
  AlgorithmOptions o = default_options(name);
  o.loop.iterations = 10;
  o.loop.final_evaluation = false;  // time the iterations, not the full-data metrics
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {name == "bo-rep" ? 1.0 : 1000.0};
  o.loop.lower_batch = o.loop.upper_batch = kBatch;
  o.loop.init_steps = 0;
  o.neumann.eta = {0.1};
  o.fixed_point.nu = {0.1};
  auto solver = make_solver(*p, o);
  const std::vector<T> x0(static_cast<std::size_t>(p->dim_x() * nb), T(0));
  const std::vector<T> y0(static_cast<std::size_t>(p->dim_y() * nb), T(0));
  for (auto _ : state) {
    const double ms = exec->time_ms([&] { solver->run(x0, y0); });
    state.SetIterationTime(ms / 1e3 / 10.0);
  }
  state.counters["instances"] = static_cast<double>(nb);
}

template <typename T>
void register_all(const std::shared_ptr<Executor>& exec, const char* precision) {
  const std::string backend = to_string(exec->backend());
  for (index_t nb : {index_t(1), index_t(8), index_t(64)}) {
    const std::string suffix = "/" + backend + "/" + precision + "/B:" + std::to_string(nb);
    benchmark::RegisterBenchmark(("hyperclean_gy_batch512" + suffix).c_str(), bm_oracle<T>, exec, nb, 0)
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("hyperclean_hvp_jvp_batch512" + suffix).c_str(), bm_oracle<T>, exec, nb, 1)
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const char* name : {"stocbio", "soba", "bo-rep"})
      benchmark::RegisterBenchmark(("hyperclean_iteration_" + std::string(name) + suffix).c_str(),
                                   bm_iteration<T>, exec, nb, std::string(name))
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_hyperclean", [](const auto& exec) {
    register_all<float>(exec, "float");
  });
}
