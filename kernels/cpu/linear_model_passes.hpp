// CPU twin of the fused linear-model oracles (kernels/linear_model_kernels.hpp): the same two
// passes as the CUDA kernels, as OpenMP loops written for the compiler's vectorizer. Included
// once per instruction set by linear_model_passes_{generic,avx2,avx512}.cpp, each compiled with
// its own flags inside its own namespace BILEVEL_CPU_ISA; linear_model_kernels.cpp picks one at
// run time. Both passes give the same bits for any thread count: pass 1 is independent per
// sample, pass 2 sums every output entry over the batch in one fixed order.
#pragma once

#ifndef BILEVEL_CPU_ISA
#error "define BILEVEL_CPU_ISA (the namespace of this instruction set) before including"
#endif

#include "../common/linear_model.hpp"
#include "../linear_model_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {
namespace {

/// Samples whose rows one inner loop reads together (register blocking of both passes).
constexpr index_t kSampleBlock = 4;

template <typename T>
struct Shape {
  index_t groups;   // 1 (shared batch) or B (independent batches)
  index_t width;    // instances per group: B or 1
  index_t columns;  // C x width
};

template <typename T>
Shape<T> shape_of(const LinearModelBatch<T>& b) {
  const bool independent = b.index_stride > 0;
  const index_t width = independent ? 1 : b.instances;
  return {independent ? b.instances : 1, width, width * b.classes};
}

template <typename T>
index_t data_sample(const LinearModelBatch<T>& b, index_t group, index_t i) {
  return b.indices ? static_cast<index_t>(b.indices[i + group * b.index_stride]) : b.offset + i;
}

/// s[r] = a_r . w over `n` features for the kSampleBlock rows a_r.
template <typename T>
inline void dot_block(const T* const* a, const T* w, index_t n, T* s) {
  T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
  const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (index_t j = 0; j < n; ++j) {
    const T wj = w[j];
    s0 += a0[j] * wj;
    s1 += a1[j] * wj;
    s2 += a2[j] * wj;
    s3 += a3[j] * wj;
  }
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
}

/// s[r * 4 + c] = a_r . w_c over `n` features for 4 rows a_r and 4 columns w_c: 16 sums from 8
/// loads per feature (register blocking; the dot_block form needs 5 loads for 4 sums).
template <typename T>
inline void dot_block4(const T* const* a, const T* const* w, index_t n, T* s) {
  T s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  T s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  const T *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, \
                               s31, s32, s33)
  for (index_t j = 0; j < n; ++j) {
    const T x0 = a0[j], x1 = a1[j], x2 = a2[j], x3 = a3[j];
    const T y0 = w0[j], y1 = w1[j], y2 = w2[j], y3 = w3[j];
    s00 += x0 * y0, s01 += x0 * y1, s02 += x0 * y2, s03 += x0 * y3;
    s10 += x1 * y0, s11 += x1 * y1, s12 += x1 * y2, s13 += x1 * y3;
    s20 += x2 * y0, s21 += x2 * y1, s22 += x2 * y2, s23 += x2 * y3;
    s30 += x3 * y0, s31 += x3 * y1, s32 += x3 * y2, s33 += x3 * y3;
  }
  const T out[16] = {s00, s01, s02, s03, s10, s11, s12, s13,
                     s20, s21, s22, s23, s30, s31, s32, s33};
  for (int k = 0; k < 16; ++k) s[k] = out[k];
}

/// Pass 1: logits of W (and V) of every sample from one read of its row, then the loss's
/// coefficients rg, rh (count x C B, ld ws.ld) and cross (count x B).
template <typename Loss, typename T>
void coefficient_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                      const LinearModelWorkspace<T>& ws) {
  const Shape<T> sh = shape_of(b);
  const int C = b.classes;
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  const index_t blocks = (b.count + kSampleBlock - 1) / kSampleBlock;
#pragma omp parallel
  {
    // logits of one block of samples: [z of W | u of V] x kSampleBlock
    std::vector<T> logits(static_cast<std::size_t>(2 * sh.columns * kSampleBlock));
    // one (sample, instance): its logits [z u] and coefficients rg, rh
    std::vector<T> zc(static_cast<std::size_t>(2 * C)), gc(static_cast<std::size_t>(C)),
        hc(static_cast<std::size_t>(C));
#pragma omp for collapse(2) schedule(static)
    for (index_t g = 0; g < sh.groups; ++g)
      for (index_t blk = 0; blk < blocks; ++blk) {
        const index_t i0 = blk * kSampleBlock, m = std::min(kSampleBlock, b.count - i0);
        const T* a[kSampleBlock];
        index_t k[kSampleBlock];
        for (index_t r = 0; r < kSampleBlock; ++r) {
          k[r] = data_sample(b, g, i0 + std::min(r, m - 1));  // a short block repeats its last row
          a[r] = b.data + k[r] * b.rows;
        }
        const T* w = o.w + g * sh.columns * b.rows;
        const T* v = second ? o.v + g * sh.columns * b.rows : nullptr;
        // z_r = W' a_r, u_r = V' a_r for the block's rows: columns of [W V] four at a time
        const index_t total = second ? 2 * sh.columns : sh.columns;
        const auto column = [&](index_t col) {
          return col < sh.columns ? w + col * b.rows : v + (col - sh.columns) * b.rows;
        };
        index_t col = 0;
        for (; col + 4 <= total; col += 4) {
          const T* wc[4] = {column(col), column(col + 1), column(col + 2), column(col + 3)};
          T sums[16];
          dot_block4(a, wc, b.rows, sums);
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) logits[(col + c) * kSampleBlock + r] = sums[r * 4 + c];
        }
        for (; col < total; ++col) dot_block(a, column(col), b.rows, &logits[col * kSampleBlock]);
        // coefficients of each (sample, instance)
        for (index_t r = 0; r < m; ++r)
          for (index_t bi = 0; bi < sh.width; ++bi) {
            const index_t inst = g * sh.width + bi;  // the instance
            for (int c = 0; c < C; ++c) {
              zc[c] = logits[(bi * C + c) * kSampleBlock + r];
              if (second) zc[C + c] = logits[(sh.columns + bi * C + c) * kSampleBlock + r];
            }
            const T weight = b.x ? b.scale * common::sigmoid(b.x[k[r] + inst * b.ldx]) : b.scale;
            const index_t i = i0 + r;
            T* rg = o.grad ? ws.rg + i + inst * C * ws.ld : nullptr;
            T* rh = o.hv ? ws.rh + i + inst * C * ws.ld : nullptr;
            const T cross = Loss::coefficients(zc.data(), second ? zc.data() + C : nullptr, C,
                                               b.labels[k[r]], weight, rg ? gc.data() : nullptr,
                                               rh ? hc.data() : nullptr);
            for (int c = 0; c < C; ++c) {
              if (rg) rg[c * ws.ld] = gc[c];
              if (rh) rh[c * ws.ld] = hc[c];
            }
            if (o.jv) ws.cross[i + inst * ws.ld] = cross;
          }
      }
  }
}

/// out[:, col] (+)= sum_i R[i, col] a_i over the batch, for the columns of group g, rows
/// [j0, j0 + jb): an accumulator tile of jb x columns, the batch read in blocks of 4 rows.
template <typename T>
void back_product_tile(const LinearModelBatch<T>& b, const Shape<T>& sh, index_t g, index_t j0,
                       index_t jb, const T* R, index_t ldr, const T* init, T reg2, bool accumulate,
                       T* out, T* acc) {
  const index_t col0 = g * sh.columns;
  for (index_t col = 0; col < sh.columns; ++col) {
    T* t = acc + col * jb;
    const T* o = out + (col0 + col) * b.rows + j0;
    if (accumulate) {
      for (index_t jj = 0; jj < jb; ++jj) t[jj] = o[jj];
    } else if (reg2 != T(0)) {
      const T* in = init + (col0 + col) * b.rows + j0;
      for (index_t jj = 0; jj < jb; ++jj) t[jj] = reg2 * in[jj];
    } else {
      for (index_t jj = 0; jj < jb; ++jj) t[jj] = T(0);
    }
  }
  for (index_t i0 = 0; i0 < b.count; i0 += kSampleBlock) {
    const index_t m = std::min(kSampleBlock, b.count - i0);
    const T* a[kSampleBlock];
    for (index_t r = 0; r < kSampleBlock; ++r)
      a[r] = b.data + data_sample(b, g, i0 + std::min(r, m - 1)) * b.rows + j0;
    const T* rcol = R + i0 + col0 * ldr;
    if (m == kSampleBlock) {
      const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
      index_t col = 0;
      // four columns at a time: each row segment loaded once for 16 products
      for (; col + 4 <= sh.columns; col += 4) {
        const T* rc = rcol + col * ldr;
        const T r00 = rc[0], r10 = rc[1], r20 = rc[2], r30 = rc[3];
        const T r01 = rc[ldr], r11 = rc[ldr + 1], r21 = rc[ldr + 2], r31 = rc[ldr + 3];
        const T r02 = rc[2 * ldr], r12 = rc[2 * ldr + 1], r22 = rc[2 * ldr + 2],
                r32 = rc[2 * ldr + 3];
        const T r03 = rc[3 * ldr], r13 = rc[3 * ldr + 1], r23 = rc[3 * ldr + 2],
                r33 = rc[3 * ldr + 3];
        T* t0 = acc + col * jb;
        T* t1 = t0 + jb;
        T* t2 = t1 + jb;
        T* t3 = t2 + jb;
#pragma omp simd
        for (index_t jj = 0; jj < jb; ++jj) {
          const T x0 = a0[jj], x1 = a1[jj], x2 = a2[jj], x3 = a3[jj];
          t0[jj] += ((r00 * x0 + r10 * x1) + (r20 * x2 + r30 * x3));
          t1[jj] += ((r01 * x0 + r11 * x1) + (r21 * x2 + r31 * x3));
          t2[jj] += ((r02 * x0 + r12 * x1) + (r22 * x2 + r32 * x3));
          t3[jj] += ((r03 * x0 + r13 * x1) + (r23 * x2 + r33 * x3));
        }
      }
      for (; col < sh.columns; ++col) {
        const T* rc = rcol + col * ldr;
        const T r0 = rc[0], r1 = rc[1], r2 = rc[2], r3 = rc[3];
        T* t = acc + col * jb;
#pragma omp simd
        for (index_t jj = 0; jj < jb; ++jj)
          t[jj] += ((r0 * a0[jj] + r1 * a1[jj]) + (r2 * a2[jj] + r3 * a3[jj]));
      }
    } else {
      for (index_t col = 0; col < sh.columns; ++col) {
        const T* rc = rcol + col * ldr;
        T* t = acc + col * jb;
        for (index_t r = 0; r < m; ++r) {
          const T rr = rc[r];
          const T* ar = a[r];
#pragma omp simd
          for (index_t jj = 0; jj < jb; ++jj) t[jj] += rr * ar[jj];
        }
      }
    }
  }
  for (index_t col = 0; col < sh.columns; ++col) {
    const T* t = acc + col * jb;
    T* o = out + (col0 + col) * b.rows + j0;
    for (index_t jj = 0; jj < jb; ++jj) o[jj] = t[jj];
  }
}

/// Pass 2: grad and hv as back-products over the batch, parallel over (group, row tile).
template <typename T>
void back_product_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                       const LinearModelWorkspace<T>& ws) {
  const Shape<T> sh = shape_of(b);
  // rows per tile: the accumulator tile (jb x columns) stays within ~32 KB
  const index_t jb = std::clamp<index_t>((8192 / std::max<index_t>(sh.columns, 1)) / 16 * 16,
                                         16, 256);
  const index_t tiles = (b.rows + jb - 1) / jb;
#pragma omp parallel
  {
    std::vector<T> acc(static_cast<std::size_t>(jb * sh.columns));
#pragma omp for collapse(2) schedule(static)
    for (index_t g = 0; g < sh.groups; ++g)
      for (index_t t = 0; t < tiles; ++t) {
        const index_t j0 = t * jb, n = std::min(jb, b.rows - j0);
        if (o.grad)
          back_product_tile(b, sh, g, j0, n, ws.rg, ws.ld, o.w, o.reg2, o.accumulate, o.grad,
                            acc.data());
        if (o.hv)
          back_product_tile(b, sh, g, j0, n, ws.rh, ws.ld, o.v, o.reg2, o.accumulate, o.hv,
                            acc.data());
      }
  }
}

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
      jv[k] += b.scale * common::sigmoid_derivative(b.x[k + inst * b.ldx]) *
               ws.cross[i + inst * ws.ld];
    }
  }
}

}  // namespace

template <typename T>
void softmax_cross_entropy(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                           const LinearModelWorkspace<T>& ws) {
  if (b.count == 0 || b.instances == 0) return;
  coefficient_pass<common::SoftmaxCrossEntropy>(b, o, ws);
  if (o.grad || o.hv) back_product_pass(b, o, ws);
  if (o.jv) jv_scatter(b, o, ws);
}

template void softmax_cross_entropy<float>(const LinearModelBatch<float>&,
                                           const LinearModelOutputs<float>&,
                                           const LinearModelWorkspace<float>&);
template void softmax_cross_entropy<double>(const LinearModelBatch<double>&,
                                            const LinearModelOutputs<double>&,
                                            const LinearModelWorkspace<double>&);

}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
