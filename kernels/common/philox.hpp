// Philox4x32-10 counter-based RNG (Salmon et al., SC'11, "Parallel random numbers: as easy as
// 1, 2, 3"), written once for both backends so that minibatch indices are bit-identical on the
// CPU and on CUDA. Checked against the Random123 known-answer vectors in tests/test_philox.cpp.
#pragma once

#include "host_device.hpp"

#include <cmath>
#include <cstdint>

namespace bilevel::kernels::common {

struct Philox4x32 {
  std::uint32_t v[4];
};

BILEVEL_HOST_DEVICE void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                   std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

/// Philox4x32 with 10 rounds: 4 random 32-bit words from a 128-bit counter and a 64-bit key.
BILEVEL_HOST_DEVICE Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t key0,
                                             std::uint32_t key1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kM0, ctr.v[0], hi0, lo0);
    mulhilo32(kM1, ctr.v[2], hi1, lo1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kW0;
    key1 += kW1;
  }
  return ctr;
}

/// Minibatch index i of (seed, stream, step, instance), uniform in [0, population): one Philox
/// block gives four consecutive indices. The multiply-shift map has a bias below
/// population / 2^32, far under sampling noise for any data set that fits in memory.
BILEVEL_HOST_DEVICE std::int32_t sample_index(std::uint64_t seed, std::uint32_t stream,
                                              std::uint32_t step, std::uint32_t instance,
                                              std::int64_t i, std::int64_t population) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(i >> 2), instance, stream, step}};
  const Philox4x32 r = philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                                     static_cast<std::uint32_t>(seed >> 32));
  const std::uint32_t word = r.v[i & 3];
  return static_cast<std::int32_t>(
      (static_cast<std::uint64_t>(word) * static_cast<std::uint64_t>(population)) >> 32);
}

/// murmur3's 32-bit finalizer: an avalanche mix of one word (the Feistel rounds below).
BILEVEL_HOST_DEVICE std::uint32_t mix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

/// Minibatch index i of (seed, stream, step, instance) when the data are walked in epochs
/// without replacement (random reshuffling): batch `step` of `count` samples holds positions
/// q = step count + i of the walk, epoch e = q / population, and its sample is the image of
/// q mod population under a bijection of [0, population) keyed by (seed, stream, instance, e).
/// Every sample once per epoch, a new order each epoch, computed where it is used (no stored
/// permutation, the same bits on every backend). The bijection: a 4-round balanced Feistel
/// network on the smallest power of 4 >= population (round keys: one Philox block; round
/// function: mix32 of the right half and the key), cycle-walked back into [0, population)
/// (under 4 walks on average: the domain is less than 4 x the population).
BILEVEL_HOST_DEVICE std::int32_t reshuffled_index(std::uint64_t seed, std::uint32_t stream,
                                                  std::uint32_t step, std::uint32_t instance,
                                                  std::int64_t i, std::int64_t count,
                                                  std::int64_t population) {
  const std::int64_t q = static_cast<std::int64_t>(step) * count + i;
  const std::int64_t epoch = q / population;
  std::uint32_t v = static_cast<std::uint32_t>(q - epoch * population);
  // (counter and key apart from sample_index's: the key's second word is inverted)
  const Philox4x32 keys = philox4x32_10(
      Philox4x32{{static_cast<std::uint32_t>(epoch), instance, stream,
                  static_cast<std::uint32_t>(epoch >> 32)}},
      static_cast<std::uint32_t>(seed), ~static_cast<std::uint32_t>(seed >> 32));
  int half = 1;  // bits per half: 4^half >= population
  while ((std::int64_t(1) << (2 * half)) < population) ++half;
  const std::uint32_t mask = (1u << half) - 1u;
  do {
    std::uint32_t left = v >> half, right = v & mask;
    for (int round = 0; round < 4; ++round) {
      const std::uint32_t next = left ^ (mix32(right ^ keys.v[round]) & mask);
      left = right;
      right = next;
    }
    v = (left << half) | right;
  } while (static_cast<std::int64_t>(v) >= population);
  return static_cast<std::int32_t>(v);
}

/// Index i of minibatch `step` (of `count` samples) drawn uniformly with replacement
/// (sample_index), or by the epoch walk when `epochs` (reshuffled_index).
BILEVEL_HOST_DEVICE std::int32_t draw_index(std::uint64_t seed, std::uint32_t stream,
                                            std::uint32_t step, std::uint32_t instance,
                                            std::int64_t i, std::int64_t count,
                                            std::int64_t population, bool epochs) {
  return epochs ? reshuffled_index(seed, stream, step, instance, i, count, population)
                : sample_index(seed, stream, step, instance, i, population);
}

/// Uniform number k in (0, 1) of (seed, stream, step, instance): word k % 4 of the Philox
/// block (k / 4, instance, stream, step), centred in its 2^-32 bin (task draws of meta-learning).
BILEVEL_HOST_DEVICE double uniform_open01(std::uint64_t seed, std::uint32_t stream,
                                          std::uint32_t step, std::uint32_t instance,
                                          std::int64_t k) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(k >> 2), instance, stream, step}};
  const Philox4x32 r = philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                                     static_cast<std::uint32_t>(seed >> 32));
  return (static_cast<double>(r.v[k & 3]) + 0.5) * (1.0 / 4294967296.0);
}

/// Standard normal number k of stream (seed, stream) by Box-Muller on one Philox block: the
/// same formula on both backends (the last bits may differ with the platform's log and cos).
BILEVEL_HOST_DEVICE double standard_normal(std::uint64_t seed, std::uint32_t stream,
                                           std::int64_t k) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(k >> 1), static_cast<std::uint32_t>(k >> 33),
                        stream, 0x6e6f726du}};
  const Philox4x32 r = philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                                     static_cast<std::uint32_t>(seed >> 32));
  // two 53-bit uniforms in (0, 1]
  const double u1 = ((static_cast<std::uint64_t>(r.v[0]) << 21 ^ r.v[1]) & ((1ull << 53) - 1)) *
                        (1.0 / 9007199254740992.0) + (1.0 / 18014398509481984.0);
  const double u2 = ((static_cast<std::uint64_t>(r.v[2]) << 21 ^ r.v[3]) & ((1ull << 53) - 1)) *
                    (1.0 / 9007199254740992.0);
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  return (k & 1) ? radius * sin(angle) : radius * cos(angle);
}

}  // namespace bilevel::kernels::common
