// bench_highway: the library's hand-blocked row-form passes against the same passes written with
// Google Highway, per instruction set the CPU has, one thread. The data are hyper-cleaning's
// shapes: 20,000 samples of 784 features (Fashion-MNIST, 63 MB: the minibatch's rows come from
// memory), a minibatch of 512 drawn anew each call (64 draws cycled), C = 10 columns (grad_y g
// at B = 1) or 20 (H v + J v: W's and V's columns). Before timing, the two implementations'
// results are compared (relative 1e-4: their sums group lanes differently); a mismatch exits 1.
#include "row_kernels.hpp"

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace hw = bilevel::bench::highway;
using bilevel::index_t;
using bilevel::sample_index_t;

namespace {

constexpr index_t kSamples = 20000, kFeatures = 784, kBatch = 512, kDraws = 64;

struct Data {
  std::vector<float> rows, w, r;
  std::vector<sample_index_t> indices;  // kDraws x kBatch
  explicit Data(int columns) {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal;
    rows.resize(static_cast<std::size_t>(kSamples * kFeatures));
    for (float& v : rows) v = normal(rng);
    w.resize(static_cast<std::size_t>(columns * kFeatures));
    for (float& v : w) v = 0.05f * normal(rng);
    r.resize(static_cast<std::size_t>(columns * kBatch));
    for (float& v : r) v = normal(rng) / kBatch;
    std::uniform_int_distribution<sample_index_t> pick(0, kSamples - 1);
    indices.resize(static_cast<std::size_t>(kDraws * kBatch));
    for (auto& k : indices) k = pick(rng);
  }
  hw::RowBatch batch(int columns, index_t draw) const {
    return {rows.data(), kFeatures, indices.data() + (draw % kDraws) * kBatch, kBatch, columns,
            w.data(), r.data()};
  }
};

const Data& data_for(int columns) {
  static const Data d10(10), d20(20);
  return columns == 10 ? d10 : d20;
}

using Pass = void (*)(hw::Isa, const hw::RowBatch&, float*);

void bm_pass(benchmark::State& state, hw::Isa isa, Pass pass, int columns, bool logits) {
  const Data& d = data_for(columns);
  hw::select_highway_target(isa);
  std::vector<float> out(static_cast<std::size_t>(columns * (logits ? kBatch : kFeatures)));
  index_t draw = 0;
  for (auto _ : state) {
    pass(isa, d.batch(columns, draw++), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // bytes: the batch's rows, read once (the floor of either pass)
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(kBatch * kFeatures * sizeof(float)) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

/// Both implementations give the same results (to rounding) on every draw tried.
bool agree(hw::Isa isa, const char* name) {
  for (int columns : {10, 20}) {
    const Data& d = data_for(columns);
    hw::select_highway_target(isa);
    for (int logits = 0; logits < 2; ++logits) {
      const std::size_t size = static_cast<std::size_t>(columns * (logits ? kBatch : kFeatures));
      std::vector<float> ours(size), theirs(size);
      for (index_t draw = 0; draw < 3; ++draw) {
        const hw::RowBatch b = d.batch(columns, draw);
        (logits ? hw::logits_ours : hw::back_product_ours)(isa, b, ours.data());
        (logits ? hw::logits_highway : hw::back_product_highway)(isa, b, theirs.data());
        double worst = 0, scale = 0;
        for (std::size_t e = 0; e < size; ++e) {
          worst = std::max(worst, static_cast<double>(std::fabs(ours[e] - theirs[e])));
          scale = std::max(scale, static_cast<double>(std::fabs(ours[e])));
        }
        if (!(worst <= 1e-4 * scale)) {
          std::fprintf(stderr, "bench_highway: %s %s C = %d: ours and Highway differ by %g (scale %g)\n",
                       name, logits ? "logits" : "back-product", columns, worst, scale);
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  struct Path {
    hw::Isa isa;
    const char* name;
    const char* cpu_feature;
  };
  const Path paths[] = {{hw::Isa::avx2, "avx2", "avx2"}, {hw::Isa::avx512, "avx512", "avx512f"}};
  __builtin_cpu_init();
  int registered = 0;
  for (const Path& p : paths) {
    const bool has = std::string(p.cpu_feature) == "avx2" ? __builtin_cpu_supports("avx2") &&
                                                                __builtin_cpu_supports("fma")
                                                          : __builtin_cpu_supports("avx512f");
    if (!has) {
      std::printf("bench_highway: this CPU has no %s: that path is not measured\n", p.name);
      continue;
    }
    std::printf("bench_highway: %s path, Highway target %s\n", p.name,
                hw::select_highway_target(p.isa));
    if (!agree(p.isa, p.name)) return 1;
    for (int columns : {10, 20})
      for (bool logits : {true, false}) {
        const std::string what = std::string(logits ? "logits" : "back_product") + "/C" +
                                 std::to_string(columns) + "/" + p.name;
        benchmark::RegisterBenchmark(("ours/" + what).c_str(), bm_pass, p.isa,
                                     logits ? hw::logits_ours : hw::back_product_ours, columns,
                                     logits);
        benchmark::RegisterBenchmark(("highway/" + what).c_str(), bm_pass, p.isa,
                                     logits ? hw::logits_highway : hw::back_product_highway,
                                     columns, logits);
        ++registered;
      }
  }
  if (registered == 0) return 0;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
