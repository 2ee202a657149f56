// Pass 2 of the CPU linear-model oracles, for one instruction set (see linear_model_passes.hpp):
// grad and H v as back-products of the coefficients over the batch's rows (packed row tiles, or
// the rows in place in ranges of samples), every output entry summed in batch order.
#pragma once

#include "linear_model_vectors.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA {
namespace {

/// Output columns of one register block of the back-product: 2 x kBlockColumns vector
/// accumulators, 2 row loads and kBlockColumns broadcasts per sample (with 32 registers an
/// 8-column block had 10 loads per 16 FMAs; 12 is the most that fits).
constexpr int kBlockColumns = kRegisterBlockColumns;

/// The value an output entry starts from: its old value (accumulating), reg2 init, or 0.
template <typename T>
inline T start_value(const T* out, const T* init, index_t e, T reg2, bool accumulate) {
  return accumulate ? out[e] : (reg2 != T(0) ? reg2 * init[e] : T(0));
}

/// Where pass 2 reads sample i's rows [j0, j0 + 2 lanes): a packed row tile (ap[(i - i0) 2L +
/// jj] = a_i[j0 + jj], zero past the data's rows and for another rank's samples)...
template <typename T>
struct PackedRowTile {
  const T* ap;
  index_t i0;
  bool load(index_t i, typename Simd<T>::type* x) const {
    constexpr int L = Simd<T>::lanes;
    x[0] = load_vec(ap + (i - i0) * 2 * L);
    x[1] = load_vec(ap + (i - i0) * 2 * L + L);
    return true;
  }
};
/// ... or the data's rows in place (few columns: packing would cost more than it saves), through
/// the range's row addresses found once per range and group: row[i - i0], nullptr for another
/// rank's sample (zero coefficients: false). Per sample one pointer load where the index, the
/// shard test and the row's address had been worked out again for every (output, tile, column
/// block): AVX2 and generic paths 8-10% faster at B = 1 (docs/design.md). No prefetch of the
/// samples ahead: GCC 12 had dropped the one written here, and forced in with asm it made B = 1
/// 35-45% slower on the AMD VM (docs/design.md, "Pass 2's prefetch is not in the binary").
template <typename D, typename T>
struct RangeRows {
  const D* const* row;
  index_t i0, j0;
  bool load(index_t i, typename Simd<T>::type* x) const {
    constexpr int L = Simd<T>::lanes;
    const D* a = row[i - i0];
    if (a == nullptr) return false;
    x[0] = load_rows<T>(a + j0);
    x[1] = load_rows<T>(a + j0 + L);
    return true;
  }
};

/// The 2 x NC start vectors of back_product_block: the stored sums (accumulate) or reg2 init
/// (start_value's products). A whole tile's are vector loads: built lane by lane, each start
/// vector waited on its lanes' stores (a seventh of the AVX2 B = 64 back-product). Not inlined:
/// inlined, the vector form slowed the in-place B = 1 pass by 5% on AVX-512.
template <int NC, typename T>
__attribute__((noinline)) void start_sums(typename Simd<T>::type (&acc)[NC][2], index_t rows,
                                          index_t j0, index_t n, index_t c0, const T* init,
                                          T reg2, bool accumulate, const T* out) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  for (int c = 0; c < NC; ++c)
    for (int h = 0; h < 2; ++h) {
      const index_t e = (c0 + c) * rows + j0 + h * L;
      if (n == 2 * L) {
        acc[c][h] = accumulate ? load_vec(out + e) : reg2 != T(0) ? reg2 * load_vec(init + e) : V{};
        continue;
      }
      T start[L];
      for (int l = 0; l < L; ++l)
        start[l] = h * L + l < n ? start_value(out, init, e + l, reg2, accumulate) : T(0);
      acc[c][h] = load_vec(start);
    }
}

/// out[j, c] (+)= sum_i R[i, c] a_i[j] over the samples i0 <= i < i1, for the n <= 2 lanes rows
/// [j0, j0 + n) of one row tile and NC columns from c0: 2 x NC vector accumulators held in
/// registers over the samples, two row loads and NC broadcasts of R per sample. Every entry sums
/// over i in batch order; a range that continues an earlier one (accumulate) starts from the
/// stored sum, so splitting the batch into ranges does not change a bit.
/// R[i, c] is read from a panel packed sample-major for this block from i0 on:
/// R[(i - i0) kBlockColumns + c], one pointer for all NC broadcasts (read from the workspace's
/// columns, a block's NC column pointers did not fit the general registers beside the row's
/// address, and every sample reloaded them from the stack).
template <int NC, typename Rows, typename T>
void back_product_block(const Rows& a, index_t i0, index_t i1, index_t rows, index_t j0,
                        index_t n, index_t c0, const T* R, const T* init, T reg2,
                        bool accumulate, T* out) {
  using V = typename Simd<T>::type;
  constexpr int L = Simd<T>::lanes;
  V acc[NC][2];
  start_sums<NC>(acc, rows, j0, n, c0, init, reg2, accumulate, out);
  for (index_t i = i0; i < i1; ++i) {
    V x[2];
    if (!a.load(i, x)) continue;
    const T* r = R + (i - i0) * kBlockColumns;
    for (int c = 0; c < NC; ++c) {
      const T rc = r[c];
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
void back_product_any(int nc, const Rows& a, index_t i0, index_t i1, index_t rows, index_t j0,
                      index_t n, index_t c0, const T* R, const T* init, T reg2,
                      bool accumulate, T* out) {
  with_columns<kBlockColumns>(nc, [&](auto k) {
    back_product_block<decltype(k)::value>(a, i0, i1, rows, j0, n, c0, R, init, reg2,
                                           accumulate, out);
  });
}

/// panel[(i - i0) kBlockColumns + c] = R[c ldr + i] for i0 <= i < i1 and c < nc: one column
/// block's coefficients sample-major, as back_product_block reads them.
template <typename T>
void pack_coefficients(const T* R, index_t ldr, index_t i0, index_t i1, index_t nc, T* panel) {
  for (index_t i = i0; i < i1; ++i)
    for (index_t c = 0; c < nc; ++c) panel[(i - i0) * kBlockColumns + c] = R[c * ldr + i];
}

/// The range's pieces of the last row tile when it has n < 2 lanes rows, copied once per range
/// and group into a packed tile (tile[(i - i0) 2L + jj] = a_i[j0 + jj], zero past n and for
/// another rank's sample) that every (output, column block) then reads as a whole tile: a
/// vector load in place would read past the row's end (past the data's end at its last row).
/// The tile had been a scalar loop of its own that found each sample's row again from its
/// index: with 784 features on AVX-512 (24 whole tiles and one of 16 rows) grad_y g at B = 1
/// 230 -> 222 us on the AMD VM (docs/design.md).
template <typename D, typename T>
void copy_tail_pieces(const D* const* row, index_t i0, index_t i1, index_t j0, index_t n,
                      T* tile) {
  constexpr index_t RT = 2 * Simd<T>::lanes;
  for (index_t i = i0; i < i1; ++i) {
    T* dst = tile + (i - i0) * RT;
    const D* a = row[i - i0];
    for (index_t jj = 0; jj < RT; ++jj)
      dst[jj] = a != nullptr && jj < n ? common::data_value<T>(a[j0 + jj]) : T(0);
  }
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
  // column block cb of a group: its first column and width, the blocks of nearly equal width
  // (10 columns with 6-column registers: 5 + 5, not 6 + 4)
  const index_t narrow = sh.columns / col_blocks, wide_blocks = sh.columns % col_blocks;
  const auto block_start = [&](index_t cb) { return cb * narrow + std::min(cb, wide_blocks); };
  const auto block_width = [&](index_t cb) { return narrow + (cb < wide_blocks ? 1 : 0); };
  const auto item_of = [&](index_t g, index_t item) {
    const index_t cb = item % col_blocks, t = (item / col_blocks) % tiles;
    return Item{&outputs[item / (col_blocks * tiles)], t, t * RT, std::min(RT, b.rows - t * RT),
                g * sh.columns + block_start(cb), block_width(cb)};
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
      // one range's coefficients of group g packed sample-major per (output, column block),
      // as back_product_block reads them: panels[(ob kInPlaceSamples + i - i0) kBlockColumns + c]
      // (AVX-512, 1 thread, B = 1: grad_y g 253 -> 229 us, SOBA 885-942 -> 828 us)
      thread_local std::vector<T> range_panels, tail_tile;
      if (static_cast<index_t>(tail_tile.size()) < kInPlaceSamples * RT)
        tail_tile.resize(static_cast<std::size_t>(kInPlaceSamples * RT));
      const index_t panel_size = n_out * col_blocks * kInPlaceSamples * kBlockColumns;
      if (static_cast<index_t>(range_panels.size()) < panel_size)
        range_panels.resize(static_cast<std::size_t>(panel_size));
      T* panels = range_panels.data();
      const D* row[kInPlaceSamples];
      for (index_t i0 = 0; i0 < b.count; i0 += kInPlaceSamples) {
        const index_t i1 = std::min(b.count, i0 + kInPlaceSamples);
        const bool accumulate = o.accumulate || i0 > 0;
        index_t packed_group = -1;
        for (index_t gt = lo; gt < hi; ++gt) {
          const index_t g = gt / tiles, t = gt % tiles;
          if (g != packed_group) {
            for (index_t ob = 0; ob < n_out * col_blocks; ++ob) {
              const index_t c0 = g * sh.columns + block_start(ob % col_blocks);
              const index_t nc = block_width(ob % col_blocks);
              pack_coefficients(outputs[ob / col_blocks].R + c0 * ws.ld, ws.ld, i0, i1, nc,
                                panels + ob * kInPlaceSamples * kBlockColumns);
            }
            packed_group = g;
            for (index_t i = i0; i < i1; ++i) {  // the range's row addresses (RangeRows)
              const index_t k = data_sample(b, g, i);
              row[i - i0] = k < 0 ? nullptr : data_of<D>(b) + k * b.rows;
            }
          }
          const index_t tile_rows = std::min(RT, b.rows - t * RT);
          if (tile_rows < RT) copy_tail_pieces(row, i0, i1, t * RT, tile_rows, tail_tile.data());
          for (index_t item = t * col_blocks; item < items; item += tiles * col_blocks)
            for (index_t cb = 0; cb < col_blocks; ++cb) {
              const Item it = item_of(g, item + cb);
              const index_t ob = (it.out - outputs) * col_blocks + cb;
              const T* panel = panels + ob * kInPlaceSamples * kBlockColumns;
              if (it.n == RT)
                back_product_any(static_cast<int>(it.nc), RangeRows<D, T>{row, i0, it.j0}, i0,
                                 i1, b.rows, it.j0, it.n, it.c0, panel, it.out->init, o.reg2,
                                 accumulate, it.out->out);
              else
                back_product_any(static_cast<int>(it.nc), PackedRowTile<T>{tail_tile.data(), i0},
                                 i0, i1, b.rows, it.j0, it.n, it.c0, panel, it.out->init,
                                 o.reg2, accumulate, it.out->out);
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
      const index_t c0 = g * sh.columns + block_start(cb), nc = block_width(cb);
      pack_coefficients(outputs[out].R + c0 * ws.ld, ws.ld, index_t(0), b.count, nc,
                        panels + ob * b.count * kBlockColumns);
    }
#pragma omp for schedule(static)
    for (index_t item = 0; item < items; ++item) {
      const Item it = item_of(g, item);
      const index_t ob = (it.out - outputs) * col_blocks + item % col_blocks;
      back_product_any(static_cast<int>(it.nc), PackedRowTile<T>{packed + it.t * b.count * RT, 0},
                       0, b.count, b.rows, it.j0, it.n, it.c0,
                       panels + ob * b.count * kBlockColumns, it.out->init, o.reg2,
                       o.accumulate, it.out->out);
    }
  }
}

}  // namespace
}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
