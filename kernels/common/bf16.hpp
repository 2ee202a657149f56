// bfloat16 storage of data (features): the upper 16 bits of an IEEE float. Conversions written
// once for the CPU loops and the CUDA kernels, so both backends see the same values.
#pragma once

#include "host_device.hpp"

#include <cstdint>
#include <cstring>

namespace bilevel::kernels::common {

/// The float a bf16 value stands for (exact: bf16 is a truncated float).
BILEVEL_HOST_DEVICE float bf16_to_float(std::uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(static_cast<unsigned>(h) << 16);
#else
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/// The nearest bf16 (ties to even); NaN stays NaN, infinities stay infinite, values beyond the
/// largest bf16 round to infinity as IEEE rounding does.
BILEVEL_HOST_DEVICE std::uint16_t float_to_bf16(float f) {
#if defined(__CUDA_ARCH__)
  const std::uint32_t u = __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0)
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

/// A data value as the arithmetic type T: bf16 widened, anything else converted.
template <typename T>
BILEVEL_HOST_DEVICE T data_value(std::uint16_t h) {
  return static_cast<T>(bf16_to_float(h));
}
template <typename T>
BILEVEL_HOST_DEVICE T data_value(float v) {
  return static_cast<T>(v);
}
template <typename T>
BILEVEL_HOST_DEVICE T data_value(double v) {
  return static_cast<T>(v);
}

}  // namespace bilevel::kernels::common
