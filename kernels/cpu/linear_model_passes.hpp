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

/// The instruction set's register file, from the including file: BILEVEL_CPU_VECTOR_BYTES, the
/// width of one vector register (64: zmm with AVX-512, 32: ymm with AVX2, 16: xmm in the
/// baseline x86-64 build), and BILEVEL_CPU_VECTOR_REGISTERS, how many there are (32, 16, 16).
/// Every vector below is one register wide and every register block is sized from the count:
/// a 64-byte vector on AVX2 (two ymm halves) made GCC lower each broadcast to 16 scalar stores
/// and each FMA result to 8-byte moves through the stack, and a block of 12 x 2 such vectors
/// needed 48 ymm registers of 16: the AVX2 passes ran 10-40x slower than OpenBLAS
/// (docs/design.md, "The CPU backend on every x86 CPU").
#if !defined(BILEVEL_CPU_VECTOR_BYTES) || !defined(BILEVEL_CPU_VECTOR_REGISTERS)
#error "define BILEVEL_CPU_VECTOR_BYTES and BILEVEL_CPU_VECTOR_REGISTERS before including"
#endif
constexpr int kVectorBytes = BILEVEL_CPU_VECTOR_BYTES;
constexpr int kVectorRegisters = BILEVEL_CPU_VECTOR_REGISTERS;

/// One vector register of T (GCC vector extensions).
template <typename T>
struct Simd {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  static constexpr int lanes = kVectorBytes / static_cast<int>(sizeof(T));
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

/// The sum of a vector's lanes by halves: lanes [0, L/2) plus [L/2, L), then the same on the half,
/// down to two lanes. A fixed order (the bits do not depend on anything but the vector), in
/// log2 L extracts and adds where a lane-by-lane sum took L - 1 dependent adds and as many
/// extracts (Highway's SumOfLanes made the row-form logits 7-9% faster than that: bench_highway).
template <typename T, int Bytes>
struct HalvingSum {
  typedef T vec __attribute__((vector_size(Bytes)));
  typedef T half __attribute__((vector_size(Bytes / 2)));
  static T of(vec v) {
    half lo, hi;
    std::memcpy(&lo, &v, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
    return HalvingSum<T, Bytes / 2>::of(lo + hi);
  }
};
template <typename T>
struct HalvingSum<T, 2 * static_cast<int>(sizeof(T))> {
  typedef T vec __attribute__((vector_size(2 * sizeof(T))));
  static T of(vec v) { return v[0] + v[1]; }
};
template <typename T>
inline T halving_sum(typename Simd<T>::type v) {
  return HalvingSum<T, kVectorBytes>::of(v);
}

/// A vector of T from data stored as T or as bf16.
template <typename T>
inline typename Simd<T>::type load_rows(const T* p) {
  return load_vec(p);
}
/// bf16 bits, their widening to float bits, and floats, for one vector of T.
template <typename T>
struct Bf16Vec {
  static constexpr int lanes = Simd<T>::lanes;
  typedef std::uint16_t half_bits __attribute__((vector_size(2 * lanes)));
  typedef std::uint32_t float_bits __attribute__((vector_size(4 * lanes)));
  typedef float floats __attribute__((vector_size(4 * lanes)));
};
template <typename T>
inline typename Simd<T>::type load_rows(const std::uint16_t* p) {
  using B = Bf16Vec<T>;
  typename B::half_bits h;
  std::memcpy(&h, p, sizeof h);
  const typename B::float_bits u = __builtin_convertvector(h, typename B::float_bits) << 16;
  typename B::floats f;
  std::memcpy(&f, &u, sizeof f);
  if constexpr (std::is_same_v<T, float>)
    return f;
  else
    return __builtin_convertvector(f, typename Simd<T>::type);
}

/// Columns of one register block of either pass: 2 x NC vector accumulators, two row vectors and
/// a broadcast must fit the register file (AVX-512: 2 x 12 + 3 of 32, the shape of BLIS's
/// skx SGEMM kernel; AVX2 and the baseline: 2 x 6 + 3 of 16, BLIS's Haswell 16 x 6 shape).
constexpr int kRegisterBlockColumns = kVectorRegisters >= 32 ? 12 : 6;

/// Samples of one tile of pass 1: two vectors (32 floats, 16 doubles).
template <typename T>
constexpr index_t kTileSamples = 2 * Simd<T>::lanes;

/// Features per block of pass 1's packing: kPackFeatures x kTileSamples values (8 KB of float
/// with AVX-512) stay in L1 while the tile's samples are written into them.
constexpr index_t kPackFeatures = 64;

/// Output columns of one register block of pass 1.
constexpr int kLogitColumns = kRegisterBlockColumns;

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

/// f(std::integral_constant<int, nc>) for a runtime nc in [1, N]: the register blocks are
/// templates on their column count, instantiated only up to the instruction set's block.
template <int N, typename F>
inline void with_columns(int nc, F&& f) {
  if constexpr (N <= 1) {
    f(std::integral_constant<int, 1>{});
  } else {
    if (nc >= N) return f(std::integral_constant<int, N>{});
    with_columns<N - 1>(nc, f);
  }
}

template <typename T>
void logits_any(int nc, const T* at, index_t rows, const T* const* w, T* z) {
  with_columns<kLogitColumns>(nc, [&](auto n) { logits_block<decltype(n)::value>(at, rows, w, z); });
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
  // The coefficients go to the samples' batch positions. Unsharded, a tile's positions are
  // consecutive: contiguous vector stores (the scalar scatter below was four fifths of this
  // function at B = 64); the same arithmetic per entry either way.
  bool contiguous = true;
  for (index_t r = 1; r < m; ++r) contiguous = contiguous && pos[r] == pos[0] + r;
  if (contiguous) {
    const index_t p0 = pos[0];
    for (int c = 0; c < C; ++c) {
      const T* zc = z + c * TS;
      if (rh != nullptr) {
        T* out = rh + c * ld + p0;
        const T* uc = u + c * TS;
#pragma omp simd
        for (index_t r = 0; r < m; ++r) out[r] = weight[r] * zc[r] * (uc[r] - pu[r]);
      }
      if (rg != nullptr) {
        T* out = rg + c * ld + p0;
#pragma omp simd
        for (index_t r = 0; r < m; ++r)
          out[r] = weight[r] * (zc[r] - (c == label[r] ? T(1) : T(0)));
      }
    }
    if (cross != nullptr)
      for (index_t r = 0; r < m; ++r) cross[p0 + r] = pu[r] - u[label[r] * TS + r];
    return;
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

/// Columns per group from which the passes pack the rows: below, packing costs more than the
/// products it serves, and the row form (the rows as stored) is faster. Measured per
/// instruction set (H v + J v at batch 512, B = 1..8, 1 and 2 threads, 2026-12-03,
/// docs/design.md): with AVX-512 the row form wins up to B = 3 (60 columns; B = 2, 2 threads:
/// 0.45 against 0.69 ms packed), with AVX2 and the baseline packing wins from about 32.
constexpr index_t kPackedColumns = kVectorRegisters >= 32 ? 64 : 32;

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

/// Columns of the row form's register block: kRowBlock x kDotColumns vector accumulators, the
/// columns' vectors and a row must fit the register file (32 registers: 4 x 4 + 4 + 1; 16:
/// 4 x 3 + 3 + 1 - a 4 x 4 block there spilled on every feature, and 4 x 2 was bound by its
/// loads: AVX2 stocBiO at B = 1, 13.2 -> 11.1 ms from 2 to 3 columns).
constexpr int kDotColumns = kVectorRegisters >= 32 ? 4 : 3;

/// s[r * kDotColumns + c] = a_r . w_c over `n` features for the kRowBlock rows a_r and
/// kDotColumns columns w_c: kRowBlock x kDotColumns sums from kRowBlock + kDotColumns loads per
/// vector of features (register blocking; the dot_block form needs 5 loads for 4 sums). Each
/// sum adds its vector's lanes by halves (halving_sum), then the features past the last whole
/// vector in order. Not inlined: inlined into pass 1's loop nest, GCC 12 stopped vectorizing such loops.
/// `next` (or nullptr): the rows of the block that follows, prefetched a cache line per row per
/// vector of features: minibatch rows are scattered over the data set, and the first block of
/// columns waited on each new row (a fifth of a B = 1 SOBA iteration).
template <typename T, typename D>
__attribute__((noinline)) void dot_block_columns(const D* const* a, const T* const* w, index_t n,
                                                 T* s, const D* const* next) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[kRowBlock][kDotColumns];
  for (int r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < kDotColumns; ++c) acc[r][c] = V{};
  index_t j = 0;
  for (; j + L <= n; j += L) {
    if (next != nullptr)
      for (int r = 0; r < kRowBlock; ++r) __builtin_prefetch(next[r] + j);
    V wv[kDotColumns];
    for (int c = 0; c < kDotColumns; ++c) wv[c] = load_vec(w[c] + j);
    for (int r = 0; r < kRowBlock; ++r) {
      const V x = load_rows<T>(a[r] + j);
      for (int c = 0; c < kDotColumns; ++c) acc[r][c] += x * wv[c];
    }
  }
  for (int r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < kDotColumns; ++c) {
      T t = halving_sum<T>(acc[r][c]);
      for (index_t jj = j; jj < n; ++jj) t += common::data_value<T>(a[r][jj]) * w[c][jj];
      s[r * kDotColumns + c] = t;
    }
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
  // The row form takes every column in one chunk: which of its columns dot_block_columns or dot_block
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
            // at[j TS + l] = a_l[j]; a short tile's missing samples are zeros. By blocks of
            // kPackFeatures features, every sample's piece of a block before the next block:
            // the block of `at` (kPackFeatures x TS) stays in L1 while it is written across
            // (column by column over the whole tile, each store missed L1: a third of a gy call
            // at B = 8).
            T* at = packed.data();
            for (index_t j0 = 0; j0 < b.rows; j0 += kPackFeatures) {
              const index_t j1 = std::min(b.rows, j0 + kPackFeatures);
              for (index_t l = 0; l < TS; ++l) {
                if (k[l] < 0) {
                  for (index_t j = j0; j < j1; ++j) at[j * TS + l] = T(0);
                  continue;
                }
                const D* a = data + k[l] * b.rows;
                for (index_t j = j0; j < j1; ++j) at[j * TS + l] = common::data_value<T>(a[j]);
              }
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
            // the rows of this thread's next block (the schedule is static: tile t + 1), read
            // ahead during the first block of columns
            const D* next[kRowBlock];
            const bool ahead = chunks == 1 && t + 1 < tiles && i0 + tile < here;
            for (index_t r = 0; ahead && r < kRowBlock; ++r) {
              const index_t kr =
                  data_sample(b, g, position(g, std::min(i0 + tile + r, here - 1)));
              next[r] = data + (kr < 0 ? 0 : kr) * b.rows;
            }
            index_t col = 0;
            for (; col + kDotColumns <= total; col += kDotColumns) {
              const T* wc[kDotColumns];
              for (int c = 0; c < kDotColumns; ++c) wc[c] = column(col + c);
              T sums[kRowBlock * kDotColumns];
              dot_block_columns(a, wc, b.rows, sums, col == 0 && ahead ? next : nullptr);
              for (int r = 0; r < kRowBlock; ++r)
                for (int c = 0; c < kDotColumns; ++c)
                  logits[(col + c) * kRowBlock + r] = sums[r * kDotColumns + c];
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

/// Output columns of one register block of the back-product: 2 x kBlockColumns vector
/// accumulators, 2 row loads and kBlockColumns broadcasts per sample (with 32 registers an
/// 8-column block had 10 loads per 16 FMAs; 12 is the most that fits).
constexpr int kBlockColumns = kRegisterBlockColumns;

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
  void prefetch(index_t) const {}  // contiguous: the hardware prefetcher follows it
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
  /// Sample i's piece, asked for ahead of its use: the pieces are a row's length apart (3 KB
  /// for 785 features), a stride the hardware prefetchers lose at every page, and the loop
  /// waited on each piece in turn (over 80% of the full-batch back-product's time).
  void prefetch(index_t i) const {
    constexpr int L = Simd<T>::lanes;
    const index_t k = data_sample(b, g, i);
    if (k < 0) return;
    const D* a = data_of<D>(b) + k * b.rows + j0;
    __builtin_prefetch(a);
    __builtin_prefetch(a + 2 * L - 1);
  }
};

/// Samples ahead of use that a row piece is prefetched.
constexpr index_t kPrefetchSamples = 8;

/// out[j, c] (+)= sum_i R[i, c] a_i[j] over the samples i0 <= i < i1, for the n <= 2 lanes rows
/// [j0, j0 + n) of one row tile and NC columns from c0: 2 x NC vector accumulators held in
/// registers over the samples, two row loads and NC broadcasts of R per sample. Every entry sums
/// over i in batch order; a range that continues an earlier one (accumulate) starts from the
/// stored sum, so splitting the batch into ranges does not change a bit.
/// R[i, c] is read at R[c ldr + i] (ldr > 0: the workspace's columns) or, with ldr == 0, from a
/// panel packed sample-major for this block (R[i kBlockColumns + c], c0's block at R).
template <int NC, typename Rows, typename T>
void back_product_block(const Rows& a, index_t i0, index_t i1, index_t rows, index_t j0,
                        index_t n, index_t c0, const T* R, index_t ldr, const T* init, T reg2,
                        bool accumulate, T* out) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[NC][2];
  for (int c = 0; c < NC; ++c)
    for (int h = 0; h < 2; ++h) {
      if (accumulate && n == 2 * L) {  // a whole tile continuing its sums
        acc[c][h] = load_vec(out + (c0 + c) * rows + j0 + h * L);
        continue;
      }
      T start[L];
      for (int l = 0; l < L; ++l) {
        const index_t jj = h * L + l;
        start[l] = jj < n ? start_value(out, init, (c0 + c) * rows + j0 + jj, reg2, accumulate)
                          : T(0);
      }
      acc[c][h] = load_vec(start);
    }
  if (ldr == 0) {
    for (index_t i = i0; i < i1; ++i) {
      V x[2];
      if (!a.load(i, x)) continue;
      const T* r = R + i * kBlockColumns;
      for (int c = 0; c < NC; ++c) {
        const T rc = r[c];
        acc[c][0] += rc * x[0];
        acc[c][1] += rc * x[1];
      }
    }
  } else {
    const T* r = R + c0 * ldr;
    for (index_t i = i0; i < i1; ++i) {
      if (i + kPrefetchSamples < i1) a.prefetch(i + kPrefetchSamples);
      V x[2];
      if (!a.load(i, x)) continue;
      for (int c = 0; c < NC; ++c) {
        const T rc = r[c * ldr + i];
        acc[c][0] += rc * x[0];
        acc[c][1] += rc * x[1];
      }
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
void back_product_any(int nc, const Rows& a, index_t i0, index_t i1, index_t rows, index_t j0,
                      index_t n, index_t c0, const T* R, index_t ldr, const T* init, T reg2,
                      bool accumulate, T* out) {
  with_columns<kBlockColumns>(nc, [&](auto k) {
    back_product_block<decltype(k)::value>(a, i0, i1, rows, j0, n, c0, R, ldr, init, reg2,
                                           accumulate, out);
  });
}

/// The rows in place for the last tile of fewer than 2 lanes rows: a local tile, the samples
/// i0 <= i < i1 in the same order.
template <typename D, typename T>
void back_product_tail(const LinearModelBatch<T>& b, index_t g, index_t i0, index_t i1,
                       index_t j0, index_t n, index_t c0, index_t nc, const T* R, index_t ldr,
                       const T* init, T reg2, bool accumulate, T* out) {
  const D* data = data_of<D>(b);
  constexpr int L = Simd<T>::lanes;
  T t[kBlockColumns][2 * L];
  for (index_t c = 0; c < nc; ++c)
    for (index_t jj = 0; jj < n; ++jj)
      t[c][jj] = start_value(out, init, (c0 + c) * b.rows + j0 + jj, reg2, accumulate);
  for (index_t i = i0; i < i1; ++i) {
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

/// Samples per range of the in-place back-product: every (output, column block) of a row tile
/// runs over one range before the next, so the range's row pieces (kInPlaceSamples x 2 vectors,
/// 8-16 KB) are read from memory once and then from L1, whatever the cache sizes (over the
/// whole batch at once, each piece was fetched again per output and column block: the
/// full-batch H v + J v at B = 1 read the data four times).
constexpr index_t kInPlaceSamples = 128;

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
    // Each thread takes a contiguous share of the (group, row tile) pairs and walks the batch in
    // ranges of kInPlaceSamples samples, every pair of its share per range: a range's rows are
    // then read piece after piece along each row (a few pages), where a walk over the whole
    // batch per tile jumped a row's length at every sample (a TLB miss and a cache miss each).
#pragma omp parallel
    {
      const index_t pairs = sh.groups * tiles;
      const index_t threads = omp_get_num_threads(), me = omp_get_thread_num();
      const index_t lo = pairs * me / threads, hi = pairs * (me + 1) / threads;
      for (index_t i0 = 0; i0 < b.count; i0 += kInPlaceSamples) {
        const index_t i1 = std::min(b.count, i0 + kInPlaceSamples);
        const bool accumulate = o.accumulate || i0 > 0;
        for (index_t gt = lo; gt < hi; ++gt) {
          const index_t g = gt / tiles, t = gt % tiles;
          for (index_t item = t * col_blocks; item < items; item += tiles * col_blocks)
            for (index_t cb = 0; cb < col_blocks; ++cb) {
              const Item it = item_of(g, item + cb);
              if (it.n == RT)
                back_product_any(static_cast<int>(it.nc), RowsInPlace<D, T>{b, g, it.j0}, i0,
                                 i1, b.rows, it.j0, it.n, it.c0, it.out->R, ws.ld,
                                 it.out->init, o.reg2, accumulate, it.out->out);
              else
                back_product_tail<D>(b, g, i0, i1, it.j0, it.n, it.c0, it.nc, it.out->R, ws.ld,
                                     it.out->init, o.reg2, accumulate, it.out->out);
            }
        }
      }
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
  thread_local std::vector<T> packed_coefficients;
  const index_t panel_size = n_out * col_blocks * b.count * kBlockColumns;
  if (static_cast<index_t>(packed_coefficients.size()) < panel_size)
    packed_coefficients.resize(static_cast<std::size_t>(panel_size));
  T* panels = packed_coefficients.data();
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
    // the coefficients of each output's column blocks packed sample-major: one stream of
    // broadcasts per block instead of kBlockColumns a column's length apart
#pragma omp for schedule(static)
    for (index_t ob = 0; ob < n_out * col_blocks; ++ob) {
      const index_t out = ob / col_blocks, cb = ob % col_blocks;
      const index_t c0 = g * sh.columns + cb * kBlockColumns;
      const index_t nc = std::min<index_t>(kBlockColumns, (g + 1) * sh.columns - c0);
      const T* R = outputs[out].R + c0 * ws.ld;
      T* panel = panels + ob * b.count * kBlockColumns;
      for (index_t i = 0; i < b.count; ++i)
        for (index_t c = 0; c < nc; ++c) panel[i * kBlockColumns + c] = R[c * ws.ld + i];
    }
#pragma omp for schedule(static)
    for (index_t item = 0; item < items; ++item) {
      const Item it = item_of(g, item);
      const index_t ob = (it.out - outputs) * col_blocks + item % col_blocks;
      back_product_any(static_cast<int>(it.nc), PackedRowTile<T>{packed + it.t * b.count * RT},
                       0, b.count, b.rows, it.j0, it.n, it.c0,
                       panels + ob * b.count * kBlockColumns, index_t(0), it.out->init, o.reg2,
                       o.accumulate, it.out->out);
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
