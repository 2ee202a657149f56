// CPU twin of the fused linear-model oracles: runs the passes compiled for the instruction set in
// use (cpu_isa.hpp: the best this processor has, or the one BILEVEL_CPU_ISA asks for).
#include "../linear_model_kernels.hpp"

#include "../common/batch_math.hpp"
#include "../common/bf16.hpp"
#include "../common/philox.hpp"
#include "cpu_isa.hpp"

#include <bilevel/error.hpp>

#include <limits>
#include <vector>

namespace bilevel::kernels::cpu {

#define BILEVEL_DECLARE_PASSES(isa)                                                      \
  namespace isa {                                                                        \
  template <typename T>                                                                  \
  void softmax_cross_entropy(const LinearModelBatch<T>&, const LinearModelOutputs<T>&,   \
                             const LinearModelWorkspace<T>&);                            \
  }
BILEVEL_DECLARE_PASSES(generic)
BILEVEL_DECLARE_PASSES(avx2)
BILEVEL_DECLARE_PASSES(avx512)
#undef BILEVEL_DECLARE_PASSES

namespace {

template <typename T>
class CpuLinearModelKernels final : public LinearModelKernels<T> {
 public:
  using LinearModelKernels<T>::softmax_cross_entropy;
  void softmax_cross_entropy(const LinearModelCall<T>* calls, int count) override {
    BILEVEL_EXPECTS(count >= 1 && count <= kMaxLinearModelCalls,
                    "linear model oracle: 1 to " << kMaxLinearModelCalls << " calls, got " << count);
    for (int c = 0; c < count; ++c) {
      // a drawn batch: its indices written once here (the passes read each sample's more than
      // once), the same common::sample_index the sampler and the CUDA kernels use
      const LinearModelBatch<T>& b = calls[c].batch.drawn ? drawn_indices(calls[c].batch, c)
                                                          : calls[c].batch;
      const LinearModelOutputs<T>& o = calls[c].outputs;
      const LinearModelWorkspace<T>& ws = calls[c].workspace;
      BILEVEL_EXPECTS(o.w != nullptr, "linear model oracle: no weights");
      BILEVEL_EXPECTS((o.hv == nullptr && (o.jv == nullptr || o.jv_loss)) || o.v != nullptr,
                      "linear model oracle: H v and J v need v");
      BILEVEL_EXPECTS(!o.jv_loss || (o.grad == nullptr && o.hv == nullptr),
                      "linear model oracle: the loss terms of grad_x g go alone");
      BILEVEL_EXPECTS(o.jv == nullptr || b.x != nullptr,
                      "linear model oracle: J v needs the weight logits x");
      detail::note_fused_flops(linear_model_flops(calls[c]));
      if (o.step == nullptr) {
        passes(b, o, ws);
        continue;
      }
      // a fused step: the products into scratch (the passes read w and v while they write),
      // then the step with the formulas of Ops::batch_axpy and Ops::neumann_step
      BILEVEL_EXPECTS(!o.accumulate && o.jv == nullptr && (o.grad == nullptr || o.grad == o.w) &&
                          (o.hv == nullptr || (o.hv == o.v && o.sum != nullptr)),
                      "linear model oracle: a fused step updates w or v in place, one call, no jv");
      const index_t n = b.rows * b.classes * b.instances;
      LinearModelOutputs<T> into = o;
      step_scratch_.resize(static_cast<std::size_t>(n));
      if (o.grad) into.grad = step_scratch_.data();
      if (o.hv) into.hv = step_scratch_.data();
      into.step = nullptr;
      passes(b, into, ws);
      const index_t per_instance = b.rows * b.classes;
      const T* g = step_scratch_.data();
      T* out = o.grad ? o.grad : o.hv;
      // instance by instance, its step read once and the branch outside the loops, which then
      // vectorize (a division per entry and a branch inside one loop were 3% of BO-REP at B = 64)
      const bool gradient = o.grad != nullptr;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
      for (index_t inst = 0; inst < b.instances; ++inst) {
        const T s = o.step[inst];
        const T* gi = g + inst * per_instance;
        T* oi = out + inst * per_instance;
        if (gradient) {
#pragma omp simd
          for (index_t e = 0; e < per_instance; ++e) oi[e] += T(-1) * s * gi[e];
        } else {
          T* si = o.sum + inst * per_instance;
#pragma omp simd
          for (index_t e = 0; e < per_instance; ++e) common::neumann_step(s, gi[e], oi[e], si[e]);
        }
      }
    }
    // counted as the CUDA kernels are: one coefficient and one back-product launch for all calls
    detail::note_launches(2);
  }
  void expand_bf16_columns(const std::uint16_t* src, index_t rows, const sample_index_t* idx,
                           index_t offset, index_t count, T* dst) override {
    detail::note_launches();
#pragma omp parallel for schedule(static) if (rows * count > (1 << 15))
    for (index_t i = 0; i < count; ++i) {
      const std::uint16_t* col = src + (idx ? static_cast<index_t>(idx[i]) : offset + i) * rows;
      for (index_t j = 0; j < rows; ++j) dst[i * rows + j] = common::data_value<T>(col[j]);
    }
  }
  void round_to_bf16(const T* src, index_t n, std::uint16_t* dst) override {
    detail::note_launches();
#pragma omp parallel for schedule(static) if (n > (1 << 15))
    for (index_t e = 0; e < n; ++e) dst[e] = common::float_to_bf16(static_cast<float>(src[e]));
  }
  index_t max_columns() const override { return std::numeric_limits<index_t>::max(); }

 private:
  void passes(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
              const LinearModelWorkspace<T>& ws) {
    switch (active_isa()) {
      case Isa::avx512: avx512::softmax_cross_entropy(b, o, ws); break;
      case Isa::avx2: avx2::softmax_cross_entropy(b, o, ws); break;
      case Isa::generic: generic::softmax_cross_entropy(b, o, ws); break;
    }
  }

  /// `b` with its drawn indices written to scratch of call c.
  const LinearModelBatch<T>& drawn_indices(const LinearModelBatch<T>& b, int c) {
    const index_t groups = b.index_stride > 0 ? b.instances : 1;
    const index_t stride = b.index_stride > 0 ? b.index_stride : b.count;
    std::vector<sample_index_t>& idx = scratch_[c];
    idx.resize(static_cast<std::size_t>(groups * stride));
    const std::uint32_t step =
        b.draw_step + (b.draw_step_on_device != nullptr ? *b.draw_step_on_device : 0u);
#pragma omp parallel for schedule(static) if (groups * b.count > 4096)
    for (index_t e = 0; e < groups * b.count; ++e) {
      const index_t g = e / b.count, i = e % b.count;
      idx[static_cast<std::size_t>(i + g * stride)] =
          common::draw_index(b.draw_seed, b.draw_stream, step, static_cast<std::uint32_t>(g), i,
                             b.count, b.population, b.draw_epochs);
    }
    drawn_[c] = b;
    drawn_[c].drawn = false;
    drawn_[c].indices = idx.data();
    return drawn_[c];
  }

  std::vector<sample_index_t> scratch_[kMaxLinearModelCalls];
  std::vector<T> step_scratch_;  // the products of a fused step
  LinearModelBatch<T> drawn_[kMaxLinearModelCalls];
};

}  // namespace

template <typename T>
std::unique_ptr<LinearModelKernels<T>> make_linear_model_kernels() {
  return std::make_unique<CpuLinearModelKernels<T>>();
}

template std::unique_ptr<LinearModelKernels<float>> make_linear_model_kernels<float>();
template std::unique_ptr<LinearModelKernels<double>> make_linear_model_kernels<double>();

}  // namespace bilevel::kernels::cpu
