// The kernel's index mapping in C++: exact base-2 exponential at scale 6 (gamma = 2^(1/64)).
//
// index(v) = floor(log_gamma v), computed exactly from the bits of v with the boundary table of
// sketch/bucket_index.h, for integers (bit for bit what the BPF programs compute) and for every
// positive double (subnormals included).  Bucket i holds [gamma^i, gamma^(i+1)), lower-inclusive
// like sketches-go/-java, and value(i) = 2*gamma^(i+1)/(1+gamma) is within relative_accuracy()
// = (gamma-1)/(gamma+1) ~ 0.54 % of every value in it.  On the wire it is DataDog's
// IndexMapping{gamma = 2^(1/64), indexOffset = 0, interpolation = NONE}, which sketches-go/-java
// read with the same buckets.  These are OpenTelemetry scale-6 / Prometheus schema-6 buckets,
// shifted at powers of two only (see OtelIndex and docs/sketch.md).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "sketch/bucket_index.h"
#include "sketch/mapping/interpolation.h"

namespace orion::sketch {

namespace exponential_mapping_internal {
// A 128-entry lookup on the 7 mantissa bits after the leading one, then one comparison: each
// 1/128 slice of [2^63, 2^64) holds at most one boundary (checked at compile time in the .cc
// file; equality with the header's binary search is proved by tests/unit/sketch).
struct SubIndexHint {
  uint64_t threshold;  // the slice's boundary minus 1 if it has one, else UINT64_MAX
  int subindex;        // orion_bucket_subindex() of the slice's first value
};
extern const std::array<SubIndexHint, 128> kSubIndexHints;
}  // namespace exponential_mapping_internal

class ExponentialMapping {
 public:
  static constexpr int kScale = ORION_BUCKET_SUBBUCKET_BITS;
  static constexpr int kSubBuckets = ORION_BUCKET_SUBBUCKETS;
  // 2^(1/64) rounded to the nearest double (the top 53 bits of orion_bucket_boundaries[1]).
  static constexpr double kGamma = 0x1.02c9a3e778061p+0;

  // floor(log_gamma v) for an integer v >= 1; equal to orion_bucket_exact_index(v).
  int index(uint64_t v) const {
    const int leading_zeros = std::countl_zero(v);
    return (63 - leading_zeros) * kSubBuckets + SubIndex(v << leading_zeros);
  }

  // floor(log_gamma v) for a finite v > 0, exact for every double.
  int index(double v) const {
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    const int biased_exponent = static_cast<int>(bits >> 52);
    const uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
    if (biased_exponent == 0) {  // subnormal: v = mantissa * 2^-1074
      const int leading_zeros = std::countl_zero(mantissa);
      return (63 - leading_zeros - 1074) * kSubBuckets + SubIndex(mantissa << leading_zeros);
    }
    return (biased_exponent - 1023) * kSubBuckets +
           SubIndex((uint64_t{1} << 63) | (mantissa << 11));
  }

  // The smallest double in the bucket: gamma^index rounded up (subnormals aside, where ldexp
  // rounds), so index(lower_bound(i)) == i.
  double lower_bound(int index) const;
  // The bucket's representative value, lower_bound * (1 + relative_accuracy()).
  double value(int index) const { return lower_bound(index) * (1 + relative_accuracy()); }

  double gamma() const { return kGamma; }
  double index_offset() const { return 0; }
  Interpolation interpolation() const { return Interpolation::kNone; }
  double relative_accuracy() const { return 1 - 2 / (1 + kGamma); }
  // Every positive double has a bucket; only 0 itself goes to the zero count.
  double zero_threshold() const { return 0; }
  double max_indexable_value() const;

  // The OpenTelemetry exponential-histogram (scale 6) / Prometheus native-histogram (schema 6)
  // bucket of a value, which those define upper-inclusive, (gamma^i, gamma^(i+1)]: equal to
  // index(v) except at exact boundaries, where it is one lower.  For integers the only exact
  // boundaries are powers of two.
  int OtelIndex(uint64_t v) const { return index(v) - (std::has_single_bit(v) ? 1 : 0); }

  bool operator==(const ExponentialMapping&) const = default;

 private:
  // orion_bucket_subindex(m) for m with bit 63 set.
  static int SubIndex(uint64_t m) {
    const auto& hint = exponential_mapping_internal::kSubIndexHints[(m >> 56) & 0x7f];
    return hint.subindex + (m > hint.threshold ? 1 : 0);
  }
};

}  // namespace orion::sketch
