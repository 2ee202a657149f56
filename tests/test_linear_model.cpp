// The fused linear-model oracles (kernels/linear_model_kernels.hpp) through the hyper-cleaning
// problem: against the composed GEMM path (itself checked against finite differences in
// test_hyperclean.cpp) at sizes above a warp and odd, with repeated indices, B in {1, 3, 64},
// independent batches and multi-chunk full passes, float and double; the same bits for any
// thread count and on every call; a full pass equals the sum of minibatches covering the set;
// CUDA against the CPU twin (skips without a device); bf16 data and sharded calls. Draws,
// launches and FLOP counts: test_linear_model_draws.cpp.
#include "linear_model_data.hpp"

#include "kernels/common/bf16.hpp"

#include <omp.h>

#include <cstring>
#include <numeric>

namespace bilevel::test {
namespace {

/// Every oracle of a problem at one point: gy, fy, hv, jv (hvp_jvp), hv_f (hvp_jvp_f), and
/// gy, hv, jv again from lower_oracles.
template <typename T>
struct OracleOutputs {
  std::vector<std::vector<T>> values;
  static constexpr const char* names[] = {"gy", "fy", "hv", "jv", "hv_f", "lower gy", "lower hv",
                                          "lower jv"};
};

/// The batch of a case: indices on the executor (nullptr: full pass).
struct BatchCase {
  std::vector<sample_index_t> indices;  // empty: full batch
  index_t stride = 0;                   // > 0: independent batches of this size
};

template <typename T>
OracleOutputs<T> all_oracles(std::shared_ptr<Executor> exec, const HypercleanData& data,
                             OraclePath path, index_t nb, const BatchCase& bc) {
  HypercleanProblem<T> p(exec, data, 2e-3);
  p.set_oracle_path(path);
  const index_t dx = p.dim_x(), dy = p.dim_y();
  const index_t per_set = bc.stride > 0 ? bc.stride : static_cast<index_t>(bc.indices.size());
  p.reserve(nb, std::max<index_t>(static_cast<index_t>(bc.indices.size()), 1));
  Array<T> x(exec, dx, nb, random_vector<T>(dx * nb, 11, -2, 2)),
      w(exec, dy, nb, random_vector<T>(dy * nb, 12, -0.3, 0.3)),
      v(exec, dy, nb, random_vector<T>(dy * nb, 13)), gy(exec, dy, nb), hv(exec, dy, nb),
      jv(exec, dx, nb), fx(exec, dx, nb), fy(exec, dy, nb);
  Array<sample_index_t> idx;
  Batch lower{nullptr, dx, dx}, upper{nullptr, p.upper_samples(), p.upper_samples()};
  if (!bc.indices.empty()) {
    idx = Array<sample_index_t>(exec, static_cast<index_t>(bc.indices.size()), 1, bc.indices);
    lower = Batch{idx.data(), per_set, dx, bc.stride};
  }
  OracleOutputs<T> out;
  // gy, fy (fy on the full validation set or on the same indices when they fit)
  p.grad_y_g(lower, x.view(), w.view(), gy.view());
  out.values.push_back(gy.to_host());
  const bool upper_fits =
      !bc.indices.empty() && bc.stride == 0 &&
      *std::max_element(bc.indices.begin(), bc.indices.end()) < p.upper_samples();
  if (upper_fits) upper = Batch{idx.data(), per_set, p.upper_samples()};
  p.grad_f(upper, x.view(), w.view(), fx.view(), fy.view());
  out.values.push_back(fy.to_host());
  p.hvp_jvp(lower, x.view(), w.view(), v.view(), hv.view(), jv.view());
  out.values.push_back(hv.to_host());
  out.values.push_back(jv.to_host());
  if (bc.stride == 0) {
    p.hvp_jvp_f(upper, x.view(), w.view(), v.view(), hv.view(), MatrixView<T>());
    out.values.push_back(hv.to_host());
  } else {
    out.values.push_back({});
  }
  exec->ops<T>().fill(gy.view(), T(7));  // lower_oracles must overwrite, not add
  exec->ops<T>().fill(jv.view(), T(7));
  p.lower_oracles(lower, x.view(), w.view(), v.view(), gy.view(), hv.view(), jv.view());
  out.values.push_back(gy.to_host());
  out.values.push_back(hv.to_host());
  out.values.push_back(jv.to_host());
  return out;
}

/// A minibatch of `s` indices below `n` with repeats: sample 5 three times, sample 2 twice.
std::vector<sample_index_t> repeated_batch(index_t s, index_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<index_t> pick(0, n - 1);
  std::vector<sample_index_t> idx(static_cast<std::size_t>(s));
  for (auto& i : idx) i = static_cast<sample_index_t>(pick(rng));
  idx[0] = idx[7] = idx[s - 1] = 5;
  idx[3] = idx[4] = 2;
  return idx;
}

template <typename T>
void expect_close(const OracleOutputs<T>& got, const OracleOutputs<T>& want, double tol) {
  for (std::size_t k = 0; k < want.values.size(); ++k) {
    SCOPED_TRACE(OracleOutputs<T>::names[k]);
    ASSERT_EQ(got.values[k].size(), want.values[k].size());
    if (want.values[k].empty()) continue;
    EXPECT_LT(relative_error(got.values[k], want.values[k]), tol);
    EXPECT_GT(norm(std::vector<double>(want.values[k].begin(), want.values[k].end())), 0.0);
  }
}

template <typename T>
class FusedOracles : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FusedOracles, Precisions);

/// Fused against composed: features 37 and 70 (rows above a warp, odd), C in {3, 10},
/// B in {1, 3, 64}, a minibatch of 45 with repeated indices and the full training set.
TYPED_TEST(FusedOracles, MatchTheComposedPath) {
  using T = TypeParam;
  auto exec = cpu();
  for (const index_t features : {index_t(37), index_t(70)})
    for (const int classes : {3, 10})
      for (const index_t nb : {index_t(1), index_t(3), index_t(64)}) {
        if (nb == 64 && features == 70) continue;  // enough: the shape is the same code
        SCOPED_TRACE("features " + std::to_string(features) + ", C " + std::to_string(classes) +
                     ", B " + std::to_string(nb));
        const HypercleanData data = linear_model_data(120, features, classes);
        for (const bool minibatch : {true, false}) {
          SCOPED_TRACE(minibatch ? "minibatch with repeats" : "full batch");
          BatchCase bc;
          if (minibatch) bc.indices = repeated_batch(45, 120, 5);
          const auto fused = all_oracles<T>(exec, data, OraclePath::fused, nb, bc);
          const auto composed = all_oracles<T>(exec, data, OraclePath::composed, nb, bc);
          expect_close(fused, composed, 3 * parity_tolerance<T>());
        }
      }
}

/// Independent batches: instance b's own 40 indices (with repeats).
TYPED_TEST(FusedOracles, IndependentBatchesMatchTheComposedPath) {
  using T = TypeParam;
  auto exec = cpu();
  const HypercleanData data = linear_model_data(150, 41, 5);
  const index_t nb = 3, s = 40;
  BatchCase bc;
  bc.stride = s;
  for (index_t b = 0; b < nb; ++b) {
    const auto part = repeated_batch(s, 150, 20 + b);
    bc.indices.insert(bc.indices.end(), part.begin(), part.end());
  }
  expect_close(all_oracles<T>(exec, data, OraclePath::fused, nb, bc),
               all_oracles<T>(exec, data, OraclePath::composed, nb, bc), 3 * parity_tolerance<T>());
}

/// A full pass over more samples than one chunk (8192) accumulates the chunks.
TYPED_TEST(FusedOracles, MultiChunkFullPassMatchesTheComposedPath) {
  using T = TypeParam;
  auto exec = cpu();
  const HypercleanData data = linear_model_data(9001, 6, 4);
  expect_close(all_oracles<T>(exec, data, OraclePath::fused, 2, BatchCase{}),
               all_oracles<T>(exec, data, OraclePath::composed, 2, BatchCase{}),
               10 * parity_tolerance<T>());
}

/// Every instruction-set path of the CPU passes this machine can run (cpu_isas(): generic,
/// avx2, avx512) gives the composed path's oracles, in the row form (B = 1) and packed (B = 8).
TEST(FusedOracles, EveryInstructionSetGivesTheComposedOracles) {
  auto exec = cpu();
  const std::string saved = cpu_isa();
  const HypercleanData data = linear_model_data(300, 53, 10);
  BatchCase bc;
  bc.indices = repeated_batch(131, 300, 4);
  for (const std::string& isa : cpu_isas())
    for (const index_t nb : {1, 8}) {
      SCOPED_TRACE(isa + ", B " + std::to_string(nb));
      ASSERT_EQ(set_cpu_isa(isa), isa);
      expect_close(all_oracles<float>(exec, data, OraclePath::fused, nb, bc),
                   all_oracles<float>(exec, data, OraclePath::composed, nb, bc),
                   10 * parity_tolerance<float>());
    }
  set_cpu_isa(saved);
}

/// A full pass whose rows exceed the one-pass range (256 KB: here 3000 rows of 121 values) runs
/// range after range through both passes, and still gives the composed path's oracles.
TYPED_TEST(FusedOracles, FullPassInRangesMatchesTheComposedPath) {
  using T = TypeParam;
  auto exec = cpu();
  const HypercleanData data = linear_model_data(3000, 120, 4);
  for (const index_t nb : {1, 3}) {
    SCOPED_TRACE("B " + std::to_string(nb));
    expect_close(all_oracles<T>(exec, data, OraclePath::fused, nb, BatchCase{}),
                 all_oracles<T>(exec, data, OraclePath::composed, nb, BatchCase{}),
                 10 * parity_tolerance<T>());
  }
}

/// Every logit and every back-product entry sums in one fixed order: 1 to 4 threads, and every
/// call, give the same bits. Three shapes: B = 3 on 131 samples (gy in the row form of pass 1,
/// the rest packed or not by the instruction set's rule), B = 8 on 40 samples, where pass 1
/// splits the instances into as many chunks as the thread count asks for, and B = 1 on 2000
/// samples, which the row form runs in ranges of samples (one pass over the rows).
TEST(FusedOracles, SameBitsForAnyThreadCountAndEveryCall) {
  auto exec = cpu();
  const HypercleanData data = linear_model_data(300, 53, 10);
  const int threads = omp_get_max_threads();
  for (const auto& [nb, samples] :
       {std::pair<index_t, index_t>{3, 131}, {8, 40}, {1, 2000}}) {
    SCOPED_TRACE("B " + std::to_string(nb) + ", " + std::to_string(samples) + " samples");
    BatchCase bc;
    bc.indices = repeated_batch(samples, 300, 9);
    omp_set_num_threads(1);
    const auto one = all_oracles<float>(exec, data, OraclePath::fused, nb, bc);
    for (const int t : {2, 3, 4, 2}) {
      SCOPED_TRACE(std::to_string(t) + " threads");
      omp_set_num_threads(t);
      const auto again = all_oracles<float>(exec, data, OraclePath::fused, nb, bc);
      for (std::size_t k = 0; k < one.values.size(); ++k) {
        SCOPED_TRACE(OracleOutputs<float>::names[k]);
        ASSERT_EQ(one.values[k].size(), again.values[k].size());
        EXPECT_EQ(0, std::memcmp(one.values[k].data(), again.values[k].data(),
                                 one.values[k].size() * sizeof(float)));
      }
    }
  }
  omp_set_num_threads(threads);
}

/// gy, hv, jv of the full training set = the minibatches that partition it, each weighted by
/// its share (gy and hv carry the regularizer once).
TEST(FusedOracles, FullPassIsTheSumOfMinibatchesCoveringTheSet) {
  auto exec = cpu();
  const index_t n = 90, parts = 3, s = n / parts, nb = 2;
  const HypercleanData data = linear_model_data(n, 19, 6);
  const auto full = all_oracles<double>(exec, data, OraclePath::fused, nb, BatchCase{});
  std::vector<double> gy(full.values[0].size(), 0.0), hv(full.values[2].size(), 0.0),
      jv(full.values[3].size(), 0.0);
  // the regularizer's part of gy (2 reg W) and hv (2 reg V): from the full pass minus the data
  for (index_t part = 0; part < parts; ++part) {
    BatchCase bc;
    bc.indices.resize(static_cast<std::size_t>(s));
    std::iota(bc.indices.begin(), bc.indices.end(), static_cast<sample_index_t>(part * s));
    const auto mb = all_oracles<double>(exec, data, OraclePath::fused, nb, bc);
    for (std::size_t i = 0; i < gy.size(); ++i) gy[i] += mb.values[0][i] / parts;
    for (std::size_t i = 0; i < hv.size(); ++i) hv[i] += mb.values[2][i] / parts;
    for (std::size_t i = 0; i < jv.size(); ++i) jv[i] += mb.values[3][i] / parts;
  }
  // each minibatch's gy = 2 reg W + (1/s) A_b R: the mean over parts keeps 2 reg W once
  EXPECT_LT(relative_error(gy, full.values[0]), 1e-12);
  EXPECT_LT(relative_error(hv, full.values[2]), 1e-12);
  EXPECT_LT(relative_error(jv, full.values[3]), 1e-12);
}

/// A SOBA run on the fused path follows the composed one (double, 40 iterations, B = 2).
TEST(FusedOracles, SobaRunFollowsTheComposedPath) {
  auto exec = cpu();
  const HypercleanData data = linear_model_data(400, 30, 5);
  const auto run = [&](OraclePath path) {
    HypercleanProblem<double> p(exec, data, 1e-3);
    p.set_oracle_path(path);
    AlgorithmOptions o = default_options("soba");
    o.loop.iterations = 40;
    o.loop.inner_step = {0.1};
    o.loop.outer_step = {100.0, 300.0};
    o.loop.lower_batch = o.loop.upper_batch = 64;
    o.loop.final_evaluation = false;
    const index_t nb = 2;
    return make_solver(p, o)->run(std::vector<double>(p.dim_x() * nb, 0.0),
                                  std::vector<double>(p.dim_y() * nb, 0.0));
  };
  const auto fused = run(OraclePath::fused), composed = run(OraclePath::composed);
  EXPECT_LT(relative_error(fused.x, composed.x), 1e-10);
  EXPECT_LT(relative_error(fused.y, composed.y), 1e-10);
  EXPECT_GT(norm(composed.x), 0.0);
}

/// The CUDA kernels against the CPU twin: minibatch with repeats, independent batches, a
/// multi-chunk full pass; B = 64 with C = 3 (192 columns: still the fused path); and two CUDA
/// calls give the same bits (no atomics).
template <typename T>
class FusedOraclesParity : public ::testing::Test {};
TYPED_TEST_SUITE(FusedOraclesParity, Precisions);

TYPED_TEST(FusedOraclesParity, CudaMatchesCpu) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  for (const index_t nb : {index_t(1), index_t(3), index_t(64)}) {
    SCOPED_TRACE("B " + std::to_string(nb));
    const int classes = nb == 64 ? 3 : 10;
    const HypercleanData data = linear_model_data(500, 70, classes);
    BatchCase bc;
    bc.indices = repeated_batch(77, 500, 4);
    const auto want = all_oracles<T>(cpu(), data, OraclePath::fused, nb, bc);
    const auto got = all_oracles<T>(gpu, data, OraclePath::fused, nb, bc);
    expect_close(got, want, 3 * parity_tolerance<T>());
    const auto again = all_oracles<T>(gpu, data, OraclePath::fused, nb, bc);
    for (std::size_t k = 0; k < got.values.size(); ++k)
      EXPECT_EQ(0, std::memcmp(got.values[k].data(), again.values[k].data(),
                               got.values[k].size() * sizeof(T)))
          << OracleOutputs<T>::names[k];
  }
  {
    SCOPED_TRACE("independent batches");
    const HypercleanData data = linear_model_data(150, 41, 5);
    BatchCase bc;
    bc.stride = 40;
    for (index_t b = 0; b < 3; ++b) {
      const auto part = repeated_batch(40, 150, 20 + b);
      bc.indices.insert(bc.indices.end(), part.begin(), part.end());
    }
    expect_close(all_oracles<T>(gpu, data, OraclePath::fused, 3, bc),
                 all_oracles<T>(cpu(), data, OraclePath::fused, 3, bc), 3 * parity_tolerance<T>());
  }
  {
    SCOPED_TRACE("multi-chunk full pass");
    const HypercleanData data = linear_model_data(9001, 6, 4);
    expect_close(all_oracles<T>(gpu, data, OraclePath::fused, 2, BatchCase{}),
                 all_oracles<T>(cpu(), data, OraclePath::fused, 2, BatchCase{}),
                 10 * parity_tolerance<T>());
  }
}

/// Forcing the fused path on a shape beyond the CUDA kernels' limit is an error that says so.
TEST(FusedOraclesParity, CudaRefusesAForcedFusedPathBeyondItsShapes) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(100, 10, 10);
  BatchCase bc;
  bc.indices = repeated_batch(20, 100, 1);
  try {
    all_oracles<float>(gpu, data, OraclePath::fused, 64, bc);  // 640 columns
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fused oracle path takes at most"), std::string::npos)
        << e.what();
  }
}


TEST(Bf16, RoundsToNearestEvenAndKeepsSpecialValues) {
  using kernels::common::bf16_to_float;
  using kernels::common::float_to_bf16;
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1)
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to the even one (1 + 2^-6)
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256 + 1.0f / 4096), 0x3f81);  // above halfway: up
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  EXPECT_EQ(bf16_to_float(float_to_bf16(INFINITY)), INFINITY);
  EXPECT_EQ(bf16_to_float(float_to_bf16(3.4e38f)), INFINITY);  // beyond the largest bf16
  // relative error at most 2^-8 (half a unit in the last of 8 significant bits)
  for (const float v : random_vector<float>(1000, 3, -50, 50))
    EXPECT_LE(std::abs(bf16_to_float(float_to_bf16(v)) - v), std::abs(v) / 256) << v;
}

/// The features of every split rounded to bf16 on the host.
HypercleanData rounded_to_bf16(HypercleanData d) {
  for (Dataset* s : {&d.train, &d.validation, &d.test})
    for (float& v : s->x) v = kernels::common::bf16_to_float(kernels::common::float_to_bf16(v));
  return d;
}

/// Oracles, values and accuracy of a problem with bf16 features equal those of a problem whose
/// float features were rounded to bf16 beforehand (the same numbers, only the storage
/// differs), on the fused and the composed path; against the unrounded data they differ by
/// bf16's rounding (relative 2^-8 per feature, a few 1e-3 in the sums).
template <typename T>
class Bf16Data : public ::testing::Test {};
TYPED_TEST_SUITE(Bf16Data, Precisions);

template <typename T>
std::vector<std::vector<T>> bf16_case(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                      DataPrecision precision, OraclePath path, index_t nb) {
  BatchCase bc;
  bc.indices = repeated_batch(45, 120, 5);
  HypercleanProblem<T> p(exec, data, 2e-3, precision);
  p.set_oracle_path(path);
  p.reserve(nb, 45);
  const index_t dx = p.dim_x(), dy = p.dim_y();
  Array<T> x(exec, dx, nb, random_vector<T>(dx * nb, 11, -2, 2)),
      w(exec, dy, nb, random_vector<T>(dy * nb, 12, -0.3, 0.3)),
      v(exec, dy, nb, random_vector<T>(dy * nb, 13)), gy(exec, dy, nb), hv(exec, dy, nb),
      jv(exec, dx, nb), gx(exec, dx, nb), vals(exec, nb, 2);
  Array<sample_index_t> idx(exec, 45, 1, bc.indices);
  const Batch mb{idx.data(), 45, dx}, full{nullptr, dx, dx};
  std::vector<std::vector<T>> out;
  p.lower_oracles(mb, x.view(), w.view(), v.view(), gy.view(), hv.view(), jv.view());
  out.push_back(gy.to_host());
  out.push_back(hv.to_host());
  out.push_back(jv.to_host());
  p.hvp_jvp(full, x.view(), w.view(), v.view(), hv.view(), jv.view());
  out.push_back(hv.to_host());
  p.grad_x_g(mb, x.view(), w.view(), gx.view());
  out.push_back(gx.to_host());
  p.values(full, full, x.view(), w.view(), vals.data(), vals.data() + nb);
  out.push_back(vals.to_host());
  const auto acc = p.accuracy(DataSplit::test, w.view());
  out.push_back(std::vector<T>(acc.begin(), acc.end()));
  return out;
}

TYPED_TEST(Bf16Data, StoredFeaturesGiveTheOraclesOfRoundedFeatures) {
  using T = TypeParam;
  auto exec = cpu();
  const HypercleanData data = linear_model_data(120, 37, 10);
  const HypercleanData rounded = rounded_to_bf16(data);
  const char* names[] = {"gy", "hv", "jv", "hv full", "gx", "values", "accuracy"};
  // B = 3: the CPU passes read the rows as stored (gy) or pack them for the logits only (hv);
  // B = 8: both passes pack, widening bf16 there
  for (const index_t nb : {index_t(3), index_t(8)}) {
    for (const OraclePath path : {OraclePath::automatic, OraclePath::composed}) {
      SCOPED_TRACE((path == OraclePath::composed ? "composed, B " : "fused, B ") +
                   std::to_string(nb));
      const auto got = bf16_case<T>(exec, data, DataPrecision::bf16, path, nb);
      const auto want = bf16_case<T>(exec, rounded, DataPrecision::same, path, nb);
      const auto unrounded = bf16_case<T>(exec, data, DataPrecision::same, path, nb);
      for (std::size_t k = 0; k < want.size(); ++k) {
        SCOPED_TRACE(names[k]);
        EXPECT_LT(relative_error(got[k], want[k]), 3 * parity_tolerance<T>());
        EXPECT_LT(relative_error(got[k], unrounded[k]), 2e-2);
      }
      // the rounding is there: some oracle moves by more than T's own rounding
      EXPECT_GT(relative_error(got[0], unrounded[0]), 10 * parity_tolerance<T>());
    }
  }
  HypercleanProblem<T> p(exec, data, 2e-3, DataPrecision::bf16);
  HypercleanProblem<T> q(exec, data, 2e-3);
  EXPECT_EQ(p.feature_bytes() * sizeof(T), q.feature_bytes() * sizeof(std::uint16_t));
}

/// The CUDA kernels read bf16 features as the CPU twin does (skips without a device).
TYPED_TEST(Bf16Data, CudaMatchesCpu) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(120, 70, 10);
  for (const OraclePath path : {OraclePath::automatic, OraclePath::composed}) {
    const auto want = bf16_case<T>(cpu(), data, DataPrecision::bf16, path, 3);
    const auto got = bf16_case<T>(gpu, data, DataPrecision::bf16, path, 3);
    for (std::size_t k = 0; k < want.size(); ++k)
      EXPECT_LT(relative_error(got[k], want[k]), 3 * parity_tolerance<T>()) << k;
  }
}

/// One rank of a world whose all-reduce does nothing: a problem built with it returns this
/// rank's partial sums, so the shard path of the kernels is checked in one process.
class PartialRank final : public Communicator {
 public:
  PartialRank(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string transport() const override { return "none (partial sums)"; }
  void allreduce_sum(Executor&, float*, index_t) override {}
  void allreduce_sum(Executor&, double*, index_t) override {}
  void allreduce_sum_host(double*, index_t) override {}
  void barrier() override {}

 private:
  int rank_, size_;
};

/// gy, hv (lower_oracles), jv, fy (grad_f on a validation minibatch) of rank `rank` of
/// `ranks` (ranks == 0: the whole problem) at x = rows of a global x, on a minibatch with
/// repeats (or independent batches).
template <typename T>
std::vector<std::vector<T>> shard_oracles(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                          int rank, int ranks, index_t nb, const BatchCase& bc) {
  const auto comm = ranks > 0 ? std::make_shared<PartialRank>(rank, ranks) : local_communicator();
  HypercleanProblem<T> p(exec, data, 2e-3, comm);
  const index_t n = p.lower_samples(), local = p.dim_x(), dy = p.dim_y();
  const std::vector<T> global_x = random_vector<T>(n * nb, 11, -2, 2);
  std::vector<T> x_host;
  for (index_t b = 0; b < nb; ++b)
    x_host.insert(x_host.end(), global_x.begin() + b * n + p.first_train_sample(),
                  global_x.begin() + b * n + p.first_train_sample() + local);
  p.reserve(nb, static_cast<index_t>(bc.indices.size()));
  Array<T> x(exec, local, nb, x_host), w(exec, dy, nb, random_vector<T>(dy * nb, 12, -0.3, 0.3)),
      v(exec, dy, nb, random_vector<T>(dy * nb, 13)), gy(exec, dy, nb), hv(exec, dy, nb),
      jv(exec, local, nb), fy(exec, dy, nb);
  const index_t per_set = bc.stride > 0 ? bc.stride : static_cast<index_t>(bc.indices.size());
  Array<sample_index_t> idx(exec, static_cast<index_t>(bc.indices.size()), 1, bc.indices);
  p.lower_oracles(Batch{idx.data(), per_set, n, bc.stride}, x.view(), w.view(), v.view(),
                  gy.view(), hv.view(), jv.view());
  std::vector<std::vector<T>> out{gy.to_host(), hv.to_host(), jv.to_host()};
  if (bc.stride == 0) {
    std::vector<sample_index_t> upper(bc.indices.begin(), bc.indices.begin() + 30);
    for (auto& i : upper) i %= p.upper_samples();
    Array<sample_index_t> uidx(exec, 30, 1, upper);
    p.grad_f(Batch{uidx.data(), 30, p.upper_samples()}, x.view(), w.view(), MatrixView<T>(),
             fy.view());
    out.push_back(fy.to_host());
  }
  return out;
}

/// The partial sums of 3 ranks (sharded kernels: other ranks' samples skipped) add up to the
/// whole problem's gy, hv, fy, and their J v rows make its J v; shared and independent batches.
TYPED_TEST(FusedOracles, ShardsAddUpToTheWholeBatch) {
  using T = TypeParam;
  auto exec = cpu();
  const HypercleanData data = linear_model_data(150, 41, 5);
  BatchCase shared, independent;
  shared.indices = repeated_batch(45, 150, 5);
  independent.stride = 40;
  for (index_t b = 0; b < 3; ++b) {
    const auto part = repeated_batch(40, 150, 20 + b);
    independent.indices.insert(independent.indices.end(), part.begin(), part.end());
  }
  for (const BatchCase* bc : {&shared, &independent}) {
    SCOPED_TRACE(bc->stride > 0 ? "independent batches" : "shared batch");
    const auto whole = shard_oracles<T>(exec, data, 0, 0, 3, *bc);
    std::vector<std::vector<double>> sum(whole.size());
    for (std::size_t k = 0; k < whole.size(); ++k)
      if (k != 2) sum[k].assign(whole[k].size(), 0.0);
    std::vector<std::vector<T>> jv_parts;
    for (int r = 0; r < 3; ++r) {
      const auto part = shard_oracles<T>(exec, data, r, 3, 3, *bc);
      for (std::size_t k = 0; k < part.size(); ++k)
        if (k != 2)
          for (std::size_t e = 0; e < part[k].size(); ++e) sum[k][e] += double(part[k][e]);
      jv_parts.push_back(part[2]);
    }
    for (std::size_t k = 0; k < whole.size(); ++k) {
      if (k == 2) continue;
      SCOPED_TRACE(k);
      EXPECT_LT(relative_error(sum[k], std::vector<double>(whole[k].begin(), whole[k].end())),
                3 * parity_tolerance<T>());
    }
    // J v: rank r's rows are rows [first_r, first_r + n_r) of every column of the whole
    std::vector<T> jv;
    for (index_t b = 0; b < 3; ++b)
      for (int r = 0; r < 3; ++r) {
        const index_t rows = static_cast<index_t>(jv_parts[r].size()) / 3;
        jv.insert(jv.end(), jv_parts[r].begin() + b * rows, jv_parts[r].begin() + (b + 1) * rows);
      }
    std::vector<T> jv_whole;
    for (index_t b = 0; b < 3; ++b)
      jv_whole.insert(jv_whole.end(), whole[2].begin() + b * 150, whole[2].begin() + (b + 1) * 150);
    EXPECT_LT(relative_error(jv, jv_whole), 3 * parity_tolerance<T>());
  }
}

/// The shard path on CUDA against the CPU twin, rank by rank.
TYPED_TEST(FusedOraclesParity, ShardedCallsMatchCpu) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = linear_model_data(150, 41, 5);
  BatchCase bc;
  bc.indices = repeated_batch(45, 150, 5);
  for (int r = 0; r < 3; ++r) {
    const auto want = shard_oracles<T>(cpu(), data, r, 3, 3, bc);
    const auto got = shard_oracles<T>(gpu, data, r, 3, 3, bc);
    for (std::size_t k = 0; k < want.size(); ++k)
      EXPECT_LT(relative_error(got[k], want[k]), 3 * parity_tolerance<T>()) << "rank " << r << ", output " << k;
  }
}

}  // namespace
}  // namespace bilevel::test
