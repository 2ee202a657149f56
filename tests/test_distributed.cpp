// Data-parallel runs, one process per rank (run by mpirun with 1, 2 and 3 ranks; see
// tests/CMakeLists.txt): the communicator, the shards, and a sharded problem whose oracles and
// whole solver runs equal those of one process holding all the data, to rounding of the sums.
#include "test_support.hpp"

#include <algorithm>
#include <numeric>

namespace bilevel {
namespace {

std::shared_ptr<Communicator> world() {
  static const std::shared_ptr<Communicator> comm =
      launched_by_mpi() ? mpi_communicator() : local_communicator();
  return comm;
}

TEST(Communicator, AllReduceSumsOverTheRanksAndShardsCoverTheSamples) {
  const auto comm = world();
  const int p = comm->size();
  std::vector<double> v{static_cast<double>(comm->rank()), 1.0};
  comm->allreduce_sum_host(v.data(), 2);
  EXPECT_EQ(v[0], p * (p - 1) / 2.0);
  EXPECT_EQ(v[1], static_cast<double>(p));
  auto exec = test::cpu();
  Array<float> a(exec, 3, 1, std::vector<float>{1.0f, 2.0f, static_cast<float>(comm->rank())});
  comm->allreduce_sum(*exec, a.data(), 3);
  EXPECT_EQ(a.to_host(), (std::vector<float>{1.0f * p, 2.0f * p, p * (p - 1) / 2.0f}));
  for (index_t n : {0, 1, 7, 100}) {
    index_t covered = 0;
    for (int r = 0; r < p; ++r) {
      const Shard s = Communicator::shard_of(n, r, p);
      EXPECT_EQ(s.begin, covered);
      covered = s.end;
      EXPECT_LE(s.size(), n / p + 1);
    }
    EXPECT_EQ(covered, n);
  }
}

// Every oracle of the sharded quadratic (full batch, minibatch, independent batches) equals the
// one-process oracle on every rank.
TEST(ShardedQuadratic, OraclesEqualTheWholeProblem) {
  const QuadraticData q = QuadraticData::random(5, 7, 23, 3, 0.5);
  auto exec = test::cpu();
  QuadraticProblem<double> sharded(exec, q, world()), whole(exec, q);
  const index_t nb = 3;
  sharded.reserve(nb, 64);
  whole.reserve(nb, 64);
  Array<double> x(exec, 5, nb, test::random_vector<double>(15, 1)),
      y(exec, 7, nb, test::random_vector<double>(21, 2)),
      v(exec, 7, nb, test::random_vector<double>(21, 3));
  MinibatchSampler<double> shared(exec, 9, 23, 8), independent(exec, 9, 23, 8, nb);
  for (const Batch& batch : {Batch{}, shared.draw(SampleStream::lower_step, 0, 4),
                             independent.draw(SampleStream::lower_step, 1, 4)}) {
    for (QuadraticProblem<double>* p : {&sharded, &whole}) (void)p;
    Array<double> a1(exec, 7, nb), a2(exec, 7, nb), j1(exec, 5, nb), j2(exec, 5, nb);
    sharded.grad_y_g(batch, x.view(), y.view(), a1.view());
    whole.grad_y_g(batch, x.view(), y.view(), a2.view());
    EXPECT_LT(test::relative_error(a1.to_host(), a2.to_host()), 1e-13);
    sharded.hvp_jvp(batch, x.view(), y.view(), v.view(), a1.view(), j1.view());
    whole.hvp_jvp(batch, x.view(), y.view(), v.view(), a2.view(), j2.view());
    EXPECT_LT(test::relative_error(a1.to_host(), a2.to_host()), 1e-13);
    EXPECT_EQ(j1.to_host(), j2.to_host());
    Array<double> f1(exec, nb, 1), f2(exec, nb, 1), g1(exec, nb, 1), g2(exec, nb, 1);
    sharded.values(batch, batch, x.view(), y.view(), f1.data(), g1.data());
    whole.values(batch, batch, x.view(), y.view(), f2.data(), g2.data());
    EXPECT_LT(test::relative_error(f1.to_host(), f2.to_host()), 1e-13);
    EXPECT_LT(test::relative_error(g1.to_host(), g2.to_host()), 1e-13);
  }
}

class ShardedRun : public ::testing::TestWithParam<const char*> {};

// A whole solver run of each preset on the sharded quadratic gives the one-process iterates.
TEST_P(ShardedRun, IteratesEqualTheOneProcessRun) {
  const QuadraticData q = QuadraticData::random(6, 9, 40, 5, 0.5);
  auto exec = test::cpu();
  AlgorithmOptions o = default_options(GetParam());
  o.loop.iterations = 30;
  o.loop.inner_steps = std::min<index_t>(o.loop.inner_steps, 5);
  o.loop.lower_batch = o.loop.upper_batch = 8;
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {0.05};
  o.loop.eval_every = 10;
  o.loop.seed = 3;
  const index_t nb = 2;
  const std::vector<double> x0(static_cast<std::size_t>(6 * nb), 0.0),
      y0(static_cast<std::size_t>(9 * nb), 0.0);
  QuadraticProblem<double> sharded(exec, q, world()), whole(exec, q);
  const SolveResult<double> a = make_solver(sharded, o)->run(x0, y0);
  const SolveResult<double> b = make_solver(whole, o)->run(x0, y0);
  EXPECT_LT(test::relative_error(a.x, b.x), 1e-10) << GetParam();
  EXPECT_LT(test::relative_error(a.y, b.y), 1e-10) << GetParam();
  ASSERT_EQ(a.history.size(), b.history.size());
  for (std::size_t k = 0; k < a.history.size(); ++k)
    EXPECT_LT(test::relative_error(a.history[k].upper_value, b.history[k].upper_value), 1e-10);
  // every rank holds the same iterate
  std::vector<double> sum = a.x;
  world()->allreduce_sum_host(sum.data(), static_cast<index_t>(sum.size()));
  for (std::size_t i = 0; i < sum.size(); ++i)
    EXPECT_NEAR(sum[i], world()->size() * a.x[i], 1e-12 * (1 + std::abs(sum[i])));
}

INSTANTIATE_TEST_SUITE_P(Presets, ShardedRun,
                         ::testing::Values("stocbio", "aid-cg", "aid-fp", "amigo", "soba",
                                           "ma-soba", "ttsa", "bo-rep", "itd-bio", "fom",
                                           "sl-bamm", "f2sa", "bda"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace bilevel
