// The pieces both CPU linear-model passes are built from, for one instruction set (see
// linear_model_passes.hpp): the call's shape and samples, one vector register of T (GCC vector
// types sized from BILEVEL_CPU_VECTOR_BYTES), loads of float and bf16 rows, the halving lane sum,
// and the register block's column count.
#pragma once

#ifndef BILEVEL_CPU_ISA
#error "define BILEVEL_CPU_ISA (the namespace of this instruction set) before including"
#endif

#include "../common/bf16.hpp"
#include "../common/linear_model.hpp"
#include "../linear_model_kernels.hpp"

#include <cstdint>
#include <cstring>
#include <type_traits>

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

/// Keeps v in a register: GCC otherwise may fold a vector that several multiply-adds share into
/// each of them as a memory operand, one load per use. In pass 1's 4 x 2 block on AVX2 it loaded
/// every row twice (9 loads per 8 multiply-adds, load-bound): 53 GFLOP/s where the same block
/// with the row in a register ran 78 (one core of the AMD VM, a standalone copy of the loop).
/// An empty asm with the vector as an in-out register operand; no instruction is emitted.
template <typename V>
inline void keep_in_register(V& v) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+x"(v));
#else
  (void)v;
#endif
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

/// Columns per group from which the passes pack the rows: below, packing costs more than the
/// products it serves, and the row form (the rows as stored) is faster. Measured per
/// instruction set (H v + J v at batch 512, B = 1..8, 1 and 2 threads, 2026-12-03,
/// docs/design.md): with AVX-512 the row form wins up to B = 3 (60 columns; B = 2, 2 threads:
/// 0.45 against 0.69 ms packed), with AVX2 and the baseline packing wins from about 32.
constexpr index_t kPackedColumns = kVectorRegisters >= 32 ? 64 : 32;


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

}  // namespace
}  // namespace bilevel::kernels::cpu::BILEVEL_CPU_ISA
