// The CPU linear-model passes compiled for one instruction set (generic; flags in CMakeLists.txt):
// vectors of 16 bytes, 16 vector registers.
#define BILEVEL_CPU_ISA generic
#define BILEVEL_CPU_VECTOR_BYTES 16
#define BILEVEL_CPU_VECTOR_REGISTERS 16
#include "linear_model_passes.hpp"
