// The emulated CUDA device itself (BILEVEL_CUDA_EMULATION builds): CUDA's semantics for barriers
// and warp operations in every thread order, its reports of misuse, fresh memory, launch
// errors, capture and replay, cuBLAS. (The project's kernels against their CPU twins are the
// parity tests of the other files; broken kernels are the mutation check's.)
#include "cuda_emulation.hpp"
#include "cuda_emulation_control.hpp"
#include "cublas_v2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

namespace {

using cuda_emulation::Order;

/// kernel<<<grid, block, shared, stream>>>(args...)
#define LAUNCH(grid, block, shared, stream, kernel)                                      \
  ::cuda_emulation::Launcher{{dim3(grid), dim3(block), std::size_t(shared), (stream)},   \
                             #kernel}([](auto&&... a) { kernel(a...); })

/// Runs `body` once per thread order (forward, reverse, three random seeds), restoring the
/// settings after.
template <typename F>
void in_every_order(F body) {
  const cuda_emulation::Settings saved = cuda_emulation::settings();
  for (const auto& [order, seed] : {std::pair<Order, int>{Order::forward, 1}, {Order::reverse, 1},
                                    {Order::random, 1}, {Order::random, 2}, {Order::random, 3}}) {
    cuda_emulation::Settings s = saved;
    s.order = order;
    s.seed = static_cast<std::uint64_t>(seed);
    cuda_emulation::set_settings(s);
    SCOPED_TRACE(cuda_emulation::order_name(s));
    body();
  }
  cuda_emulation::set_settings(saved);
}

template <typename T>
T* device_array(std::size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

// ---- kernels -------------------------------------------------------------------------------------

/// out[t] = in[(t + 1) % n] through shared memory, with a barrier between writing and reading.
__global__ void rotate_with_barrier(const int* in, int* out) {
  __shared__ int tile[256];
  const unsigned t = threadIdx.x;
  tile[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = tile[(t + 1) % blockDim.x];
}

/// The same without the barrier: what a thread reads depends on the order the threads ran in.
__global__ void rotate_without_barrier(const int* in, int* out) {
  __shared__ int tile[256];
  const unsigned t = threadIdx.x;
  tile[t] = in[blockIdx.x * blockDim.x + t];
  out[blockIdx.x * blockDim.x + t] = tile[(t + 1) % blockDim.x];
}

/// Each warp's sum by a butterfly of shuffles, its ballot of odd lanes, and a shifted value.
__global__ void warp_operations(const double* in, double* sums, unsigned* ballots, double* down) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  double v = in[t];
  down[t] = __shfl_down_sync(0xffffffffu, v, 1);
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
  sums[t] = v;
  ballots[t] = __ballot_sync(0xffffffffu, threadIdx.x % 2);
}

/// A kernel parameter is each thread's own copy.
__global__ void own_parameter_copy(int value, int* out) {
  value += static_cast<int>(threadIdx.x);
  out[threadIdx.x] = value;
}

__global__ void lane_leaves_before_shuffle(double* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0, 1);
}

__global__ void barrier_in_divergent_code(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void barrier_after_a_return(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void barrier_and_warp_operation_wait_for_each_other(int* out) {
  if (threadIdx.x == 0)
    __syncwarp(0x3u);  // lane 1 never comes: it waits at the barrier
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void count_calls(int* counter) {
  if (threadIdx.x == 0) *counter += 1;
}

// ---- tests -----------------------------------------------------------------------------------------

TEST(CudaEmulation, IsOneDeviceNamedAsEmulated) {
  int n = 0;
  ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
  EXPECT_EQ(n, 1);
  cudaDeviceProp p{};
  ASSERT_EQ(cudaGetDeviceProperties(&p, 0), cudaSuccess);
  EXPECT_NE(std::string(p.name).find("emulated"), std::string::npos);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
}

TEST(CudaEmulation, ABarrierOrdersSharedMemoryInEveryThreadOrder) {
  const int n = 2 * 192;
  int* in = device_array<int>(n);
  int* out = device_array<int>(n);
  for (int i = 0; i < n; ++i) in[i] = i;
  in_every_order([&] {
    LAUNCH(2, 192, 0, nullptr, rotate_with_barrier)(in, out);
    for (int i = 0; i < n; ++i) ASSERT_EQ(out[i], (i / 192) * 192 + (i % 192 + 1) % 192) << i;
  });
  cudaFree(in);
  cudaFree(out);
}

TEST(CudaEmulation, AMissingBarrierShowsAsAResultThatDependsOnTheOrder) {
  const int n = 64;
  int* in = device_array<int>(n);
  int* out = device_array<int>(n);
  for (int i = 0; i < n; ++i) in[i] = i;
  const cuda_emulation::Settings saved = cuda_emulation::settings();
  std::vector<std::vector<int>> results;
  for (const Order order : {Order::forward, Order::reverse}) {
    cuda_emulation::Settings s = saved;
    s.order = order;
    s.fill = false;
    cuda_emulation::set_settings(s);
    std::fill(out, out + n, -1);
    LAUNCH(1, n, 0, nullptr, rotate_without_barrier)(in, out);
    results.emplace_back(out, out + n);
  }
  cuda_emulation::set_settings(saved);
  // forward: thread t reads tile[t + 1] before thread t + 1 has written it (a stale value);
  // reverse: after. Either way the two orders disagree, which is what a parity test sees.
  EXPECT_NE(results[0], results[1]);
  EXPECT_EQ(results[1][0], 1);
  cudaFree(in);
  cudaFree(out);
}

TEST(CudaEmulation, WarpOperationsHaveCudaSemanticsInEveryOrder) {
  const int n = 3 * 64;
  double* in = device_array<double>(n);
  double* sums = device_array<double>(n);
  double* down = device_array<double>(n);
  unsigned* ballots = device_array<unsigned>(n);
  for (int i = 0; i < n; ++i) in[i] = i * 0.5;
  in_every_order([&] {
    LAUNCH(3, 64, 0, nullptr, warp_operations)(in, sums, ballots, down);
    for (int i = 0; i < n; ++i) {
      const int w0 = i / 32 * 32;
      double want = 0;
      for (int l = 0; l < 32; ++l) want += in[w0 + l];
      ASSERT_DOUBLE_EQ(sums[i], want) << i;
      ASSERT_EQ(ballots[i], 0xaaaaaaaau) << i;
      // shfl_down: lane l reads lane l + 1; the last lane keeps its own value
      ASSERT_EQ(down[i], i % 32 == 31 ? in[i] : in[i + 1]) << i;
    }
  });
  cudaFree(in);
  cudaFree(sums);
  cudaFree(down);
  cudaFree(ballots);
}

TEST(CudaEmulation, EachThreadGetsItsOwnCopyOfTheParameters) {
  int* out = device_array<int>(32);
  LAUNCH(1, 32, 0, nullptr, own_parameter_copy)(100, out);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(out[t], 100 + t);
  cudaFree(out);
}

TEST(CudaEmulation, FreshMemoryHoldsNaN) {
  float* f = device_array<float>(8);
  double* d = device_array<double>(8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(std::isnan(f[i]));
    EXPECT_TRUE(std::isnan(d[i]));
  }
  cudaFree(f);
  cudaFree(d);
}

TEST(CudaEmulation, AnInvalidLaunchIsAnErrorOfTheNextCheck) {
  int* out = device_array<int>(1);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  LAUNCH(1, 2048, 0, nullptr, count_calls)(out);  // more than 1024 threads per block
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read once
  LAUNCH(0, 32, 0, nullptr, count_calls)(out);  // an empty grid
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  cudaFree(out);
}

TEST(CudaEmulation, ACapturedStreamRecordsAGraphThatRunsWhenLaunched) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  int* counter = device_array<int>(1);
  *counter = 0;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  LAUNCH(4, 32, 0, s, count_calls)(counter);
  int host = -1;
  ASSERT_EQ(cudaMemcpyAsync(&host, counter, sizeof(int), cudaMemcpyDeviceToHost, s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);  // as on a GPU
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  EXPECT_EQ(*counter, 0);  // nothing ran while capturing
  EXPECT_EQ(host, -1);
  std::size_t nodes = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &nodes), cudaSuccess);
  EXPECT_EQ(nodes, 2u);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(*counter, 8);  // four blocks, twice
  EXPECT_EQ(host, 8);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cudaFree(counter);
}

TEST(CudaEmulation, CublasGemmIsTheProduct) {
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const int m = 5, n = 3, k = 4;
  double* a = device_array<double>(k * m);  // A' stored k x m
  double* b = device_array<double>(k * n);
  double* c = device_array<double>(m * n);
  for (int i = 0; i < k * m; ++i) a[i] = i + 1;
  for (int i = 0; i < k * n; ++i) b[i] = 0.5 * i - 2;
  const double one = 1, zero = 0;
  ASSERT_EQ(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, k, b, k, &zero, c, m),
            CUBLAS_STATUS_SUCCESS);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double want = 0;
      for (int l = 0; l < k; ++l) want += a[l + i * k] * b[l + j * k];
      EXPECT_DOUBLE_EQ(c[i + j * m], want);
    }
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
}

TEST(CudaEmulation, EventsKeepTheTimeAtWhichTheStreamReachedThem) {
  cudaEvent_t start = nullptr, stop = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  float ms = -1;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaErrorInvalidValue);  // not recorded
  cudaEventRecord(start, nullptr);
  volatile double x = 0;
  for (int i = 0; i < 2000000; ++i) x = x + 1e-9;
  cudaEventRecord(stop, nullptr);
  ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GT(ms, 0.f);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// Misuse that CUDA leaves undefined aborts with a report naming the kernel, block and thread.
using CudaEmulationDeathTest = ::testing::Test;

TEST_F(CudaEmulationDeathTest, AShuffleWhoseMaskNamesAnExitedLane) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  double* out = device_array<double>(32);
  const auto run = [&] { LAUNCH(1, 32, 0, nullptr, lane_leaves_before_shuffle)(out); };
  EXPECT_DEATH(run(),
               "kernel lane_leaves_before_shuffle, block \\(0,0,0\\): thread [0-9]+: "
               "__shfl_xor_sync with mask 0xffffffff names lane 5, which has exited");
  cudaFree(out);
}

TEST_F(CudaEmulationDeathTest, ABarrierInDivergentCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* out = device_array<int>(32);
  const auto run = [&] { LAUNCH(1, 32, 0, nullptr, barrier_in_divergent_code)(out); };
  EXPECT_DEATH(run(),
               "kernel barrier_in_divergent_code, block \\(0,0,0\\): thread [0-9]+ waits at "
               "__syncthreads .*test_cuda_emulation.cpp:[0-9]+, thread [0-9]+ at "
               ".*test_cuda_emulation.cpp:[0-9]+ \\(a barrier in divergent code");
  cudaFree(out);
}

TEST_F(CudaEmulationDeathTest, ABarrierAfterSomeThreadsReturned) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* out = device_array<int>(32);
  const auto run = [&] { LAUNCH(1, 32, 0, nullptr, barrier_after_a_return)(out); };
  EXPECT_DEATH(run(),
               "__syncthreads at .* after 1 of the block's threads returned");
  cudaFree(out);
}

TEST_F(CudaEmulationDeathTest, ADeadlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* out = device_array<int>(32);
  const auto run = [&] {
    LAUNCH(1, 32, 0, nullptr, barrier_and_warp_operation_wait_for_each_other)(out);
  };
  EXPECT_DEATH(
      run(),
      "deadlock: 31 threads at __syncthreads, 1 at warp operations, 0 exited; thread 0 waits "
      "in __syncwarp \\(mask 0x00000003\\)");
  cudaFree(out);
}

}  // namespace
