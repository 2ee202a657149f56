// The instruction set the CPU backend's hand-vectorized kernels run with: the best this
// processor has, or a lower one asked for with BILEVEL_CPU_ISA=generic|avx2|avx512 or
// set_isa(), capped at what the processor supports. Every kernel compiled per instruction set
// (the fused linear-model passes) reads it at each call, so tests and benchmarks can run every
// path a machine can run.
#pragma once

#include <string>
#include <vector>

namespace bilevel::kernels::cpu {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

/// "generic", "avx2", "avx512".
const char* isa_name(Isa isa);
/// The best instruction set this processor supports.
Isa detected_isa();
/// Every instruction set this processor can run, lowest first.
std::vector<Isa> supported_isas();
/// The instruction set in use (BILEVEL_CPU_ISA when set, capped; else detected_isa()). Throws
/// InvalidArgument naming the variable if BILEVEL_CPU_ISA is not a known name.
Isa active_isa();
/// Selects the instruction set for every later kernel call (the whole process); capped at
/// detected_isa(). Returns what is in use now.
Isa set_isa(Isa isa);
/// Parses "generic", "avx2" or "avx512"; InvalidArgument naming `what` otherwise.
Isa parse_isa(const std::string& text, const std::string& what);
/// Empty, or one sentence saying that the instruction set asked for was capped.
std::string isa_note();

}  // namespace bilevel::kernels::cpu
