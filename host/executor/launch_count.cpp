// The process-wide counts of enqueued kernels and of the fused kernels' floating-point
// operations (launch_count and fused_flop_count in ops.hpp).
#include <bilevel/ops.hpp>

#include <atomic>

namespace bilevel {
namespace {
std::atomic<std::uint64_t> launches{0};
std::atomic<std::uint64_t> fused_flops{0};
}

std::uint64_t launch_count() { return launches.load(std::memory_order_relaxed); }
std::uint64_t fused_flop_count() { return fused_flops.load(std::memory_order_relaxed); }

namespace detail {
void note_launches(std::uint64_t n) { launches.fetch_add(n, std::memory_order_relaxed); }
void note_fused_flops(std::uint64_t n) { fused_flops.fetch_add(n, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace bilevel
