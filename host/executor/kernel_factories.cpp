// Per-backend kernel families: picks the implementation of the executor's backend.
#include "../../kernels/bandit_kernels.hpp"
#include "../../kernels/gridworld_kernels.hpp"
#include "../../kernels/linear_model_kernels.hpp"
#include "../../kernels/meta_kernels.hpp"
#include "../../kernels/softmax_kernels.hpp"

#include <bilevel/error.hpp>

namespace bilevel::kernels {

template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels(Executor& exec) {
  if (exec.backend() == Backend::cuda) return cuda::make_softmax_kernels<T>(exec.native_stream());
  return cpu::make_softmax_kernels<T>();
}

template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels(Executor& exec) {
  if (exec.backend() == Backend::cuda)
    return cuda::make_linear_model_kernels<T>(exec.native_stream());
  return cpu::make_linear_model_kernels<T>();
}

template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels(Executor& exec) {
  if (exec.backend() == Backend::cuda) return cuda::make_meta_kernels<T>(exec.native_stream());
  return cpu::make_meta_kernels<T>();
}

template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels(Executor& exec) {
  if (exec.backend() == Backend::cuda) return cuda::make_bandit_kernels<T>(exec.native_stream());
  return cpu::make_bandit_kernels<T>();
}

template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels(Executor& exec) {
  if (exec.backend() == Backend::cuda)
    return cuda::make_gridworld_kernels<T>(exec.native_stream());
  return cpu::make_gridworld_kernels<T>();
}

template std::unique_ptr<SoftmaxKernels<float>> make_softmax_kernels<float>(Executor&);
template std::unique_ptr<SoftmaxKernels<double>> make_softmax_kernels<double>(Executor&);
template std::unique_ptr<LinearModelKernels<float>> make_linear_model_kernels<float>(Executor&);
template std::unique_ptr<LinearModelKernels<double>> make_linear_model_kernels<double>(Executor&);
template std::unique_ptr<MetaKernels<float>> make_meta_kernels<float>(Executor&);
template std::unique_ptr<MetaKernels<double>> make_meta_kernels<double>(Executor&);
template std::unique_ptr<BanditKernels<float>> make_bandit_kernels<float>(Executor&);
template std::unique_ptr<BanditKernels<double>> make_bandit_kernels<double>(Executor&);
template std::unique_ptr<GridworldKernels<float>> make_gridworld_kernels<float>(Executor&);
template std::unique_ptr<GridworldKernels<double>> make_gridworld_kernels<double>(Executor&);

}  // namespace bilevel::kernels
