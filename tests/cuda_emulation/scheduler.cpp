// The emulated device's launches: the blocks of a grid one after another, the threads of a block
// as fibers on the launching thread, resumed cooperatively until each reaches a sync point.
// (The execution model and what it checks: include/cuda_emulation.hpp.)
#include "cuda_emulation.hpp"
#include "cuda_emulation_control.hpp"
#include "internal.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_EMULATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_EMULATION_ASAN 1
#endif
#endif
#if defined(CUDA_EMULATION_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__)
// A fiber switch on x86-64: the callee-saved registers, MXCSR and the x87 control word, then
// the stack pointer. (swapcontext would also save the signal mask: a system call per switch,
// about ten times slower.)
extern "C" void cuda_emulation_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl cuda_emulation_switch
.type cuda_emulation_switch,@function
cuda_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cuda_emulation_switch,.-cuda_emulation_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#else
#include <ucontext.h>
#endif

namespace cuda_emulation {

void fail(const char* format, ...) {
  std::fprintf(stderr, "cuda_emulation: ");
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

namespace {

// ---- settings ----------------------------------------------------------------------------------
Settings from_environment() {
  Settings s;
  if (const char* o = std::getenv("BILEVEL_CUDA_EMULATION_ORDER")) {
    const std::string order = o;
    if (order == "forward") {
      s.order = Order::forward;
    } else if (order == "reverse") {
      s.order = Order::reverse;
    } else if (order.rfind("random", 0) == 0) {
      s.order = Order::random;
      if (order.size() > 7 && order[6] == ':') s.seed = std::strtoull(order.c_str() + 7, nullptr, 10);
    } else {
      fail("BILEVEL_CUDA_EMULATION_ORDER='%s': expected forward, reverse or random:SEED",
           order.c_str());
    }
  }
  if (const char* v = std::getenv("BILEVEL_CUDA_EMULATION_STRICT")) s.strict = v[0] != '0';
  if (const char* v = std::getenv("BILEVEL_CUDA_EMULATION_FILL")) s.fill = v[0] != '0';
  return s;
}

struct State {
  Settings settings = from_environment();
  std::mt19937_64 rng{settings.seed};
};
State& state() {
  static State s;
  return s;
}
std::atomic<std::uint64_t> g_launches{0};

// ---- fibers ------------------------------------------------------------------------------------
constexpr std::size_t kStackBytes = std::size_t{256} << 10;

struct Context {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};
inline void switch_context(Context& from, Context& to) {
#if defined(__x86_64__)
  cuda_emulation_switch(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
}

struct Fiber {
  enum Status { runnable, at_barrier, at_warp_operation, exited };
  Context context;
  void* stack = nullptr;
  Status status = runnable;
  uint3 index;
  unsigned linear = 0;
  // a pending warp operation
  unsigned mask = 0;
  const char* op = nullptr;
  int kind = 0;
  int source = 0;
  std::uint64_t in = 0, out = 0;
  // the __syncthreads this thread waits at
  const char* barrier_file = nullptr;
  int barrier_line = 0;
};

struct Block {
  std::vector<Fiber> fibers;
  Context scheduler;
  const std::function<void()>* body = nullptr;
  Fiber* current = nullptr;
  unsigned live = 0;
  unsigned at_barrier = 0;             // threads waiting at __syncthreads
  std::vector<unsigned> ready;         // threads to resume in the next round
  std::vector<unsigned char> arrived;  // per warp: a lane reached a warp operation since the last look
  std::vector<unsigned char> shared;
  const char* kernel = "";
#if defined(CUDA_EMULATION_ASAN)
  void* fake_stack = nullptr;
  const void* scheduler_bottom = nullptr;
  std::size_t scheduler_size = 0;
#endif
};

// One launch at a time in the process (the built-in variables are globals): launches from
// several host threads take turns. Recursive, so that a launch from inside a kernel reaches the
// check that reports it.
std::recursive_mutex g_launch_mutex;
Block* g_block = nullptr;
std::vector<void*> g_stacks;  // stacks kept from launch to launch

/// Stack i, with a guard page below it (a thread that overflows its stack faults at once).
void* stack_at(std::size_t i) {
  static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  while (g_stacks.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("cannot map a fiber stack");
    mprotect(p, page, PROT_NONE);
    g_stacks.push_back(static_cast<char*>(p) + page);
  }
  return g_stacks[i];
}

void resume(Block& b, Fiber& f) {
  b.current = &f;
  threadIdx = f.index;
#if defined(CUDA_EMULATION_ASAN)
  __sanitizer_start_switch_fiber(&b.fake_stack, f.stack, kStackBytes);
#endif
  switch_context(b.scheduler, f.context);
#if defined(CUDA_EMULATION_ASAN)
  __sanitizer_finish_switch_fiber(b.fake_stack, nullptr, nullptr);
#endif
  b.current = nullptr;
}

void yield(bool exiting = false) {
  Block& b = *g_block;
  Fiber& f = *b.current;
#if defined(CUDA_EMULATION_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, b.scheduler_bottom, b.scheduler_size);
#endif
  switch_context(f.context, b.scheduler);
#if defined(CUDA_EMULATION_ASAN)
  __sanitizer_finish_switch_fiber(fake, &b.scheduler_bottom, &b.scheduler_size);
#endif
  (void)exiting;
}

void fiber_main() {
  Block& b = *g_block;
#if defined(CUDA_EMULATION_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_bottom, &b.scheduler_size);
#endif
  try {
    (*b.body)();
  } catch (const std::exception& e) {
    fail("kernel %s threw: %s", b.kernel, e.what());
  } catch (...) {
    fail("kernel %s threw", b.kernel);
  }
  b.current->status = Fiber::exited;
  --b.live;
  yield(true);
  fail("an exited thread was resumed");
}

const char* where(const Block& b) {
  static thread_local char text[160];
  std::snprintf(text, sizeof text, "kernel %s, block (%u,%u,%u)", b.kernel, blockIdx.x,
                blockIdx.y, blockIdx.z);
  return text;
}

[[noreturn]] void deadlock(const Block& b) {
  unsigned at_barrier = 0, exited = 0, at_warp = 0;
  std::string waiting;
  for (const Fiber& f : b.fibers) {
    at_barrier += f.status == Fiber::at_barrier;
    exited += f.status == Fiber::exited;
    at_warp += f.status == Fiber::at_warp_operation;
    if (waiting.empty() && f.status == Fiber::at_warp_operation) {
      char text[120];
      std::snprintf(text, sizeof text, "; thread %u waits in %s (mask 0x%08x)", f.linear, f.op,
                    f.mask);
      waiting = text;
    }
  }
  fail("%s: deadlock: %u threads at __syncthreads, %u at warp operations, %u exited%s",
       where(b), at_barrier, at_warp, exited, waiting.c_str());
}

/// Releases the warp operations whose lanes have all arrived; whether any was.
bool release_warp_operations(Block& b) {
  bool released = false;
  const unsigned n = static_cast<unsigned>(b.fibers.size());
  for (unsigned w = 0; w * 32 < n; ++w) {
    if (!b.arrived[w]) continue;
    b.arrived[w] = 0;
    Fiber* lanes = &b.fibers[w * 32];
    const unsigned count = std::min(32u, n - w * 32);
    for (unsigned l = 0; l < count; ++l) {
      Fiber& f = lanes[l];
      if (f.status != Fiber::at_warp_operation) continue;
      bool complete = true;
      for (unsigned m = 0; m < 32 && complete; ++m) {
        if (!(f.mask >> m & 1u)) continue;
        if (m >= count)
          fail("%s: thread %u: %s with mask 0x%08x names lane %u, past the block's last thread",
               where(b), f.linear, f.op, f.mask, m);
        const Fiber& g = lanes[m];
        if (g.status == Fiber::exited)
          fail("%s: thread %u: %s with mask 0x%08x names lane %u, which has exited (undefined "
               "behaviour)",
               where(b), f.linear, f.op, f.mask, m);
        if (g.status != Fiber::at_warp_operation) {
          complete = false;
          break;
        }
        if (g.mask != f.mask || g.kind != f.kind || (g.op != f.op && std::strcmp(g.op, f.op) != 0))
          fail("%s: warp %u: lane %u is in %s (mask 0x%08x) while lane %u is in %s (mask "
               "0x%08x): divergent warp-synchronous code",
               where(b), w, l, f.op, f.mask, m, g.op, g.mask);
      }
      if (!complete) continue;
      // every lane of the mask is here: compute each one's result, then release them together
      const unsigned mask = f.mask;
      std::uint64_t ballot = 0;
      for (unsigned m = 0; m < count; ++m)
        if (mask >> m & 1u) ballot |= std::uint64_t(lanes[m].in != 0) << m;
      for (unsigned m = 0; m < count; ++m) {
        if (!(mask >> m & 1u)) continue;
        Fiber& g = lanes[m];
        if (g.kind == 1) {
          const int source = g.source;
          if (source < 0 || source >= static_cast<int>(count) || !(mask >> source & 1u))
            fail("%s: %s: lane %u reads lane %d, outside mask 0x%08x (undefined value)",
                 where(b), g.op, m, source, mask);
          g.out = lanes[source].in;
        } else if (g.kind == 2) {
          g.out = ballot;
        }
      }
      for (unsigned m = 0; m < count; ++m)
        if (mask >> m & 1u) {
          lanes[m].status = Fiber::runnable;
          b.ready.push_back(w * 32 + m);
        }
      released = true;
    }
  }
  return released;
}

/// Releases the block barrier when every live thread waits at it; whether it did.
bool release_barrier(Block& b) {
  if (b.at_barrier == 0 || b.at_barrier != b.live) return false;
  const unsigned exited = static_cast<unsigned>(b.fibers.size()) - b.live;
  const Fiber* first = nullptr;
  for (const Fiber& f : b.fibers) {
    if (f.status != Fiber::at_barrier) continue;
    if (first == nullptr) {
      first = &f;
    } else if (f.barrier_line != first->barrier_line ||
               (f.barrier_file != first->barrier_file &&
                std::strcmp(f.barrier_file, first->barrier_file) != 0)) {
      fail("%s: thread %u waits at __syncthreads %s:%d, thread %u at %s:%d (a barrier in "
           "divergent code: undefined behaviour)",
           where(b), first->linear, first->barrier_file, first->barrier_line, f.linear,
           f.barrier_file, f.barrier_line);
    }
  }
  if (exited > 0 && state().settings.strict)
    fail("%s: __syncthreads at %s:%d after %u of the block's threads returned (undefined "
         "behaviour; BILEVEL_CUDA_EMULATION_STRICT=0 counts only the live ones, as Volta does)",
         where(b), first->barrier_file, first->barrier_line, exited);
  for (Fiber& f : b.fibers)
    if (f.status == Fiber::at_barrier) {
      f.status = Fiber::runnable;
      b.ready.push_back(f.linear);
    }
  b.at_barrier = 0;
  return true;
}

void run_block(Block& b, unsigned threads) {
  b.fibers.assign(threads, Fiber{});
  b.live = threads;
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = b.fibers[t];
    f.linear = t;
    f.index = {t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
    f.stack = stack_at(t);
#if defined(CUDA_EMULATION_ASAN)
    // the top frames of the stack's last thread (fiber_main's, yield's) never returned: it
    // switched away when it exited, and their redzones would read as errors in this one
    __asan_unpoison_memory_region(static_cast<char*>(f.stack) + kStackBytes - 8192, 8192);
#endif
#if defined(__x86_64__)
    // the first switch "returns" into fiber_main on a stack aligned as after a call
    auto top = (reinterpret_cast<std::uintptr_t>(f.stack) + kStackBytes) & ~std::uintptr_t(15);
    auto* w = reinterpret_cast<std::uint64_t*>(top);
    w[-1] = 0;                                             // fiber_main's return address
    w[-2] = reinterpret_cast<std::uint64_t>(&fiber_main);  // popped by ret
    for (int r = 3; r <= 8; ++r) w[-r] = 0;                // rbp rbx r12 r13 r14 r15
    w[-9] = 0x1f80;                                        // MXCSR
    w[-10] = 0x037f;                                       // x87 control word
    f.context.sp = &w[-10];
#else
    getcontext(&f.context.uc);
    f.context.uc.uc_stack.ss_sp = f.stack;
    f.context.uc.uc_stack.ss_size = kStackBytes;
    f.context.uc.uc_link = nullptr;
    makecontext(&f.context.uc, fiber_main, 0);
#endif
  }
  // Rounds: every ready thread runs to its next sync point (or its end), in the order the
  // settings ask for; then the warp operations and the barrier whose threads have all arrived
  // are released, and their threads are the next round's.
  const Settings& s = state().settings;
  b.at_barrier = 0;
  b.arrived.assign((threads + 31) / 32, 0);
  b.ready.resize(threads);
  std::iota(b.ready.begin(), b.ready.end(), 0u);
  std::vector<unsigned> round;
  while (b.live > 0) {
    if (b.ready.empty()) {
      release_warp_operations(b);
      release_barrier(b);
      if (b.ready.empty()) deadlock(b);
    }
    switch (s.order) {
      case Order::forward: std::sort(b.ready.begin(), b.ready.end()); break;
      case Order::reverse: std::sort(b.ready.rbegin(), b.ready.rend()); break;
      case Order::random: std::shuffle(b.ready.begin(), b.ready.end(), state().rng); break;
    }
    round.swap(b.ready);
    b.ready.clear();
    for (unsigned t : round) resume(b, b.fibers[t]);
  }
}

void run_grid(const LaunchConfig& config, const char* kernel, const std::function<void()>& body) {
  const dim3 g = config.grid, bl = config.block;
  const unsigned long long threads = 1ull * bl.x * bl.y * bl.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0 || threads > 1024 || bl.z > 64 ||
      g.y > 65535 || g.z > 65535 || g.x > 0x7fffffffu || config.shared_bytes > (227u << 10)) {
    std::fprintf(stderr,
                 "cuda_emulation: launch of %s: invalid configuration, grid (%u,%u,%u) block "
                 "(%u,%u,%u), %zu bytes of dynamic shared memory\n",
                 kernel, g.x, g.y, g.z, bl.x, bl.y, bl.z, config.shared_bytes);
    set_launch_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (config.shared_bytes > (48u << 10))
    fail("launch of %s: %zu bytes of dynamic shared memory: a GPU needs "
         "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize) first",
         kernel, config.shared_bytes);
  std::lock_guard<std::recursive_mutex> lock(g_launch_mutex);
  if (g_block != nullptr) fail("launch of %s from inside kernel %s", kernel, g_block->kernel);
  ++g_launches;
  Block b;
  b.body = &body;
  b.kernel = kernel;
  g_block = &b;
  gridDim = g;
  blockDim = bl;
  const unsigned long long blocks = 1ull * g.x * g.y * g.z;
  std::vector<unsigned long long> order(blocks);
  std::iota(order.begin(), order.end(), 0ull);
  const Settings& s = state().settings;
  if (s.order == Order::reverse) std::reverse(order.begin(), order.end());
  if (s.order == Order::random) std::shuffle(order.begin(), order.end(), state().rng);
  for (unsigned long long k : order) {
    blockIdx = {static_cast<unsigned>(k % g.x), static_cast<unsigned>((k / g.x) % g.y),
                static_cast<unsigned>(k / (1ull * g.x * g.y))};
    b.shared.assign(config.shared_bytes, s.fill ? 0xff : 0);
    run_block(b, static_cast<unsigned>(threads));
  }
  g_block = nullptr;
}

}  // namespace

Settings settings() { return state().settings; }
void set_settings(const Settings& s) {
  state().settings = s;
  state().rng.seed(s.seed);
}
std::string order_name(const Settings& s) {
  switch (s.order) {
    case Order::forward: return "forward";
    case Order::reverse: return "reverse";
    case Order::random: return "random:" + std::to_string(s.seed);
  }
  return "?";
}
std::uint64_t kernel_launches() { return g_launches; }

void launch(const LaunchConfig& config, const char* kernel, std::function<void()> body) {
  enqueue(config.stream, [config, kernel, body = std::move(body)]() { run_grid(config, kernel, body); });
}

void sync_threads(const char* file, int line) {
  Block* b = g_block;
  if (b == nullptr) fail("__syncthreads outside a kernel");
  b->current->status = Fiber::at_barrier;
  b->current->barrier_file = file;
  b->current->barrier_line = line;
  ++b->at_barrier;
  yield();
}

std::uint64_t warp_operation(unsigned mask, const char* op, int kind, std::uint64_t bits,
                             int source) {
  Block* b = g_block;
  if (b == nullptr) fail("%s outside a kernel", op);
  Fiber& f = *b->current;
  if (!(mask >> (f.linear % 32) & 1u))
    fail("%s: thread %u calls %s with mask 0x%08x, which does not name its own lane", where(*b),
         f.linear, op, mask);
  f.status = Fiber::at_warp_operation;
  b->arrived[f.linear / 32] = 1;
  f.mask = mask;
  f.op = op;
  f.kind = kind;
  f.in = bits;
  f.source = source;
  yield();
  return f.out;
}

void* dynamic_shared_memory() {
  if (g_block == nullptr) fail("extern __shared__ outside a kernel");
  return g_block->shared.data();
}

unsigned lane() { return g_block->current->linear % 32; }

bool fill_fresh_memory() { return state().settings.fill; }

}  // namespace cuda_emulation
