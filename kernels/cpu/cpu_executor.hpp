// The CPU backend: host memory, OpenMP loops and OpenBLAS. It is the reference that every CUDA
// kernel is tested against.
#pragma once

#include <bilevel/executor.hpp>

#include <memory>

namespace bilevel::kernels::cpu {

std::shared_ptr<Executor> make_cpu_executor();
/// omp_set_num_threads / omp_get_max_threads, for the library's set_cpu_threads.
void set_threads(int threads);
int threads();

}  // namespace bilevel::kernels::cpu
