// The CPU linear-model passes compiled for one instruction set (avx2; flags in CMakeLists.txt):
// vectors of 32 bytes, 16 vector registers.
#define BILEVEL_CPU_ISA avx2
#define BILEVEL_CPU_VECTOR_BYTES 32
#define BILEVEL_CPU_VECTOR_REGISTERS 16
#include "linear_model_passes.hpp"
