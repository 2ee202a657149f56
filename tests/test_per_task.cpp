// Per-task quadratics: B instances with data of their own, every product one strided-batched
// GEMM. Each oracle and each run must equal B separate single-task problems.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

std::vector<QuadraticData> tasks(index_t count, index_t n) {
  std::vector<QuadraticData> out;
  for (index_t t = 0; t < count; ++t) out.push_back(QuadraticData::random(4, 7, n, 100 + t));
  return out;
}

/// Every oracle, minibatch and full batch, against the single-task problem of each column.
TEST(PerTaskQuadratic, OraclesEqualEachTasksOwnProblem) {
  auto exec = cpu();
  const index_t nt = 3, dx = 4, dy = 7, n = 50;
  const std::vector<QuadraticData> ts = tasks(nt, n);
  PerTaskQuadraticProblem<double> p(exec, ts);
  p.reserve(nt, 16);
  MinibatchSampler<double> sampler(exec, 3, n, 16);
  const std::vector<double> xs = random_vector<double>(dx * nt, 1), ys = random_vector<double>(dy * nt, 2),
                            vs = random_vector<double>(dy * nt, 3);
  for (const bool full : {false, true}) {
    SCOPED_TRACE(full ? "full batch" : "minibatch");
    const Batch b = full ? Batch{nullptr, n, n} : sampler.draw(SampleStream::lower_step, 0, 4);
    Array<double> x(exec, dx, nt, xs), y(exec, dy, nt, ys), v(exec, dy, nt, vs);
    Array<double> gy(exec, dy, nt), gx(exec, dx, nt), fx(exec, dx, nt), fy(exec, dy, nt),
        hv(exec, dy, nt), jv(exec, dx, nt), hf(exec, dy, nt), vals(exec, nt, 2);
    p.grad_y_g(b, x.view(), y.view(), gy.view());
    p.grad_x_g(b, x.view(), y.view(), gx.view());
    p.grad_f(b, x.view(), y.view(), fx.view(), fy.view());
    p.hvp_jvp(b, x.view(), y.view(), v.view(), hv.view(), jv.view());
    p.hvp_jvp_f(b, x.view(), y.view(), v.view(), hf.view(), MatrixView<double>());
    p.values(b, b, x.view(), y.view(), vals.data(), vals.data() + nt);
    for (index_t t = 0; t < nt; ++t) {
      SCOPED_TRACE("task " + std::to_string(t));
      QuadraticProblem<double> q(exec, ts[t]);
      q.reserve(1, 16);
      Array<double> x1(exec, dx, 1, column(xs, dx, t)), y1(exec, dy, 1, column(ys, dy, t)),
          v1(exec, dy, 1, column(vs, dy, t));
      Array<double> gy1(exec, dy, 1), gx1(exec, dx, 1), fx1(exec, dx, 1), fy1(exec, dy, 1),
          hv1(exec, dy, 1), jv1(exec, dx, 1), hf1(exec, dy, 1), vals1(exec, 1, 2);
      q.grad_y_g(b, x1.view(), y1.view(), gy1.view());
      q.grad_x_g(b, x1.view(), y1.view(), gx1.view());
      q.grad_f(b, x1.view(), y1.view(), fx1.view(), fy1.view());
      q.hvp_jvp(b, x1.view(), y1.view(), v1.view(), hv1.view(), jv1.view());
      q.hvp_jvp_f(b, x1.view(), y1.view(), v1.view(), hf1.view(), MatrixView<double>());
      q.values(b, b, x1.view(), y1.view(), vals1.data(), vals1.data() + 1);
      EXPECT_LT(relative_error(column(gy.to_host(), dy, t), gy1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(gx.to_host(), dx, t), gx1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(fx.to_host(), dx, t), fx1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(fy.to_host(), dy, t), fy1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(hv.to_host(), dy, t), hv1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(jv.to_host(), dx, t), jv1.to_host()), 1e-13);
      EXPECT_LT(relative_error(column(hf.to_host(), dy, t), hf1.to_host()), 1e-13);
      const std::vector<double> both = vals.to_host(), one = vals1.to_host();
      EXPECT_NEAR(both[t], one[0], 1e-12 * std::abs(one[0]));
      EXPECT_NEAR(both[nt + t], one[1], 1e-12 * std::abs(one[1]) + 1e-14);
    }
  }
}

/// Deterministic (full batches): stocBiO and SOBA reach every task's own x*.
TEST(PerTaskQuadratic, EachInstanceReachesItsTasksSolution) {
  const index_t nt = 4;
  const std::vector<QuadraticData> ts = tasks(nt, 60);
  PerTaskQuadraticProblem<double> p(cpu(), ts);
  for (const char* name : {"stocbio", "soba"}) {
    SCOPED_TRACE(name);
    AlgorithmOptions o = default_options(name);
    double big_l = 0;
    for (const auto& t : ts) big_l = std::max(big_l, t.lower_hessian_spectrum().second);
    o.loop.iterations = 400;
    o.loop.inner_steps = 10;
    o.loop.inner_step = {1.0 / big_l};
    o.loop.outer_step = {0.25};
    o.neumann = NeumannOptions{40, {1.0 / big_l}};
    o.fixed_point = FixedPointOptions{1, {1.0 / big_l}, true};
    const SolveResult<double> r = make_solver(p, o)->run(std::vector<double>(4 * nt, 0.0),
                                                         std::vector<double>(7 * nt, 0.0));
    for (index_t t = 0; t < nt; ++t)
      EXPECT_LT(distance(column(r.x, 4, t), ts[t].solution_x()), 1e-6) << "task " << t;
    // the tasks differ: so do their solutions
    EXPECT_GT(distance(ts[0].solution_x(), ts[1].solution_x()), 0.1);
  }
}

/// Stochastic: the B-task run equals B single-task runs with the same seed (the batches are
/// shared by the tasks and drawn from the same Philox counters).
TEST(PerTaskQuadratic, StochasticRunEqualsSeparateRuns) {
  const index_t nt = 3;
  const std::vector<QuadraticData> ts = tasks(nt, 200);
  AlgorithmOptions o = default_options("stocbio");
  o.loop.iterations = 40;
  o.loop.inner_steps = 3;
  o.loop.inner_step = {0.2};
  o.loop.outer_step = {0.1};
  o.loop.lower_batch = o.loop.upper_batch = 32;
  o.loop.seed = 8;
  o.neumann = NeumannOptions{5, {0.2}};
  PerTaskQuadraticProblem<double> p(cpu(), ts);
  const std::vector<double> x0 = random_vector<double>(4 * nt, 1), y0 = random_vector<double>(7 * nt, 2);
  const SolveResult<double> all = make_solver(p, o)->run(x0, y0);
  for (index_t t = 0; t < nt; ++t) {
    QuadraticProblem<double> q(cpu(), ts[t]);
    const SolveResult<double> one = make_solver(q, o)->run(column(x0, 4, t), column(y0, 7, t));
    EXPECT_LT(relative_error(column(all.x, 4, t), one.x), 1e-12) << "task " << t;
  }
}

TEST(PerTaskQuadratic, RejectsMismatchedTasksAndInstanceCounts) {
  std::vector<QuadraticData> ts = tasks(2, 20);
  ts.push_back(QuadraticData::random(4, 8, 20, 7));
  try {
    PerTaskQuadraticProblem<double> p(cpu(), ts);
    FAIL() << "accepted a task with another dy";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("task 2"), std::string::npos) << e.what();
  }
  PerTaskQuadraticProblem<double> p(cpu(), tasks(2, 20));
  EXPECT_THROW(p.reserve(3, 8), InvalidArgument);
}

/// CUDA (cublas<t>gemmStridedBatched) against the CPU: one stochastic run.
TEST(PerTaskQuadratic, CudaRunMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const std::vector<QuadraticData> ts = tasks(5, 300);
  AlgorithmOptions o = default_options("soba");
  o.loop.iterations = 30;
  o.loop.inner_step = {0.2};
  o.loop.outer_step = {0.1};
  o.loop.lower_batch = o.loop.upper_batch = 64;
  o.fixed_point = FixedPointOptions{1, {0.2}, true};
  const std::vector<double> x0 = random_vector<double>(20, 1), y0 = random_vector<double>(35, 2);
  PerTaskQuadraticProblem<double> pc(cpu(), ts), pg(gpu, ts);
  EXPECT_LT(relative_error(make_solver(pg, o)->run(x0, y0).x, make_solver(pc, o)->run(x0, y0).x),
            1e-10);
}

}  // namespace
}  // namespace bilevel::test
