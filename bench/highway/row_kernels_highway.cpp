// The row-form passes written with Google Highway (libhwy-dev), compiled by Highway for each of
// its x86 targets (foreach_target.h re-includes this file once per target) with the blocking of
// the library's kernels: kRowBlock = 4 rows x kDotColumns columns of vector accumulators for the
// logits, 2 vectors x kBlockColumns columns for the back-product, both sized from the target's
// register file (32 registers with AVX3, 16 with AVX2), and the same prefetches.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/highway/row_kernels_highway.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "bench/highway/row_kernels.hpp"

#include <algorithm>
#include <vector>

HWY_BEFORE_NAMESPACE();
namespace bilevel::bench::highway::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kRegisters = HWY_TARGET <= HWY_AVX3 ? 32 : 16;
constexpr index_t kRowBlock = 4;
constexpr int kDotColumns = kRegisters >= 32 ? 4 : 3;
constexpr int kBlockColumns = kRegisters >= 32 ? 12 : 6;
constexpr index_t kInPlaceSamples = 128;

/// s[r kDotColumns + c] = a_r . w_c for kRowBlock rows and NC <= kDotColumns columns.
template <int NC>
void dot_block(const float* const* a, const float* const* w, index_t n, float* s,
               const float* const* next) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const index_t L = static_cast<index_t>(hn::Lanes(d));
  V acc[kRowBlock][NC];
  for (index_t r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = hn::Zero(d);
  index_t j = 0;
  for (; j + L <= n; j += L) {
    if (next != nullptr)
      for (index_t r = 0; r < kRowBlock; ++r) hwy::Prefetch(next[r] + j);
    V wv[NC];
    for (int c = 0; c < NC; ++c) wv[c] = hn::LoadU(d, w[c] + j);
    for (index_t r = 0; r < kRowBlock; ++r) {
      const V x = hn::LoadU(d, a[r] + j);
      for (int c = 0; c < NC; ++c) acc[r][c] = hn::MulAdd(x, wv[c], acc[r][c]);
    }
  }
  for (index_t r = 0; r < kRowBlock; ++r)
    for (int c = 0; c < NC; ++c) {
      float t = hn::GetLane(hn::SumOfLanes(d, acc[r][c]));
      for (index_t jj = j; jj < n; ++jj) t += a[r][jj] * w[c][jj];
      s[r * kDotColumns + c] = t;
    }
}

void Logits(const RowBatch& b, float* z) {
  const index_t n = b.rows, count = b.count;
  const auto row = [&](index_t i) { return b.data + b.indices[std::min(i, count - 1)] * n; };
  for (index_t i0 = 0; i0 < count; i0 += kRowBlock) {
    const index_t m = std::min(kRowBlock, count - i0);
    const float *a[kRowBlock], *next[kRowBlock];
    for (index_t r = 0; r < kRowBlock; ++r) a[r] = row(i0 + std::min(r, m - 1));
    const bool ahead = i0 + kRowBlock < count;
    for (index_t r = 0; r < kRowBlock; ++r) next[r] = row(i0 + kRowBlock + r);
    for (int col = 0; col < b.columns; col += kDotColumns) {
      const int nc = std::min(kDotColumns, b.columns - col);
      const float* wc[kDotColumns];
      for (int c = 0; c < nc; ++c) wc[c] = b.w + (col + c) * n;
      float sums[kRowBlock * kDotColumns];
      const float* const* pf = col == 0 && ahead ? next : nullptr;
      switch (nc) {
        case 1: dot_block<1>(a, wc, n, sums, pf); break;
        case 2: dot_block<2>(a, wc, n, sums, pf); break;
        case 3: dot_block<3>(a, wc, n, sums, pf); break;
        default: dot_block<kDotColumns>(a, wc, n, sums, pf); break;
      }
      for (index_t r = 0; r < m; ++r)
        for (int c = 0; c < nc; ++c) z[(col + c) * count + i0 + r] = sums[r * kDotColumns + c];
    }
  }
}

/// out[j0 .. j0 + n, c0 .. c0 + NC] (+)= sum over i0 <= i < i1 of r[c count + i] a_i[j], n <= 2L,
/// r read from the range's panel of this column block (pack_range: panel[(i - i0) kBlockColumns +
/// c]), sample i's piece at rows[i - i0] + jr (the rows in place, jr = j0, through the range's row
/// addresses as the library's RangeRows; or the last, partial tile's packed copy, jr = 0), and
/// no prefetch, as the library's binary.
template <int NC>
void back_product_block(const RowBatch& b, const float* const* rows, index_t jr,
                        const float* panel, index_t i0, index_t i1, index_t j0, index_t n,
                        index_t c0, bool accumulate, float* out) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const index_t L = static_cast<index_t>(hn::Lanes(d));
  HWY_ALIGN float lanes[2 * 16];  // a partial tile's start or result (L <= 16 on x86)
  V acc[NC][2];
  for (int c = 0; c < NC; ++c) {
    float* o = out + (c0 + c) * b.rows + j0;
    if (n == 2 * L) {
      acc[c][0] = accumulate ? hn::LoadU(d, o) : hn::Zero(d);
      acc[c][1] = accumulate ? hn::LoadU(d, o + L) : hn::Zero(d);
      continue;
    }
    for (index_t jj = 0; jj < 2 * L; ++jj) lanes[jj] = accumulate && jj < n ? o[jj] : 0.0f;
    acc[c][0] = hn::Load(d, lanes);
    acc[c][1] = hn::Load(d, lanes + L);
  }
  for (index_t i = i0; i < i1; ++i) {
    const float* a = rows[i - i0] + jr;
    const V x0 = hn::LoadU(d, a), x1 = hn::LoadU(d, a + L);
    for (int c = 0; c < NC; ++c) {
      const V rc = hn::Set(d, panel[(i - i0) * kBlockColumns + c]);
      acc[c][0] = hn::MulAdd(rc, x0, acc[c][0]);
      acc[c][1] = hn::MulAdd(rc, x1, acc[c][1]);
    }
  }
  for (int c = 0; c < NC; ++c) {
    float* o = out + (c0 + c) * b.rows + j0;
    if (n == 2 * L) {
      hn::StoreU(acc[c][0], d, o);
      hn::StoreU(acc[c][1], d, o + L);
      continue;
    }
    hn::Store(acc[c][0], d, lanes);
    hn::Store(acc[c][1], d, lanes + L);
    for (index_t jj = 0; jj < n; ++jj) o[jj] = lanes[jj];
  }
}

template <int N = kBlockColumns>
void back_product_columns(int nc, const RowBatch& b, const float* const* rows, index_t jr,
                          const float* panel, index_t i0, index_t i1, index_t j0, index_t n,
                          index_t c0, bool accumulate, float* out) {
  if constexpr (N > 1)
    if (nc < N)
      return back_product_columns<N - 1>(nc, b, rows, jr, panel, i0, i1, j0, n, c0, accumulate,
                                         out);
  back_product_block<N>(b, rows, jr, panel, i0, i1, j0, n, c0, accumulate, out);
}

void BackProduct(const RowBatch& b, float* out) {
  const hn::ScalableTag<float> d;
  const index_t RT = 2 * static_cast<index_t>(hn::Lanes(d));
  const int col_blocks = (b.columns + kBlockColumns - 1) / kBlockColumns;
  // (kept from call to call, as the library's): the range's coefficient panels, and the last,
  // partial row tile's pieces packed (tail[(i - i0) RT + jj], zero past the data's rows)
  thread_local std::vector<float> panels, tail;
  panels.resize(static_cast<std::size_t>(col_blocks * kInPlaceSamples * kBlockColumns));
  tail.resize(static_cast<std::size_t>(kInPlaceSamples * RT));
  const float* rows[kInPlaceSamples];
  const float* tail_rows[kInPlaceSamples];
  for (index_t i = 0; i < kInPlaceSamples; ++i) tail_rows[i] = tail.data() + i * RT;
  for (index_t i0 = 0; i0 < b.count; i0 += kInPlaceSamples) {
    const index_t i1 = std::min(b.count, i0 + kInPlaceSamples);
    for (index_t i = i0; i < i1; ++i) rows[i - i0] = b.data + b.indices[i] * b.rows;
    pack_range(b, i0, i1, kBlockColumns, kInPlaceSamples, panels.data());
    for (index_t j0 = 0; j0 < b.rows; j0 += RT) {
      const index_t n = std::min(RT, b.rows - j0);
      // the last rows, fewer than a tile: copied once per range, as the library's
      // copy_tail_pieces, then the same block
      if (n < RT)
        for (index_t i = i0; i < i1; ++i)
          for (index_t jj = 0; jj < RT; ++jj)
            tail[(i - i0) * RT + jj] = jj < n ? rows[i - i0][j0 + jj] : 0.0f;
      for (int c0 = 0; c0 < b.columns; c0 += kBlockColumns) {
        const int nc = std::min(kBlockColumns, b.columns - c0);
        const float* panel = panels.data() + (c0 / kBlockColumns) * kInPlaceSamples * kBlockColumns;
        back_product_columns(nc, b, n == RT ? rows : tail_rows, n == RT ? j0 : 0, panel, i0, i1,
                             j0, n, c0, i0 > 0, out);
      }
    }
  }
}

const char* TargetHere() { return hwy::TargetName(HWY_TARGET); }

}  // namespace bilevel::bench::highway::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bilevel::bench::highway {
HWY_EXPORT(Logits);
HWY_EXPORT(BackProduct);
HWY_EXPORT(TargetHere);

const char* select_highway_target(Isa isa) {
  hwy::SetSupportedTargetsForTest(isa == Isa::avx2 ? HWY_AVX2 : HWY_AVX3);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return HWY_DYNAMIC_DISPATCH(TargetHere)();
}

void logits_highway(Isa, const RowBatch& b, float* z) { HWY_DYNAMIC_DISPATCH(Logits)(b, z); }
void back_product_highway(Isa, const RowBatch& b, float* out) {
  HWY_DYNAMIC_DISPATCH(BackProduct)(b, out);
}
}  // namespace bilevel::bench::highway
#endif
