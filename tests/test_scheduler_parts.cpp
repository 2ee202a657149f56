// The scheduler's parts on their own (host/solvers: divergence_watch, metric_readback,
// iteration_graphs) and what the whole loop must not do: allocate on the host inside an
// iteration.
#include "test_support.hpp"

#include "../host/solvers/divergence_watch.hpp"
#include "../host/solvers/iteration_graphs.hpp"
#include "../host/solvers/metric_readback.hpp"
#include "../host/solvers/run_state.hpp"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <new>

// Heap allocations of this process, counted (not under AddressSanitizer, whose own operator new
// checks new/delete pairs).
#if defined(__SANITIZE_ADDRESS__)
#define BILEVEL_COUNTS_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BILEVEL_COUNTS_ALLOCATIONS 0
#endif
#endif
#ifndef BILEVEL_COUNTS_ALLOCATIONS
#define BILEVEL_COUNTS_ALLOCATIONS 1
#endif

#if BILEVEL_COUNTS_ALLOCATIONS
namespace {
std::atomic<long> heap_allocations{0};
}
void* operator new(std::size_t bytes) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t bytes) { return operator new(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace bilevel::test {
namespace {

using detail::DivergenceWatch;

const char* const kNames[] = {"f", "g"};

TEST(DivergenceWatch, NamesEveryDivergentValue) {
  DivergenceWatch watch(3, 1e3);
  // values[r * B + b]: instance 0 healthy, 1 has g = NaN, 2 has f beyond the limit
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double values[] = {1.0, 2.0, -5e3, 1.0, nan, 7e3};
  watch.check("at", 40, kNames, 2, values);
  EXPECT_FALSE(watch.diverged(0));
  ASSERT_TRUE(watch.diverged(1));
  ASSERT_TRUE(watch.diverged(2));
  EXPECT_EQ(watch.diverged_at(), (std::vector<index_t>{-1, 40, 40}));
  EXPECT_EQ(watch.messages()[1],
            "diverged at iteration 40, instance 1: g is nan (try smaller step sizes)");
  EXPECT_EQ(watch.messages()[2],
            "diverged at iteration 40, instance 2: f is -5000, beyond the divergence limit 1000 "
            "and g is 7000, beyond the divergence limit 1000 (try smaller step sizes)")
      << "every divergent value of the check is named";
  // two divergent values: both named, the finite one with the limit
  DivergenceWatch two(1, 1e20);
  const double xy[] = {3e21, std::numeric_limits<double>::infinity()};
  const char* const norms[] = {"||x||", "||y||"};
  two.check("by", 7, norms, 2, xy);
  EXPECT_EQ(two.messages()[0],
            "diverged by iteration 7, instance 0: ||x|| is 3e+21, beyond the divergence limit "
            "1e+20 and ||y|| is inf (try smaller step sizes)");
  EXPECT_NO_THROW(watch.throw_if_all_diverged()) << "instance 0 is healthy";
}

TEST(DivergenceWatch, TheFirstMarkStaysAndTheLastToDivergeIsReported) {
  DivergenceWatch watch(2, 1e20);
  watch.mark(0, 10, "zero");
  watch.mark(0, 30, "zero again");
  EXPECT_EQ(watch.diverged_at()[0], 10);
  EXPECT_EQ(watch.messages()[0], "zero");
  const float inf = std::numeric_limits<float>::infinity();
  const float values[] = {inf, inf, inf, inf};
  watch.check("by", 20, kNames, 2, values);  // instance 0 is not marked again
  EXPECT_EQ(watch.diverged_at(), (std::vector<index_t>{10, 20}));
  try {
    watch.throw_if_all_diverged();
    FAIL() << "every instance diverged: DivergenceError expected";
  } catch (const DivergenceError& e) {
    EXPECT_EQ(e.instance(), 1);
    EXPECT_EQ(e.iteration(), 20);
    // both values blew up: both are named (the first alone blamed ||x|| for a y that blew up)
    EXPECT_EQ(std::string(e.what()),
              "diverged by iteration 20, instance 1: f is inf and g is inf (try smaller step "
              "sizes)");
  }
}

TEST(DivergenceWatch, TheLimitIsAMagnitude) {
  DivergenceWatch watch(1, 100.0);
  EXPECT_FALSE(watch.divergent(100.0));
  EXPECT_FALSE(watch.divergent(-100.0));
  EXPECT_TRUE(watch.divergent(100.5));
  EXPECT_TRUE(watch.divergent(-100.5));
  EXPECT_TRUE(watch.divergent(std::numeric_limits<double>::quiet_NaN()));
}

/// A quadratic problem (dx = 2, dy = 3, B = 2) with a stocBiO estimator and the run's state.
struct ReadbackFixture {
  QuadraticData data = QuadraticData::random(2, 3, 20, 5);
  std::shared_ptr<Executor> exec = cpu();
  QuadraticProblem<double> problem{exec, data};
  std::unique_ptr<HypergradientEstimator<double>> estimator =
      make_neumann_estimator<double>(NeumannOptions{3, {0.1}});
  ScheduleOptions options;
  std::vector<double> x0 = {0.1, 0.2, -0.3, 0.4};
  std::vector<double> y0 = std::vector<double>(6, 0.5);
  detail::RunState<double> state{problem, *estimator, options, x0, y0};
  detail::DivergenceWatch watch{2, 1e20};
  detail::RunClock clock;

  // f at (x, y) now, per instance
  std::vector<double> f_now() {
    Array<double> f(exec, 2, 1), g(exec, 2, 1);
    problem.values(Batch{nullptr, problem.lower_samples()},
                   Batch{nullptr, problem.upper_samples()}, state.x.view(), state.y.view(),
                   f.data(), g.data());
    return f.to_host();
  }
};

TEST(MetricReadback, EvaluationsArriveOneLateInOrderWithTheirOwnState) {
  ReadbackFixture s;
  std::vector<index_t> seen;
  std::vector<std::vector<double>> seen_f;
  const Solver<double>::Observer observer = [&](const IterationMetrics& m) {
    seen.push_back(m.iteration);
    seen_f.push_back(m.upper_value);
  };
  const Solver<double>::Inspector no_inspector;
  detail::MetricReadback<double> metrics(s.problem, s.state, s.watch, s.clock, observer,
                                         no_inspector);
  const std::vector<double> f5 = s.f_now();
  metrics.enqueue(5);
  EXPECT_TRUE(seen.empty()) << "an evaluation is read at the next one, not when enqueued";
  // x moves on before evaluation 5 is read: it must still report the x of iteration 5
  s.state.ops.fill(s.state.x.view(), 2.0);
  const std::vector<double> f10 = s.f_now();
  ASSERT_NE(f5, f10);
  metrics.enqueue(10);
  ASSERT_EQ(seen, (std::vector<index_t>{5}));
  EXPECT_EQ(seen_f[0], f5);
  metrics.read_up_to(9);
  EXPECT_EQ(seen.size(), 1u) << "evaluation 10 is after iteration 9";
  metrics.read_up_to(10);
  ASSERT_EQ(seen, (std::vector<index_t>{5, 10}));
  EXPECT_EQ(seen_f[1], f10);
  metrics.read_pending();  // nothing left
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(metrics.history().size(), 2u);
}

TEST(MetricReadback, AnInspectorSeesEachEvaluationAtOnce) {
  ReadbackFixture s;
  std::vector<index_t> inspected;
  const Solver<double>::Observer no_observer;
  const Solver<double>::Inspector inspector = [&](const IterationMetrics& m,
                                                  ConstMatrixView<double>,
                                                  ConstMatrixView<double>) {
    inspected.push_back(m.iteration);
  };
  detail::MetricReadback<double> metrics(s.problem, s.state, s.watch, s.clock, no_observer,
                                         inspector);
  metrics.enqueue(3);
  EXPECT_EQ(inspected, (std::vector<index_t>{3}));
  metrics.enqueue(6);
  EXPECT_EQ(inspected, (std::vector<index_t>{3, 6}));
}

TEST(MetricReadback, ADivergedInstanceReadsNaNFromThenOn) {
  ReadbackFixture s;
  std::vector<IterationMetrics> seen;
  const Solver<double>::Observer observer = [&](const IterationMetrics& m) { seen.push_back(m); };
  const Solver<double>::Inspector no_inspector;
  detail::MetricReadback<double> metrics(s.problem, s.state, s.watch, s.clock, observer,
                                         no_inspector);
  // instance 1's x is not finite: f is NaN there
  std::vector<double> x = s.x0;
  x[2] = std::numeric_limits<double>::infinity();
  s.state.x = Array<double>(s.exec, 2, 2, x);
  metrics.enqueue(4);
  metrics.read_pending();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(s.watch.diverged(1));
  EXPECT_FALSE(s.watch.diverged(0));
  EXPECT_EQ(s.watch.diverged_at()[1], 4);
  EXPECT_TRUE(std::isfinite(seen[0].upper_value[0]));
  EXPECT_TRUE(std::isnan(seen[0].lower_value[1])) << "every metric of a diverged instance";
  EXPECT_TRUE(std::isnan(seen[0].hypergradient_norm[1]));
  // back to finite values: the instance stays diverged and its metrics NaN
  s.state.x = Array<double>(s.exec, 2, 2, s.x0);
  metrics.enqueue(8);
  metrics.read_pending();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(std::isnan(seen[1].upper_value[1]));
  EXPECT_TRUE(std::isfinite(seen[1].upper_value[0]));
}

/// Recorded work that counts its replays (the graph of one iteration shape).
class CountingGraph final : public CapturedWork {
 public:
  explicit CountingGraph(int* replays) : replays_(replays) {}
  void replay() override { ++*replays_; }
  long nodes() const override { return 7; }

 private:
  int* replays_;
};

TEST(IterationGraphs, CapturesEachShapeOnceAndReplaysIt) {
  int captures = 0, replays = 0, direct = 0;
  detail::IterationGraphs graphs(true, [&](const std::function<void()>&) {
    ++captures;
    return std::make_unique<CountingGraph>(&replays);
  });
  const auto iteration = [&] { ++direct; };
  graphs.run({true, 0}, true, iteration);  // the run's first iteration: directly
  EXPECT_EQ(direct, 1);
  EXPECT_EQ(captures, 0);
  for (int k = 1; k < 9; ++k) graphs.run({k % 2 == 0, 0}, false, iteration);
  EXPECT_EQ(direct, 1) << "later iterations replay graphs";
  EXPECT_EQ(captures, 2) << "one graph per shape: with and without the lower-level round";
  EXPECT_EQ(replays, 8);
  graphs.run({false, 3}, false, iteration);
  EXPECT_EQ(captures, 3) << "an estimator shape of its own";
  EXPECT_EQ(graphs.captured_shapes(), 3);
  EXPECT_EQ(graphs.graph_nodes(), (std::vector<long>{7, 7, 7}));
}

TEST(IterationGraphs, RunsDirectlyWhereNothingIsCapturedOrCaptureIsOff) {
  int captures = 0, direct = 0;
  const auto nothing = [&](const std::function<void()>&) {
    ++captures;
    return std::unique_ptr<CapturedWork>();
  };
  detail::IterationGraphs unsupported(true, nothing);
  for (int k = 0; k < 5; ++k) unsupported.run({true, 0}, k == 0, [&] { ++direct; });
  EXPECT_EQ(direct, 5);
  EXPECT_EQ(captures, 1) << "one try, then directly from then on";
  EXPECT_EQ(unsupported.captured_shapes(), 0);
  detail::IterationGraphs off(false, nothing);
  for (int k = 0; k < 5; ++k) off.run({true, 0}, false, [&] { ++direct; });
  EXPECT_EQ(direct, 10);
  EXPECT_EQ(captures, 1);
}

/// The CPU executor, counting what makes the host wait for the device or allocate on it.
class WaitCountingExecutor final : public Executor {
 public:
  struct Counts {
    long waits = 0, synchronizations = 0, copies_to_host = 0, copies_from_host = 0,
         allocations = 0;
  };
  Counts counts;

  Backend backend() const override { return inner_->backend(); }
  std::string device_name() const override { return "counting " + inner_->device_name(); }
  void* allocate(std::size_t bytes) override {
    ++counts.allocations;
    return inner_->allocate(bytes);
  }
  void deallocate(void* p) noexcept override { inner_->deallocate(p); }
  void copy_to_host(void* d, const void* s, std::size_t n) override {
    ++counts.copies_to_host;
    inner_->copy_to_host(d, s, n);
  }
  void copy_from_host(void* d, const void* s, std::size_t n) override {
    ++counts.copies_from_host;
    inner_->copy_from_host(d, s, n);
  }
  void copy(void* d, const void* s, std::size_t n) override { inner_->copy(d, s, n); }
  void synchronize() override {
    ++counts.synchronizations;
    inner_->synchronize();
  }
  double time_ms(const std::function<void()>& work) override { return inner_->time_ms(work); }
  void* native_stream() const override { return nullptr; }
  std::unique_ptr<StreamMark> mark() override {
    struct CountedMark final : StreamMark {
      long* waits;
      explicit CountedMark(long* w) : waits(w) {}
      void wait() override { ++*waits; }
    };
    return std::make_unique<CountedMark>(&counts.waits);
  }

 protected:
  Ops<float>& ops_float() override { return inner_->ops<float>(); }
  Ops<double>& ops_double() override { return inner_->ops<double>(); }

 private:
  std::shared_ptr<Executor> inner_ = cpu();
};

/// `preset` for `iterations` on the small quadratic below, with no evaluation or norm check
/// inside the run (they wait by design, counted in their own test).
AlgorithmOptions quiet_run(const std::string& preset, index_t iterations) {
  AlgorithmOptions o = default_options(preset);
  o.loop.iterations = iterations;
  o.loop.lower_batch = 8;
  o.loop.upper_batch = 8;
  o.loop.inner_step = {0.05};
  o.loop.outer_step = {0.01};
  o.loop.eval_every = 0;
  o.loop.divergence_check_every = 0;
  return o;
}

/// What a whole run of `iterations` made the host wait for, copy or allocate on the executor.
WaitCountingExecutor::Counts waits_of_a_run(const std::string& preset, index_t iterations) {
  const QuadraticData q = QuadraticData::random(3, 4, 40, 11);
  auto exec = std::make_shared<WaitCountingExecutor>();
  QuadraticProblem<double> p(exec, q);
  auto solver = make_solver(p, quiet_run(preset, iterations));
  solver->run(std::vector<double>(3, 0.1), std::vector<double>(4, 0.0));
  return exec->counts;
}

class NoWaitInsideAnIteration : public ::testing::TestWithParam<std::string> {};

TEST_P(NoWaitInsideAnIteration, LongerRunsWaitNoMore) {
  const WaitCountingExecutor::Counts short_run = waits_of_a_run(GetParam(), 10);
  const WaitCountingExecutor::Counts long_run = waits_of_a_run(GetParam(), 50);
  EXPECT_GT(short_run.copies_to_host, 0) << "the count sees the final read-back";
  EXPECT_EQ(long_run.waits, short_run.waits);
  EXPECT_EQ(long_run.synchronizations, short_run.synchronizations);
  EXPECT_EQ(long_run.copies_to_host, short_run.copies_to_host);
  EXPECT_EQ(long_run.copies_from_host, short_run.copies_from_host);
  EXPECT_EQ(long_run.allocations, short_run.allocations) << "device allocations";
}

INSTANTIATE_TEST_SUITE_P(Presets, NoWaitInsideAnIteration,
                         ::testing::Values("stocbio", "soba", "bo-rep", "ttsa", "aid-cg", "f2sa",
                                           "sl-bamm", "ufom"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(NoWaitInsideAnIteration, EvaluationsWaitOnceEachAndOneLate) {
  // 40 iterations, metrics every 10: evaluations at 10, 20, 30 and the final one at 40, each
  // waited for once (when read); nothing else waits
  const QuadraticData q = QuadraticData::random(3, 4, 40, 11);
  auto exec = std::make_shared<WaitCountingExecutor>();
  QuadraticProblem<double> p(exec, q);
  AlgorithmOptions o = default_options("soba");
  o.loop.iterations = 40;
  o.loop.eval_every = 10;
  o.loop.divergence_check_every = 0;
  auto solver = make_solver(p, o);
  const SolveResult<double> r =
      solver->run(std::vector<double>(3, 0.1), std::vector<double>(4, 0.0));
  EXPECT_EQ(r.history.size(), 4u);
  EXPECT_EQ(exec->counts.waits, 4);
}

#if BILEVEL_COUNTS_ALLOCATIONS
/// Host allocations of a whole CPU run of `iterations` (no evaluations, checks or checkpoints).
long allocations_of_a_run(const std::string& preset, index_t iterations) {
  const QuadraticData q = QuadraticData::random(3, 4, 40, 11);
  auto exec = cpu();
  QuadraticProblem<double> p(exec, q);
  AlgorithmOptions o = quiet_run(preset, iterations);
  o.loop.final_evaluation = false;
  auto solver = make_solver(p, o);
  const std::vector<double> x0(3, 0.1), y0(4, 0.0);
  const long before = heap_allocations.load();
  solver->run(x0, y0);
  return heap_allocations.load() - before;
}

class NoAllocationInsideAnIteration : public ::testing::TestWithParam<std::string> {};

TEST_P(NoAllocationInsideAnIteration, LongerRunsAllocateNoMore) {
  allocations_of_a_run(GetParam(), 2);  // first-use allocations (thread pools, BLAS buffers)
  const long short_run = allocations_of_a_run(GetParam(), 10);
  const long long_run = allocations_of_a_run(GetParam(), 50);
  EXPECT_GT(short_run, 0) << "the count sees the run's set-up";
  EXPECT_EQ(long_run, short_run) << "40 more iterations allocated " << long_run - short_run
                                 << " times on the host";
}

INSTANTIATE_TEST_SUITE_P(Presets, NoAllocationInsideAnIteration,
                         ::testing::Values("stocbio", "soba", "bo-rep", "ttsa", "aid-cg"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });
#endif

}  // namespace
}  // namespace bilevel::test
