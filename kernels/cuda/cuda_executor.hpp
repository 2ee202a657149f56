// The CUDA backend: one non-default stream per executor, a cuBLAS handle bound to it.
#pragma once

#include <bilevel/executor.hpp>

#include <memory>
#include <string>

namespace bilevel::kernels::cuda {

/// Usable devices; 0 with `reason` set when there is no device or no driver (not an error).
int device_count(std::string* reason);
/// Whether the device is the emulated one (a BILEVEL_CUDA_EMULATION build).
bool device_is_emulated();
/// Throws DeviceUnavailable when the device does not exist.
std::shared_ptr<Executor> make_cuda_executor(int device);

}  // namespace bilevel::kernels::cuda
