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

MatrixView<double> a_view(const std::shared_ptr<Executor>& exec, index_t rows, index_t cols) {
  static std::vector<Array<double>> keep;
  keep.emplace_back(exec, rows, cols);
  return keep.back().view();
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

// Hyper-cleaning split over the ranks: x_i lives with sample i. Small data (train 47,
// validation 19, test 13: shards of unequal sizes), B = 2.
HypercleanData small_hyperclean() {
  const Dataset pool = make_synthetic(47 + 19 + 13, 9, 4, 5, 2.0);
  return prepare_hyperclean(pool, std::nullopt, SplitSizes{47, 19, 13}, 0.4, 6);
}

/// This rank's rows [first, first + rows) of every column of a whole (ld x cols) matrix.
std::vector<double> rows_of(const std::vector<double>& whole, index_t ld, index_t first,
                            index_t rows) {
  std::vector<double> out;
  for (std::size_t c = 0; c < whole.size() / static_cast<std::size_t>(ld); ++c)
    out.insert(out.end(), whole.begin() + static_cast<std::ptrdiff_t>(c * ld + first),
               whole.begin() + static_cast<std::ptrdiff_t>(c * ld + first + rows));
  return out;
}

// Every oracle of the sharded problem (minibatch with repeats, independent batches, full
// passes) equals the one-process oracle: the sums over y on every rank, J v on its rows.
TEST(ShardedHyperclean, OraclesEqualTheWholeProblem) {
  const HypercleanData data = small_hyperclean();
  auto exec = test::cpu();
  HypercleanProblem<double> sharded(exec, data, 1e-3, world()), whole(exec, data, 1e-3);
  const index_t n = whole.dim_x(), local = sharded.dim_x(), first = sharded.first_train_sample();
  ASSERT_EQ(sharded.lower_samples(), n);
  ASSERT_EQ(local, Communicator::shard_of(n, world()->rank(), world()->size()).size());
  const index_t nb = 2, dy = whole.dim_y();
  sharded.reserve(nb, 64);
  whole.reserve(nb, 64);
  const std::vector<double> x_whole = test::random_vector<double>(n * nb, 1, -2, 2);
  Array<double> xw(exec, n, nb, x_whole), xs(exec, local, nb, rows_of(x_whole, n, first, local)),
      y(exec, dy, nb, test::random_vector<double>(dy * nb, 2, -0.3, 0.3)),
      v(exec, dy, nb, test::random_vector<double>(dy * nb, 3));
  MinibatchSampler<double> shared(exec, 9, n, 12), independent(exec, 9, n, 10, nb),
      upper(exec, 9, 19, 7);
  const Batch full_upper{nullptr, 19};
  for (const Batch& batch : {Batch{nullptr, n}, shared.draw(SampleStream::lower_step, 0, 4),
                             independent.draw(SampleStream::lower_step, 1, 4)}) {
    SCOPED_TRACE(batch.full() ? "full" : batch.independent() ? "independent" : "minibatch");
    Array<double> a1(exec, dy, nb), a2(exec, dy, nb), h1(exec, dy, nb), h2(exec, dy, nb),
        j1(exec, local, nb), j2(exec, n, nb);
    sharded.lower_oracles(batch, xs.view(), y.view(), v.view(), a1.view(), h1.view(), j1.view());
    whole.lower_oracles(batch, xw.view(), y.view(), v.view(), a2.view(), h2.view(), j2.view());
    EXPECT_LT(test::relative_error(a1.to_host(), a2.to_host()), 1e-12);
    EXPECT_LT(test::relative_error(h1.to_host(), h2.to_host()), 1e-12);
    EXPECT_LT(test::relative_error(j1.to_host(), rows_of(j2.to_host(), n, first, local)), 1e-12);
    sharded.grad_y_g(batch, xs.view(), y.view(), a1.view());
    whole.grad_y_g(batch, xw.view(), y.view(), a2.view());
    EXPECT_LT(test::relative_error(a1.to_host(), a2.to_host()), 1e-12);
    // grad_x g (F2SA, LV-HBA): this rank's rows, no communication
    sharded.grad_x_g(batch, xs.view(), y.view(), j1.view());
    whole.grad_x_g(batch, xw.view(), y.view(), j2.view());
    EXPECT_LT(test::relative_error(j1.to_host(), rows_of(j2.to_host(), n, first, local)), 1e-12);
    if (batch.independent()) continue;
    // the upper level and a single-point step on its validation minibatch
    const Batch ub = batch.full() ? full_upper : upper.draw(SampleStream::upper, 0, 4);
    Array<double> f1(exec, dy, nb), f2(exec, dy, nb);
    sharded.grad_f(ub, xs.view(), y.view(), MatrixView<double>(), f1.view());
    whole.grad_f(ub, xw.view(), y.view(), MatrixView<double>(), f2.view());
    EXPECT_LT(test::relative_error(f1.to_host(), f2.to_host()), 1e-12);
    sharded.hvp_jvp_f(ub, xs.view(), y.view(), v.view(), h1.view(), MatrixView<double>());
    whole.hvp_jvp_f(ub, xw.view(), y.view(), v.view(), h2.view(), MatrixView<double>());
    EXPECT_LT(test::relative_error(h1.to_host(), h2.to_host()), 1e-12);
    sharded.single_point_oracles(batch, ub, xs.view(), y.view(), v.view(), a1.view(), h1.view(),
                                 j1.view(), MatrixView<double>(), f1.view());
    whole.single_point_oracles(batch, ub, xw.view(), y.view(), v.view(), a2.view(), h2.view(),
                               j2.view(), MatrixView<double>(), f2.view());
    EXPECT_LT(test::relative_error(a1.to_host(), a2.to_host()), 1e-12);
    EXPECT_LT(test::relative_error(h1.to_host(), h2.to_host()), 1e-12);
    EXPECT_LT(test::relative_error(f1.to_host(), f2.to_host()), 1e-12);
    EXPECT_LT(test::relative_error(j1.to_host(), rows_of(j2.to_host(), n, first, local)), 1e-12);
  }
  // full-pass values, and the evaluation metrics with a detection truth
  Array<double> v1(exec, nb, 2), v2(exec, nb, 2);
  sharded.values(Batch{nullptr, n}, full_upper, xs.view(), y.view(), v1.data(), v1.data() + nb);
  whole.values(Batch{nullptr, n}, full_upper, xw.view(), y.view(), v2.data(), v2.data() + nb);
  EXPECT_LT(test::relative_error(v1.to_host(), v2.to_host()), 1e-12);
  std::vector<std::uint8_t> truth(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) truth[static_cast<std::size_t>(i)] = i % 3 == 0;
  sharded.set_detection_truth(truth);
  whole.set_detection_truth(truth);
  Array<double> m1(exec, nb, 3), m2(exec, nb, 3);
  sharded.evaluation_metrics(xs.view(), y.view(), m1.data());
  whole.evaluation_metrics(xw.view(), y.view(), m2.data());
  EXPECT_LT(test::relative_error(m1.to_host(), m2.to_host()), 1e-12);
  // what a sharded run does not do is refused by name
  sharded.set_oracle_path(OraclePath::composed);
  if (world()->size() > 1) {
    EXPECT_THROW(sharded.grad_y_g(Batch{nullptr, n}, xs.view(), y.view(), a_view(exec, dy, nb)),
                 InvalidArgument);
  }
}

// Generated data: each rank generates only its shard, the same numbers as those samples of the
// one-process data (plain generator: the same bits; mixed: up to the rounding of its GEMM, across
// mixing-chunk boundaries; bf16 in host memory through the chunked path), and the same
// detection truth.
TEST(ShardedHyperclean, GeneratedShardsEqualTheWholeData) {
  auto exec = test::cpu();
  for (const bool mixed : {false, true})
    for (const bool bf16_host : {false, true}) {
      SCOPED_TRACE(std::string(mixed ? "mixed" : "plain") + (bf16_host ? ", bf16 in host memory" : ""));
      SyntheticHypercleanSpec spec;
      spec.train = 20000, spec.validation = 301, spec.test = 97;
      spec.features = 4, spec.classes = 3, spec.seed = 11;
      if (mixed) spec.feature_scale_spread = 2.0, spec.correlation = 0.5;
      const DataPrecision precision = bf16_host ? DataPrecision::bf16 : DataPrecision::same;
      const DataResidence residence = bf16_host ? DataResidence::host : DataResidence::device;
      HypercleanTruth t1, t2;
      HypercleanProblem<double> sharded(exec, spec, 1e-3, &t1, world(), precision, residence),
          whole(exec, spec, 1e-3, &t2, precision, residence);
      EXPECT_EQ(t1.corrupted, t2.corrupted);
      EXPECT_EQ(t1.clean_train_labels, t2.clean_train_labels);
      ASSERT_EQ(sharded.lower_samples(), 20000);
      for (const DataSplit split : {DataSplit::train, DataSplit::validation, DataSplit::test}) {
        const std::vector<double> a = sharded.features_of(split), b = whole.features_of(split);
        const index_t rows = 5, n = static_cast<index_t>(b.size()) / rows;
        const Shard s = world()->shard(n);
        ASSERT_EQ(static_cast<index_t>(a.size()), s.size() * rows);
        const std::vector<double> mine(b.begin() + s.begin * rows, b.begin() + s.end * rows);
        // the plain generator gives the same bits; the mixed one the same up to the rounding
        // of its GEMM over chunks of other widths
        if (mixed && !bf16_host)
          EXPECT_LT(test::relative_error(a, mine), 1e-14);
        else
          EXPECT_EQ(a, mine);
      }
      // the labels (through accuracy at a random W: summed over the ranks)
      Array<double> y(exec, sharded.dim_y(), 1, test::random_vector<double>(sharded.dim_y(), 4));
      sharded.reserve(1, 16);
      whole.reserve(1, 16);
      EXPECT_NEAR(sharded.accuracy(DataSplit::train, y.cview())[0],
                  whole.accuracy(DataSplit::train, y.cview())[0], 1e-12);
    }
}

class ShardedHypercleanRun : public ::testing::TestWithParam<const char*> {};

// A whole run of each preset on sharded hyper-cleaning: y and the metrics equal the
// one-process run's, x on this rank equals its rows of the one-process x.
TEST_P(ShardedHypercleanRun, IteratesEqualTheOneProcessRun) {
  const HypercleanData data = small_hyperclean();
  auto exec = test::cpu();
  AlgorithmOptions o = default_options(GetParam());
  o.loop.iterations = 24;
  o.loop.inner_steps = std::min<index_t>(o.loop.inner_steps, 4);
  o.loop.lower_batch = 10;
  o.loop.upper_batch = 6;
  o.loop.eval_every = 8;
  o.loop.divergence_check_every = 4;
  o.loop.seed = 4;
  const index_t nb = 2;
  HypercleanProblem<double> sharded(exec, data, 1e-3, world()), whole(exec, data, 1e-3);
  const index_t n = whole.dim_x(), local = sharded.dim_x();
  std::vector<std::uint8_t> truth(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) truth[static_cast<std::size_t>(i)] = i % 2 == 0;
  sharded.set_detection_truth(truth);
  whole.set_detection_truth(truth);
  const std::vector<double> y0(static_cast<std::size_t>(whole.dim_y() * nb), 0.0);
  const SolveResult<double> a =
      make_solver(sharded, o)->run(std::vector<double>(static_cast<std::size_t>(local * nb), 0.5), y0);
  const SolveResult<double> b =
      make_solver(whole, o)->run(std::vector<double>(static_cast<std::size_t>(n * nb), 0.5), y0);
  EXPECT_LT(test::relative_error(a.y, b.y), 1e-10) << GetParam();
  EXPECT_LT(test::relative_error(a.x, rows_of(b.x, n, sharded.first_train_sample(), local)), 1e-10)
      << GetParam();
  ASSERT_EQ(a.history.size(), b.history.size());
  for (std::size_t k = 0; k < a.history.size(); ++k) {
    EXPECT_LT(test::relative_error(a.history[k].upper_value, b.history[k].upper_value), 1e-10);
    EXPECT_LT(test::relative_error(a.history[k].hypergradient_norm, b.history[k].hypergradient_norm), 1e-10);
    ASSERT_EQ(a.history[k].problem_metrics.size(), 3u);
    for (std::size_t e = 0; e < 3; ++e)
      EXPECT_EQ(a.history[k].problem_metrics[e], b.history[k].problem_metrics[e]);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ShardedHypercleanRun,
                         ::testing::Values("stocbio", "aid-cg", "aid-fp", "soba", "ma-soba",
                                           "ttsa", "bo-rep", "itd-bio", "fom", "sl-bamm", "bda",
                                           "f2sa"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace bilevel
