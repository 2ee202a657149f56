// The CUDA runtime of the emulated device (see cuda_runtime_api.h).
#pragma once
#include "cuda_runtime_api.h"
