// A tiny unsigned bignum for the tests' exact oracle of the kernel's bucket index.
//
// index(v) = floor(log_gamma v) with gamma = 2^(1/64) is the largest i with 2^i <= v^64, that is
// bit_length(v^64) - 1: two integer operations that cannot round.  This file computes them with
// no floating point and no code shared with sketch/.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace orion::sketch::testing {

// Little-endian 64-bit limbs, no leading zero limbs.
class BigUint {
 public:
  explicit BigUint(uint64_t v) {
    if (v != 0) limbs_.push_back(v);
  }

  BigUint operator*(const BigUint& other) const {
    BigUint product(0);
    product.limbs_.assign(limbs_.size() + other.limbs_.size(), 0);
    for (size_t i = 0; i < limbs_.size(); ++i) {
      unsigned __int128 carry = 0;
      for (size_t j = 0; j < other.limbs_.size(); ++j) {
        const unsigned __int128 t = static_cast<unsigned __int128>(limbs_[i]) * other.limbs_[j] +
                                    product.limbs_[i + j] + carry;
        product.limbs_[i + j] = static_cast<uint64_t>(t);
        carry = t >> 64;
      }
      product.limbs_[i + other.limbs_.size()] = static_cast<uint64_t>(carry);
    }
    while (!product.limbs_.empty() && product.limbs_.back() == 0) product.limbs_.pop_back();
    return product;
  }

  // Position of the highest set bit plus one (0 for zero).
  int64_t bit_length() const {
    if (limbs_.empty()) return 0;
    return 64 * static_cast<int64_t>(limbs_.size() - 1) + std::bit_width(limbs_.back());
  }

 private:
  std::vector<uint64_t> limbs_;
};

// v^64 by six squarings.
inline BigUint Pow64(uint64_t v) {
  BigUint x(v);
  for (int i = 0; i < 6; ++i) x = x * x;
  return x;
}

// floor(log_gamma v) for an integer v >= 1, exactly.
inline int64_t OracleIndex(uint64_t v) {
  return Pow64(v).bit_length() - 1;
}

// floor(log_gamma x) for a finite double x > 0, exactly: x = m * 2^e with an integer m < 2^53,
// so x^64 = m^64 * 2^(64 e).
inline int64_t OracleIndex(double x) {
  int exponent = 0;
  const double fraction = std::frexp(x, &exponent);  // x = fraction * 2^exponent, exact
  const auto m = static_cast<uint64_t>(std::ldexp(fraction, 53));
  return OracleIndex(m) + 64 * static_cast<int64_t>(exponent - 53);
}

}  // namespace orion::sketch::testing
