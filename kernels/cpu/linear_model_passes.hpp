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
#include "vector_exp.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {
namespace {

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

/// Samples of one tile of pass 1: two vectors (32 floats, 16 doubles).
template <typename T>
constexpr index_t kTileSamples = 2 * Simd<T>::lanes;

/// Output columns of one register block of pass 1 (2 x 12 vector accumulators).
constexpr int kLogitColumns = 12;

/// z[c][l] = sum_j at[j][l] w_c[j] for NC columns w_c and the kTileSamples samples l of a packed
/// tile (at[j * kTileSamples + l] = sample l's feature j): two vector loads and NC broadcasts per
/// feature, no horizontal sums. Every lane sums over j in feature order, so a logit does not
/// depend on the tile, the lane or the column block it is computed in.
template <int NC, typename T>
void logits_block(const T* at, index_t rows, const T* const* w, T* z) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[NC][2];
  for (int c = 0; c < NC; ++c) acc[c][0] = acc[c][1] = V{};
  for (index_t j = 0; j < rows; ++j) {
    const V x0 = load_vec(at + j * 2 * L), x1 = load_vec(at + j * 2 * L + L);
    for (int c = 0; c < NC; ++c) {
      const T wc = w[c][j];
      acc[c][0] += wc * x0;
      acc[c][1] += wc * x1;
    }
  }
  for (int c = 0; c < NC; ++c) {
    store_vec(z + c * 2 * L, acc[c][0]);
    store_vec(z + c * 2 * L + L, acc[c][1]);
  }
}

template <typename T>
void logits_any(int nc, const T* at, index_t rows, const T* const* w, T* z) {
#define BILEVEL_BLOCK(n) \
  case n: return logits_block<n>(at, rows, w, z);
  switch (nc) {
    BILEVEL_BLOCK(12) BILEVEL_BLOCK(11) BILEVEL_BLOCK(10) BILEVEL_BLOCK(9) BILEVEL_BLOCK(8)
    BILEVEL_BLOCK(7) BILEVEL_BLOCK(6) BILEVEL_BLOCK(5) BILEVEL_BLOCK(4) BILEVEL_BLOCK(3)
    BILEVEL_BLOCK(2)
    default: return logits_block<1>(at, rows, w, z);
  }
#undef BILEVEL_BLOCK
}

/// Softmax cross-entropy coefficients of one instance for the TS samples of a packed tile,
/// vectorized over the samples (common::SoftmaxCrossEntropy's arithmetic in the same order per
/// sample, exp_nonpositive for exp: libm's scalar exp was a fifth of a B = 64 iteration).
/// z[c TS + r]: the instance's logits (overwritten by p), u: V's (nullptr: no H v, J v);
/// weight[r], label[r]; the first m samples are written at batch positions pos[r]: rg[c ld +
/// pos], rh[c ld + pos] and cross[pos] where not nullptr.
template <index_t TS, typename T>
void softmax_ce_tile(T* z, const T* u, int C, const T* weight, const int* label,
                     const index_t* pos, index_t m, index_t ld, T* rg, T* rh, T* cross) {
  T zmax[TS], inv[TS], pu[TS];
#pragma omp simd
  for (index_t r = 0; r < TS; ++r) zmax[r] = z[r];
  for (int c = 1; c < C; ++c)
#pragma omp simd
    for (index_t r = 0; r < TS; ++r) zmax[r] = z[c * TS + r] > zmax[r] ? z[c * TS + r] : zmax[r];
#pragma omp simd
  for (index_t r = 0; r < TS; ++r) inv[r] = T(0);
  for (int c = 0; c < C; ++c)
#pragma omp simd
    for (index_t r = 0; r < TS; ++r) {
      const T e = exp_nonpositive(z[c * TS + r] - zmax[r]);
      z[c * TS + r] = e;
      inv[r] += e;
    }
#pragma omp simd
  for (index_t r = 0; r < TS; ++r) {
    inv[r] = T(1) / inv[r];
    pu[r] = T(0);
  }
  for (int c = 0; c < C; ++c)
#pragma omp simd
    for (index_t r = 0; r < TS; ++r) {
      z[c * TS + r] *= inv[r];
      if (u != nullptr) pu[r] += z[c * TS + r] * u[c * TS + r];
    }
  for (int c = 0; c < C; ++c)
    for (index_t r = 0; r < m; ++r) {
      const T p = z[c * TS + r];
      if (rh != nullptr) rh[c * ld + pos[r]] = weight[r] * p * (u[c * TS + r] - pu[r]);
      if (rg != nullptr) rg[c * ld + pos[r]] = weight[r] * (p - (c == label[r] ? T(1) : T(0)));
    }
  if (cross != nullptr)
    for (index_t r = 0; r < m; ++r) cross[pos[r]] = pu[r] - u[label[r] * TS + r];
}

/// Samples of one block of the row form of pass 1 (few columns: no packing).
constexpr index_t kRowBlock = 4;

/// Columns per group from which pass 1 packs its tiles: below, packing a tile costs more than
/// the logits it serves, and the row form (dot products of the rows as stored) is faster.
constexpr index_t kPackedColumns = 32;

/// s[r] = a_r . w over `n` features for the kRowBlock rows a_r.
template <typename T, typename D>
__attribute__((noinline)) void dot_block(const D* const* a, const T* w, index_t n, T* s) {
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
/// loads per feature (register blocking; the dot_block form needs 5 loads for 4 sums). Not
/// inlined: inlined into pass 1's loop nest, GCC 12 no longer vectorizes its simd loop.
template <typename T, typename D>
__attribute__((noinline)) void dot_block4(const D* const* a, const T* const* w, index_t n, T* s) {
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
/// rh (count x C B, ld ws.ld) and cross (count x B). Work items are (group, tile of samples,
/// chunk of instances). With kPackedColumns columns or more, a tile is kTileSamples samples whose
/// rows are packed feature-major once (bf16 widened there), and every column of the chunk
/// streams past them in blocks of kLogitColumns; with fewer, a tile is kRowBlock rows read as
/// stored, four columns at a time. The chunks split the instances only when there are too few
/// tiles to keep every thread busy.
template <typename Loss, typename D, typename T>
void coefficient_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                      const LinearModelWorkspace<T>& ws) {
  const D* data = data_of<D>(b);
  const Shape<T> sh = shape_of(b);
  const int C = b.classes;
  const bool second = o.v != nullptr && (o.hv != nullptr || o.jv != nullptr);
  constexpr index_t TS = kTileSamples<T>;
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
  const index_t per_instance = second ? 2 * C : C;
  const bool packing = per_instance * sh.width >= kPackedColumns;
  const index_t tile = packing ? TS : kRowBlock;  // samples per tile
  const index_t tiles = (most + tile - 1) / tile;
  const index_t wanted = 2 * static_cast<index_t>(omp_get_max_threads());
  // The row form takes every column in one chunk: which of its columns dot_block4 or dot_block
  // computes, and so their last bits, must not depend on the thread count. (A sharded call may
  // own no sample of the batch: no tiles.)
  const index_t work = std::max<index_t>(sh.groups * tiles, 1);
  const index_t chunks =
      packing ? std::clamp<index_t>((wanted + work - 1) / work, 1, sh.width) : 1;
  const index_t chunk = (sh.width + chunks - 1) / chunks;
#pragma omp parallel
  {
    // per-thread scratch, kept from call to call (OpenMP's threads persist: no allocation in
    // an iteration once the shapes are seen): the packed tile, the logits of its samples for
    // one chunk of instances ([z of W | u of V] x tile), their weight logits x, one (sample,
    // instance)'s logits [z u] and coefficients rg, rh
    thread_local std::vector<T> packed, logits, xs, zc, gc, hc;
    const auto at_least = [](std::vector<T>& v, index_t n) {
      if (static_cast<index_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    };
    if (packing) at_least(packed, TS * b.rows);
    at_least(logits, chunk * per_instance * tile);
    at_least(zc, 2 * C);
    at_least(gc, C);
    at_least(hc, C);
    at_least(xs, chunk * tile);
#pragma omp for collapse(3) schedule(static)
    for (index_t g = 0; g < sh.groups; ++g)
      for (index_t t = 0; t < tiles; ++t)
        for (index_t ch = 0; ch < chunks; ++ch) {
          const index_t here = sharded ? own_counts[g] : b.count;
          const index_t i0 = t * tile, m = std::min(tile, here - i0);
          const index_t b0 = ch * chunk, nbi = std::min(chunk, sh.width - b0);
          if (m <= 0 || nbi <= 0) continue;  // (sharded: this group owns fewer samples)
          index_t k[TS];
          for (index_t l = 0; l < tile; ++l)
            k[l] = l < m ? data_sample(b, g, position(g, i0 + l)) : -1;
          // the chunk's columns: W's of instances b0 .. b0 + nbi, then V's
          const index_t wcols = nbi * C, total = second ? 2 * wcols : wcols;
          const T* w = o.w + (g * sh.columns + b0 * C) * b.rows;
          const T* v = second ? o.v + (g * sh.columns + b0 * C) * b.rows : nullptr;
          const auto column = [&](index_t col) {
            return col < wcols ? w + col * b.rows : v + (col - wcols) * b.rows;
          };
          // z_l = W' a_l, u_l = V' a_l for the tile's samples: logits[col tile + l]
          if (packing) {
            // at[j TS + l] = a_l[j]; a short tile's missing samples are zeros
            T* at = packed.data();
            for (index_t l = 0; l < TS; ++l) {
              if (k[l] < 0) {
                for (index_t j = 0; j < b.rows; ++j) at[j * TS + l] = T(0);
                continue;
              }
              const D* a = data + k[l] * b.rows;
              for (index_t j = 0; j < b.rows; ++j) at[j * TS + l] = common::data_value<T>(a[j]);
            }
            for (index_t col = 0; col < total; col += kLogitColumns) {
              const index_t nc = std::min<index_t>(kLogitColumns, total - col);
              const T* wc[kLogitColumns];
              for (index_t c = 0; c < nc; ++c) wc[c] = column(col + c);
              logits_any(static_cast<int>(nc), at, b.rows, wc, &logits[col * TS]);
            }
          } else {
            // a short block repeats its last row
            const D* a[kRowBlock];
            for (index_t r = 0; r < kRowBlock; ++r) {
              const index_t kr = k[std::min(r, m - 1)];
              a[r] = data + (kr < 0 ? 0 : kr) * b.rows;
            }
            index_t col = 0;
            for (; col + 4 <= total; col += 4) {
              const T* wc[4] = {column(col), column(col + 1), column(col + 2), column(col + 3)};
              T sums[16];
              dot_block4(a, wc, b.rows, sums);
              for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) logits[(col + c) * kRowBlock + r] = sums[r * 4 + c];
            }
            for (; col < total; ++col) dot_block(a, column(col), b.rows, &logits[col * kRowBlock]);
          }
          // the weight logits x[k, inst] of the chunk's (instance, sample) pairs, read in one
          // tight loop first: they are scattered over the data set, and the loop below would
          // wait for each in turn
          if (b.x)
            for (index_t bi = 0; bi < nbi; ++bi)
              for (index_t r = 0; r < m; ++r)
                xs[bi * tile + r] = k[r] >= 0 ? b.x[k[r] + (g * sh.width + b0 + bi) * b.ldx] : T(0);
          // coefficients of each (instance, sample): an instance's columns of rg and rh are
          // written down the tile's batch positions, not across the instances' columns.
          // Softmax cross-entropy on a packed tile: vectorized over the tile's samples (all of
          // them own samples: a sharded call packs only its own).
          if constexpr (std::is_same_v<Loss, common::SoftmaxCrossEntropy>) {
            if (packing && !o.jv_loss) {
              T weight[TS];
              int label[TS];
              index_t pos[TS];
              for (index_t r = 0; r < TS; ++r) {
                label[r] = r < m ? static_cast<int>(b.labels[k[r]]) : 0;
                pos[r] = r < m ? position(g, i0 + r) : 0;
              }
              for (index_t bi = 0; bi < nbi; ++bi) {
                const index_t inst = g * sh.width + b0 + bi;
                for (index_t r = 0; r < TS; ++r)
                  weight[r] = r >= m ? T(0)
                              : b.x  ? b.scale * common::sigmoid(xs[bi * tile + r])
                                     : b.scale;
                softmax_ce_tile<TS>(&logits[bi * C * TS],
                                    second ? &logits[(wcols + bi * C) * TS] : nullptr, C, weight,
                                    label, pos, m, ws.ld,
                                    o.grad ? ws.rg + inst * C * ws.ld : nullptr,
                                    o.hv ? ws.rh + inst * C * ws.ld : nullptr,
                                    o.jv ? ws.cross + inst * ws.ld : nullptr);
              }
              continue;
            }
          }
          for (index_t bi = 0; bi < nbi; ++bi)
            for (index_t r = 0; r < m; ++r) {
              const index_t inst = g * sh.width + b0 + bi;  // the instance
              for (int c = 0; c < C; ++c) {
                zc[c] = logits[(bi * C + c) * tile + r];
                if (second) zc[C + c] = logits[(wcols + bi * C + c) * tile + r];
              }
              // another rank's sample (k < 0): weight 0, so zero coefficients, and no J v term
              const bool own = k[r] >= 0;
              const T weight = !own  ? T(0)
                               : b.x ? b.scale * common::sigmoid(xs[bi * tile + r])
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

/// Output columns of one register block of the back-product: 2 x 12 vector accumulators, 2 row
/// loads and 12 broadcasts per sample (an 8-column block had 10 loads per 16 FMAs).
constexpr int kBlockColumns = 12;

/// The value an output entry starts from: its old value (accumulating), reg2 init, or 0.
template <typename T>
inline T start_value(const T* out, const T* init, index_t e, T reg2, bool accumulate) {
  return accumulate ? out[e] : (reg2 != T(0) ? reg2 * init[e] : T(0));
}

/// Where pass 2 reads sample i's rows [j0, j0 + 2 lanes): a packed row tile (ap[i 2L + jj] =
/// a_i[j0 + jj], zero past the data's rows and for another rank's samples)...
template <typename T>
struct PackedRowTile {
  const T* ap;
  bool load(index_t i, typename Simd<T>::type* x) const {
    constexpr int L = Simd<T>::lanes;
    x[0] = load_vec(ap + i * 2 * L);
    x[1] = load_vec(ap + i * 2 * L + L);
    return true;
  }
};
/// ... or the data's rows in place (few columns: packing would cost more than it saves);
/// false for another rank's sample (zero coefficients).
template <typename D, typename T>
struct RowsInPlace {
  const LinearModelBatch<T>& b;
  index_t g, j0;
  bool load(index_t i, typename Simd<T>::type* x) const {
    constexpr int L = Simd<T>::lanes;
    const index_t k = data_sample(b, g, i);
    if (k < 0) return false;
    const D* a = data_of<D>(b) + k * b.rows + j0;
    x[0] = load_rows<T>(a);
    x[1] = load_rows<T>(a + L);
    return true;
  }
};

/// out[j, c] (+)= sum_i R[i, c] a_i[j] for the n <= 2 lanes rows [j0, j0 + n) of one row tile
/// and NC columns from c0: 2 x NC vector accumulators held in registers over the whole batch,
/// two row loads and NC broadcasts of R per sample. Every entry sums over i in batch order.
template <int NC, typename Rows, typename T>
void back_product_block(const Rows& a, index_t count, index_t rows, index_t j0, index_t n,
                        index_t c0, const T* R, index_t ldr, const T* init, T reg2,
                        bool accumulate, T* out) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[NC][2];
  for (int c = 0; c < NC; ++c)
    for (int h = 0; h < 2; ++h) {
      T start[L];
      for (int l = 0; l < L; ++l) {
        const index_t jj = h * L + l;
        start[l] = jj < n ? start_value(out, init, (c0 + c) * rows + j0 + jj, reg2, accumulate)
                          : T(0);
      }
      acc[c][h] = load_vec(start);
    }
  const T* r = R + c0 * ldr;
  for (index_t i = 0; i < count; ++i) {
    V x[2];
    if (!a.load(i, x)) continue;
    for (int c = 0; c < NC; ++c) {
      const T rc = r[c * ldr + i];
      acc[c][0] += rc * x[0];
      acc[c][1] += rc * x[1];
    }
  }
  for (int c = 0; c < NC; ++c) {
    T* o = out + (c0 + c) * rows + j0;
    if (n == 2 * L) {
      store_vec(o, acc[c][0]);
      store_vec(o + L, acc[c][1]);
      continue;
    }
    T lanes[2 * L];
    store_vec(lanes, acc[c][0]);
    store_vec(lanes + L, acc[c][1]);
    for (index_t jj = 0; jj < n; ++jj) o[jj] = lanes[jj];
  }
}

template <typename Rows, typename T>
void back_product_any(int nc, const Rows& a, index_t count, index_t rows, index_t j0, index_t n,
                      index_t c0, const T* R, index_t ldr, const T* init, T reg2,
                      bool accumulate, T* out) {
#define BILEVEL_BLOCK(k)                                                                     \
  case k:                                                                                    \
    return back_product_block<k>(a, count, rows, j0, n, c0, R, ldr, init, reg2, accumulate, \
                                 out);
  switch (nc) {
    BILEVEL_BLOCK(12) BILEVEL_BLOCK(11) BILEVEL_BLOCK(10) BILEVEL_BLOCK(9) BILEVEL_BLOCK(8)
    BILEVEL_BLOCK(7) BILEVEL_BLOCK(6) BILEVEL_BLOCK(5) BILEVEL_BLOCK(4) BILEVEL_BLOCK(3)
    BILEVEL_BLOCK(2)
    default:
      return back_product_block<1>(a, count, rows, j0, n, c0, R, ldr, init, reg2, accumulate,
                                   out);
  }
#undef BILEVEL_BLOCK
}

/// The rows in place for the last tile of fewer than 2 lanes rows: a local tile, the batch in
/// the same order.
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

/// Pass 2: grad and hv as back-products over the batch, split over (output, row tile of 2
/// vectors, block of kBlockColumns columns); the result does not depend on the split. With
/// kPackedColumns columns per group or more, the batch's rows are first packed group by group in
/// row tiles (contiguous per tile, bf16 widened, another rank's samples zero): read in place,
/// 512 gathered rows per 12 columns were the pass's stalls (they left L2 while R streamed past).
/// With fewer, each row is used by too few columns to pay for its copy and is read in place.
template <typename D, typename T>
void back_product_pass(const LinearModelBatch<T>& b, const LinearModelOutputs<T>& o,
                       const LinearModelWorkspace<T>& ws) {
  const Shape<T> sh = shape_of(b);
  constexpr index_t RT = 2 * Simd<T>::lanes;  // rows per tile
  const index_t tiles = (b.rows + RT - 1) / RT;
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
  const index_t items = n_out * tiles * col_blocks;  // per group
  // item -> (output, tile, column block) of group g, and the block's columns
  struct Item {
    const Output* out;
    index_t t, j0, n, c0, nc;
  };
  const auto item_of = [&](index_t g, index_t item) {
    const index_t cb = item % col_blocks, t = (item / col_blocks) % tiles;
    const index_t c0 = g * sh.columns + cb * kBlockColumns;
    return Item{&outputs[item / (col_blocks * tiles)], t, t * RT, std::min(RT, b.rows - t * RT),
                c0, std::min<index_t>(kBlockColumns, (g + 1) * sh.columns - c0)};
  };
  if (sh.columns < kPackedColumns) {
#pragma omp parallel for schedule(static)
    for (index_t gi = 0; gi < sh.groups * items; ++gi) {
      const index_t g = gi / items;
      const Item it = item_of(g, gi % items);
      if (it.n == RT)
        back_product_any(static_cast<int>(it.nc), RowsInPlace<D, T>{b, g, it.j0}, b.count,
                         b.rows, it.j0, it.n, it.c0, it.out->R, ws.ld, it.out->init, o.reg2,
                         o.accumulate, it.out->out);
      else
        back_product_tail<D>(b, g, it.j0, it.n, it.c0, it.nc, it.out->R, ws.ld, it.out->init,
                             o.reg2, o.accumulate, it.out->out);
    }
    return;
  }
  // one group's packed rows: packed[(t count + i) RT + jj] = a_i[t RT + jj] (kept from call to
  // call: no allocation in an iteration once the shapes are seen)
  const D* data = data_of<D>(b);
  thread_local std::vector<T> packed_rows;
  if (static_cast<index_t>(packed_rows.size()) < tiles * b.count * RT)
    packed_rows.resize(static_cast<std::size_t>(tiles * b.count * RT));
  T* packed = packed_rows.data();
#pragma omp parallel
  for (index_t g = 0; g < sh.groups; ++g) {
#pragma omp for schedule(static)
    for (index_t i = 0; i < b.count; ++i) {
      const index_t k = data_sample(b, g, i);  // < 0: another rank's sample
      const D* a = data + (k < 0 ? 0 : k) * b.rows;
      for (index_t t = 0; t < tiles; ++t) {
        T* dst = packed + (t * b.count + i) * RT;
        for (index_t jj = 0; jj < RT; ++jj) {
          const index_t j = t * RT + jj;
          dst[jj] = k >= 0 && j < b.rows ? common::data_value<T>(a[j]) : T(0);
        }
      }
    }
#pragma omp for schedule(static)
    for (index_t item = 0; item < items; ++item) {
      const Item it = item_of(g, item);
      back_product_any(static_cast<int>(it.nc), PackedRowTile<T>{packed + it.t * b.count * RT},
                       b.count, b.rows, it.j0, it.n, it.c0, it.out->R, ws.ld, it.out->init,
                       o.reg2, o.accumulate, it.out->out);
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
