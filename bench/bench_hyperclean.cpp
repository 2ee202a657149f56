// Hyper-cleaning throughput on every available backend: the fused oracles (gy, H v + J v) at a
// minibatch of 512 and on the full training set, and one iteration of stocBiO (D = 10, Q = 10),
// SOBA and BO-REP with and without CUDA graph capture, for B in {1, 8, 64}, on Fashion-MNIST-
// sized data (20000 train / 5000 validation samples, 784 features, 10 classes; synthetic,
// generated on the executor). On CUDA also the full-batch fused H v + J v on 1,000,000 samples
// x 1,024 features, with the device-to-device copy bandwidth measured beside it.
// Counters: bytes the oracle must move (see bench/README.md), GB/s, and for the full-batch HVP
// the copy bandwidth and the fraction of it reached.
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace bilevel;

constexpr index_t kFeatures = 784, kClasses = 10, kBatch = 512;

template <typename T>
std::unique_ptr<HypercleanProblem<T>> make_problem(std::shared_ptr<Executor> exec,
                                                   index_t train = 20000,
                                                   index_t features = kFeatures) {
  return std::make_unique<HypercleanProblem<T>>(
      exec, SyntheticHypercleanSpec{train, 5000, 1000, features, static_cast<int>(kClasses), 0.5, 1},
      3e-3, nullptr);
}

/// Device-to-device copy bandwidth over `bytes` (read + write counted), GB/s: the practical
/// ceiling of a memory-bound kernel on this device.
double copy_bandwidth(const std::shared_ptr<Executor>& exec, std::size_t bytes) {
  Array<char> a(exec, static_cast<index_t>(bytes), 1), b(exec, static_cast<index_t>(bytes), 1);
  exec->copy(b.data(), a.data(), bytes);  // warm-up
  double best = 1e300;
  for (int r = 0; r < 5; ++r)
    best = std::min(best, exec->time_ms([&] { exec->copy(b.data(), a.data(), bytes); }));
  return 2.0 * static_cast<double>(bytes) / (best * 1e6);
}

template <typename T>
void set_counters(benchmark::State& state, double bytes) {
  state.counters["bytes"] = bytes;
  state.counters["GB/s"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

/// One oracle call at a minibatch: which = 0: gy; 1: fused H v and J v; 2: the same with the
/// logits of W and V from one GEMM.
template <typename T>
void bm_oracle(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb, int which) {
  auto p = make_problem<T>(exec);
  p->set_fused_logits_gemm(which == 2);
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
  // gather (read + write) + 2 GEMMs (gy) or 3 GEMMs (Z, U, back; 2 when Z and U are fused)
  set_counters<T>(state, sizeof(T) * rows * kBatch * (which == 0 ? 4.0 : which == 1 ? 5.0 : 4.0));
}

/// The Neumann estimator (stocBiO's hypergradient): grad f on a batch, Q = 10 H v terms and the
/// final J v, each on its own minibatch of 512, at a fixed (x, y).
template <typename T>
void bm_neumann(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb) {
  auto p = make_problem<T>(exec);
  p->reserve(nb, kBatch);
  const index_t dx = p->dim_x(), dy = p->dim_y();
  Array<T> x(exec, dx, nb), y(exec, dy, nb), h(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  MinibatchSampler<T> lower(exec, 1, dx, kBatch), upper(exec, 1, p->upper_samples(), kBatch);
  auto estimator = make_neumann_estimator<T>(NeumannOptions{10, {0.1}});
  estimator->prepare(*p, nb);
  index_t k = 0;
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      estimator->estimate(EstimateContext<T>{*p, lower, upper, k++}, x.cview(), y.view(), h.view());
    });
    state.SetIterationTime(ms / 1e3);
  }
  // 12 minibatch passes (grad f, 10 H v, J v), each a gather and two or three GEMM reads
  set_counters<T>(state, sizeof(T) * (kFeatures + 1.0) * kBatch * (4.0 + 10 * 5.0 + 4.0));
}

/// The fused H v + J v on the whole training set (no gather: each chunk of the data is read by
/// the two logits GEMMs and the GEMM back), B instances, against the copy bandwidth.
template <typename T>
void bm_hvp_full(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb,
                 index_t train, index_t features, bool fused) {
  auto p = make_problem<T>(exec, train, features);
  p->set_fused_logits_gemm(fused);
  p->reserve(nb, 0);
  const index_t dx = p->dim_x(), dy = p->dim_y();
  Array<T> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), out(exec, dy, nb), jv(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  exec->ops<T>().fill(v.view(), T(0.02));
  const Batch full{nullptr, train, train};
  p->hvp_jvp(full, x.cview(), y.cview(), v.cview(), out.view(), jv.view());  // warm-up
  for (auto _ : state) {
    const double ms = exec->time_ms(
        [&] { p->hvp_jvp(full, x.cview(), y.cview(), v.cview(), out.view(), jv.view()); });
    state.SetIterationTime(ms / 1e3);
  }
  const double data = sizeof(T) * static_cast<double>(features + 1) * static_cast<double>(train);
  // three passes over the data (Z = A'W, U = A'V, hv += A U; two when Z and U come from one
  // GEMM) + x read and jv written
  const double bytes = (fused ? 2.0 : 3.0) * data + 2.0 * sizeof(T) * static_cast<double>(train * nb);
  set_counters<T>(state, bytes);
  const double copy = copy_bandwidth(exec, static_cast<std::size_t>(std::min(data, 2e9)));
  state.counters["copy_GB/s"] = copy;
  state.counters["fraction_of_copy"] = benchmark::Counter(
      bytes * state.iterations() / 1e9 / copy, benchmark::Counter::kIsRate);
}

/// Iterations of a preset, timed over runs of `iterations` iterations (run() allocates its state
/// and captures its graphs once per run: amortized over the run). items/s = instance-iterations
/// per second, the throughput to compare between B = 1 and B = 64.
template <typename T>
void bm_iteration(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb,
                  std::string name, bool graphs, index_t train, index_t features,
                  bool independent) {
  auto p = make_problem<T>(exec, train, features);
  AlgorithmOptions o = default_options(name);
  o.loop.independent_batches = independent;
  const index_t iterations = exec->backend() == Backend::cuda ? 200 : 10;
  o.loop.iterations = iterations;
  o.loop.capture = graphs;
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
  index_t captured = 0;
  for (auto _ : state) {
    const double ms = exec->time_ms([&] { captured = solver->run(x0, y0).captured_shapes; });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(iterations));
  }
  state.counters["instances"] = static_cast<double>(nb);
  state.counters["captured_graphs"] = static_cast<double>(captured);
  state.SetItemsProcessed(state.iterations() * nb);
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
    benchmark::RegisterBenchmark(("hyperclean_hvp_jvp_fusedgemm_batch512" + suffix).c_str(), bm_oracle<T>,
                                 exec, nb, 2)
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("hyperclean_neumann_q10_batch512" + suffix).c_str(), bm_neumann<T>,
                                 exec, nb)
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const bool fused : {false, true})
      benchmark::RegisterBenchmark(("hyperclean_hvp_jvp" + std::string(fused ? "_fusedgemm" : "") +
                                    "_full20000" + suffix).c_str(),
                                   bm_hvp_full<T>, exec, nb, index_t(20000), kFeatures, fused)
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const char* name : {"stocbio", "soba", "bo-rep"})
      for (const bool graphs : {true, false}) {
        // graphs only exist on CUDA: on the CPU both would run the same code
        if (graphs && exec->backend() != Backend::cuda) continue;
        benchmark::RegisterBenchmark(("hyperclean_iteration_" + std::string(name) +
                                      (graphs ? "_graph" : "") + suffix).c_str(),
                                     bm_iteration<T>, exec, nb, std::string(name), graphs,
                                     index_t(20000), kFeatures, false)
            ->UseManualTime()->Unit(benchmark::kMicrosecond);
      }
    // B independent runs (one minibatch per instance) against B runs on shared batches
    if (nb > 1)
      benchmark::RegisterBenchmark(("hyperclean_iteration_soba_independent" + suffix).c_str(),
                                   bm_iteration<T>, exec, nb, std::string("soba"),
                                   exec->backend() == Backend::cuda, index_t(20000), kFeatures, true)
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
  // 1,000,000 samples x 1,024 features (4.1 GB in float): on the GPU only
  if (exec->backend() == Backend::cuda)
    for (index_t nb : {index_t(1), index_t(8)}) {
      const std::string suffix = "/" + backend + "/" + precision + "/B:" + std::to_string(nb);
      for (const bool fused : {false, true})
        benchmark::RegisterBenchmark(("hyperclean_hvp_jvp" + std::string(fused ? "_fusedgemm" : "") +
                                      "_full1M_1024" + suffix).c_str(),
                                     bm_hvp_full<T>, exec, nb, index_t(1000000), index_t(1024), fused)
            ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(20);
      for (const char* name : {"stocbio", "soba", "bo-rep"})
        benchmark::RegisterBenchmark(("hyperclean1M_1024_iteration_" + std::string(name) + "_graph" +
                                      suffix).c_str(),
                                     bm_iteration<T>, exec, nb, std::string(name), true,
                                     index_t(1000000), index_t(1024), false)
            ->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(3);
    }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_hyperclean", [](const auto& exec) {
    register_all<float>(exec, "float");
  });
}
