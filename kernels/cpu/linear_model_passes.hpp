// CPU twin of the fused linear-model oracles (kernels/linear_model_kernels.hpp): the same two
// passes as the CUDA kernels, as OpenMP loops written for the compiler's vectorizer. Included
// once per instruction set by linear_model_passes_{generic,avx2,avx512}.cpp, each compiled with
// its own flags inside its own namespace BILEVEL_CPU_ISA; linear_model_kernels.cpp picks one at
// run time. Both passes give the same bits for any thread count: pass 1 is independent per
// sample, pass 2 sums every output entry over the batch in one fixed order.
// The file per concern: linear_model_vectors.hpp (registers, loads, shapes),
// linear_model_coefficients.hpp (pass 1), linear_model_back_product.hpp (pass 2); this one
// joins them into a call (ranges that keep the rows in L2 between the passes, J v's scatter).
#pragma once

#ifndef BILEVEL_CPU_ISA
#error "define BILEVEL_CPU_ISA (the namespace of this instruction set) before including"
#endif

#include "linear_model_back_product.hpp"
#include "linear_model_coefficients.hpp"
#include "linear_model_vectors.hpp"

#include <omp.h>

#include <algorithm>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {
namespace {

/// jv[k, b] (+)= scale sigmoid'(x_kb) cross_ib over the batch in order (a sample drawn twice
/// gets both terms, summed in batch order); 0 outside the batch unless accumulating.
template <typename T>
void jv_scatter(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                const LinearModelWorkspace<T>& ws) {
#pragma omp parallel for schedule(static)
  for (index_t inst = 0; inst < b.instances; ++inst) {
    T* jv = o.jv + inst * o.ldjv;
    if (!o.accumulate) std::fill(jv, jv + o.jv_rows, T(0));
    const index_t g = b.index_stride > 0 ? inst : 0;
    for (index_t i = 0; i < b.count; ++i) {
      const index_t k = data_sample(b, g, i);
      if (k < 0) continue;  // another rank's sample
      jv[k] += b.scale * common::sigmoid_derivative(b.x[k + inst * b.ldx]) *
               ws.cross[i + inst * ws.ld];
    }
  }
}

/// Bytes of rows that one range of a one-pass call reads: half the smallest L2 of the x86 CPUs
/// the backend meets (512 KB per core on AMD Zen 2-4), so that the rows pass 1 has just read
/// are still in L2 when pass 2 reads them again.
constexpr index_t kOnePassBytes = 256 * 1024;

template <typename D, typename T>
void both_passes(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                 const LinearModelWorkspace<T>& ws) {
  coefficient_pass<common::SoftmaxCrossEntropy, D>(b, o, ws);
  if (o.grad || o.hv) back_product_pass<D>(b, o, ws);
}

/// A call whose back-product reads the rows in place (fewer than kPackedColumns columns per
/// group) in ranges of samples whose rows fit kOnePassBytes, each through both passes before
/// the next: pass 2 finds the rows pass 1 has just read in L2, and a full pass reads the data
/// from memory once instead of twice (full-batch H v + J v at B = 1 on the AVX-512 VM: 26 ->
/// 18 ms; SOBA at B = 1: 1250 -> 960 us). A range continues the back-product's sums where the
/// previous one left them (accumulate), and the logits do not depend on the range a sample is
/// in, so the bits are those of the two passes over the whole call. With more columns the
/// rows are packed (a contiguous copy the prefetchers follow) and the call runs whole: there,
/// ranges cost more in reloaded accumulators than they save.
template <typename D, typename T>
void one_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
              const LinearModelWorkspace<T>& ws) {
  const index_t row_bytes = b.rows * static_cast<index_t>(sizeof(D));
  const index_t tile = kTileSamples<T>;
  const index_t span = std::max(tile, kOnePassBytes / row_bytes / tile * tile);
  // pass 1's columns per group: W's, and V's when H v or J v is asked for
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  const index_t logit_columns = shape_of(b).columns * (second ? 2 : 1);
  if (b.count <= span || logit_columns >= kPackedColumns) return both_passes<D>(b, o, ws);
  for (index_t off = 0; off < b.count; off += span) {
    LinearModelBatch<T> part = b;
    if (b.indices != nullptr)
      part.indices = b.indices + off;  // (independent sets keep their stride)
    else
      part.offset = b.offset + off;
    part.count = std::min(span, b.count - off);
    LinearModelOutputs<T> out = o;
    out.accumulate = o.accumulate || off > 0;  // (J v is scattered once, for the whole call)
    LinearModelWorkspace<T> w = ws;
    w.rg = ws.rg ? ws.rg + off : nullptr;
    w.rh = ws.rh ? ws.rh + off : nullptr;
    w.cross = ws.cross ? ws.cross + off : nullptr;
    both_passes<D>(part, out, w);
  }
}

}  // namespace

template <typename T>
void softmax_cross_entropy(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                           const LinearModelWorkspace<T>& ws) {
  if (b.count == 0 || b.instances == 0) return;
  if (b.data_bf16 != nullptr)
    one_pass<std::uint16_t>(b, o, ws);
  else
    one_pass<T>(b, o, ws);
  if (o.jv) jv_scatter(b, o, ws);
}

template void softmax_cross_entropy<float>(const LinearModelBatch<float>&,
                                           const LinearModelOutputs<float>&,
                                           const LinearModelWorkspace<float>&);
template void softmax_cross_entropy<double>(const LinearModelBatch<double>&,
                                            const LinearModelOutputs<double>&,
                                            const LinearModelWorkspace<double>&);

}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
