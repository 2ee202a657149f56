#include "cpu_isa.hpp"

#include <bilevel/error.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace bilevel::kernels::cpu {
namespace {

Isa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::generic;
}

std::atomic<int> g_active{-1};
std::mutex g_note_mutex;
std::string g_note;

Isa cap(Isa wanted, const std::string& source) {
  const Isa best = detected_isa();
  std::lock_guard<std::mutex> lock(g_note_mutex);
  if (static_cast<int>(wanted) <= static_cast<int>(best)) {
    g_note.clear();
    return wanted;
  }
  g_note = source + " asked for " + isa_name(wanted) + "; this CPU supports up to " +
           isa_name(best) + ", which is used";
  return best;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(detected_isa()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

Isa parse_isa(const std::string& text, const std::string& what) {
  if (text == "generic") return Isa::generic;
  if (text == "avx2") return Isa::avx2;
  if (text == "avx512") return Isa::avx512;
  throw InvalidArgument(what + ": unknown instruction set '" + text +
                        "' (expected generic, avx2 or avx512)");
}

Isa active_isa() {
  int isa = g_active.load(std::memory_order_relaxed);
  if (isa >= 0) return static_cast<Isa>(isa);
  Isa chosen = detected_isa();
  if (const char* env = std::getenv("BILEVEL_CPU_ISA"); env != nullptr && *env != '\0')
    chosen = cap(parse_isa(env, "BILEVEL_CPU_ISA"), "BILEVEL_CPU_ISA");
  int expected = -1;
  g_active.compare_exchange_strong(expected, static_cast<int>(chosen));
  return static_cast<Isa>(g_active.load());
}

Isa set_isa(Isa isa) {
  const Isa used = cap(isa, "set_cpu_isa");
  g_active.store(static_cast<int>(used));
  return used;
}

std::string isa_note() {
  active_isa();  // reads the environment once
  std::lock_guard<std::mutex> lock(g_note_mutex);
  return g_note;
}

}  // namespace bilevel::kernels::cpu
