// The CPU backend's instruction-set paths: names, the override and its cap, the device name.
// (Each path's oracles against the composed ones: test_linear_model.cpp; the whole fused
// suite once per path the machine has: the cpu_isa_* tests of tests/CMakeLists.txt.)
#include "tests/test_support.hpp"

#include <algorithm>

namespace bilevel::test {
namespace {

/// Restores the instruction set in use when a test ends.
struct IsaGuard {
  std::string saved = cpu_isa();
  ~IsaGuard() { set_cpu_isa(saved); }
};

TEST(CpuIsa, PathsAreListedLowestFirstAndTheActiveOneIsAmongThem) {
  const std::vector<std::string> isas = cpu_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), "generic");
  const std::vector<std::string> order = {"generic", "avx2", "avx512"};
  for (std::size_t i = 0; i < isas.size(); ++i) EXPECT_EQ(isas[i], order[i]);
  EXPECT_NE(std::find(isas.begin(), isas.end(), cpu_isa()), isas.end());
}

TEST(CpuIsa, EverySupportedPathCanBeSelectedAndIsNamedInTheDevice) {
  IsaGuard guard;
  for (const std::string& isa : cpu_isas()) {
    EXPECT_EQ(set_cpu_isa(isa), isa);
    EXPECT_EQ(cpu_isa(), isa);
    EXPECT_EQ(cpu_isa_note(), "");
    const std::string device = make_executor(Backend::cpu)->device_name();
    EXPECT_NE(device.find(", " + isa + ")"), std::string::npos) << device;
  }
}

TEST(CpuIsa, APathAboveWhatTheCpuHasIsCappedAndSaysSo) {
  IsaGuard guard;
  const std::string best = cpu_isas().back();
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    const std::vector<std::string> isas = cpu_isas();
    const bool supported = std::find(isas.begin(), isas.end(), isa) != isas.end();
    EXPECT_EQ(set_cpu_isa(isa), supported ? std::string(isa) : best);
    if (supported)
      EXPECT_EQ(cpu_isa_note(), "");
    else
      EXPECT_NE(cpu_isa_note().find(std::string("asked for ") + isa), std::string::npos)
          << cpu_isa_note();
  }
}

TEST(CpuIsa, AnUnknownNameIsRefusedByName) {
  IsaGuard guard;
  try {
    set_cpu_isa("sse9");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'sse9'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("generic, avx2 or avx512"), std::string::npos);
  }
  EXPECT_EQ(cpu_isa(), guard.saved);  // nothing changed
}

}  // namespace
}  // namespace bilevel::test
