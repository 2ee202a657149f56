// The policy-alignment bandit's kernels (formulas in kernels/common/bandit.hpp), declared once
// and implemented per backend: kernels/cpu/bandit_kernels.cpp, kernels/cuda/bandit_kernels.cu.
// One thread (CPU: one loop iteration) per instance; nu is A x B (ld ldnu), theta, v, gy, hv,
// fy are (A - 1) x B (ld ldy), jv is A x B (ld ldnu); null outputs are not computed.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>

#include <cstdint>
#include <memory>

namespace bilevel::kernels {

template <typename T>
struct BanditShape {
  int actions = 0;
  index_t instances = 0;
  T tau = T(1);
  index_t ldnu = 0, ldy = 0;
};

template <typename T>
class BanditKernels {
 public:
  virtual ~BanditKernels() = default;
  virtual void lower(const BanditShape<T>& s, const T* nu, const T* theta, const T* v, T* gy,
                     T* hv, T* jv, T* g) = 0;
  /// samples: m indices per instance (instance b's at samples + b * stride), or null (exact).
  virtual void upper(const BanditShape<T>& s, const T* log_p, const T* theta,
                     const std::int32_t* samples, index_t m, index_t stride, index_t population,
                     bool include_score, T* fy, T* f) = 0;
};

template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels(Executor& exec);

namespace cpu {
template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels();
}
namespace cuda {
template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels(void* stream);
}

}  // namespace bilevel::kernels
