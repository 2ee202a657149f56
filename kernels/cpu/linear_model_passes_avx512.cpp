// The CPU linear-model passes compiled for one instruction set (avx512; flags in CMakeLists.txt).
#define BILEVEL_CPU_ISA avx512
#include "linear_model_passes.hpp"
