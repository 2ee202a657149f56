// CUDA gridworld kernels: one thread per instance (MDP). The MDPs are small (S <= 64) and the
// rollouts sequential, so a thread walks its own; 1,000 gridworlds are 1,000 threads. A thread
// per (instance, feedback pair) with a reduction would be the next step for wide batches.
#include "../gridworld_kernels.hpp"

#include "cuda_error.hpp"
#include "elementwise.cuh"

#include <cuda_runtime_api.h>

namespace bilevel::kernels::cuda {
namespace {

template <typename T>
class CudaGridworldKernels final : public GridworldKernels<T> {
 public:
  explicit CudaGridworldKernels(cudaStream_t stream) : stream_(stream) {}
  void lower(const common::GridParams<T>& p, index_t instances, const T* nu, const T* q,
             const T* v, T* gy, T* hv, T* jv, T* g) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
    launch_elementwise(
        stream_, instances, 1,
        [=] __device__(index_t b, index_t) {
          common::grid_lower(p, nu ? nu + b * ns : nullptr, q + b * nq, v ? v + b * nq : nullptr,
                             gy ? gy + b * nq : nullptr, hv ? hv + b * nq : nullptr,
                             jv ? jv + b * ns : nullptr, g ? g + b : nullptr);
        },
        "grid_lower");
  }
  void feedback(const common::GridParams<T>& p, index_t instances, const T* nu, const T* q,
                const T* utility, std::uint64_t seed, const std::int32_t* samples, index_t m,
                index_t stride, bool include_score, T* fx, T* fy, T* f) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
    launch_elementwise(
        stream_, instances, 1,
        [=] __device__(index_t b, index_t) {
          common::grid_feedback(p, nu + b * ns, q + b * nq, utility + b * ns, seed,
                                static_cast<std::uint32_t>(b), samples + b * stride, m,
                                include_score, fx ? fx + b * ns : nullptr,
                                fy ? fy + b * nq : nullptr, f ? f + b : nullptr);
        },
        "grid_feedback");
  }
  void evaluate(const common::GridParams<T>& p, index_t instances, const T* q, const T* utility,
                const T* j_star, const T* j_uniform, int iterations, T* out) override {
    detail::note_launches();
    const index_t ns = p.states(), nq = common::kGridMoves * ns;
    launch_elementwise(
        stream_, instances, 1,
        [=] __device__(index_t b, index_t) {
          const T j =
              common::grid_true_utility(p, q + b * nq, utility + b * ns, false, iterations);
          out[b] = j;
          out[instances + b] = (j - j_uniform[b]) / (j_star[b] - j_uniform[b]);
        },
        "grid_evaluate");
  }

 private:
  cudaStream_t stream_;
};

}  // namespace

template <typename T>
std::unique_ptr<GridworldKernels<T>> make_gridworld_kernels(void* stream) {
  return std::make_unique<CudaGridworldKernels<T>>(static_cast<cudaStream_t>(stream));
}

template std::unique_ptr<GridworldKernels<float>> make_gridworld_kernels<float>(void*);
template std::unique_ptr<GridworldKernels<double>> make_gridworld_kernels<double>(void*);

}  // namespace bilevel::kernels::cuda
