// Between the emulated device's scheduler (scheduler.cpp) and its runtime API (runtime.cpp).
#pragma once

#include "cuda_runtime_api.h"

namespace cuda_emulation {

/// Prints "cuda_emulation: ..." and aborts (misuse that CUDA leaves undefined, a deadlock).
[[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
/// The error cudaGetLastError returns next (a launch that could not start).
void set_launch_error(cudaError_t e);
/// Whether fresh memory is filled with 0xff bytes (Settings::fill).
bool fill_fresh_memory();

}  // namespace cuda_emulation
