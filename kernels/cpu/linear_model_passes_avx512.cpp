// The CPU linear-model passes compiled for one instruction set (avx512; flags in CMakeLists.txt):
// vectors of 64 bytes, 32 vector registers.
#define BILEVEL_CPU_ISA avx512
#define BILEVEL_CPU_VECTOR_BYTES 64
#define BILEVEL_CPU_VECTOR_REGISTERS 32
#include "linear_model_passes.hpp"
