// Smoke check of the CPU oracle path choice: on this machine and the instruction set in use
// (BILEVEL_CPU_ISA), the path hyper-cleaning picks (OraclePath::automatic: the fused passes on
// the CPU) must not be more than --limit (1.10) times slower than the composed path (gather +
// OpenBLAS GEMMs) on any of its oracles: gy, H v + J v, and gy + H v + J v at one point on a
// minibatch of 512, for B = 1, 8 and 64, and H v + J v on all 20000 training samples at B = 1.
//
// A ratio measured in one run, never an absolute time: each case times the two paths
// alternately, --repeats (5) times, and compares the fastest of each, so that a load that comes
// and goes slows both alike. Exit 0 when every ratio holds, 1 otherwise (the table says which).
// CI runs it once per instruction-set path the machine has (tests/oracle_path_check.sh), with
// OpenBLAS held to the same instruction set.
#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace bilevel;
using T = float;

constexpr index_t kFeatures = 784, kClasses = 10, kBatch = 512, kTrain = 20000;

struct Case {
  std::string name;
  index_t instances;
  int which;  // 0: gy, 1: H v + J v, 2: gy + H v + J v at one point, 3: H v + J v full batch
};

double seconds_of(const std::function<void()>& work, int calls) {
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < calls; ++c) work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls;
}

/// The fastest of `repeats` alternating timings of the automatic and the composed path.
std::pair<double, double> time_paths(HypercleanProblem<T>& p, const std::shared_ptr<Executor>& exec,
                                     const Case& c, int repeats) {
  const index_t nb = c.instances, dx = p.dim_x(), dy = p.dim_y();
  const bool full = c.which == 3;
  p.reserve(nb, full ? 0 : kBatch);
  Array<T> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), gy(exec, dy, nb), out(exec, dy, nb),
      jv(exec, dx, nb);
  exec->ops<T>().fill(x.view(), T(0));
  exec->ops<T>().fill(y.view(), T(0.01));
  exec->ops<T>().fill(v.view(), T(0.02));
  MinibatchSampler<T> sampler(exec, 1, dx, kBatch);
  const Batch b = full ? Batch{nullptr, kTrain, kTrain}
                       : sampler.draw(SampleStream::second_order, 0, 0);
  const auto call = [&] {
    if (c.which == 0)
      p.grad_y_g(b, x.cview(), y.cview(), gy.view());
    else if (c.which == 2)
      p.lower_oracles(b, x.cview(), y.cview(), v.cview(), gy.view(), out.view(), jv.view());
    else
      p.hvp_jvp(b, x.cview(), y.cview(), v.cview(), out.view(), jv.view());
  };
  // about 50 ms of calls per timing
  p.set_oracle_path(OraclePath::composed);
  call();
  const double once = seconds_of(call, 1);
  const int calls = std::clamp(static_cast<int>(0.05 / std::max(once, 1e-6)), 1, 200);
  double best[2] = {1e300, 1e300};
  for (int r = 0; r < repeats; ++r)
    for (int path = 0; path < 2; ++path) {
      p.set_oracle_path(path == 0 ? OraclePath::automatic : OraclePath::composed);
      call();  // warm-up of this path's scratch
      best[path] = std::min(best[path], seconds_of(call, calls));
    }
  return {best[0], best[1]};
}

}  // namespace

int main(int argc, char** argv) {
  double limit = 1.10;
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--limit" && i + 1 < argc)
      limit = std::atof(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc)
      repeats = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--limit RATIO] [--repeats N]\n", argv[0]);
      return 2;
    }
  }
  if (!(limit > 1.0)) {
    std::fprintf(stderr, "oracle_path_check: --limit must be a ratio above 1\n");
    return 2;
  }
  try {
    auto exec = make_executor(Backend::cpu);
    HypercleanProblem<T> p(exec,
                           SyntheticHypercleanSpec{kTrain, 5000, 1000, kFeatures,
                                                   static_cast<int>(kClasses), 0.5, 1},
                           3e-3, nullptr);
    std::printf("oracle path check on %s, batch %ld, %ld x %ld training samples; limit %.2fx\n",
                exec->device_name().c_str(), static_cast<long>(kBatch),
                static_cast<long>(kTrain), static_cast<long>(kFeatures), limit);
    if (const char* core = std::getenv("OPENBLAS_CORETYPE"))
      std::printf("OpenBLAS held to its %s kernels (OPENBLAS_CORETYPE)\n", core);
    std::printf("%-28s %12s %12s %8s\n", "oracle", "automatic", "composed", "ratio");
    std::vector<Case> cases;
    for (const index_t nb : {index_t(1), index_t(8), index_t(64)}) {
      const std::string b = " B=" + std::to_string(nb);
      cases.push_back({"gy, batch 512" + b, nb, 0});
      cases.push_back({"H v + J v, batch 512" + b, nb, 1});
      cases.push_back({"gy + H v + J v, batch 512" + b, nb, 2});
    }
    cases.push_back({"H v + J v, full 20000 B=1", 1, 3});
    int failed = 0;
    for (const Case& c : cases) {
      const auto [ours, composed] = time_paths(p, exec, c, repeats);
      const double ratio = ours / composed;
      const bool ok = ratio <= limit;
      failed += !ok;
      std::printf("%-28s %9.3f ms %9.3f ms %7.2fx%s\n", c.name.c_str(), ours * 1e3,
                  composed * 1e3, ratio, ok ? "" : "  <- slower than the limit");
    }
    if (failed) {
      std::printf("FAILED: %d of %zu oracles more than %.2fx slower than the composed path\n",
                  failed, cases.size(), limit);
      return 1;
    }
    std::printf("every oracle within %.2fx of the composed path\n", limit);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oracle_path_check: %s\n", e.what());
    return 1;
  }
}
