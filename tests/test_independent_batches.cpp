// Independent batches: one minibatch index set per instance, so that B instances are B
// independent runs. Each instance's oracles must equal a single-instance call on its own index
// set, and a run's instance 0 must follow the shared-batch run (its index set is the same).
#include "test_support.hpp"

namespace bilevel::test {
namespace {

/// Calls every oracle with an independent batch for B = 3 and compares instance b with the
/// single-instance call on index set b.
template <typename P>
void expect_instances_follow_their_own_batches(P& p, index_t samples, std::uint64_t seed) {
  auto exec = p.executor();
  const index_t nb = 3, s = 16, dx = p.dim_x(), dy = p.dim_y();
  p.reserve(nb, s * nb);
  MinibatchSampler<double> sampler(exec, seed, samples, s, nb),
      upper_sampler(exec, seed, p.upper_samples(), s, nb);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 7);
  const Batch ub = upper_sampler.draw(SampleStream::upper, 0, 7);
  ASSERT_TRUE(b.independent() && ub.independent());
  const std::vector<double> xs = random_vector<double>(dx * nb, 1, -1, 1),
                            ys = random_vector<double>(dy * nb, 2, -0.3, 0.3),
                            vs = random_vector<double>(dy * nb, 3);
  Array<double> x(exec, dx, nb, xs), y(exec, dy, nb, ys), v(exec, dy, nb, vs);
  Array<double> gy(exec, dy, nb), hv(exec, dy, nb), jv(exec, dx, nb), fx(exec, dx, nb),
      fy(exec, dy, nb), gx(exec, dx, nb), vals(exec, nb, 2);
  p.grad_y_g(b, x.view(), y.view(), gy.view());
  p.hvp_jvp(b, x.view(), y.view(), v.view(), hv.view(), jv.view());
  p.grad_f(ub, x.view(), y.view(), fx.view(), fy.view());
  const bool has_gx = std::is_same_v<P, HypercleanProblem<double>>;
  if (has_gx) p.grad_x_g(b, x.view(), y.view(), gx.view());
  p.values(b, ub, x.view(), y.view(), vals.data(), vals.data() + nb);
  const std::vector<double> all_vals = vals.to_host();
  for (index_t i = 0; i < nb; ++i) {
    SCOPED_TRACE("instance " + std::to_string(i));
    const Batch own{b.indices + i * b.stride, s, b.population};
    const Batch own_upper{ub.indices + i * ub.stride, s, ub.population};
    Array<double> x1(exec, dx, 1, column(xs, dx, i)), y1(exec, dy, 1, column(ys, dy, i)),
        v1(exec, dy, 1, column(vs, dy, i));
    Array<double> gy1(exec, dy, 1), hv1(exec, dy, 1), jv1(exec, dx, 1), fx1(exec, dx, 1),
        fy1(exec, dy, 1), gx1(exec, dx, 1), vals1(exec, 1, 2);
    p.grad_y_g(own, x1.view(), y1.view(), gy1.view());
    p.hvp_jvp(own, x1.view(), y1.view(), v1.view(), hv1.view(), jv1.view());
    p.grad_f(own_upper, x1.view(), y1.view(), fx1.view(), fy1.view());
    if (has_gx) p.grad_x_g(own, x1.view(), y1.view(), gx1.view());
    p.values(own, own_upper, x1.view(), y1.view(), vals1.data(), vals1.data() + 1);
    EXPECT_LT(relative_error(column(gy.to_host(), dy, i), gy1.to_host()), 1e-13);
    EXPECT_LT(relative_error(column(hv.to_host(), dy, i), hv1.to_host()), 1e-13);
    EXPECT_LT(relative_error(column(jv.to_host(), dx, i), jv1.to_host()), 1e-13);
    EXPECT_LT(relative_error(column(fy.to_host(), dy, i), fy1.to_host()), 1e-13);
    if (has_gx) {
      EXPECT_LT(relative_error(column(gx.to_host(), dx, i), gx1.to_host()), 1e-13);
    }
    const std::vector<double> one = vals1.to_host();
    EXPECT_NEAR(all_vals[i], one[0], 1e-12 * (1 + std::abs(one[0])));
    EXPECT_NEAR(all_vals[nb + i], one[1], 1e-12 * (1 + std::abs(one[1])));
  }
  // the sets differ: instance 1's gradient is not instance 1's gradient on set 0
  const Batch set0{b.indices, s, b.population};
  Array<double> x1(exec, dx, 1, column(xs, dx, 1)), y1(exec, dy, 1, column(ys, dy, 1)),
      other(exec, dy, 1);
  p.grad_y_g(set0, x1.view(), y1.view(), other.view());
  EXPECT_GT(relative_error(column(gy.to_host(), dy, 1), other.to_host()), 1e-3);
}

TEST(IndependentBatches, QuadraticOraclesFollowEachInstancesOwnSet) {
  const QuadraticData q = QuadraticData::random(5, 8, 100, 4);
  QuadraticProblem<double> p(cpu(), q);
  expect_instances_follow_their_own_batches(p, 100, 11);
}

TEST(IndependentBatches, HypercleanOraclesFollowEachInstancesOwnSet) {
  HypercleanProblem<double> p(cpu(), SyntheticHypercleanSpec{300, 100, 50, 9, 4, 0.4, 5, 3.0}, 1e-3,
                              nullptr);
  expect_instances_follow_their_own_batches(p, 300, 12);
}

AlgorithmOptions sgd_run(const std::string& name, bool independent) {
  AlgorithmOptions o = default_options(name);
  o.loop.iterations = 40;
  o.loop.inner_steps = 3;
  o.loop.inner_step = {0.2};
  o.loop.outer_step = {0.1};
  o.loop.lower_batch = o.loop.upper_batch = 16;
  o.loop.seed = 6;
  o.loop.independent_batches = independent;
  o.neumann = NeumannOptions{5, {0.2}};
  o.fixed_point = FixedPointOptions{1, {0.2}, true};
  return o;
}

/// Three instances with the same settings: with shared batches they are one run three times;
/// with independent batches they differ, and instance 0 is the single-instance run.
TEST(IndependentBatches, InstancesWithEqualSettingsBecomeIndependentRuns) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  const std::vector<double> x0(15, 0.0), y0(24, 0.0);
  for (const char* name : {"stocbio", "soba"}) {
    SCOPED_TRACE(name);
    const SolveResult<double> shared = make_solver(p, sgd_run(name, false))->run(x0, y0);
    const SolveResult<double> own = make_solver(p, sgd_run(name, true))->run(x0, y0);
    const SolveResult<double> single =
        make_solver(p, sgd_run(name, false))->run(std::vector<double>(5, 0.0), std::vector<double>(8, 0.0));
    EXPECT_EQ(column(shared.x, 5, 1), column(shared.x, 5, 0));
    EXPECT_GT(relative_error(column(own.x, 5, 1), column(own.x, 5, 0)), 1e-4);
    EXPECT_GT(relative_error(column(own.x, 5, 2), column(own.x, 5, 1)), 1e-4);
    EXPECT_LT(relative_error(column(own.x, 5, 0), single.x), 1e-12);
  }
}

TEST(IndependentBatches, ProblemsWithoutThemSaySo) {
  PerTaskQuadraticProblem<double> p(cpu(), {QuadraticData::random(2, 3, 20, 1), QuadraticData::random(2, 3, 20, 2)});
  AlgorithmOptions o = sgd_run("stocbio", true);
  try {
    make_solver(p, o)->run(std::vector<double>(4, 0.0), std::vector<double>(6, 0.0));
    FAIL() << "per-task problems take no independent batches";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("per-task quadratic does not support independent batches"),
              std::string::npos)
        << e.what();
  }
}

/// Captured iterations with independent batches replay like the others (CUDA: real graphs).
TEST(IndependentBatches, CudaRunMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  HypercleanProblem<double> pc(cpu(), SyntheticHypercleanSpec{300, 100, 50, 9, 4, 0.4, 5, 3.0}, 1e-3, nullptr),
      pg(gpu, SyntheticHypercleanSpec{300, 100, 50, 9, 4, 0.4, 5, 3.0}, 1e-3, nullptr);
  AlgorithmOptions o = sgd_run("soba", true);
  const std::vector<double> x0(900, 0.0), y0(10 * 4 * 3, 0.0);
  EXPECT_LT(relative_error(make_solver(pg, o)->run(x0, y0).x, make_solver(pc, o)->run(x0, y0).x), 1e-10);
}

}  // namespace
}  // namespace bilevel::test
