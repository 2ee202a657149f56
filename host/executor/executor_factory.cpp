// Backend selection: `auto` picks CUDA when a device exists and the CPU otherwise.
#include <bilevel/error.hpp>
#include <bilevel/executor.hpp>

#include "../../kernels/cpu/cpu_executor.hpp"
#include "../../kernels/cpu/cpu_isa.hpp"
#include "../../kernels/cuda/cuda_executor.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace bilevel {

std::size_t Executor::memory_available() const {
  std::size_t available = backend_free_memory();
  if (const char* limit = std::getenv("BILEVEL_MEMORY_LIMIT")) {
    // digits only: strtoull would take "-1" as 2^64 - 1 ("no limit")
    const std::string text = limit;
    errno = 0;
    char* end = nullptr;
    const unsigned long long cap =
        text.empty() || text.find_first_not_of("0123456789") != std::string::npos
            ? 0
            : std::strtoull(limit, &end, 10);
    BILEVEL_EXPECTS(end != nullptr && end != limit && *end == '\0' && errno != ERANGE,
                    "BILEVEL_MEMORY_LIMIT must be a number of bytes (digits, below 2^64), got '"
                        << limit << "'");
    const std::size_t left = cap > in_use_ ? static_cast<std::size_t>(cap) - in_use_ : 0;
    available = std::min(available, left);
  }
  return available;
}

std::string to_string(Backend backend) {
  switch (backend) {
    case Backend::cpu: return "cpu";
    case Backend::cuda: return "cuda";
    case Backend::automatic: return "auto";
  }
  return "unknown";
}

Backend parse_backend(const std::string& text) {
  if (text == "cpu") return Backend::cpu;
  if (text == "cuda") return Backend::cuda;
  if (text == "auto") return Backend::automatic;
  throw InvalidArgument("unknown backend '" + text + "' (expected auto, cpu or cuda)");
}

int cuda_device_count(std::string* reason) { return kernels::cuda::device_count(reason); }

bool cuda_device_is_emulated() { return kernels::cuda::device_is_emulated(); }

void set_cpu_threads(int threads) {
  BILEVEL_EXPECTS(threads >= 1, "set_cpu_threads: threads must be >= 1, got " << threads);
  BILEVEL_EXPECTS(threads <= kernels::cpu::max_threads(),
                  "set_cpu_threads: " << threads << " threads; this machine allows at most "
                                      << kernels::cpu::max_threads() << " ("
                                      << kernels::cpu::threads_limit_reason() << ")");
  kernels::cpu::set_threads(threads);
}

int max_cpu_threads() { return kernels::cpu::max_threads(); }

int cpu_threads() { return kernels::cpu::threads(); }

std::string cpu_isa() { return kernels::cpu::isa_name(kernels::cpu::active_isa()); }

std::string set_cpu_isa(const std::string& name) {
  return kernels::cpu::isa_name(kernels::cpu::set_isa(kernels::cpu::parse_isa(name, "set_cpu_isa")));
}

std::vector<std::string> cpu_isas() {
  std::vector<std::string> out;
  for (const auto isa : kernels::cpu::supported_isas()) out.push_back(kernels::cpu::isa_name(isa));
  return out;
}

std::string cpu_isa_note() { return kernels::cpu::isa_note(); }

std::shared_ptr<Executor> make_executor(Backend backend, int device) {
  switch (backend) {
    case Backend::cpu: return kernels::cpu::make_cpu_executor();
    case Backend::cuda: return kernels::cuda::make_cuda_executor(device);
    case Backend::automatic: {
      // (the emulated device only where asked for by name: it runs kernels, slowly, to test them)
      std::string reason;
      if (cuda_device_count(&reason) > 0 && !cuda_device_is_emulated())
        return kernels::cuda::make_cuda_executor(device);
      return kernels::cpu::make_cpu_executor();
    }
  }
  throw InvalidArgument("make_executor: unknown backend");
}

}  // namespace bilevel
