// The process-wide count of enqueued kernels (launch_count in ops.hpp).
#include <bilevel/ops.hpp>

#include <atomic>

namespace bilevel {
namespace {
std::atomic<std::uint64_t> launches{0};
}

std::uint64_t launch_count() { return launches.load(std::memory_order_relaxed); }

namespace detail {
void note_launches(std::uint64_t n) { launches.fetch_add(n, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace bilevel
