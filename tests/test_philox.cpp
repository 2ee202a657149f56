// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors of Random123 1.09),
// and the minibatch index map built on it.
#include "../kernels/common/philox.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

using bilevel::kernels::common::draw_index;
using bilevel::kernels::common::Philox4x32;
using bilevel::kernels::common::philox4x32_10;
using bilevel::kernels::common::reshuffled_index;
using bilevel::kernels::common::sample_index;

TEST(Philox, KnownAnswerZero) {
  const Philox4x32 r = philox4x32_10(Philox4x32{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerOnes) {
  const Philox4x32 r = philox4x32_10(
      Philox4x32{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
}

TEST(Philox, KnownAnswerPi) {
  const Philox4x32 r = philox4x32_10(
      Philox4x32{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(r.v[0], 0xd16cfe09u);
  EXPECT_EQ(r.v[1], 0x94fdccebu);
  EXPECT_EQ(r.v[2], 0x5001e420u);
  EXPECT_EQ(r.v[3], 0x24126ea1u);
}

TEST(Philox, SampleIndicesAreInRangeAndCoverThePopulation) {
  const std::int64_t population = 37;
  std::set<std::int32_t> seen;
  std::vector<int> counts(population, 0);
  const int draws = 37000;
  for (int i = 0; i < draws; ++i) {
    const std::int32_t k = sample_index(42, 1, 7, 0, i, population);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, population);
    ++counts[k];
  }
  // Each count is Binomial(37000, 1/37): mean 1000, sd ~31; 6 sd is a safe band.
  for (int c : counts) {
    EXPECT_GT(c, 1000 - 190);
    EXPECT_LT(c, 1000 + 190);
  }
}

TEST(Philox, DifferentStreamsAndStepsGiveDifferentBatches) {
  int same_stream = 0, same_step = 0;
  for (int i = 0; i < 64; ++i) {
    same_stream += sample_index(1, 1, 0, 0, i, 1 << 20) == sample_index(1, 2, 0, 0, i, 1 << 20);
    same_step += sample_index(1, 1, 0, 0, i, 1 << 20) == sample_index(1, 1, 1, 0, i, 1 << 20);
  }
  EXPECT_LT(same_stream, 3);
  EXPECT_LT(same_step, 3);
  // and the same key and counter give the same index
  EXPECT_EQ(sample_index(9, 3, 4, 0, 5, 1000), sample_index(9, 3, 4, 0, 5, 1000));
}

/// The samples at positions [e n, (e + 1) n) of the epoch walk with batches of `count`.
std::vector<std::int32_t> epoch_of(std::uint64_t seed, std::uint32_t stream, std::uint32_t instance,
                                   std::int64_t e, std::int64_t count, std::int64_t n) {
  std::vector<std::int32_t> out;
  for (std::int64_t q = e * n; q < (e + 1) * n; ++q)
    out.push_back(reshuffled_index(seed, stream, static_cast<std::uint32_t>(q / count), instance,
                                   q % count, count, n));
  return out;
}

/// Every epoch of the walk visits every sample once, whatever the population (powers of 4 and
/// of 2, primes, 1) and whether or not the batch divides it (batches straddle epochs).
TEST(Philox, EpochWalkVisitsEverySampleOncePerEpoch) {
  for (std::int64_t n : {1, 2, 3, 5, 16, 17, 64, 1000, 4097, 20000})
    for (std::int64_t count : {1, 3, 64})
      for (std::int64_t e : {0, 1, 2, 1000}) {
        std::vector<std::int32_t> epoch = epoch_of(7, 2, 0, e, count, n);
        std::sort(epoch.begin(), epoch.end());
        std::vector<std::int32_t> all(static_cast<std::size_t>(n));
        std::iota(all.begin(), all.end(), 0);
        ASSERT_EQ(epoch, all) << "population " << n << ", batch " << count << ", epoch " << e;
      }
}

/// A new order each epoch, and for each stream, instance and seed; no trace of the position in
/// the sample (a shuffle, not a rotation: correlation and fixed points as in a random
/// permutation).
TEST(Philox, EpochWalkReshufflesEachEpochAndStream) {
  const std::int64_t n = 20000, count = 64;
  const std::vector<std::int32_t> base = epoch_of(7, 2, 0, 0, count, n);
  for (const auto& other : {epoch_of(7, 2, 0, 1, count, n), epoch_of(7, 3, 0, 0, count, n),
                            epoch_of(7, 2, 1, 0, count, n), epoch_of(8, 2, 0, 0, count, n)}) {
    int same = 0;
    for (std::int64_t q = 0; q < n; ++q) same += other[q] == base[q];
    EXPECT_LT(same, 10) << "two orders agree at " << same << " of " << n << " positions";
  }
  double mean = (n - 1) / 2.0, sxy = 0, sxx = 0;
  int fixed = 0;
  for (std::int64_t q = 0; q < n; ++q) {
    sxy += (q - mean) * (base[q] - mean);
    sxx += (q - mean) * (q - mean);
    fixed += base[q] == q;
  }
  EXPECT_LT(std::abs(sxy / sxx), 5.0 / std::sqrt(double(n)));  // corr ~ N(0, 1/n)
  EXPECT_LT(fixed, 10);                                         // ~ Poisson(1)
  // the walk continues across batches: batch k holds positions k count .. k count + count - 1
  EXPECT_EQ(reshuffled_index(7, 2, 3, 0, 5, count, n), base[3 * count + 5]);
  // draw_index: the walk with `epochs`, sample_index without
  EXPECT_EQ(draw_index(7, 2, 3, 0, 5, count, n, true), base[3 * count + 5]);
  EXPECT_EQ(draw_index(7, 2, 3, 0, 5, count, n, false), sample_index(7, 2, 3, 0, 5, n));
}
