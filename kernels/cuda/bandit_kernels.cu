// CUDA bandit kernels: one thread per instance (A <= 64 actions, small and latency-bound; a
// thread per (action, instance) would be the next step for many actions).
#include "../bandit_kernels.hpp"

#include "../common/bandit.hpp"
#include "cuda_error.hpp"
#include "elementwise.cuh"

#include <cuda_runtime_api.h>

namespace bilevel::kernels::cuda {
namespace {

template <typename T>
class CudaBanditKernels final : public BanditKernels<T> {
 public:
  explicit CudaBanditKernels(cudaStream_t stream) : stream_(stream) {}
  void lower(const BanditShape<T>& s, const T* nu, const T* theta, const T* v, T* gy, T* hv,
             T* jv, T* g) override {
    detail::note_launches();
    launch_elementwise(
        stream_, s.instances, 1,
        [=] __device__(index_t b, index_t) {
          common::bandit_lower(s.actions, s.tau, nu + b * s.ldnu, theta + b * s.ldy,
                               v ? v + b * s.ldy : nullptr, gy ? gy + b * s.ldy : nullptr,
                               hv ? hv + b * s.ldy : nullptr, jv ? jv + b * s.ldnu : nullptr,
                               g ? g + b : nullptr);
        },
        "bandit_lower");
  }
  void upper(const BanditShape<T>& s, const T* log_p, const T* theta,
             const std::int32_t* samples, index_t m, index_t stride, index_t population,
             bool include_score, T* fy, T* f) override {
    detail::note_launches();
    launch_elementwise(
        stream_, s.instances, 1,
        [=] __device__(index_t b, index_t) {
          common::bandit_upper(s.actions, log_p, theta + b * s.ldy,
                               samples ? samples + b * stride : nullptr, m, population,
                               include_score, fy ? fy + b * s.ldy : nullptr, f ? f + b : nullptr);
        },
        "bandit_upper");
  }

 private:
  cudaStream_t stream_;
};

}  // namespace

template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels(void* stream) {
  return std::make_unique<CudaBanditKernels<T>>(static_cast<cudaStream_t>(stream));
}

template std::unique_ptr<BanditKernels<float>> make_bandit_kernels<float>(void*);
template std::unique_ptr<BanditKernels<double>> make_bandit_kernels<double>(void*);

}  // namespace bilevel::kernels::cuda
