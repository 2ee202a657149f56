// CPU twin of the softmax cross-entropy kernels: OpenMP over samples.
#include "../softmax_kernels.hpp"

#include "../common/softmax.hpp"

namespace bilevel::kernels::cpu {
namespace {

template <typename T>
index_t data_index(const SoftmaxBatch<T>& b, index_t i, index_t inst) {
  return b.indices ? static_cast<index_t>(b.indices[i + inst * b.index_stride]) : i;
}

template <typename T>
T weight(const SoftmaxBatch<T>& b, index_t k, index_t inst) {
  return b.x ? b.scale * common::sigmoid(b.x[k + inst * b.ldx]) : b.scale;
}

template <typename T>
class CpuSoftmaxKernels final : public SoftmaxKernels<T> {
 public:
  void gradient(const SoftmaxBatch<T>& b, T* z, index_t ldz) override {
    detail::note_launches();
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t inst = 0; inst < b.instances; ++inst)
      for (index_t i = 0; i < b.samples; ++i) {
        const index_t k = data_index(b, i, inst);
        common::ce_gradient(z + i + inst * b.classes * ldz, ldz, b.classes, b.labels[k],
                            weight(b, k, inst));
      }
  }
  void hvp_jvp(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* u, index_t ldu, T* jv,
               index_t ldjv) override {
    detail::note_launches();
    // Parallel over instances only: samples of one instance may share a jv entry (a batch is
    // drawn with replacement), so they are accumulated in order.
#pragma omp parallel for schedule(static)
    for (index_t inst = 0; inst < b.instances; ++inst)
      for (index_t i = 0; i < b.samples; ++i) {
        const index_t k = data_index(b, i, inst);
        const T w = weight(b, k, inst);
        const T cross = common::ce_hvp(z + i + inst * b.classes * ldz, ldz,
                                       u + i + inst * b.classes * ldu, ldu, b.classes,
                                       b.labels[k], w);
        if (jv != nullptr) {
          const T s = common::sigmoid(b.x[k + inst * b.ldx]);
          jv[k + inst * ldjv] += b.scale * s * (T(1) - s) * cross;
        }
      }
  }
  void loss_cross(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* gx,
                  index_t ldgx) override {
    detail::note_launches();
    // parallel over instances only: a batch drawn with replacement may repeat a sample
#pragma omp parallel for schedule(static)
    for (index_t inst = 0; inst < b.instances; ++inst)
      for (index_t i = 0; i < b.samples; ++i) {
        const index_t k = data_index(b, i, inst);
        const T s = common::sigmoid(b.x[k + inst * b.ldx]);
        gx[k + inst * ldgx] += b.scale * s * (T(1) - s) *
                               common::ce_loss(z + i + inst * b.classes * ldz, ldz, b.classes,
                                               b.labels[k]);
      }
  }
  void loss(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* out, index_t ldo) override {
    detail::note_launches();
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t inst = 0; inst < b.instances; ++inst)
      for (index_t i = 0; i < b.samples; ++i) {
        const index_t k = data_index(b, i, inst);
        out[i + inst * ldo] = weight(b, k, inst) *
                              common::ce_loss(z + i + inst * b.classes * ldz, ldz, b.classes,
                                              b.labels[k]);
      }
  }
  void correct(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* out, index_t ldo) override {
    detail::note_launches();
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t inst = 0; inst < b.instances; ++inst)
      for (index_t i = 0; i < b.samples; ++i) {
        const index_t k = data_index(b, i, inst);
        out[i + inst * ldo] =
            common::argmax(z + i + inst * b.classes * ldz, ldz, b.classes) == b.labels[k] ? T(1)
                                                                                          : T(0);
      }
  }
};

}  // namespace

template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels() {
  return std::make_unique<CpuSoftmaxKernels<T>>();
}

template std::unique_ptr<SoftmaxKernels<float>> make_softmax_kernels<float>();
template std::unique_ptr<SoftmaxKernels<double>> make_softmax_kernels<double>();

}  // namespace bilevel::kernels::cpu
