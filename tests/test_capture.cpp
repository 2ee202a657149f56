// Captured iterations: the solver records an iteration once per shape and replays it. A replay
// must give exactly what running the iteration from the host gives, which holds only if
// everything that changes with k (batches, decaying steps) is read from the device counter.
//
// On the CPU this is checked with an executor whose "graph" is the captured closure itself,
// called again on replay with the arguments it had at capture time - as a CUDA graph replays
// its kernels with the arguments they were launched with. On CUDA the real graphs are compared
// with uncaptured runs (skipped without a device).
#include "test_support.hpp"

namespace bilevel::test {
namespace {

class ClosureReplay final : public CapturedWork {
 public:
  ClosureReplay(std::function<void()> work, int* replays) : work_(std::move(work)), replays_(replays) {}
  void replay() override {
    ++*replays_;
    work_();
  }

 private:
  std::function<void()> work_;
  int* replays_;
};

/// The CPU executor, with capture() returning the closure as the recorded work.
class ReplayingExecutor final : public Executor {
 public:
  ReplayingExecutor() : inner_(cpu()) {}
  Backend backend() const override { return inner_->backend(); }
  std::string device_name() const override { return "replaying " + inner_->device_name(); }
  void* allocate(std::size_t bytes) override { return inner_->allocate(bytes); }
  void deallocate(void* p) noexcept override { inner_->deallocate(p); }
  void copy_to_host(void* d, const void* s, std::size_t n) override { inner_->copy_to_host(d, s, n); }
  void copy_from_host(void* d, const void* s, std::size_t n) override { inner_->copy_from_host(d, s, n); }
  void copy(void* d, const void* s, std::size_t n) override { inner_->copy(d, s, n); }
  void synchronize() override { inner_->synchronize(); }
  double time_ms(const std::function<void()>& work) override { return inner_->time_ms(work); }
  void* native_stream() const override { return nullptr; }
  std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) override {
    ++captures;
    return std::make_unique<ClosureReplay>(work, &replays);
  }
  int captures = 0, replays = 0;

 protected:
  Ops<float>& ops_float() override { return inner_->ops<float>(); }
  Ops<double>& ops_double() override { return inner_->ops<double>(); }

 private:
  std::shared_ptr<Executor> inner_;
};

/// Stochastic quadratic, B = 2, minibatches, decaying steps where the preset has them, metrics
/// every 7 iterations (evaluations between replays).
AlgorithmOptions options(const std::string& name, const QuadraticData& q, bool capture) {
  const double big_l = q.lower_hessian_spectrum().second;
  AlgorithmOptions o = default_options(name);
  o.loop.iterations = 30;
  o.loop.inner_steps = 3;
  o.loop.inner_step = {0.5 / big_l};
  o.loop.outer_step = {0.05, 0.1};
  o.loop.lower_batch = o.loop.upper_batch = 32;
  o.loop.seed = 5;
  o.loop.eval_every = 7;
  o.loop.capture = capture;
  o.neumann = NeumannOptions{4, {0.5 / big_l}};
  o.fixed_point = FixedPointOptions{2, {0.5 / big_l}, true};
  o.truncated_neumann = TruncatedNeumannOptions{4, {0.5 / big_l}, 0};
  return o;
}

struct Case {
  const char* name;
  int min_shapes, max_shapes;  ///< graphs the solver should capture
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CapturedRuns : public ::testing::TestWithParam<Case> {};

TEST_P(CapturedRuns, ReplaysGiveTheUncapturedRunBitForBit) {
  const QuadraticData q = QuadraticData::random(6, 9, 200, 3);
  const std::vector<double> x0 = random_vector<double>(12, 1), y0 = random_vector<double>(18, 2);
  auto replaying = std::make_shared<ReplayingExecutor>();
  QuadraticProblem<double> pr(replaying, q), pc(cpu(), q);
  const SolveResult<double> captured = make_solver(pr, options(GetParam().name, q, true))->run(x0, y0);
  const SolveResult<double> direct = make_solver(pc, options(GetParam().name, q, false))->run(x0, y0);
  EXPECT_GE(replaying->captures, GetParam().min_shapes);
  EXPECT_LE(replaying->captures, GetParam().max_shapes);
  EXPECT_EQ(captured.captured_shapes, replaying->captures);
  EXPECT_EQ(replaying->replays, 29) << "every iteration after the first";
  EXPECT_EQ(captured.x, direct.x);
  EXPECT_EQ(captured.y, direct.y);
  ASSERT_EQ(captured.history.size(), direct.history.size());
  for (std::size_t e = 0; e < captured.history.size(); ++e)
    EXPECT_EQ(captured.history[e].upper_value, direct.history[e].upper_value) << "evaluation " << e;
}

INSTANTIATE_TEST_SUITE_P(Presets, CapturedRuns,
                         ::testing::Values(Case{"stocbio", 1, 1}, Case{"aid-cg", 1, 1},
                                           Case{"aid-fp", 1, 1}, Case{"amigo", 1, 1},
                                           Case{"soba", 1, 1}, Case{"ma-soba", 1, 1},
                                           // with and without the lower-level round
                                           Case{"bo-rep", 2, 2},
                                           // one graph per truncation depth (Q = 4)
                                           Case{"ttsa", 2, 4},
                                           Case{"itd-bio", 1, 1}, Case{"fom", 1, 1},
                                           // with and without the correction (q = 0.2)
                                           Case{"ufom", 2, 2}, Case{"bda", 1, 1},
                                           Case{"sl-bamm", 1, 1}, Case{"f2sa", 1, 1},
                                           // full-batch restarts (period 200 / 32 = 6) and the
                                           // recursion
                                           Case{"srba", 2, 2},
                                           // PAGE's coin (p = 32 / 232): restarts and recursion
                                           Case{"spaba", 2, 2},
                                           // one graph per truncation depth (K = 4), as TTSA
                                           Case{"bsa", 2, 4},
                                           // first order: lambda stays on the executor
                                           Case{"bome", 1, 1},
                                           // its scheduled 1 / gamma_k on the executor
                                           Case{"v-pbgd", 1, 1}, Case{"f2ba", 1, 1},
                                           // from k = 1: the inner loop, with and without the
                                           // restart (period 6)
                                           Case{"vrbo", 2, 2}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

/// LV-HBA (its scheduled 1/c_k on the device) on its toy, which has the constraints it needs.
TEST(CapturedRuns, LvHbaReplaysGiveTheUncapturedRun) {
  const auto run = [](std::shared_ptr<Executor> exec, bool capture) {
    LvHbaToy<double> p(exec, 20);
    AlgorithmOptions o = default_options("lv-hba");
    o.loop.iterations = 30;
    o.loop.capture = capture;
    o.loop.eval_every = 7;
    return make_solver(p, o)->run(random_vector<double>(20, 1), random_vector<double>(40, 2));
  };
  auto replaying = std::make_shared<ReplayingExecutor>();
  const SolveResult<double> captured = run(replaying, true), direct = run(cpu(), false);
  EXPECT_EQ(replaying->captures, 1);
  EXPECT_EQ(captured.x, direct.x);
  EXPECT_EQ(captured.y, direct.y);
}

/// The hyper-cleaning problem (gathers, chunked GEMMs, fused softmax passes) replays as well.
TEST(CapturedRuns, HypercleanReplaysGiveTheUncapturedRun) {
  const SyntheticHypercleanSpec spec{600, 200, 100, 12, 4, 0.4, 3, 3.0};
  for (const char* name : {"stocbio", "soba", "bo-rep"}) {
    SCOPED_TRACE(name);
    const auto run = [&](std::shared_ptr<Executor> exec, bool capture) {
      HypercleanProblem<double> p(exec, spec, 1e-3, nullptr);
      AlgorithmOptions o = default_options(name);
      o.loop.iterations = 12;
      o.loop.lower_batch = o.loop.upper_batch = 64;
      o.loop.inner_step = {0.1};
      o.loop.outer_step = {10.0};
      o.loop.eval_every = 5;
      o.loop.capture = capture;
      o.neumann.eta = {0.1};
      o.fixed_point.nu = {0.1};
      return make_solver(p, o)->run(std::vector<double>(600 * 2, 0.0), std::vector<double>(13 * 4 * 2, 0.0));
    };
    auto replaying = std::make_shared<ReplayingExecutor>();
    const SolveResult<double> captured = run(replaying, true), direct = run(cpu(), false);
    EXPECT_GE(replaying->captures, 1);
    EXPECT_EQ(captured.x, direct.x);
    EXPECT_EQ(captured.y, direct.y);
  }
}

/// Independent batches (one index set per instance) replay as well.
TEST(CapturedRuns, IndependentBatchesReplayGiveTheUncapturedRun) {
  const QuadraticData q = QuadraticData::random(6, 9, 200, 3);
  const std::vector<double> x0 = random_vector<double>(12, 1), y0 = random_vector<double>(18, 2);
  for (const char* name : {"stocbio", "bo-rep"}) {
    SCOPED_TRACE(name);
    auto replaying = std::make_shared<ReplayingExecutor>();
    QuadraticProblem<double> pr(replaying, q), pc(cpu(), q);
    AlgorithmOptions on = options(name, q, true), off = options(name, q, false);
    on.loop.independent_batches = off.loop.independent_batches = true;
    const SolveResult<double> captured = make_solver(pr, on)->run(x0, y0);
    const SolveResult<double> direct = make_solver(pc, off)->run(x0, y0);
    EXPECT_GE(replaying->captures, 1);
    EXPECT_EQ(captured.x, direct.x);
  }
}

/// Turning capture off captures nothing.
TEST(CapturedRuns, OffMeansNoCapture) {
  const QuadraticData q = QuadraticData::random(6, 9, 200, 3);
  auto replaying = std::make_shared<ReplayingExecutor>();
  QuadraticProblem<double> p(replaying, q);
  make_solver(p, options("stocbio", q, false))->run(random_vector<double>(12, 1), random_vector<double>(18, 2));
  EXPECT_EQ(replaying->captures, 0);
}

/// The check has teeth: an estimator that claims to be capturable but uses the host's k
/// (h = k + 1 in every coordinate) gives a different run when replayed.
class HostIterationEstimator final : public HypergradientEstimator<double> {
 public:
  std::string name() const override { return "host-k"; }
  bool capturable() const override { return true; }
  void prepare(Problem<double>&, index_t) override {}
  void estimate(const EstimateContext<double>& ctx, ConstMatrixView<double>, MatrixView<double>,
                MatrixView<double> h) override {
    ctx.problem.executor()->ops<double>().fill(h, static_cast<double>(ctx.iteration + 1));
  }
};

TEST(CapturedRuns, AHostSideIterationDependenceIsCaught) {
  const QuadraticData q = QuadraticData::random(6, 9, 200, 3);
  ScheduleOptions loop;
  loop.iterations = 10;
  loop.outer_step = {0.01};
  const auto run = [&](std::shared_ptr<Executor> exec) {
    QuadraticProblem<double> p(exec, q);
    Solver<double> s(p, std::make_unique<HostIterationEstimator>(), loop);
    return s.run(std::vector<double>(6, 0.0), std::vector<double>(9, 0.0)).x;
  };
  const std::vector<double> replayed = run(std::make_shared<ReplayingExecutor>());
  const std::vector<double> direct = run(cpu());
  // direct: x = -0.01 (1 + 2 + ... + 10); replayed: iteration 1's h = 2 is replayed 9 times
  EXPECT_NEAR(direct[0], -0.01 * 55, 1e-12);
  EXPECT_NEAR(replayed[0], -0.01 * (1 + 9 * 2), 1e-12);
}

/// CUDA graphs against uncaptured CUDA runs: same kernels, same arguments, so the same bits.
TEST_P(CapturedRuns, CudaGraphsGiveTheUncapturedRun) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const QuadraticData q = QuadraticData::random(6, 9, 200, 3);
  const std::vector<double> x0 = random_vector<double>(12, 1), y0 = random_vector<double>(18, 2);
  QuadraticProblem<double> p(gpu, q);
  const SolveResult<double> captured = make_solver(p, options(GetParam().name, q, true))->run(x0, y0);
  const SolveResult<double> direct = make_solver(p, options(GetParam().name, q, false))->run(x0, y0);
  EXPECT_EQ(captured.x, direct.x);
  EXPECT_EQ(captured.y, direct.y);
}

}  // namespace
}  // namespace bilevel::test
