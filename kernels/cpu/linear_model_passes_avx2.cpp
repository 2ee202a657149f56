// The CPU linear-model passes compiled for one instruction set (avx2; flags in CMakeLists.txt).
#define BILEVEL_CPU_ISA avx2
#include "linear_model_passes.hpp"
