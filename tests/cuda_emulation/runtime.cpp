// The emulated device's runtime API: one device, host memory as device memory (fresh bytes
// 0xff), streams that run each operation when it is enqueued (so a stream is always idle and
// the host never runs ahead of it), stream capture into graphs of the recorded operations,
// events that keep the host time at which they were reached.
#include "cuda_runtime_api.h"
#include "internal.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

struct CUstream_st {
  std::vector<std::function<void()>>* capture = nullptr;  // the graph being recorded
};
struct CUevent_st {
  std::chrono::steady_clock::time_point reached{};
  bool recorded = false;
};
struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};

namespace cuda_emulation {
namespace {

thread_local cudaError_t g_last_error = cudaSuccess;

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes == 0 ? 1 : bytes) != 0) return nullptr;
  if (fill_fresh_memory()) std::memset(p, 0xff, bytes);
  return p;
}

/// MemTotal and MemAvailable of /proc/meminfo, in bytes (the device's memory is the host's).
void host_memory(std::size_t* total, std::size_t* available) {
  *total = *available = std::size_t{16} << 30;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  unsigned long long kb = 0;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") *total = static_cast<std::size_t>(kb) << 10;
    if (key == "MemAvailable:") *available = static_cast<std::size_t>(kb) << 10;
  }
}

}  // namespace

void set_launch_error(cudaError_t e) { g_last_error = e; }

void enqueue(cudaStream_t s, std::function<void()> work) {
  if (s != nullptr && s->capture != nullptr)
    s->capture->push_back(std::move(work));
  else
    work();
}

}  // namespace cuda_emulation

using cuda_emulation::enqueue;

cudaError_t cudaGetLastError() {
  const cudaError_t e = cuda_emulation::g_last_error;
  cuda_emulation::g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cuda_emulation::g_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return cudaErrorInvalidDevice;
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "%s", kEmulatedDeviceName);
  std::size_t total = 0, available = 0;
  cuda_emulation::host_memory(&total, &available);
  p->totalGlobalMem = total;
  p->multiProcessorCount = 1;
  p->warpSize = 32;
  p->major = 9;
  p->minor = 0;
  // a small L2, so that the full passes of the tests run in several ranges (as a 1M-sample
  // pass does on a GPU's 50 MB)
  p->l2CacheSize = 256 << 10;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cuda_emulation::g_last_error; }
cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total) {
  cuda_emulation::host_memory(total, free);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = cuda_emulation::device_alloc(bytes);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
// Stream-ordered: the stream has run everything before, so now is its turn.
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMallocHost(void** p, std::size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned) { return cudaMalloc(p, bytes); }
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned) {
  *device = host;  // unified addressing
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind,
                            cudaStream_t s) {
  enqueue(s, [=] {
    if (bytes) std::memmove(dst, src, bytes);
  });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t s) {
  enqueue(s, [=] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s != nullptr) delete s->capture;
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  // as on a GPU: a stream being captured cannot wait (the capture is then invalid)
  if (s != nullptr && s->capture != nullptr) return cudaErrorStreamCaptureUnsupported;
  return cuda_emulation::g_last_error;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (s == nullptr || s->capture != nullptr) return cudaErrorInvalidValue;
  s->capture = new std::vector<std::function<void()>>;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  if (s == nullptr || s->capture == nullptr) return cudaErrorInvalidValue;
  *graph = new CUgraph_st{std::move(*s->capture)};
  delete s->capture;
  s->capture = nullptr;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = s != nullptr && s->capture != nullptr ? cudaStreamCaptureStatusActive
                                                  : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t*, std::size_t* count) {
  *count = graph->nodes.size();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  for (const auto& node : exec->nodes) enqueue(s, node);
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  enqueue(s, [e] {
    e->reached = std::chrono::steady_clock::now();
    e->recorded = true;
  });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cuda_emulation::g_last_error; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  if (!start->recorded || !stop->recorded) return cudaErrorInvalidValue;
  *ms = std::chrono::duration<float, std::milli>(stop->reached - start->reached).count();
  return cudaSuccess;
}
