// IEEE 754 binary16 <-> binary32 conversion: half -> float for the portable
// kernels, where F16C is not available (exact for every half value), and
// float -> half for float16 vector storage (round to nearest, ties to even,
// as F16C and numpy do).
#pragma once

#include <cstdint>
#include <cstring>

namespace vecdb {

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1fu) {  // inf or NaN
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: normalize the mantissa
    exponent = 113u;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline std::uint16_t float_to_half(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u)  // inf stays inf; NaN stays a (quiet) NaN
    return sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u);
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to inf
  std::uint32_t half;
  std::uint32_t dropped, halfway;
  if (magnitude >= 0x38800000u) {  // normal half: rebias 127 -> 15, keep 10 mantissa bits
    half = ((magnitude >> 23) - 112u) << 10 | ((magnitude >> 13) & 0x3ffu);
    dropped = magnitude & 0x1fffu;
    halfway = 0x1000u;
  } else {  // subnormal half (or zero): the value in units of 2^-24
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t shift = 126u - exponent;  // >= 14
    if (exponent == 0 || shift > 24) return sign;  // below 2^-25: rounds to zero
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    half = mantissa >> shift;
    dropped = mantissa & ((1u << shift) - 1u);
    halfway = 1u << (shift - 1u);
  }
  // Round to nearest, ties to even; a carry into the exponent is correct.
  if (dropped > halfway || (dropped == halfway && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

}  // namespace vecdb
