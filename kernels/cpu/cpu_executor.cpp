#include "cpu_executor.hpp"

#include "cpu_isa.hpp"
#include "cpu_ops.hpp"

#include <bilevel/error.hpp>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

namespace bilevel::kernels::cpu {
namespace {

class CpuExecutor final : public Executor {
 public:
  Backend backend() const override { return Backend::cpu; }
  std::string device_name() const override {
    const int n = omp_get_max_threads();
    return "CPU (" + std::to_string(n) + (n == 1 ? " thread, " : " threads, ") +
           isa_name(active_isa()) + ")";
  }
  void* allocate(std::size_t bytes) override {
    if (bytes == 0) return nullptr;
    const std::size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw Error("CPU executor: out of memory allocating " +
                                  std::to_string(bytes) + " bytes");
    return p;
  }
  void deallocate(void* ptr) noexcept override { std::free(ptr); }
  std::size_t backend_free_memory() const override {
    // MemAvailable of /proc/meminfo (kB), or "plenty" where there is none
    std::ifstream in("/proc/meminfo");
    std::string key;
    unsigned long long kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
      if (key == "MemAvailable:") return static_cast<std::size_t>(kb) * 1024;
    return static_cast<std::size_t>(-1);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memmove(dst, src, bytes);
  }
  void synchronize() override {}
  double time_ms(const std::function<void()>& work) override {
    const auto start = std::chrono::steady_clock::now();
    work();
    const auto stop = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(stop - start).count();
  }
  void* native_stream() const override { return nullptr; }

 protected:
  Ops<float>& ops_float() override { return ops_f_; }
  Ops<double>& ops_double() override { return ops_d_; }

 private:
  CpuOps<float> ops_f_;
  CpuOps<double> ops_d_;
};

}  // namespace

std::shared_ptr<Executor> make_cpu_executor() {
  // OMP_NUM_THREADS is read by the OpenMP runtime itself: refuse a count it would crash on
  // (its threads' stacks) before the first parallel region starts them
  const int n = omp_get_max_threads();
  if (n > max_threads()) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    throw InvalidArgument(std::string("CPU backend: ") +
                          (env ? "OMP_NUM_THREADS=" + std::string(env) + " asks for "
                               : std::string("asked for ")) +
                          std::to_string(n) + " threads; this machine allows at most " +
                          std::to_string(max_threads()) + " (" + threads_limit_reason() + ")");
  }
  return std::make_shared<CpuExecutor>();
}

int max_threads() {
  const int cores = std::max(1, omp_get_num_procs());
  return std::max(4 * cores, 8);
}

std::string threads_limit_reason() {
  return "4 threads per core of its " + std::to_string(std::max(1, omp_get_num_procs())) +
         ": more only adds switching, and each OpenMP thread holds a stack";
}

void set_threads(int threads) { omp_set_num_threads(threads); }
int threads() { return omp_get_max_threads(); }

}  // namespace bilevel::kernels::cpu
