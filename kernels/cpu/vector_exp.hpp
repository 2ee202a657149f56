// exp(x) for x <= 0 (or NaN) in plain arithmetic, so that a loop over it vectorizes: the CPU
// passes' softmax takes exp(z - max z) of every logit, and libm's scalar exp was a fifth of a
// hyper-cleaning iteration at B = 64. Range reduction x = n ln2 + r (ln2 split in two, as
// fdlibm), |r| <= ln2 / 2, Taylor polynomial to r^7 (float) / r^13 (double), times 2^n from the
// exponent bits. Within 2 ulp of std::exp where the result is normal (tests/test_vector_exp.cpp);
// below that it returns the smallest normal's neighbourhood instead of a subnormal or 0.
// NaN gives NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace bilevel::kernels::cpu {

template <typename T>
inline T exp_nonpositive(T x) {
  static_assert(std::is_floating_point_v<T>, "exp_nonpositive: float or double");
  constexpr bool single = std::is_same_v<T, float>;
  using Bits = std::conditional_t<single, std::int32_t, std::int64_t>;
  constexpr T lowest = single ? T(-87.0) : T(-707.0);  // 2^n stays normal above
  constexpr T log2e = T(1.44269504088896340736);
  constexpr T ln2_hi = single ? T(0.693359375) : T(6.93147180369123816490e-01);
  constexpr T ln2_lo = single ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
  const bool nan = x != x;
  const T xc = nan ? T(0) : (x < lowest ? lowest : x);
  const T fn = std::floor(xc * log2e + T(0.5));
  const T r = (xc - fn * ln2_hi) - fn * ln2_lo;
  T p;
  if constexpr (single) {
    p = T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
    p = p * r + T(1);
    p = p * r + T(1);
  } else {
    p = T(1.0 / 6227020800.0);
    p = p * r + T(1.0 / 479001600.0);
    p = p * r + T(1.0 / 39916800.0);
    p = p * r + T(1.0 / 3628800.0);
    p = p * r + T(1.0 / 362880.0);
    p = p * r + T(1.0 / 40320.0);
    p = p * r + T(1.0 / 5040.0);
    p = p * r + T(1.0 / 720.0);
    p = p * r + T(1.0 / 120.0);
    p = p * r + T(1.0 / 24.0);
    p = p * r + T(1.0 / 6.0);
    p = p * r + T(0.5);
    p = p * r + T(1);
    p = p * r + T(1);
  }
  // 2^n: n + bias in the exponent field
  const Bits n = static_cast<Bits>(fn);
  const Bits e = (n + (single ? 127 : 1023)) << (single ? 23 : 52);
  T scale;
  std::memcpy(&scale, &e, sizeof scale);
  return nan ? x : p * scale;
}

}  // namespace bilevel::kernels::cpu
