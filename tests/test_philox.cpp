// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors of Random123 1.09),
// and the minibatch index map built on it.
#include "../kernels/common/philox.hpp"

#include <gtest/gtest.h>

#include <set>

using bilevel::kernels::common::Philox4x32;
using bilevel::kernels::common::philox4x32_10;
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
