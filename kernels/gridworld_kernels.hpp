// The gridworld policy-alignment kernels (formulas in kernels/common/gridworld.hpp), declared
// once and implemented per backend: kernels/cpu/gridworld_kernels.cpp,
// kernels/cuda/gridworld_kernels.cu. One thread (CPU: one loop iteration) per instance, i.e.
// per MDP; nu and jv are S x B (ld S), Q, v, gy, hv and fy are 4 S x B (ld 4 S), the utility u
// is S x B; null outputs are not computed.
#pragma once

#include "common/gridworld.hpp"

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <cstdint>
#include <memory>

namespace bilevel::kernels {

template <typename T>
class GridworldKernels {
 public:
  virtual ~GridworldKernels() = default;
  /// nu is read only for gy and g (null otherwise: H' v and J' v do not depend on it).
  virtual void lower(const common::GridParams<T>& p, index_t instances, const T* nu, const T* q,
                     const T* v, T* gy, T* hv, T* jv, T* g) = 0;
  /// m pair indices per instance (instance b's at samples + b * stride).
  virtual void feedback(const common::GridParams<T>& p, index_t instances, const T* nu,
                        const T* q, const T* utility, std::uint64_t seed,
                        const std::int32_t* samples, index_t m, index_t stride,
                        bool include_score, T* fx, T* fy, T* f) = 0;
  /// out[b] = the true utility J of pi = softmax(Q_b / tau), out[B + b] = (J - J_uniform) /
  /// (J* - J_uniform) with j_star and j_uniform per instance.
  virtual void evaluate(const common::GridParams<T>& p, index_t instances, const T* q,
                        const T* utility, const T* j_star, const T* j_uniform, int iterations,
                        T* out) = 0;
};

template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels(Executor& exec);

namespace cpu {
template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels();
}
namespace cuda {
template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels(void* stream);
}

}  // namespace bilevel::kernels
