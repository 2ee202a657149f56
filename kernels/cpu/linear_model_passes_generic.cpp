// The CPU linear-model passes compiled for one instruction set (generic; flags in CMakeLists.txt).
#define BILEVEL_CPU_ISA generic
#include "linear_model_passes.hpp"
