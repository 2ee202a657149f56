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

#include "../common/bf16.hpp"
#include "../common/linear_model.hpp"
#include "../linear_model_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>
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

/// Sample i of group `group` as a row of the call's data; -1: another rank's sample.
template <typename T>
index_t data_sample(const LinearModelBatch<T>& b, index_t group, index_t i) {
  const index_t k =
      b.indices ? static_cast<index_t>(b.indices[i + group * b.index_stride]) : b.offset + i;
  return common::shard_row(k, b.shard_first, b.shard_samples);
}


/// The data of a batch as stored: T, or bf16 (std::uint16_t).
template <typename D, typename T>
const D* data_of(const LinearModelBatch<T>& b) {
  if constexpr (std::is_same_v<D, std::uint16_t>)
    return b.data_bf16;
  else
    return b.data;
}

/// s[r] = a_r . w over `n` features for the kSampleBlock rows a_r.
template <typename T, typename D>
inline void dot_block(const D* const* a, const T* w, index_t n, T* s) {
  using common::data_value;
  T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
  const D *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (index_t j = 0; j < n; ++j) {
    const T wj = w[j];
    s0 += data_value<T>(a0[j]) * wj;
    s1 += data_value<T>(a1[j]) * wj;
    s2 += data_value<T>(a2[j]) * wj;
    s3 += data_value<T>(a3[j]) * wj;
  }
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
}

/// s[r * 4 + c] = a_r . w_c over `n` features for 4 rows a_r and 4 columns w_c: 16 sums from 8
/// loads per feature (register blocking; the dot_block form needs 5 loads for 4 sums).
template <typename T, typename D>
inline void dot_block4(const D* const* a, const T* const* w, index_t n, T* s) {
  using common::data_value;
  T s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  T s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  const D *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  const T *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, \
                               s31, s32, s33)
  for (index_t j = 0; j < n; ++j) {
    const T x0 = data_value<T>(a0[j]), x1 = data_value<T>(a1[j]), x2 = data_value<T>(a2[j]),
            x3 = data_value<T>(a3[j]);
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

/// Pass 1: logits of W (and V) of every sample from its row, then the loss's coefficients rg,
/// rh (count x C B, ld ws.ld) and cross (count x B). Instances are taken in chunks whose W (and
/// V) columns fit in ~512 KB, so that they stay in cache while the batch's rows stream past.
template <typename Loss, typename D, typename T>
void coefficient_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                      const LinearModelWorkspace<T>& ws) {
  const D* data = data_of<D>(b);
  const Shape<T> sh = shape_of(b);
  const int C = b.classes;
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  // A sharded call: only the batch positions of this rank's samples get logits, packed per
  // group (own_list[g count + j], j < owned[g]); the others' coefficients are zero. (Scratch kept
  // from call to call, as the threads' below.)
  const bool sharded = b.shard_samples >= 0;
  thread_local std::vector<index_t> own_list, owned;
  index_t most = b.count;
  if (sharded) {
    if (static_cast<index_t>(own_list.size()) < sh.groups * b.count)
      own_list.resize(static_cast<std::size_t>(sh.groups * b.count));
    if (static_cast<index_t>(owned.size()) < sh.groups) owned.resize(static_cast<std::size_t>(sh.groups));
    most = 0;
    for (index_t g = 0; g < sh.groups; ++g) {
      index_t n = 0;
      for (index_t i = 0; i < b.count; ++i) {
        if (data_sample(b, g, i) >= 0) {
          own_list[static_cast<std::size_t>(g * b.count + n++)] = i;
          continue;
        }
        for (index_t bi = 0; bi < sh.width; ++bi) {
          const index_t inst = g * sh.width + bi;
          for (int c = 0; c < C; ++c) {
            if (o.grad) ws.rg[i + (inst * C + c) * ws.ld] = T(0);
            if (o.hv) ws.rh[i + (inst * C + c) * ws.ld] = T(0);
          }
          if (o.jv) ws.cross[i + inst * ws.ld] = T(0);
        }
      }
      owned[static_cast<std::size_t>(g)] = n;
      most = std::max(most, n);
    }
  }
  const index_t* own_positions = own_list.data();
  const index_t* own_counts = owned.data();
  // batch position of the j-th sample this call computes in group g
  const auto position = [&](index_t g, index_t j) {
    return sharded ? own_positions[g * b.count + j] : j;
  };
  const index_t blocks = (most + kSampleBlock - 1) / kSampleBlock;
  const index_t bytes_per_instance =
      static_cast<index_t>(sizeof(T)) * C * b.rows * (second ? 2 : 1);
  const index_t chunk = std::clamp<index_t>((index_t(1) << 19) / bytes_per_instance, 1, sh.width);
  const index_t chunks = (sh.width + chunk - 1) / chunk;
#pragma omp parallel
  {
    // per-thread scratch, kept from call to call (OpenMP's threads persist: no allocation in
    // an iteration once the shapes are seen): the logits of one block of samples and one chunk
    // of instances, [z of W | u of V] x kSampleBlock; one (sample, instance)'s logits [z u] and
    // coefficients rg, rh
    thread_local std::vector<T> logits, zc, gc, hc;
    const auto at_least = [](std::vector<T>& v, index_t n) {
      if (static_cast<index_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    };
    at_least(logits, 2 * chunk * C * kSampleBlock);
    at_least(zc, 2 * C);
    at_least(gc, C);
    at_least(hc, C);
#pragma omp for collapse(3) schedule(static)
    for (index_t g = 0; g < sh.groups; ++g)
      for (index_t ch = 0; ch < chunks; ++ch)
        for (index_t blk = 0; blk < blocks; ++blk) {
          const index_t here = sharded ? own_counts[g] : b.count;
          const index_t i0 = blk * kSampleBlock, m = std::min(kSampleBlock, here - i0);
          if (m <= 0) continue;  // (sharded: this group owns fewer samples)
          const index_t b0 = ch * chunk, nbi = std::min(chunk, sh.width - b0);
          const D* a[kSampleBlock];
          index_t k[kSampleBlock];
          for (index_t r = 0; r < kSampleBlock; ++r) {
            // a short block repeats its last row
            k[r] = data_sample(b, g, position(g, i0 + std::min(r, m - 1)));
            a[r] = data + (k[r] < 0 ? 0 : k[r]) * b.rows;
          }
          // the chunk's columns: W's of instances b0 .. b0 + nbi, then V's
          const index_t wcols = nbi * C, total = second ? 2 * wcols : wcols;
          const T* w = o.w + (g * sh.columns + b0 * C) * b.rows;
          const T* v = second ? o.v + (g * sh.columns + b0 * C) * b.rows : nullptr;
          const auto column = [&](index_t col) {
            return col < wcols ? w + col * b.rows : v + (col - wcols) * b.rows;
          };
          // z_r = W' a_r, u_r = V' a_r for the block's rows: four columns at a time
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
            for (index_t bi = 0; bi < nbi; ++bi) {
              const index_t inst = g * sh.width + b0 + bi;  // the instance
              for (int c = 0; c < C; ++c) {
                zc[c] = logits[(bi * C + c) * kSampleBlock + r];
                if (second) zc[C + c] = logits[(wcols + bi * C + c) * kSampleBlock + r];
              }
              // another rank's sample (k < 0): weight 0, so zero coefficients, and no J v term
              const bool own = k[r] >= 0;
              const T weight = !own  ? T(0)
                               : b.x ? b.scale * common::sigmoid(b.x[k[r] + inst * b.ldx])
                                     : b.scale;
              const index_t i = position(g, i0 + r);
              // grad_x g's term: the sample's loss, before the coefficients overwrite z
              const T loss = o.jv_loss && own ? common::ce_loss(zc.data(), 1, C, b.labels[k[r]])
                                              : T(0);
              T* rg = o.grad ? ws.rg + i + inst * C * ws.ld : nullptr;
              T* rh = o.hv ? ws.rh + i + inst * C * ws.ld : nullptr;
              const T cross = Loss::coefficients(zc.data(), second ? zc.data() + C : nullptr, C,
                                                 b.labels[own ? k[r] : 0], weight,
                                                 rg ? gc.data() : nullptr,
                                                 rh ? hc.data() : nullptr) *
                              (own ? T(1) : T(0));
              for (int c = 0; c < C; ++c) {
                if (rg) rg[c * ws.ld] = gc[c];
                if (rh) rh[c * ws.ld] = hc[c];
              }
              if (o.jv) ws.cross[i + inst * ws.ld] = o.jv_loss ? loss : cross;
            }
        }
  }
}

/// 64-byte vectors (GCC vector extensions: one zmm register with AVX-512, two ymm with AVX2,
/// four xmm in the baseline build).
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float type __attribute__((vector_size(64)));
  static constexpr int lanes = 16;
};
template <>
struct Simd<double> {
  typedef double type __attribute__((vector_size(64)));
  static constexpr int lanes = 8;
};

template <typename T>
inline typename Simd<T>::type load_vec(const T* p) {
  typename Simd<T>::type v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store_vec(T* p, typename Simd<T>::type v) {
  std::memcpy(p, &v, sizeof v);
}

/// A vector of T from data stored as T or as bf16.
template <typename T>
inline typename Simd<T>::type load_rows(const T* p) {
  return load_vec(p);
}
/// bf16 bits, their widening to float bits, and floats, for one vector of T.
template <typename T>
struct Bf16Vec;
template <>
struct Bf16Vec<float> {
  typedef std::uint16_t half_bits __attribute__((vector_size(32)));
  typedef std::uint32_t float_bits __attribute__((vector_size(64)));
  typedef float floats __attribute__((vector_size(64)));
};
template <>
struct Bf16Vec<double> {
  typedef std::uint16_t half_bits __attribute__((vector_size(16)));
  typedef std::uint32_t float_bits __attribute__((vector_size(32)));
  typedef float floats __attribute__((vector_size(32)));
};
template <typename T>
inline typename Simd<T>::type load_rows(const std::uint16_t* p) {
  using B = Bf16Vec<T>;
  typename B::half_bits h;
  std::memcpy(&h, p, sizeof h);
  const typename B::float_bits u = __builtin_convertvector(h, typename B::float_bits) << 16;
  typename B::floats f;
  std::memcpy(&f, &u, sizeof f);
  return __builtin_convertvector(f, typename Simd<T>::type);
}

/// Output columns of one register block of the back-product.
constexpr int kBlockColumns = 8;

/// The value an output entry starts from: its old value (accumulating), reg2 init, or 0.
template <typename T>
inline T start_value(const T* out, const T* init, index_t e, T reg2, bool accumulate) {
  return accumulate ? out[e] : (reg2 != T(0) ? reg2 * init[e] : T(0));
}

/// out[j, c] (+)= sum_i R[i, c] a_i[j] for rows [j0, j0 + 2 lanes) and NC columns from c0:
/// 2 x NC vector accumulators held in registers over the whole batch, one broadcast of R and
/// two row loads per sample. Every entry sums over i in batch order.
template <int NC, typename D, typename T>
void back_product_block(const LinearModelBatch<T>& b, index_t g, index_t j0, index_t c0,
                        const T* R, index_t ldr, const T* init, T reg2, bool accumulate, T* out) {
  const D* data = data_of<D>(b);
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[NC][2];
  for (int c = 0; c < NC; ++c)
    for (int h = 0; h < 2; ++h) {
      T start[L];
      for (int l = 0; l < L; ++l)
        start[l] = start_value(out, init, (c0 + c) * b.rows + j0 + h * L + l, reg2, accumulate);
      acc[c][h] = load_vec(start);
    }
  for (index_t i = 0; i < b.count; ++i) {
    const index_t k = data_sample(b, g, i);
    if (k < 0) continue;  // another rank's sample (zero coefficients)
    const D* a = data + k * b.rows + j0;
    const V x0 = load_rows<T>(a), x1 = load_rows<T>(a + L);
    const T* r = R + i + c0 * ldr;
    for (int c = 0; c < NC; ++c) {
      const T rc = r[c * ldr];
      acc[c][0] += rc * x0;
      acc[c][1] += rc * x1;
    }
  }
  for (int c = 0; c < NC; ++c)
    for (int h = 0; h < 2; ++h) store_vec(out + (c0 + c) * b.rows + j0 + h * L, acc[c][h]);
}

/// The same for a tile of fewer than 2 lanes rows (the last rows of the data): a local tile,
/// the batch in the same order.
template <typename D, typename T>
void back_product_tail(const LinearModelBatch<T>& b, index_t g, index_t j0, index_t n,
                       index_t c0, index_t nc, const T* R, index_t ldr, const T* init, T reg2,
                       bool accumulate, T* out) {
  const D* data = data_of<D>(b);
  constexpr int L = Simd<T>::lanes;
  T t[kBlockColumns][2 * L];
  for (index_t c = 0; c < nc; ++c)
    for (index_t jj = 0; jj < n; ++jj)
      t[c][jj] = start_value(out, init, (c0 + c) * b.rows + j0 + jj, reg2, accumulate);
  for (index_t i = 0; i < b.count; ++i) {
    const index_t k = data_sample(b, g, i);
    if (k < 0) continue;  // another rank's sample (zero coefficients)
    const D* a = data + k * b.rows + j0;
    const T* r = R + i + c0 * ldr;
    for (index_t c = 0; c < nc; ++c) {
      const T rc = r[c * ldr];
      for (index_t jj = 0; jj < n; ++jj) t[c][jj] += rc * common::data_value<T>(a[jj]);
    }
  }
  for (index_t c = 0; c < nc; ++c)
    for (index_t jj = 0; jj < n; ++jj) out[(c0 + c) * b.rows + j0 + jj] = t[c][jj];
}

template <typename D, typename T>
void back_product_any(int nc, const LinearModelBatch<T>& b, index_t g, index_t j0, index_t c0,
                      const T* R, index_t ldr, const T* init, T reg2, bool accumulate, T* out) {
  switch (nc) {
    case 8: return back_product_block<8, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 7: return back_product_block<7, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 6: return back_product_block<6, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 5: return back_product_block<5, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 4: return back_product_block<4, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 3: return back_product_block<3, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    case 2: return back_product_block<2, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
    default: return back_product_block<1, D>(b, g, j0, c0, R, ldr, init, reg2, accumulate, out);
  }
}

/// Pass 2: grad and hv as back-products over the batch, parallel over (group, output, row
/// tile of 2 vectors, block of 8 columns); the result does not depend on the split.
template <typename D, typename T>
void back_product_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                       const LinearModelWorkspace<T>& ws) {
  const Shape<T> sh = shape_of(b);
  constexpr index_t rows_per_tile = 2 * Simd<T>::lanes;
  const index_t tiles = (b.rows + rows_per_tile - 1) / rows_per_tile;
  const index_t col_blocks = (sh.columns + kBlockColumns - 1) / kBlockColumns;
  struct Output {
    T* out;
    const T* R;
    const T* init;
  };
  Output outputs[2];
  int n_out = 0;
  if (o.grad) outputs[n_out++] = {o.grad, ws.rg, o.w};
  if (o.hv) outputs[n_out++] = {o.hv, ws.rh, o.v};
  const index_t items = sh.groups * n_out * tiles * col_blocks;
#pragma omp parallel for schedule(static)
  for (index_t item = 0; item < items; ++item) {
    index_t rest = item;
    const index_t cb = rest % col_blocks;
    rest /= col_blocks;
    const index_t t = rest % tiles;
    rest /= tiles;
    const Output& out = outputs[rest % n_out];
    const index_t g = rest / n_out;
    const index_t j0 = t * rows_per_tile, n = std::min(rows_per_tile, b.rows - j0);
    const index_t c0 = g * sh.columns + cb * kBlockColumns;
    const index_t nc = std::min<index_t>(kBlockColumns, (g + 1) * sh.columns - c0);
    if (n == rows_per_tile)
      back_product_any<D>(static_cast<int>(nc), b, g, j0, c0, out.R, ws.ld, out.init, o.reg2,
                       o.accumulate, out.out);
    else
      back_product_tail<D>(b, g, j0, n, c0, nc, out.R, ws.ld, out.init, o.reg2, o.accumulate,
                        out.out);
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
      if (k < 0) continue;  // another rank's sample
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
  if (b.data_bf16 != nullptr) {
    coefficient_pass<common::SoftmaxCrossEntropy, std::uint16_t>(b, o, ws);
    if (o.grad || o.hv) back_product_pass<std::uint16_t>(b, o, ws);
  } else {
    coefficient_pass<common::SoftmaxCrossEntropy, T>(b, o, ws);
    if (o.grad || o.hv) back_product_pass<T>(b, o, ws);
  }
  if (o.jv) jv_scatter(b, o, ws);
}

template void softmax_cross_entropy<float>(const LinearModelBatch<float>&,
                                           const LinearModelOutputs<float>&,
                                           const LinearModelWorkspace<float>&);
template void softmax_cross_entropy<double>(const LinearModelBatch<double>&,
                                            const LinearModelOutputs<double>&,
                                            const LinearModelWorkspace<double>&);

}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
