// CUDA meta-learning kernels: one thread per element (activations) or per (point, task) (task
// draws), through the shared element-wise launch shape.
#include "../meta_kernels.hpp"

#include "../common/activation.hpp"
#include "../common/episodes.hpp"
#include "../common/sinusoid.hpp"
#include "cuda_error.hpp"
#include "elementwise.cuh"

#include <cuda_runtime_api.h>

namespace bilevel::kernels::cuda {
namespace {

template <typename T>
class CudaMetaKernels final : public MetaKernels<T> {
 public:
  explicit CudaMetaKernels(cudaStream_t stream) : stream_(stream) {}

  void sample_sinusoid(const SinusoidDraw<T>& d) override {
    detail::note_launches();
    launch_elementwise(
        stream_, d.support + d.query, d.tasks,
        [=] __device__(index_t j, index_t b) {
          const std::uint32_t step = d.step + (d.step_on_device ? *d.step_on_device : 0u);
          common::sinusoid_point(d, step, j, b);
        },
        "sample_sinusoid");
  }
  void sample_episodes(const EpisodeDraw<T>& d) override {
    detail::note_launches();
    launch_elementwise(
        stream_, d.ways, d.tasks,
        [=] __device__(index_t j, index_t b) {
          const std::uint32_t step = d.step + (d.step_on_device ? *d.step_on_device : 0u);
          common::episode_way(d, step, b, j);
        },
        "sample_episodes");
  }
  void gather_columns(index_t rows, index_t count, const float* data, const std::int32_t* index,
                      T scale, T* out) override {
    detail::note_launches();
    launch_elementwise(
        stream_, rows, count,
        [=] __device__(index_t r, index_t i) {
          out[r + i * rows] = scale * static_cast<T>(data[static_cast<index_t>(index[i]) * rows + r]);
        },
        "gather_columns");
  }
  void ce_gradient(index_t samples, int classes, const T* z, const T* y, T scale,
                   T* out) override {
    detail::note_launches();
    launch_elementwise(
        stream_, samples, 1,
        [=] __device__(index_t i, index_t) {
          T* o = out + i * classes;
          for (int c = 0; c < classes; ++c) o[c] = z[i * classes + c];
          common::ce_gradient(o, 1, classes, common::one_hot_label(y + i * classes, classes),
                              scale);
        },
        "ce_gradient");
  }
  void ce_rop(index_t samples, int classes, const T* z, const T* rz, T scale, T* out) override {
    detail::note_launches();
    launch_elementwise(
        stream_, samples, 1,
        [=] __device__(index_t i, index_t) {
          T* o = out + i * classes;
          for (int c = 0; c < classes; ++c) o[c] = rz[i * classes + c];
          (void)common::ce_hvp(z + i * classes, 1, o, 1, classes, 0, scale);
        },
        "ce_rop");
  }
  void ce_loss(index_t samples, int classes, const T* z, const T* y, T* loss,
               T* correct) override {
    detail::note_launches();
    launch_elementwise(
        stream_, samples, 1,
        [=] __device__(index_t i, index_t) {
          const int label = common::one_hot_label(y + i * classes, classes);
          loss[i] = common::ce_loss(z + i * classes, 1, classes, label);
          if (correct)
            correct[i] = common::argmax(z + i * classes, 1, classes) == label ? T(1) : T(0);
        },
        "ce_loss");
  }
  void add_bias(int activation, int mode, index_t w, index_t n, index_t tasks, T* z,
                const T* bias, index_t bias_stride, const T* zref, T* out) override {
    detail::note_launches();
    const index_t per_task = w * n;
    launch_elementwise(
        stream_, per_task, tasks,
        [=] __device__(index_t k, index_t b) {
          const index_t e = k + b * per_task;
          common::bias_activation(activation, mode, z + e, bias[k % w + b * bias_stride],
                                  zref ? zref + e : nullptr, out ? out + e : nullptr);
        },
        "add_bias");
  }
  void activation_backward(int activation, index_t n, const T* z, const T* d, T* out) override {
    detail::note_launches();
    launch_elementwise(
        stream_, n, 1,
        [=] __device__(index_t i, index_t) {
          out[i] = d[i] * common::activation_slope(activation, z[i]);
        },
        "activation_backward");
  }
  void activation_rop_backward(int activation, index_t n, const T* z, const T* d, const T* rz,
                               const T* rd, T* out) override {
    detail::note_launches();
    launch_elementwise(
        stream_, n, 1,
        [=] __device__(index_t i, index_t) {
          out[i] = rd[i] * common::activation_slope(activation, z[i]) +
                   d[i] * common::activation_curvature(activation, z[i]) * rz[i];
        },
        "activation_rop_backward");
  }

 private:
  cudaStream_t stream_;
};

}  // namespace

template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels(void* stream) {
  return std::make_unique<CudaMetaKernels<T>>(static_cast<cudaStream_t>(stream));
}

template std::unique_ptr<MetaKernels<float>> make_meta_kernels<float>(void*);
template std::unique_ptr<MetaKernels<double>> make_meta_kernels<double>(void*);

}  // namespace bilevel::kernels::cuda
