// The fused linear-model oracles' draws, launches and counts: minibatch indices drawn inside the
// kernels (uniform, or the epoch walk; the same on CUDA), the fused steps' bits, the launches of
// a SOBA, stocBiO and BO-REP iteration, and the FLOP count the benchmarks report.
#include "linear_model_data.hpp"

namespace bilevel::test {
namespace {

/// Kernel launches of one SOBA iteration on hyper-cleaning, per iteration (the difference of an
/// 8- and a 3-iteration run).
std::uint64_t soba_launches(HypercleanProblem<float>& p, bool independent, index_t nb) {
  const auto launches = [&](index_t iterations) {
    AlgorithmOptions o = default_options("soba");
    o.loop.iterations = iterations;
    o.loop.lower_batch = o.loop.upper_batch = 32;
    o.loop.final_evaluation = false;
    o.loop.independent_batches = independent;
    o.loop.capture = false;
    o.loop.outer_step = std::vector<double>(static_cast<std::size_t>(nb), 10.0);
    auto solver = make_solver(p, o);
    const std::uint64_t before = launch_count();
    solver->run(std::vector<float>(p.dim_x() * nb, 0.f), std::vector<float>(p.dim_y() * nb, 0.f));
    return launch_count() - before;
  };
  launches(1);  // one-time set-up of the problem's workspaces
  return (launches(8) - launches(3)) / 5;
}

/// On the CUDA device the minibatch indices are drawn inside the fused kernels too: a SOBA run
/// there follows the CPU's (whose kernels write the same indices first), shared and
/// independent batches, and takes four launches per iteration.
TEST(FusedOraclesParity, SobaRunDrawsItsMinibatchesInTheKernels) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(400, 17, 5);
  for (const bool independent : {false, true}) {
    SCOPED_TRACE(independent ? "independent batches" : "shared batches");
    std::vector<double> x[2];
    for (int backend = 0; backend < 2; ++backend) {
      HypercleanProblem<double> p(backend ? gpu : cpu(), data, 1e-3);
      AlgorithmOptions o = default_options("soba");
      o.loop.iterations = 12;
      o.loop.lower_batch = o.loop.upper_batch = 48;
      o.loop.independent_batches = independent;
      o.loop.outer_step = {10.0, 20.0};
      x[backend] = make_solver(p, o)->run(std::vector<double>(p.dim_x() * 2, 0.0),
                                          std::vector<double>(p.dim_y() * 2, 0.0)).x;
    }
    EXPECT_LT(relative_error(x[1], x[0]), 1e-10);
    EXPECT_GT(norm(x[0]), 0.0);
  }
  HypercleanProblem<float> p(gpu, data, 1e-3);
  EXPECT_EQ(soba_launches(p, false, 1), 4u);
}

/// Launches per iteration of a preset on hyper-cleaning (no capture, no evaluations).
std::uint64_t preset_launches(HypercleanProblem<float>& p, const std::string& name) {
  const auto launches = [&](index_t iterations) {
    AlgorithmOptions o = default_options(name);
    o.loop.iterations = iterations;
    o.loop.lower_batch = o.loop.upper_batch = 32;
    o.loop.final_evaluation = false;
    o.loop.capture = false;
    o.loop.init_steps = 0;
    auto solver = make_solver(p, o);
    const std::uint64_t before = launch_count();
    solver->run(std::vector<float>(p.dim_x(), 0.f), std::vector<float>(p.dim_y(), 0.f));
    return launch_count() - before;
  };
  launches(1);
  return (launches(6) - launches(2)) / 4;
}

/// stocBiO's inner steps and Neumann terms take the step in the back-product's epilogue: two
/// kernels each (were four with the index draw and the separate update), 50 launches per
/// iteration at D = Q = 10 (were 92); on the CUDA device the run follows the CPU's.
TEST(FusedOraclesParity, StocbioFusesItsStepsIntoTheBackProduct) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(400, 17, 5);
  std::vector<double> x[2], y[2];
  for (int backend = 0; backend < 2; ++backend) {
    HypercleanProblem<double> p(backend ? gpu : cpu(), data, 1e-3);
    AlgorithmOptions o = default_options("stocbio");
    o.loop.iterations = 6;
    o.loop.lower_batch = o.loop.upper_batch = 48;
    o.loop.outer_step = {10.0, 20.0};
    o.loop.inner_step = {0.5};
    o.neumann.eta = {0.3};
    const SolveResult<double> r =
        make_solver(p, o)->run(std::vector<double>(p.dim_x() * 2, 0.0),
                               std::vector<double>(p.dim_y() * 2, 0.0));
    x[backend] = r.x;
    y[backend] = r.y;
  }
  EXPECT_LT(relative_error(x[1], x[0]), 1e-10);
  EXPECT_LT(relative_error(y[1], y[0]), 1e-10);
  HypercleanProblem<float> p(gpu, data, 1e-3);
  // (49: f does not depend on x, so no fx is filled with zeros and read back; 50 before)
  EXPECT_EQ(preset_launches(p, "stocbio"), 49u);
  EXPECT_EQ(preset_launches(p, "bo-rep"), 14u);
}

/// The fused steps give the bits of the composed updates (grad_y_g then batch_axpy; hvp_jvp
/// then neumann_step) on the CPU.
TEST(FusedOracles, FusedStepsGiveTheSeparateUpdatesBits) {
  auto exec = cpu();
  const HypercleanData data = linear_model_data(300, 23, 4);
  HypercleanProblem<double> p(exec, data, 2e-3);
  const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
  p.reserve(nb, 64);
  MinibatchSampler<double> sampler(exec, 3, dx, 64);
  sampler.set_deferred(true);
  const Batch batch = sampler.draw(SampleStream::lower_step, 0, 0);
  Array<double> x(exec, dx, nb, random_vector<double>(dx * nb, 1)),
      y(exec, dy, nb, random_vector<double>(dy * nb, 2, -0.3, 0.3)),
      r(exec, dy, nb, random_vector<double>(dy * nb, 3)), sum(exec, dy, nb, random_vector<double>(dy * nb, 4)),
      steps(exec, nb, 1, std::vector<double>{0.3, 0.7}), work(exec, dy, nb);
  Array<double> y2(exec, dy, nb, y.to_host()), r2(exec, dy, nb, r.to_host()), sum2(exec, dy, nb, sum.to_host());
  p.lower_step(batch, x.cview(), y.view(), steps.data(), work.view());
  p.Problem<double>::lower_step(batch, x.cview(), y2.view(), steps.data(), work.view());
  EXPECT_EQ(y.to_host(), y2.to_host());
  p.neumann_term(batch, x.cview(), y.cview(), steps.data(), r.view(), sum.view(), work.view());
  p.Problem<double>::neumann_term(batch, x.cview(), y.cview(), steps.data(), r2.view(), sum2.view(),
                                  work.view());
  EXPECT_EQ(r.to_host(), r2.to_host());
  EXPECT_EQ(sum.to_host(), sum2.to_host());
  EXPECT_NE(y.to_host(), random_vector<double>(dy * nb, 2, -0.3, 0.3));  // it moved
}

/// The epoch walk (MinibatchSampler's `epochs`): batches of one stream cover the data once per
/// epoch, and a batch drawn inside the fused kernels is the one the sampler writes (the
/// kernels get the walk's flag and the batch size with the draw).
TEST(FusedOracles, EpochWalkDrawnInTheKernelsIsTheWrittenOne) {
  auto exec = cpu();
  const HypercleanData data = linear_model_data(300, 23, 4);
  HypercleanProblem<double> p(exec, data, 2e-3);
  const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y(), size = 60;
  p.reserve(nb, size);
  MinibatchSampler<double> eager(exec, 3, dx, size, 1, true), deferred(exec, 3, dx, size, 1, true),
      replacement(exec, 3, dx, size);
  deferred.set_deferred(true);
  std::vector<int> seen(static_cast<std::size_t>(dx), 0);
  for (index_t k = 0; k < dx / size; ++k) {  // one epoch: 300 / 60 batches
    const Batch b = eager.draw(SampleStream::lower_step, 0, k);
    for (index_t i = 0; i < size; ++i) ++seen[static_cast<std::size_t>(b.indices[i])];  // (CPU)
  }
  EXPECT_EQ(seen, std::vector<int>(static_cast<std::size_t>(dx), 1));
  Array<double> x(exec, dx, nb, random_vector<double>(dx * nb, 1)),
      y(exec, dy, nb, random_vector<double>(dy * nb, 2, -0.3, 0.3)), a(exec, dy, nb),
      b(exec, dy, nb), c(exec, dy, nb);
  p.grad_y_g(eager.draw(SampleStream::lower_step, 0, 7), x.cview(), y.cview(), a.view());
  p.grad_y_g(deferred.draw(SampleStream::lower_step, 0, 7), x.cview(), y.cview(), b.view());
  p.grad_y_g(replacement.draw(SampleStream::lower_step, 0, 7), x.cview(), y.cview(), c.view());
  EXPECT_EQ(a.to_host(), b.to_host());
  EXPECT_NE(a.to_host(), c.to_host());  // (another batch: the flag reached the kernels)
}

/// The CUDA coefficient and back-product kernels draw the epoch walk's batch as the CPU twin
/// does (each sample's index computed where the kernel reads it).
TEST(FusedOracles, EpochWalkDrawnOnCudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(300, 23, 4);
  const auto run = [&](std::shared_ptr<Executor> exec, bool epochs) {
    HypercleanProblem<double> p(exec, data, 2e-3);
    const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
    p.reserve(nb, 60);
    MinibatchSampler<double> sampler(exec, 3, dx, 60, 1, epochs);
    sampler.set_deferred(true);
    Array<double> x(exec, dx, nb, random_vector<double>(dx * nb, 1)),
        y(exec, dy, nb, random_vector<double>(dy * nb, 2, -0.3, 0.3)), gy(exec, dy, nb);
    p.grad_y_g(sampler.draw(SampleStream::lower_step, 0, 7), x.cview(), y.cview(), gy.view());
    return gy.to_host();
  };
  const std::vector<double> on_gpu = run(gpu, true);
  EXPECT_LT(relative_error(on_gpu, run(cpu(), true)), 1e-12);
  EXPECT_GT(relative_error(on_gpu, run(cpu(), false)), 1e-3);  // (another batch)
}

/// fused_flop_count: each call adds its logits and back-products, 2 rows C B FLOPs per sample
/// each (gy: W's logits and one back-product; H v + J v: W's and V's logits, one back-product).
TEST(FusedOracles, FlopCountIsTheCallsLogitsAndBackProducts) {
  auto exec = cpu();
  const HypercleanData data = linear_model_data(300, 23, 4);
  HypercleanProblem<float> p(exec, data, 2e-3);
  const index_t nb = 2, dx = p.dim_x(), dy = p.dim_y(), size = 64;
  p.reserve(nb, size);
  MinibatchSampler<float> sampler(exec, 3, dx, size);
  sampler.set_deferred(true);
  const Batch batch = sampler.draw(SampleStream::lower_step, 0, 0);
  Array<float> x(exec, dx, nb), y(exec, dy, nb), v(exec, dy, nb), out(exec, dy, nb), jv(exec, dx, nb);
  const std::uint64_t per_pass = 2ull * (23 + 1) * size * 4 * nb;
  std::uint64_t before = fused_flop_count();
  p.grad_y_g(batch, x.cview(), y.cview(), out.view());
  EXPECT_EQ(fused_flop_count() - before, 2 * per_pass);
  before = fused_flop_count();
  p.hvp_jvp(batch, x.cview(), y.cview(), v.cview(), out.view(), jv.view());
  EXPECT_EQ(fused_flop_count() - before, 3 * per_pass);
}

/// A SOBA iteration on hyper-cleaning is four kernels: the coefficients of both batches, their
/// back-products (the minibatch indices drawn inside both), the single-point update of y, v
/// and h, and the x step that advances the counter. (Six before the indices were drawn in the
/// fused kernels: two draw launches.)
TEST(LaunchCount, SobaIterationOnHypercleaningLaunchesFourKernels) {
  const HypercleanData data = linear_model_data(300, 20, 5);
  HypercleanProblem<float> p(cpu(), data, 1e-3);
  EXPECT_EQ(soba_launches(p, false, 1), 4u);
  EXPECT_EQ(soba_launches(p, true, 3), 4u);  // independent batches: still drawn in the kernels
  // (49: f does not depend on x, so no fx is filled with zeros and read back; 50 before)
  EXPECT_EQ(preset_launches(p, "stocbio"), 49u);
  EXPECT_EQ(preset_launches(p, "bo-rep"), 14u);
}

}  // namespace
}  // namespace bilevel::test
