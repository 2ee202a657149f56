// The choice of a distributed transport and the NCCL communicator: refusals on the CPU backend
// and for unknown names, the availability report, and (CUDA, skips without a device or NCCL)
// an NCCL all-reduce recorded inside a CUDA graph at world size 1.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

TEST(Transports, NcclRefusesTheCpuBackendByName) {
  auto exec = cpu();
  try {
    nccl_communicator(local_communicator(), *exec);
    FAIL() << "NCCL on the CPU backend was accepted";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("NCCL runs between GPUs: the executor is cpu"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_communicator("nccl", *exec), NotSupported);
  EXPECT_THROW(make_communicator("nccl"), InvalidArgument);
  try {
    make_communicator("gloo", *exec);
    FAIL() << "an unknown transport was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown distributed transport 'gloo' (known: auto mpi nccl off)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Transports, AutoIsLocalOutsideMpirunAndOnTheCpu) {
  if (launched_by_mpi()) GTEST_SKIP() << "started by an MPI launcher";
  auto exec = cpu();
  const auto comm = make_communicator("auto", *exec);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->transport(), "local");
  EXPECT_EQ(launched_local_rank(), 0);
  EXPECT_EQ(launched_local_size(), 1);
}

TEST(Transports, NcclAvailabilityComesWithAReason) {
  std::string why;
  const bool available = nccl_available(&why);
  EXPECT_EQ(available, why.empty()) << why;
  if (!available) {
    EXPECT_NE(why.find("NCCL"), std::string::npos) << why;
  }
}

// NCCL at world size 1 inside a captured graph: the all-reduce and a kernel after it are
// recorded, and replaying the graph twice applies both twice (the sum over one rank is the
// value itself).
TEST(TransportsParity, NcclAllReduceInsideACapturedGraph) {
  BILEVEL_REQUIRE_CUDA(gpu);
  std::string why;
  if (!nccl_available(&why)) GTEST_SKIP() << why;
  const auto comm = nccl_communicator(local_communicator(), *gpu);
  EXPECT_TRUE(comm->capturable());
  EXPECT_NE(comm->transport().find("nccl"), std::string::npos);
  const std::vector<float> start{1.0f, -2.0f, 3.5f};
  Array<float> a(gpu, 3, 1, start);
  Ops<float>& ops = gpu->ops<float>();
  auto graph = gpu->capture([&] {
    comm->allreduce_sum(*gpu, a.data(), 3);
    // a <- 2 a
    ops.axpby(0.0f, a.view(), 2.0f, a.view());
  });
  ASSERT_NE(graph, nullptr);
  EXPECT_GE(graph->nodes(), 2);
  graph->replay();
  graph->replay();
  const std::vector<float> got = a.to_host();
  for (std::size_t i = 0; i < start.size(); ++i) EXPECT_EQ(got[i], 4.0f * start[i]);
}

}  // namespace
}  // namespace bilevel::test
