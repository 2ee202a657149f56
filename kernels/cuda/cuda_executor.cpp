#include "cuda_executor.hpp"

#include "batch_kernels.cuh"
#include "cuda_error.hpp"
#include "cuda_ops.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace bilevel::kernels::cuda {
namespace {

/// Sets the executor's device for the lifetime of a scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    BILEVEL_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ != device) BILEVEL_CUDA_TRY(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_)
      BILEVEL_CUDA_TRY_NO_THROW(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

/// A CUDA event recorded on the executor's stream.
class CudaMark final : public StreamMark {
 public:
  explicit CudaMark(cudaStream_t stream) {
    BILEVEL_CUDA_TRY(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    BILEVEL_CUDA_TRY(cudaEventRecord(event_, stream));
  }
  ~CudaMark() override { BILEVEL_CUDA_TRY_NO_THROW(cudaEventDestroy(event_)); }
  CudaMark(const CudaMark&) = delete;
  CudaMark& operator=(const CudaMark&) = delete;
  void wait() override { BILEVEL_CUDA_TRY(cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

/// An instantiated CUDA graph, launched on the executor's stream.
class CudaGraph final : public CapturedWork {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream, long nodes)
      : exec_(exec), stream_(stream), nodes_(nodes) {}
  long nodes() const override { return nodes_; }
  ~CudaGraph() override { BILEVEL_CUDA_TRY_NO_THROW(cudaGraphExecDestroy(exec_)); }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  void replay() override { BILEVEL_CUDA_TRY(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
  long nodes_;
};

// cuBLAS's workspace, given explicitly so that captured GEMMs never allocate (NVIDIA's
// recommended size on Hopper is 32 MiB).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(int device) : device_(device) {
    DeviceGuard guard(device_);
    cudaDeviceProp prop{};
    BILEVEL_CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    name_ = prop.name;
    l2_bytes_ = prop.l2CacheSize > 0 ? static_cast<std::size_t>(prop.l2CacheSize) : 0;
    BILEVEL_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    BILEVEL_CUDA_TRY(cudaEventCreate(&start_));
    BILEVEL_CUDA_TRY(cudaEventCreate(&stop_));
    BILEVEL_CUBLAS_TRY(cublasCreate(&blas_));
    BILEVEL_CUBLAS_TRY(cublasSetStream(blas_, stream_));
    BILEVEL_CUDA_TRY(cudaMalloc(&blas_workspace_, kCublasWorkspaceBytes));
    BILEVEL_CUBLAS_TRY(cublasSetWorkspace(blas_, blas_workspace_, kCublasWorkspaceBytes));
    BILEVEL_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&reduce_scratch_),
                                kReduceScratchDoubles * sizeof(double)));
    ops_f_ = std::make_unique<CudaOps<float>>(stream_, blas_, reduce_scratch_);
    ops_d_ = std::make_unique<CudaOps<double>>(stream_, blas_, reduce_scratch_);
  }
  ~CudaExecutor() override {
    if (blas_ != nullptr && cublasDestroy(blas_) != CUBLAS_STATUS_SUCCESS)
      report_cuda_error_no_throw(cudaErrorUnknown, "cublasDestroy", __FILE__, __LINE__);
    if (blas_workspace_ != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaFree(blas_workspace_));
    if (reduce_scratch_ != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaFree(reduce_scratch_));
    if (start_ != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaEventDestroy(start_));
    if (stop_ != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaEventDestroy(stop_));
    if (stream_ != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaStreamDestroy(stream_));
  }

  Backend backend() const override { return Backend::cuda; }
  std::string device_name() const override { return name_; }
  std::size_t shared_cache_bytes() const override { return l2_bytes_; }

  void* allocate(std::size_t bytes) override {
    if (bytes == 0) return nullptr;
    DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t status = cudaMallocAsync(&p, bytes, stream_);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      std::size_t free = 0, total = 0;
      (void)cudaMemGetInfo(&free, &total);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "out of device memory on %s: %.2f GB asked for, %.2f GB free of %.2f GB "
                    "(store the features as bf16, use fewer instances or less data)",
                    name_.c_str(), bytes / 1e9, free / 1e9, total / 1e9);
      throw Error(buf);
    }
    BILEVEL_CUDA_TRY(status);
    return p;
  }
  std::size_t backend_free_memory() const override {
    DeviceGuard guard(device_);
    std::size_t free = 0, total = 0;
    BILEVEL_CUDA_TRY(cudaMemGetInfo(&free, &total));
    return free;
  }
  void deallocate(void* ptr) noexcept override {
    if (ptr != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaFreeAsync(ptr, stream_));
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    BILEVEL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    BILEVEL_CUDA_TRY(cudaStreamSynchronize(stream_));
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    BILEVEL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_));
    // The host buffer may be freed right after return: wait for the copy.
    BILEVEL_CUDA_TRY(cudaStreamSynchronize(stream_));
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    // (Default: either side may be mapped host memory)
    BILEVEL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_));
  }
  void synchronize() override { BILEVEL_CUDA_TRY(cudaStreamSynchronize(stream_)); }
  void* allocate_mapped(std::size_t bytes) override {
    if (bytes == 0) return nullptr;
    DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t status =
        cudaHostAlloc(&p, bytes, cudaHostAllocMapped | cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      char buf[160];
      std::snprintf(buf, sizeof buf, "out of page-locked host memory: %.2f GB asked for",
                    bytes / 1e9);
      throw Error(buf);
    }
    BILEVEL_CUDA_TRY(status);
    // with unified addressing (every 64-bit platform CUDA 13 supports) the host pointer is
    // the device pointer
    void* device = nullptr;
    BILEVEL_CUDA_TRY(cudaHostGetDevicePointer(&device, p, 0));
    if (device != p) {
      cudaFreeHost(p);
      throw Error("mapped host memory has a device address different from its host address "
                  "(no unified addressing): host-resident data is not supported here");
    }
    return p;
  }
  void deallocate_mapped(void* ptr) noexcept override {
    if (ptr == nullptr) return;
    // kernels enqueued before may still read it
    BILEVEL_CUDA_TRY_NO_THROW(cudaStreamSynchronize(stream_));
    BILEVEL_CUDA_TRY_NO_THROW(cudaFreeHost(ptr));
  }
  void* allocate_host(std::size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    BILEVEL_CUDA_TRY(cudaMallocHost(&p, bytes));
    return p;
  }
  void deallocate_host(void* ptr) noexcept override {
    if (ptr != nullptr) BILEVEL_CUDA_TRY_NO_THROW(cudaFreeHost(ptr));
  }
  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    BILEVEL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  }
  std::unique_ptr<StreamMark> mark() override {
    DeviceGuard guard(device_);
    return std::make_unique<CudaMark>(stream_);
  }
  double time_ms(const std::function<void()>& work) override {
    BILEVEL_CUDA_TRY(cudaEventRecord(start_, stream_));
    work();
    BILEVEL_CUDA_TRY(cudaEventRecord(stop_, stream_));
    BILEVEL_CUDA_TRY(cudaEventSynchronize(stop_));
    float ms = 0.f;
    BILEVEL_CUDA_TRY(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }
  void* native_stream() const override { return stream_; }

  std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) override {
    DeviceGuard guard(device_);
    BILEVEL_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      work();
    } catch (...) {
      // end the capture so that the stream is usable again, then report the first error
      if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph != nullptr)
        (void)cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      throw;
    }
    BILEVEL_CUDA_TRY(cudaStreamEndCapture(stream_, &graph));
    std::size_t nodes = 0;
    BILEVEL_CUDA_TRY_NO_THROW(cudaGraphGetNodes(graph, nullptr, &nodes));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    BILEVEL_CUDA_TRY_NO_THROW(cudaGraphDestroy(graph));
    BILEVEL_CUDA_TRY(status);
    return std::make_unique<CudaGraph>(exec, stream_, static_cast<long>(nodes));
  }

 protected:
  Ops<float>& ops_float() override { return *ops_f_; }
  Ops<double>& ops_double() override { return *ops_d_; }

 private:
  int device_;
  std::string name_;
  std::size_t l2_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* blas_workspace_ = nullptr;
  double* reduce_scratch_ = nullptr;
  std::unique_ptr<CudaOps<float>> ops_f_;
  std::unique_ptr<CudaOps<double>> ops_d_;
};

}  // namespace

int device_count(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess && count > 0) return count;
  (void)cudaGetLastError();  // clear the sticky "no device" state
  if (reason != nullptr) {
    if (status == cudaSuccess)
      *reason = "the CUDA runtime reports 0 devices";
    else
      *reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
  }
  return 0;
}

bool device_is_emulated() {
#if defined(BILEVEL_CUDA_EMULATION)
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Executor> make_cuda_executor(int device) {
  std::string reason;
  const int count = device_count(&reason);
  if (count == 0) throw DeviceUnavailable("no CUDA device is available (" + reason + ")");
  if (device < 0 || device >= count)
    throw DeviceUnavailable("CUDA device " + std::to_string(device) + " does not exist (" +
                            std::to_string(count) + " found)");
  return std::make_shared<CudaExecutor>(device);
}

}  // namespace bilevel::kernels::cuda
