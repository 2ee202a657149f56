// CPU twin of the meta-learning kernels: OpenMP loops over the same formulas as CUDA.
#include "../meta_kernels.hpp"

#include "../common/activation.hpp"
#include "../common/episodes.hpp"
#include "../common/sinusoid.hpp"

#include <type_traits>

namespace bilevel::kernels::cpu {
namespace {

template <typename T>
class CpuMetaKernels final : public MetaKernels<T> {
 public:
  void sample_sinusoid(const SinusoidDraw<T>& d) override {
    detail::note_launches();
    const std::uint32_t step = d.step + (d.step_on_device ? *d.step_on_device : 0u);
    const index_t points = d.support + d.query;
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t b = 0; b < d.tasks; ++b)
      for (index_t j = 0; j < points; ++j) common::sinusoid_point(d, step, j, b);
  }
  void sample_episodes(const EpisodeDraw<T>& d) override {
    detail::note_launches();
    const std::uint32_t step = d.step + (d.step_on_device ? *d.step_on_device : 0u);
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t b = 0; b < d.tasks; ++b)
      for (index_t j = 0; j < d.ways; ++j) common::episode_way(d, step, b, j);
  }
  void gather_columns(index_t rows, index_t count, const float* data, const std::int32_t* index,
                      T scale, T* out) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < count; ++i) {
      const float* from = data + static_cast<index_t>(index[i]) * rows;
      for (index_t r = 0; r < rows; ++r) out[r + i * rows] = scale * static_cast<T>(from[r]);
    }
  }
  void ce_gradient(index_t samples, int classes, const T* z, const T* y, T scale,
                   T* out) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < samples; ++i) {
      T* o = out + i * classes;
      for (int c = 0; c < classes; ++c) o[c] = z[i * classes + c];
      common::ce_gradient(o, 1, classes, common::one_hot_label(y + i * classes, classes), scale);
    }
  }
  void ce_rop(index_t samples, int classes, const T* z, const T* rz, T scale, T* out) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < samples; ++i) {
      T* o = out + i * classes;
      for (int c = 0; c < classes; ++c) o[c] = rz[i * classes + c];
      (void)common::ce_hvp(z + i * classes, 1, o, 1, classes, 0, scale);
    }
  }
  void ce_loss(index_t samples, int classes, const T* z, const T* y, T* loss,
               T* correct) override {
    detail::note_launches();
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < samples; ++i) {
      const int label = common::one_hot_label(y + i * classes, classes);
      loss[i] = common::ce_loss(z + i * classes, 1, classes, label);
      if (correct) correct[i] = common::argmax(z + i * classes, 1, classes) == label ? T(1) : T(0);
    }
  }
  void add_bias(int activation, int mode, index_t w, index_t n, index_t tasks, T* z,
                const T* bias, index_t bias_stride, const T* zref, T* out) override {
    detail::note_launches();
    with_constants(activation, mode, [&](auto code, auto how) {
#pragma omp parallel for collapse(2) schedule(static)
      for (index_t b = 0; b < tasks; ++b)
        for (index_t i = 0; i < n; ++i) {
          const T* bb = bias + b * bias_stride;
          const index_t k0 = (i + b * n) * w;
          for (index_t r = 0; r < w; ++r)
            common::bias_activation(code(), how(), z + k0 + r, bb[r],
                                    zref ? zref + k0 + r : nullptr, out ? out + k0 + r : nullptr);
        }
    });
  }
  void activation_backward(int activation, index_t n, const T* z, const T* d, T* out) override {
    detail::note_launches();
    with_constants(activation, 0, [&](auto code, auto) {
#pragma omp parallel for schedule(static)
      for (index_t i = 0; i < n; ++i) out[i] = d[i] * common::activation_slope(code(), z[i]);
    });
  }
  void activation_rop_backward(int activation, index_t n, const T* z, const T* d, const T* rz,
                               const T* rd, T* out) override {
    detail::note_launches();
    with_constants(activation, 0, [&](auto code, auto) {
#pragma omp parallel for schedule(static)
      for (index_t i = 0; i < n; ++i)
        out[i] = rd[i] * common::activation_slope(code(), z[i]) +
                 d[i] * common::activation_curvature(code(), z[i]) * rz[i];
    });
  }

 private:
  /// Calls f with the activation code and the add_bias mode as compile-time constants, so that
  /// the loops have no per-element branch on them and vectorise.
  template <typename F>
  static void with_constants(int activation, int mode, F f) {
    using relu = std::integral_constant<int, common::kRelu>;
    using tanh_ = std::integral_constant<int, common::kTanh>;
    const auto by_mode = [&](auto code) {
      if (mode == 1)
        f(code, std::integral_constant<int, 1>{});
      else if (mode == 2)
        f(code, std::integral_constant<int, 2>{});
      else
        f(code, std::integral_constant<int, 0>{});
    };
    if (activation == common::kRelu)
      by_mode(relu{});
    else
      by_mode(tanh_{});
  }
};

}  // namespace

template <typename T>
std::unique_ptr<MetaKernels<T>> make_meta_kernels() {
  return std::make_unique<CpuMetaKernels<T>>();
}
template std::unique_ptr<MetaKernels<float>> make_meta_kernels<float>();
template std::unique_ptr<MetaKernels<double>> make_meta_kernels<double>();

}  // namespace bilevel::kernels::cpu
