// benchopt's quadratics (problems/finite_sum_quadratic.hpp): its oracles against finite
// differences, its minibatch means against the host's, the closed forms against each other,
// the file format (and its refusals), and the variance-reduced presets reaching its x*.
#include "test_support.hpp"

#include <bilevel/diagnostics.hpp>
#include <bilevel/problems/finite_sum_quadratic.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>

namespace bilevel::test {
namespace {

FiniteSumQuadraticData data() { return FiniteSumQuadraticData::random(4, 6, 96, 64, 0.1, 7); }

TEST(FiniteSumQuadratic, OraclesMatchFiniteDifferences) {
  const FiniteSumQuadraticData q = data();
  FiniteSumQuadraticProblem<double> p(cpu(), q);
  p.reserve(2, 0);
  Array<double> x(cpu(), 4, 2, random_vector<double>(8, 1));
  Array<double> y(cpu(), 6, 2, random_vector<double>(12, 2));
  const OracleCheckReport r = check_oracles(p, x.cview(), y.cview());
  EXPECT_TRUE(r.passed()) << r.text();
  EXPECT_GE(r.checks.size(), std::size_t(12)) << r.text();  // 6 oracles x 2 instances
}

/// grad F from the closed form is zero at x* and matches the library's hypergradient (CG to
/// the exact solution) at y*(x); y*(x) zeroes grad_y g.
TEST(FiniteSumQuadratic, ClosedFormsAgree) {
  const FiniteSumQuadraticData q = data();
  const std::vector<double> xs = q.solution_x();
  const std::vector<double> at_star = q.hypergradient(xs);
  EXPECT_LT(norm(at_star), 1e-10 * (1 + norm(q.hypergradient(std::vector<double>(4, 0.0)))));
  FiniteSumQuadraticProblem<double> p(cpu(), q);
  p.reserve(1, 0);
  const std::vector<double> x0 = random_vector<double>(4, 3);
  const std::vector<double> ys = q.solution_y(x0);
  Array<double> x(cpu(), 4, 1, x0), y(cpu(), 6, 1, ys), gy(cpu(), 6, 1), h(cpu(), 4, 1);
  p.grad_y_g(Batch{}, x.cview(), y.cview(), gy.view());
  EXPECT_LT(norm(gy.to_host()), 1e-10);
  hypergradient(p, x.cview(), y.cview(), h.view(), HypergradientOptions{"cg", 6, 0});
  EXPECT_LT(relative_error(h.to_host(), q.hypergradient(x0)), 1e-8);
  // benchopt's metric on the executor: ||grad F(x)||^2 at x0, and 0 at x*
  Array<double> metric(cpu(), 1, 1);
  p.evaluation_metrics(x.cview(), y.cview(), metric.data());
  const std::vector<double> g0 = q.hypergradient(x0);
  EXPECT_NEAR(metric.to_host()[0], norm(g0) * norm(g0), 1e-10 * norm(g0) * norm(g0));
  Array<double> at(cpu(), 4, 1, xs);
  p.evaluation_metrics(at.cview(), y.cview(), metric.data());
  EXPECT_LT(metric.to_host()[0], 1e-18);
}

/// A minibatch's oracle is the mean of its samples' (the host's arithmetic), shared or per
/// instance (independent batches).
TEST(FiniteSumQuadratic, MinibatchMeansAreTheSamplesMeans) {
  const FiniteSumQuadraticData q = data();
  FiniteSumQuadraticProblem<double> p(cpu(), q);
  p.reserve(2, 10);
  const std::vector<sample_index_t> idx = {3, 17, 17, 40, 95, 0, 1, 2, 50, 60};
  Array<sample_index_t> indices(cpu(), 10, 1, idx);
  Array<double> x(cpu(), 4, 2, random_vector<double>(8, 4)), y(cpu(), 6, 2, random_vector<double>(12, 5));
  Array<double> v(cpu(), 6, 2, random_vector<double>(12, 6)), hv(cpu(), 6, 2), jv(cpu(), 4, 2);
  // instance b's batch: samples idx[5b .. 5b + 5)
  Batch batch{indices.data(), 5, 96, 5};
  p.hvp_jvp(batch, x.cview(), y.cview(), v.cview(), hv.view(), jv.view());
  const std::vector<double> vh = v.to_host(), hvh = hv.to_host(), jvh = jv.to_host();
  for (index_t b = 0; b < 2; ++b)
    for (index_t r = 0; r < 6; ++r) {
      double expect = 0;
      for (index_t k = 0; k < 5; ++k)
        for (index_t c = 0; c < 6; ++c)
          expect += q.inner.hyy[idx[b * 5 + k] * 36 + r + c * 6] * vh[b * 6 + c] / 5;
      EXPECT_NEAR(hvh[b * 6 + r], expect, 1e-12) << "instance " << b << " row " << r;
    }
  for (index_t b = 0; b < 2; ++b)
    for (index_t r = 0; r < 4; ++r) {
      double expect = 0;
      for (index_t k = 0; k < 5; ++k)
        for (index_t c = 0; c < 6; ++c)
          expect += q.inner.cross[idx[b * 5 + k] * 24 + r + c * 4] * vh[b * 6 + c] / 5;
      EXPECT_NEAR(jvh[b * 4 + r], expect, 1e-12) << "instance " << b << " row " << r;
    }
}

TEST(FiniteSumQuadratic, FileRoundTripsAndBadFilesAreRefusedByName) {
  const FiniteSumQuadraticData q = data();
  const std::string path = ::testing::TempDir() + "/quadratics.bin";
  q.write(path);
  const FiniteSumQuadraticData back = FiniteSumQuadraticData::read(path);
  EXPECT_EQ(back.dx, 4);
  EXPECT_EQ(back.inner.n, 96);
  EXPECT_EQ(back.outer.cross, q.outer.cross);
  EXPECT_EQ(back.solution_x(), q.solution_x());
  const auto expect_refused = [&](const std::string& file, const std::string& words) {
    try {
      FiniteSumQuadraticData::read(file);
      ADD_FAILURE() << "read " << file << " without an error";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  };
  // cut short
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto write = [&](const std::string& name, const std::string& content) {
    const std::string file = ::testing::TempDir() + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  };
  expect_refused(write("short.bin", bytes.substr(0, bytes.size() - 8)), "announces");
  expect_refused(write("magic.bin", "NOTQUAD!" + bytes.substr(8)), "not a quadratics file");
  // a NaN in the first inner Hyy entry
  std::string nan = bytes;
  const double bad = std::nan("");
  std::memcpy(&nan[40], &bad, 8);
  expect_refused(write("nan.bin", nan), "not finite");
  // Hyy of sample 0 made asymmetric: entry (0, 1) (column-major offset 6) changed
  std::string skew = bytes;
  double v;
  std::memcpy(&v, &skew[40 + 6 * 8], 8);
  v += 1.0;
  std::memcpy(&skew[40 + 6 * 8], &v, 8);
  expect_refused(write("skew.bin", skew), "not symmetric");
  // a header whose dimensions multiply past the file (and would overflow 64 bits)
  std::string huge = bytes;
  const std::uint64_t big = std::uint64_t(1) << 20;
  std::memcpy(&huge[24], &big, 8);
  expect_refused(write("huge.bin", huge), "announces");
  expect_refused(::testing::TempDir() + "/missing.bin", "cannot open");
}

/// The variance-reduced presets with constant steps and minibatches reach the closed-form x*
/// of benchopt's quadratic (SOBA with the same steps and batches stays in its noise ball).
TEST(FiniteSumQuadratic, VarianceReducedPresetsReachXStar) {
  const FiniteSumQuadraticData q = data();
  const std::vector<double> xs = q.solution_x();
  const double big_l = q.lower_hessian_spectrum().second;
  const auto run = [&](const std::string& name) {
    FiniteSumQuadraticProblem<double> p(cpu(), q);
    AlgorithmOptions o = default_options(name);
    o.loop.iterations = 6000;
    o.loop.inner_step = {0.5 / big_l};
    o.loop.outer_step = {0.5};
    o.loop.lower_batch = o.loop.upper_batch = 8;
    o.loop.seed = 3;
    o.fixed_point.nu = {0.5 / big_l};
    o.loop.eval_every = 0;
    return distance(make_solver(p, o)->run(std::vector<double>(4, 0.0), std::vector<double>(6, 0.0)).x, xs);
  };
  const double saba = run("saba"), srba = run("srba"), soba = run("soba");
  RecordProperty("saba", std::to_string(saba));
  RecordProperty("srba", std::to_string(srba));
  RecordProperty("soba", std::to_string(soba));
  EXPECT_LT(saba, 1e-8 * norm(xs));
  EXPECT_LT(srba, 1e-8 * norm(xs));
  EXPECT_GT(soba, 1e-4 * norm(xs));
}

/// The same run on the CUDA backend (the emulated device where there is no GPU).
TEST(FiniteSumQuadratic, RunAgreesOnBothBackends) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const FiniteSumQuadraticData q = data();
  const auto run = [&](std::shared_ptr<Executor> exec, bool independent) {
    FiniteSumQuadraticProblem<double> p(exec, q);
    AlgorithmOptions o = default_options("srba");
    o.loop.iterations = 40;
    o.loop.inner_step = {0.2};
    o.loop.outer_step = {0.1, 0.2};
    o.loop.lower_batch = o.loop.upper_batch = 8;
    o.loop.independent_batches = independent;
    o.loop.seed = 9;
    return make_solver(p, o)->run(random_vector<double>(8, 1), random_vector<double>(12, 2)).x;
  };
  for (const bool independent : {false, true})
    EXPECT_LT(relative_error(run(gpu, independent), run(cpu(), independent)), 1e-10);
}

}  // namespace
}  // namespace bilevel::test
