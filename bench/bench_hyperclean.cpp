// Hyper-cleaning throughput on every available backend: the oracles (gy; H v + J v; gy, H v and
// J v at one point) at a minibatch of 512 on the fused and the composed path and on the full
// training set, and iterations of stocBiO (D = 10, Q = 10), SOBA and BO-REP with and without
// CUDA graph capture, for B in {1, 8, 64}, on Fashion-MNIST-sized data (20000 train / 5000
// validation samples, 784 features, 10 classes; synthetic, generated on the executor). On CUDA
// also the full-batch H v + J v on 1,000,000 samples x 1,024 features, with the device-to-device
// copy bandwidth measured beside it, and SOBA there with the training features in host memory.
//
// Every case is one timed run of fixed length after a warm-up outside the timing (no Google
// Benchmark repetitions), so the whole CUDA suite fits a few minutes. Counters: bytes the
// oracle must move (see bench/README.md), GB/s; for iterations, kernel launches per iteration
// (counted on an uncaptured run) and the nodes of the captured graphs; the fused kernels' FLOPs
// per call or iteration (fused_flop_count) and GFLOP/s. On the CPU, cpu_fma_peak measures the
// multiply-add peak of the instruction set in use beside them (fma_peak/).
#include <bilevel/bilevel.hpp>

#include <benchmark/benchmark.h>

#include "bench_main.hpp"
#include "fma_peak/fma_peak_dispatch.hpp"

#include <omp.h>

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
                                                   index_t features = kFeatures,
                                                   DataResidence residence = DataResidence::device) {
  return std::make_unique<HypercleanProblem<T>>(
      exec, SyntheticHypercleanSpec{train, 5000, 1000, features, static_cast<int>(kClasses), 0.5, 1},
      3e-3, nullptr, DataPrecision::same, residence);
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

/// "flops": the fused kernels' FLOPs per call (fused_flop_count's growth over `calls` calls),
/// and GFLOP/s at the manual time; nothing on the composed path, which is not counted.
void set_flop_counters(benchmark::State& state, std::uint64_t before, double calls) {
  const double flops = static_cast<double>(fused_flop_count() - before) / calls;
  if (flops <= 0.0) return;
  state.counters["flops"] = flops;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

/// The multiply-add peak of one core's worth of threads for the CPU instruction set in use
/// (fma_peak.hpp), as GFLOP/s: the ceiling of the fused passes' arithmetic on this machine.
void bm_fma_peak(benchmark::State& state, int threads) {
  double gflops = 0.0;
  for (auto _ : state) {
    gflops = std::max(gflops, bench_fma_peak::gflops(cpu_isa(), threads, 0.3));
    state.SetIterationTime(1.0 / gflops);
  }
  state.counters["GFLOP/s"] = gflops;
  state.counters["threads"] = threads;
}

/// Calls of an oracle per timed run (CUDA: short calls, many of them).
index_t oracle_calls(const std::shared_ptr<Executor>& exec) {
  return exec->backend() == Backend::cuda ? 500 : 50;
}

/// One oracle at a minibatch of 512: which = 0: gy; 1: H v and J v; 2: gy, H v and J v at one
/// point (lower_oracles), on the fused or the composed path.
template <typename T>
void bm_oracle(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb, int which,
               OraclePath path) {
  auto p = make_problem<T>(exec);
  p->set_oracle_path(path);
  p->reserve(nb, kBatch);
  const index_t dx = p->dim_x(), dy = p->dim_y();
  Array<T> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), gy(exec, dy, nb), out(exec, dy, nb),
      jv(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  exec->ops<T>().fill(v.view(), T(0.02));
  MinibatchSampler<T> sampler(exec, 1, dx, kBatch);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  const auto call = [&] {
    if (which == 0)
      p->grad_y_g(b, x.cview(), y.cview(), gy.view());
    else if (which == 1)
      p->hvp_jvp(b, x.cview(), y.cview(), v.cview(), out.view(), jv.view());
    else
      p->lower_oracles(b, x.cview(), y.cview(), v.cview(), gy.view(), out.view(), jv.view());
  };
  const index_t calls = oracle_calls(exec);
  call();  // warm-up
  const std::uint64_t launches = launch_count();
  call();
  const double per_call_launches = static_cast<double>(launch_count() - launches);
  const std::uint64_t flops = fused_flop_count();
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      for (index_t c = 0; c < calls; ++c) call();
    });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(calls));
  }
  set_flop_counters(state, flops, static_cast<double>(calls));
  const double rows = kFeatures + 1, fused = path != OraclePath::composed;
  // fused: the batch's rows read twice (coefficients, back-product); composed: gather (read +
  // write) + two GEMM reads (gy) or three (Z, U, back) or five (gy's two, then H v's three)
  const double passes = fused ? 2.0 : (which == 0 ? 4.0 : which == 1 ? 5.0 : 9.0);
  set_counters<T>(state, sizeof(T) * rows * kBatch * passes);
  state.counters["launches"] = per_call_launches;
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
  const index_t calls = exec->backend() == Backend::cuda ? 100 : 10;
  estimator->estimate(EstimateContext<T>{*p, lower, upper, k++}, x.cview(), y.view(), h.view());
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      for (index_t c = 0; c < calls; ++c)
        estimator->estimate(EstimateContext<T>{*p, lower, upper, k++}, x.cview(), y.view(),
                            h.view());
    });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(calls));
  }
  // 12 minibatch passes (grad f, 10 H v, J v), each a gather and two or three GEMM reads
  set_counters<T>(state, sizeof(T) * (kFeatures + 1.0) * kBatch * (4.0 + 10 * 5.0 + 4.0));
}

/// The fused H v + J v on the whole training set (no gather: each chunk of the data is read by
/// the two logits GEMMs and the GEMM back), B instances, against the copy bandwidth.
template <typename T>
void bm_hvp_full(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb,
                 index_t train, index_t features, OraclePath path, bool fused_gemm) {
  auto p = make_problem<T>(exec, train, features);
  p->set_oracle_path(path);
  p->set_fused_logits_gemm(fused_gemm);
  p->reserve(nb, 0);
  const index_t dx = p->dim_x(), dy = p->dim_y();
  Array<T> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), out(exec, dy, nb), jv(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  exec->ops<T>().fill(v.view(), T(0.02));
  const Batch full{nullptr, train, train};
  p->hvp_jvp(full, x.cview(), y.cview(), v.cview(), out.view(), jv.view());  // warm-up
  const index_t calls = exec->backend() == Backend::cuda ? (train > 100000 ? 10 : 100) : 5;
  const std::uint64_t flops = fused_flop_count();
  for (auto _ : state) {
    const double ms = exec->time_ms([&] {
      for (index_t c = 0; c < calls; ++c)
        p->hvp_jvp(full, x.cview(), y.cview(), v.cview(), out.view(), jv.view());
    });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(calls));
  }
  set_flop_counters(state, flops, static_cast<double>(calls));
  const double data = sizeof(T) * static_cast<double>(features + 1) * static_cast<double>(train);
  // passes over the data: fused 2 (coefficients, back-product); composed 3 (Z = A'W, U = A'V,
  // hv += A U; 2 when Z and U come from one GEMM); + x read and jv written
  const double passes = path != OraclePath::composed ? 2.0 : fused_gemm ? 2.0 : 3.0;
  const double bytes = passes * data + 2.0 * sizeof(T) * static_cast<double>(train * nb);
  set_counters<T>(state, bytes);
  const double copy = copy_bandwidth(exec, static_cast<std::size_t>(std::min(data, 2e9)));
  state.counters["copy_GB/s"] = copy;
  state.counters["fraction_of_copy"] = benchmark::Counter(
      bytes * state.iterations() / 1e9 / copy, benchmark::Counter::kIsRate);
}

/// Kernel launches per iteration of a preset: the difference of two uncaptured runs (4 and 12
/// iterations, no evaluations, after one that sets the problem up), so set-up and the first
/// iteration cancel.
template <typename T>
double launches_per_iteration(HypercleanProblem<T>& p, AlgorithmOptions o, index_t nb) {
  o.loop.capture = false;
  o.loop.eval_every = 0;
  const auto count = [&](index_t iterations) {
    o.loop.iterations = iterations;
    auto solver = make_solver(p, o);
    const std::uint64_t before = launch_count();
    solver->run(std::vector<T>(static_cast<std::size_t>(p.dim_x() * nb), T(0)),
                std::vector<T>(static_cast<std::size_t>(p.dim_y() * nb), T(0)));
    p.executor()->synchronize();
    return static_cast<double>(launch_count() - before);
  };
  count(1);  // the problem's one-time set-up (workspaces) outside the difference
  const double a = count(4), b = count(12);
  return (b - a) / 8.0;
}

/// Iterations of a preset: one timed run of fixed length (CPU 20, CUDA 500 iterations) after a
/// warm-up run (allocations, graph capture and the first, uncaptured iteration are inside each
/// run and amortized over it). items/s = instance-iterations per second, the throughput to
/// compare between B = 1 and B = 64.
template <typename T>
void bm_iteration(benchmark::State& state, std::shared_ptr<Executor> exec, index_t nb,
                  std::string name, bool graphs, index_t train, index_t features,
                  bool independent, DataResidence residence) {
  auto p = make_problem<T>(exec, train, features, residence);
  AlgorithmOptions o = default_options(name);
  o.loop.independent_batches = independent;
  const index_t iterations = exec->backend() == Backend::cuda ? (train > 100000 ? 200 : 500) : 20;
  o.loop.iterations = iterations;
  o.loop.capture = graphs;
  o.loop.final_evaluation = false;  // time the iterations, not the full-data metrics
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {name == "bo-rep" ? 1.0 : 1000.0};
  o.loop.lower_batch = o.loop.upper_batch = kBatch;
  o.loop.init_steps = 0;
  o.neumann.eta = {0.1};
  o.fixed_point.nu = {0.1};
  const double launches = launches_per_iteration(*p, o, nb);
  auto solver = make_solver(*p, o);
  const std::vector<T> x0(static_cast<std::size_t>(p->dim_x() * nb), T(0));
  const std::vector<T> y0(static_cast<std::size_t>(p->dim_y() * nb), T(0));
  SolveResult<T> result = solver->run(x0, y0);  // warm-up
  const std::uint64_t flops = fused_flop_count();
  for (auto _ : state) {
    const double ms = exec->time_ms([&] { result = solver->run(x0, y0); });
    state.SetIterationTime(ms / 1e3 / static_cast<double>(iterations));
  }
  set_flop_counters(state, flops, static_cast<double>(iterations));
  state.counters["instances"] = static_cast<double>(nb);
  state.counters["launches"] = launches;
  state.counters["captured_graphs"] = static_cast<double>(result.captured_shapes);
  long nodes = 0;
  for (long n : result.graph_nodes) nodes = std::max(nodes, n);
  state.counters["graph_nodes_max"] = static_cast<double>(nodes);
  state.SetItemsProcessed(state.iterations() * nb);  // per timed iteration: B instance-iterations
}

template <typename T>
void register_all(const std::shared_ptr<Executor>& exec, const char* precision) {
  const std::string backend = to_string(exec->backend());
  const auto add = [](const std::string& name, auto&&... args) {
    return benchmark::RegisterBenchmark(name.c_str(), args...)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond)
        ->Iterations(1);
  };
  if (exec->backend() == Backend::cpu)
    add("cpu_fma_peak/" + std::string(precision) + "/" + cpu_isa(), bm_fma_peak,
        omp_get_max_threads());
  for (index_t nb : {index_t(1), index_t(8), index_t(64)}) {
    const std::string suffix = "/" + backend + "/" + precision + "/B:" + std::to_string(nb);
    const char* oracles[] = {"gy", "hvp_jvp", "lower"};
    for (int which = 0; which < 3; ++which)
      for (const OraclePath path : {OraclePath::automatic, OraclePath::composed}) {
        const std::string label = path == OraclePath::composed ? "_composed" : "";
        add("hyperclean_" + std::string(oracles[which]) + "_batch512" + label + suffix,
            bm_oracle<T>, exec, nb, which, path);
      }
    add("hyperclean_neumann_q10_batch512" + suffix, bm_neumann<T>, exec, nb);
    add("hyperclean_hvp_jvp_full20000" + suffix, bm_hvp_full<T>, exec, nb, index_t(20000),
        kFeatures, OraclePath::automatic, false);
    add("hyperclean_hvp_jvp_composed_fusedgemm_full20000" + suffix, bm_hvp_full<T>, exec, nb,
        index_t(20000), kFeatures, OraclePath::composed, true);
    for (const char* name : {"stocbio", "soba", "bo-rep"})
      for (const bool graphs : {true, false}) {
        // graphs only exist on CUDA: on the CPU both would run the same code
        if (graphs && exec->backend() != Backend::cuda) continue;
        add("hyperclean_iteration_" + std::string(name) + (graphs ? "_graph" : "") + suffix,
            bm_iteration<T>, exec, nb, std::string(name), graphs, index_t(20000), kFeatures,
            false, DataResidence::device);
      }
    // B independent runs (one minibatch per instance) against B runs on shared batches
    if (nb > 1)
      add("hyperclean_iteration_soba_independent" + suffix, bm_iteration<T>, exec, nb,
          std::string("soba"), exec->backend() == Backend::cuda, index_t(20000), kFeatures, true,
          DataResidence::device);
  }
  // 1,000,000 samples x 1,024 features (4.1 GB in float): on the GPU only
  if (exec->backend() == Backend::cuda)
    for (index_t nb : {index_t(1), index_t(8)}) {
      const std::string suffix = "/" + backend + "/" + precision + "/B:" + std::to_string(nb);
      add("hyperclean_hvp_jvp_full1M_1024" + suffix, bm_hvp_full<T>, exec, nb, index_t(1000000),
          index_t(1024), OraclePath::automatic, false);
      add("hyperclean_hvp_jvp_composed_fusedgemm_full1M_1024" + suffix, bm_hvp_full<T>, exec, nb,
          index_t(1000000), index_t(1024), OraclePath::composed, true);
      for (const char* name : {"stocbio", "soba", "bo-rep"})
        add("hyperclean1M_1024_iteration_" + std::string(name) + "_graph" + suffix,
            bm_iteration<T>, exec, nb, std::string(name), true, index_t(1000000), index_t(1024),
            false, DataResidence::device);
      // the training features in mapped host memory: minibatch rows cross the bus
      add("hyperclean1M_1024_iteration_soba_graph_host_resident" + suffix, bm_iteration<T>, exec,
          nb, std::string("soba"), true, index_t(1000000), index_t(1024), false,
          DataResidence::host);
    }
}

}  // namespace

int main(int argc, char** argv) {
  return bilevel::bench::run_on_every_backend(argc, argv, "bench_hyperclean", [](const auto& exec) {
    register_all<float>(exec, "float");
  });
}
