// Pass 1 of the CPU linear-model oracles, for one instruction set (see linear_model_passes.hpp):
// the logits of every sample (packed tiles against column blocks, or rows read in place against
// a few columns) and the loss's coefficients rg, rh and cross from them.
#pragma once

#include "linear_model_vectors.hpp"
#include "vector_exp.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {
namespace {

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


template <typename T>
void logits_any(int nc, const T* at, index_t rows, const T* const* w, T* z) {
  with_columns<kLogitColumns>(nc, [&](auto n) { logits_block<decltype(n)::value>(at, rows, w, z); });
}

/// Softmax cross-entropy coefficients of one instance for the TS samples of a tile (packed, or
/// rows read in place),
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

/// Most columns of the row form's register block: kRowBlock x kDotColumns vector accumulators,
/// the columns' vectors and a row must fit the register file (32 registers: 4 x 5 + 5 + 1; 16:
/// 4 x 3 + 3 + 1 - a 4 x 4 block there spilled on every feature, and 4 x 2 was bound by its
/// loads: AVX2 stocBiO at B = 1, 13.2 -> 11.1 ms from 2 to 3 columns).
constexpr int kDotColumns = kVectorRegisters >= 32 ? 5 : 3;

/// s[r * NC + c] = a_r . w_c over `n` features for the kRowBlock rows a_r and NC <= kDotColumns
/// columns w_c: kRowBlock x NC sums from kRowBlock + NC loads per vector of features (register
/// blocking; a one-column form needs 5 loads for 4 sums). Each sum adds its vector's lanes by
/// halves (halving_sum), then the features past the last whole vector in order: a sum's bits do
/// not depend on NC. Not inlined: inlined into pass 1's loop nest, GCC 12 stopped vectorizing
/// such loops.
/// `next` (or nullptr): the rows of the block that follows, prefetched a cache line per row at
/// every `period`-th vector of features from `phase` on: minibatch rows are scattered over the
/// data set, and the first block of columns waited on each new row (a fifth of a B = 1 SOBA
/// iteration). The column blocks of a tile take turns (phase = block, period = blocks): each
/// line is asked for once, and the requests are spread over the whole tile instead of 4 rows
/// (12 KB) in the first block's few hundred cycles (measured together with the blocks of equal
/// width: 3-5% on B = 1 iterations on the AMD VM; docs/design.md). Into L2, not L1
/// (prefetcht1): into L1 the next rows pushed out the rows and columns the block was still
/// reading (AMD VM, 1 thread, B = 1, both paths: SOBA 4-5%, stocBiO 7-8% faster).
/// (__builtin_prefetch's locality 2 is prefetcht1 on x86.)
template <int NC, typename T, typename D>
__attribute__((noinline)) void dot_block_columns(const D* const* a, const T* const* w, index_t n,
                                                 T* s, const D* const* next, index_t phase,
                                                 index_t period) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[kRowBlock][NC];
  for (int r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = V{};
  index_t j = 0, turn = phase;
  for (; j + L <= n; j += L) {
    if (next != nullptr) {
      if (turn == 0)
        for (int r = 0; r < kRowBlock; ++r) __builtin_prefetch(next[r] + j, 0, 2);
      turn = turn == 0 ? period - 1 : turn - 1;
    }
    V wv[NC];
    for (int c = 0; c < NC; ++c) wv[c] = load_vec(w[c] + j);
    for (int r = 0; r < kRowBlock; ++r) {
      V x = load_rows<T>(a[r] + j);
      keep_in_register(x);  // one load per row, not one per column (see keep_in_register)
      for (int c = 0; c < NC; ++c) acc[r][c] += x * wv[c];
    }
  }
  for (int r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < NC; ++c) {
      T t = halving_sum<T>(acc[r][c]);
      for (index_t jj = j; jj < n; ++jj) t += common::data_value<T>(a[r][jj]) * w[c][jj];
      s[r * NC + c] = t;
    }
}

/// logits[col kRowBlock + r] = a_r . column(col) for the kRowBlock rows a_r and the `total`
/// columns column(0 .. total), in blocks of nearly equal width (at most kDotColumns: 10 columns
/// are 5 + 5 or 3 + 3 + 2 + 2, never a one-column leftover at 5 loads per 4 sums); `next` (or
/// nullptr): the rows of the block that follows, asked for across all the blocks.
template <typename T, typename D, typename Column>
void row_block_logits(const D* const* a, index_t n, index_t total, const Column& column,
                      const D* const* next, T* logits) {
  const index_t blocks = (total + kDotColumns - 1) / kDotColumns;
  for (index_t blk = 0, col = 0; blk < blocks; ++blk) {
    const index_t nc = total / blocks + (blk < total % blocks ? 1 : 0);
    with_columns<kDotColumns>(static_cast<int>(nc), [&](auto width) {
      constexpr int NC = decltype(width)::value;
      const T* wc[NC];
      for (int c = 0; c < NC; ++c) wc[c] = column(col + c);
      T sums[kRowBlock * NC];
      dot_block_columns<NC>(a, wc, n, sums, next, blk, blocks);
      for (int r = 0; r < kRowBlock; ++r)
        for (int c = 0; c < NC; ++c) logits[(col + c) * kRowBlock + r] = sums[r * NC + c];
    });
    col += nc;
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
  // The row form takes every column in one chunk: its column blocks share the prefetch of the
  // next tile's rows. (A sharded call may own no sample of the batch: no tiles.)
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
            // ahead across the blocks of columns
            const D* next[kRowBlock];
            const bool ahead = chunks == 1 && t + 1 < tiles && i0 + tile < here;
            for (index_t r = 0; ahead && r < kRowBlock; ++r) {
              const index_t kr =
                  data_sample(b, g, position(g, std::min(i0 + tile + r, here - 1)));
              next[r] = data + (kr < 0 ? 0 : kr) * b.rows;
            }
            row_block_logits(a, b.rows, total, column, ahead ? next : nullptr, logits.data());
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
          // Softmax cross-entropy: vectorized over the tile's samples, packed (TS samples) or
          // read in place (kRowBlock; a short block's repeated last row is computed, not
          // stored). All of them own samples: a sharded call takes only its own.
          if constexpr (std::is_same_v<Loss, common::SoftmaxCrossEntropy>) {
            if (!o.jv_loss) {
              constexpr index_t most_tile = TS > kRowBlock ? TS : kRowBlock;
              T weight[most_tile];
              int label[most_tile];
              index_t pos[most_tile];
              for (index_t r = 0; r < tile; ++r) {
                label[r] = r < m ? static_cast<int>(b.labels[k[r]]) : 0;
                pos[r] = r < m ? position(g, i0 + r) : 0;
              }
              for (index_t bi = 0; bi < nbi; ++bi) {
                const index_t inst = g * sh.width + b0 + bi;
                for (index_t r = 0; r < tile; ++r)
                  weight[r] = r >= m ? T(0)
                              : b.x  ? b.scale * common::sigmoid(xs[bi * tile + r])
                                     : b.scale;
                T* z = &logits[bi * C * tile];
                const T* u = second ? &logits[(wcols + bi * C) * tile] : nullptr;
                T* rg = o.grad ? ws.rg + inst * C * ws.ld : nullptr;
                T* rh = o.hv ? ws.rh + inst * C * ws.ld : nullptr;
                T* cross = o.jv ? ws.cross + inst * ws.ld : nullptr;
                if (packing)
                  softmax_ce_tile<TS>(z, u, C, weight, label, pos, m, ws.ld, rg, rh, cross);
                else
                  softmax_ce_tile<kRowBlock>(z, u, C, weight, label, pos, m, ws.ld, rg, rh, cross);
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

}  // namespace
}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
