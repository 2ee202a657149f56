// CPU twin of the bandit kernels: one loop iteration per instance.
#include "../bandit_kernels.hpp"

#include "../common/bandit.hpp"

namespace bilevel::kernels::cpu {
namespace {

template <typename T>
class CpuBanditKernels final : public BanditKernels<T> {
 public:
  void lower(const BanditShape<T>& s, const T* nu, const T* theta, const T* v, T* gy, T* hv,
             T* jv, T* g) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t b = 0; b < s.instances; ++b)
      common::bandit_lower(s.actions, s.tau, nu + b * s.ldnu, theta + b * s.ldy,
                           v ? v + b * s.ldy : nullptr, gy ? gy + b * s.ldy : nullptr,
                           hv ? hv + b * s.ldy : nullptr, jv ? jv + b * s.ldnu : nullptr,
                           g ? g + b : nullptr);
  }
  void upper(const BanditShape<T>& s, const T* log_p, const T* theta,
             const std::int32_t* samples, index_t m, index_t stride, index_t population,
             bool include_score, T* fy, T* f) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t b = 0; b < s.instances; ++b)
      common::bandit_upper(s.actions, log_p, theta + b * s.ldy,
                           samples ? samples + b * stride : nullptr, m, population,
                           include_score, fy ? fy + b * s.ldy : nullptr, f ? f + b : nullptr);
  }
};

}  // namespace

template <typename T>
std::unique_ptr<BanditKernels<T>> make_bandit_kernels() {
  return std::make_unique<CpuBanditKernels<T>>();
}
template std::unique_ptr<BanditKernels<float>> make_bandit_kernels<float>();
template std::unique_ptr<BanditKernels<double>> make_bandit_kernels<double>();

}  // namespace bilevel::kernels::cpu
