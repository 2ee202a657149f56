// The CPU backend: host memory, OpenMP loops and OpenBLAS. It is the reference that every CUDA
// kernel is tested against.
#pragma once

#include <bilevel/executor.hpp>

#include <memory>

namespace bilevel::kernels::cpu {

std::shared_ptr<Executor> make_cpu_executor();

}  // namespace bilevel::kernels::cpu
