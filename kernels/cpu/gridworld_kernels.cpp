// CPU twin of the gridworld kernels: one loop iteration per instance (MDP).
#include "../gridworld_kernels.hpp"


namespace bilevel::kernels::cpu {
namespace {

template <typename T>
class CpuGridworldKernels final : public GridworldKernels<T> {
 public:
  void lower(const common::GridParams<T>& p, index_t instances, const T* nu, const T* q,
             const T* v, T* gy, T* hv, T* jv, T* g) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
#pragma omp parallel for schedule(static)
    for (index_t b = 0; b < instances; ++b)
      common::grid_lower(p, nu ? nu + b * ns : nullptr, q + b * nq, v ? v + b * nq : nullptr,
                         gy ? gy + b * nq : nullptr, hv ? hv + b * nq : nullptr,
                         jv ? jv + b * ns : nullptr, g ? g + b : nullptr);
  }
  void feedback(const common::GridParams<T>& p, index_t instances, const T* nu, const T* q,
                const T* utility, std::uint64_t seed, const std::int32_t* samples, index_t m,
                index_t stride, bool include_score, T* fx, T* fy, T* f) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
#pragma omp parallel for schedule(static)
    for (index_t b = 0; b < instances; ++b)
      common::grid_feedback(p, nu + b * ns, q + b * nq, utility + b * ns, seed,
                            static_cast<std::uint32_t>(b), samples + b * stride, m,
                            include_score, fx ? fx + b * ns : nullptr,
                            fy ? fy + b * nq : nullptr, f ? f + b : nullptr);
  }
  void evaluate(const common::GridParams<T>& p, index_t instances, const T* q, const T* utility,
                const T* j_star, const T* j_uniform, int iterations, T* out) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
#pragma omp parallel for schedule(static)
    for (index_t b = 0; b < instances; ++b) {
      const T j = common::grid_true_utility(p, q + b * nq, utility + b * ns, false, iterations);
      out[b] = j;
      out[instances + b] = (j - j_uniform[b]) / (j_star[b] - j_uniform[b]);
    }
  }
};

}  // namespace

template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels() {
  return std::make_unique<CpuGridworldKernels<T>>();
}
template std::unique_ptr<GridworldKernels<float>> make_gridworld_kernels<float>();
template std::unique_ptr<GridworldKernels<double>> make_gridworld_kernels<double>();

}  // namespace bilevel::kernels::cpu
