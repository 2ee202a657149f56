// Executors: where memory lives and kernels run. One stream per executor.
#pragma once

#include <bilevel/types.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

template <typename T>
class Ops;

/// Work recorded on an executor's stream (a CUDA graph) that can be launched again. Replaying
/// it enqueues the same kernels with the same arguments; values that change from one replay to
/// the next must live in the executor's memory (e.g. a device-resident iteration counter).
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  /// Enqueues the recorded work on the executor's stream; does not synchronise.
  virtual void replay() = 0;
  /// Nodes of the recorded graph (kernels, memsets, copies): what one replay launches; -1 where
  /// the backend does not know.
  virtual long nodes() const { return -1; }
};

/// A point in an executor's stream: wait() returns once everything enqueued before it is done.
class StreamMark {
 public:
  virtual ~StreamMark() = default;
  virtual void wait() = 0;
};

/// A backend instance: owns a stream (CUDA) and a BLAS handle bound to it, allocates memory
/// and hands out the kernel sets for float and double. All work an executor enqueues runs in
/// order on its one stream; nothing runs on the default stream.
class Executor {
 public:
  virtual ~Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  virtual Backend backend() const = 0;
  /// "CPU (2 threads)" or the CUDA device name.
  virtual std::string device_name() const = 0;

  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr) noexcept = 0;

  /// Bytes this executor can still allocate: the device's free memory (CUDA) or the host's
  /// available memory (CPU), capped by BILEVEL_MEMORY_LIMIT (bytes, in the environment; for
  /// planning and for simulating a smaller device) minus what Arrays hold now.
  std::size_t memory_available() const;
  /// The last-level cache that kernels share, in bytes (CUDA: the device's L2), or 0 when not
  /// known or not to be used (the CPU kernels size their own ranges): a full pass over data
  /// goes in ranges that fit half of it, so that the fused oracle's second kernel finds the
  /// rows the first one read still in the cache and the data is read from memory once.
  virtual std::size_t shared_cache_bytes() const { return 0; }
  /// Bytes held by the Arrays of this executor now.
  std::size_t memory_in_use() const { return in_use_; }
  /// Called by Array: +bytes when it allocates, -bytes when it frees.
  void note_allocation(long long delta) { in_use_ = static_cast<std::size_t>(static_cast<long long>(in_use_) + delta); }
  /// Copies between this executor's memory and the host. Both wait for the stream first and
  /// return when the copy is complete: they are the only host synchronisation points.
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, std::size_t bytes) = 0;
  /// Copy within this executor's memory, ordered on the stream.
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() = 0;

  /// Runs `work` and returns the time it took on the executor, in milliseconds (device events
  /// on CUDA, a steady clock on the CPU). Synchronises.
  virtual double time_ms(const std::function<void()>& work) = 0;

  /// cudaStream_t of this executor (nullptr on the CPU): user kernels must be launched on it.
  virtual void* native_stream() const = 0;

  /// Host memory that the executor's kernels read and write in place (CUDA: page-locked and
  /// mapped into the device's address space, so a kernel gathering rows reads them over the bus;
  /// the CPU: ordinary memory): data larger than the device. Not counted in memory_in_use.
  virtual void* allocate_mapped(std::size_t bytes) { return allocate(bytes); }
  virtual void deallocate_mapped(void* ptr) noexcept { deallocate(ptr); }

  /// Host memory that asynchronous copies can target (page-locked on CUDA, so that the copy
  /// overlaps with the work after it).
  virtual void* allocate_host(std::size_t bytes) { return ::operator new(bytes); }
  virtual void deallocate_host(void* ptr) noexcept { ::operator delete(ptr); }
  /// Enqueues a copy into `host_dst` (from allocate_host) and returns at once: the data is
  /// there once a mark() taken after this call has been waited for. The CPU copies at once.
  virtual void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) {
    copy_to_host(host_dst, src, bytes);
  }
  /// Marks the current end of the stream (the CPU has nothing in flight: a mark that is done).
  virtual std::unique_ptr<StreamMark> mark() {
    struct Done final : StreamMark {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }

  /// Records what `work` enqueues on this executor's stream without running it, and returns it
  /// to be replayed. Returns nullptr, without calling `work`, where the backend has nothing to
  /// capture (the CPU runs each kernel as it is called): the caller then runs `work` directly.
  /// `work` must not synchronise, copy to or from the host, or allocate.
  virtual std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) {
    (void)work;
    return nullptr;
  }

  template <typename T>
  Ops<T>& ops();

 protected:
  Executor() = default;
  virtual Ops<float>& ops_float() = 0;
  virtual Ops<double>& ops_double() = 0;
  /// The backend's free memory in bytes, before BILEVEL_MEMORY_LIMIT (default: unknown, as
  /// much as can be counted).
  virtual std::size_t backend_free_memory() const { return static_cast<std::size_t>(-1); }

 private:
  std::size_t in_use_ = 0;
};

template <>
inline Ops<float>& Executor::ops<float>() { return ops_float(); }
template <>
inline Ops<double>& Executor::ops<double>() { return ops_double(); }

/// Number of usable CUDA devices; 0 (not an error) when there is no device or no driver.
/// `reason` (optional) receives why none is usable.
int cuda_device_count(std::string* reason = nullptr);
/// Whether the CUDA device is the emulated one (a library built with BILEVEL_CUDA_EMULATION:
/// CUDA kernels run on the CPU to be tested; Backend::automatic does not pick it).
bool cuda_device_is_emulated();

/// Threads of the CPU backend (its OpenMP loops and the OpenMP build of OpenBLAS) for the work
/// the calling thread starts from now on; throws InvalidArgument unless 1 <= threads <=
/// max_cpu_threads(). Without a call: OMP_NUM_THREADS, else one per core. Results do not
/// depend on it (the CPU kernels sum in fixed orders).
void set_cpu_threads(int threads);
/// The most threads the CPU backend accepts: 4 per core, at least 8 (more only adds
/// switching, and the OpenMP runtime crashes on stacks for 10^5 of them). make_executor(cpu)
/// refuses an OMP_NUM_THREADS above it.
int max_cpu_threads();
/// The threads the CPU backend uses now.
int cpu_threads();

/// The instruction set of the CPU backend's vectorized kernels: "generic", "avx2" or "avx512".
/// The best this processor has unless BILEVEL_CPU_ISA (read once, at the first kernel call)
/// or set_cpu_isa asked for a lower one. Results differ between instruction sets in the last
/// bits (other register blocks sum in other groupings), never between thread counts.
std::string cpu_isa();
/// Selects the instruction set for every later CPU kernel call of the process, capped at what
/// this processor supports; returns the one in use. InvalidArgument for an unknown name.
std::string set_cpu_isa(const std::string& name);
/// Every instruction set this processor can run, lowest first ("generic" always).
std::vector<std::string> cpu_isas();
/// Empty, or why the instruction set in use is not the one asked for (capped).
std::string cpu_isa_note();

/// Creates an executor. `automatic` picks CUDA when a (real) device exists, the CPU otherwise; throws
/// DeviceUnavailable if `cuda` is asked for and none exists. `device` selects the CUDA device.
std::shared_ptr<Executor> make_executor(Backend backend, int device = 0);

}  // namespace bilevel
