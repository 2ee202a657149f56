// The CPU backend: host memory, OpenMP loops and OpenBLAS. It is the reference that every CUDA
// kernel is tested against.
#pragma once

#include <bilevel/executor.hpp>

#include <memory>
#include <string>

namespace bilevel::kernels::cpu {

/// Throws InvalidArgument if OMP_NUM_THREADS asks for more than max_threads().
std::shared_ptr<Executor> make_cpu_executor();
/// The most threads the CPU backend accepts: 4 per core (at least 8).
int max_threads();
/// Why (one phrase, for messages).
std::string threads_limit_reason();
/// omp_set_num_threads / omp_get_max_threads, for the library's set_cpu_threads.
void set_threads(int threads);
int threads();

}  // namespace bilevel::kernels::cpu
