// The parts of a double that the interpolated mappings read to approximate log2 cheaply:
// a normal v = 2^e * (1 + s) with 0 <= s < 1.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace orion::sketch::binary_log {

// e, the unbiased binary exponent of a normal double.
inline double Exponent(double v) {
  return static_cast<double>(static_cast<int>((std::bit_cast<uint64_t>(v) >> 52) & 0x7ff) - 1023);
}

// 1 + s, the significand of a normal double, in [1, 2).
inline double SignificandPlusOne(double v) {
  constexpr uint64_t kSignificandMask = (uint64_t{1} << 52) - 1;
  constexpr uint64_t kOneBits = 0x3ff0000000000000;
  return std::bit_cast<double>((std::bit_cast<uint64_t>(v) & kSignificandMask) | kOneBits);
}

// 2^exponent * significand_plus_one.
inline double Build(double exponent, double significand_plus_one) {
  return std::ldexp(significand_plus_one, static_cast<int>(exponent));
}

}  // namespace orion::sketch::binary_log
