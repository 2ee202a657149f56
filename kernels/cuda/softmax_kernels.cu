// CUDA softmax cross-entropy kernels: one thread per (sample, instance) reads its C logits once.
#include "../softmax_kernels.hpp"

#include "../common/softmax.hpp"
#include "cuda_error.hpp"
#include "elementwise.cuh"

#include <cuda_runtime_api.h>

#include <algorithm>

namespace bilevel::kernels::cuda {
namespace {

template <typename T>
__device__ __forceinline__ index_t data_index(const SoftmaxBatch<T>& b, index_t i, index_t inst) {
  return b.indices ? static_cast<index_t>(b.indices[i + inst * b.index_stride]) : i;
}

template <typename T>
__device__ __forceinline__ T weight(const SoftmaxBatch<T>& b, index_t k, index_t inst) {
  return b.x ? b.scale * common::sigmoid(b.x[k + inst * b.ldx]) : b.scale;
}

/// f(i, inst) over samples x instances.
template <typename F>
void launch(cudaStream_t s, index_t samples, index_t instances, F f, const char* name) {
  launch_elementwise(s, samples, instances, f, name);
}

template <typename T>
class CudaSoftmaxKernels final : public SoftmaxKernels<T> {
 public:
  explicit CudaSoftmaxKernels(cudaStream_t stream) : stream_(stream) {}

  void gradient(const SoftmaxBatch<T>& b, T* z, index_t ldz) override {
    detail::note_launches();
    launch(
        stream_, b.samples, b.instances,
        [=] __device__(index_t i, index_t inst) {
          const index_t k = data_index(b, i, inst);
          common::ce_gradient(z + i + inst * b.classes * ldz, ldz, b.classes, b.labels[k],
                              weight(b, k, inst));
        },
        "softmax_gradient");
  }
  void hvp_jvp(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* u, index_t ldu, T* jv,
               index_t ldjv) override {
    detail::note_launches();
    launch(
        stream_, b.samples, b.instances,
        [=] __device__(index_t i, index_t inst) {
          const index_t k = data_index(b, i, inst);
          const T w = weight(b, k, inst);
          const T cross = common::ce_hvp(z + i + inst * b.classes * ldz, ldz,
                                         u + i + inst * b.classes * ldu, ldu, b.classes,
                                         b.labels[k], w);
          if (jv != nullptr) {
            const T s = common::sigmoid(b.x[k + inst * b.ldx]);
            // a batch drawn with replacement may hold sample k twice
            atomicAdd(jv + k + inst * ldjv, b.scale * s * (T(1) - s) * cross);
          }
        },
        "softmax_hvp_jvp");
  }
  void loss_cross(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* gx,
                  index_t ldgx) override {
    detail::note_launches();
    launch(
        stream_, b.samples, b.instances,
        [=] __device__(index_t i, index_t inst) {
          const index_t k = data_index(b, i, inst);
          const T s = common::sigmoid(b.x[k + inst * b.ldx]);
          // a batch drawn with replacement may hold sample k twice
          atomicAdd(gx + k + inst * ldgx,
                    b.scale * s * (T(1) - s) *
                        common::ce_loss(z + i + inst * b.classes * ldz, ldz, b.classes,
                                        b.labels[k]));
        },
        "softmax_loss_cross");
  }
  void loss(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* out, index_t ldo) override {
    detail::note_launches();
    launch(
        stream_, b.samples, b.instances,
        [=] __device__(index_t i, index_t inst) {
          const index_t k = data_index(b, i, inst);
          out[i + inst * ldo] = weight(b, k, inst) *
                                common::ce_loss(z + i + inst * b.classes * ldz, ldz, b.classes,
                                                b.labels[k]);
        },
        "softmax_loss");
  }
  void correct(const SoftmaxBatch<T>& b, const T* z, index_t ldz, T* out, index_t ldo) override {
    detail::note_launches();
    launch(
        stream_, b.samples, b.instances,
        [=] __device__(index_t i, index_t inst) {
          const index_t k = data_index(b, i, inst);
          out[i + inst * ldo] =
              common::argmax(z + i + inst * b.classes * ldz, ldz, b.classes) == b.labels[k]
                  ? T(1)
                  : T(0);
        },
        "softmax_correct");
  }

 private:
  cudaStream_t stream_;
};

}  // namespace

template <typename T>
std::unique_ptr<SoftmaxKernels<T>> make_softmax_kernels(void* stream) {
  return std::make_unique<CudaSoftmaxKernels<T>>(static_cast<cudaStream_t>(stream));
}

template std::unique_ptr<SoftmaxKernels<float>> make_softmax_kernels<float>(void*);
template std::unique_ptr<SoftmaxKernels<double>> make_softmax_kernels<double>(void*);

}  // namespace bilevel::kernels::cuda
