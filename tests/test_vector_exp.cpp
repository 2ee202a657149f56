// The CPU passes' vectorizable exp (kernels/cpu/vector_exp.hpp) against std::exp: within 2 ulp
// (float, against the double result) and 3 ulp (double, against long double) over the whole
// range where the result is normal; NaN stays NaN; below the range a tiny non-negative value.
#include "kernels/cpu/vector_exp.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace bilevel::test {
namespace {

using kernels::cpu::exp_nonpositive;

template <typename T, typename Ref>
double worst_ulps(T lo, int steps) {
  double worst = 0;
  for (int s = 0; s <= steps; ++s) {
    const T x = lo * static_cast<T>(steps - s) / static_cast<T>(steps);  // lo .. 0
    const Ref want = std::exp(static_cast<Ref>(x));
    const T got = exp_nonpositive(x);
    const T rounded = static_cast<T>(want);
    const T ulp = std::nextafter(rounded, std::numeric_limits<T>::infinity()) - rounded;
    worst = std::max(worst, static_cast<double>(std::abs(static_cast<Ref>(got) - want) / ulp));
  }
  return worst;
}

TEST(VectorExp, FloatWithinTwoUlpOverItsRange) {
  EXPECT_LE((worst_ulps<float, double>(-87.0f, 400000)), 2.0);
  EXPECT_LE((worst_ulps<float, double>(-1.0f, 100000)), 2.0);  // fine steps near 0
  EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(exp_nonpositive(-0.0f), 1.0f);
}

TEST(VectorExp, DoubleWithinThreeUlpOverItsRange) {
  EXPECT_LE((worst_ulps<double, long double>(-707.0, 400000)), 3.0);
  EXPECT_LE((worst_ulps<double, long double>(-1.0, 100000)), 3.0);
  EXPECT_EQ(exp_nonpositive(0.0), 1.0);
}

TEST(VectorExp, NanStaysNanAndTheFarLeftIsTiny) {
  EXPECT_TRUE(std::isnan(exp_nonpositive(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(exp_nonpositive(std::numeric_limits<double>::quiet_NaN())));
  for (const float x : {-88.0f, -1000.0f, -std::numeric_limits<float>::infinity()}) {
    const float y = exp_nonpositive(x);
    EXPECT_GE(y, 0.0f) << x;
    EXPECT_LT(y, 1e-37f) << x;
  }
  for (const double x : {-708.0, -1e6, -std::numeric_limits<double>::infinity()}) {
    const double y = exp_nonpositive(x);
    EXPECT_GE(y, 0.0) << x;
    EXPECT_LT(y, 1e-306) << x;
  }
}

}  // namespace
}  // namespace bilevel::test
