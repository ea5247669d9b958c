// Proves the kernel's bucket index (sketch/bucket_index.h) exact, and the C++ mapping equal to
// it, against an independent oracle: index(v) = bit_length(v^64) - 1, in exact integers.
#include "sketch/bucket_index.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>

#include "sketch/encoding/ddsketch_encoding.h"
#include "sketch/mapping/exponential_mapping.h"
#include "sketch/mapping/index_mapping.h"
#include "tests/unit/sketch/big_uint.h"

namespace orion::sketch {
namespace {

using testing::OracleIndex;
using testing::Pow64;

// The header compiled as plain C (bucket_index_c.c), as tracer mode's NIF compiles it.
extern "C" int orion_bucket_index_c(unsigned long long ns);
extern "C" int orion_bucket_exact_index_c(unsigned long long ns);

// The smallest integer in bucket `index` or above: ceil(2^(index/64)), from the table.
uint64_t BoundaryFromTable(int index) {
  const int exponent = index / 64;
  const uint64_t t = orion_bucket_boundaries[index % 64];
  const int shift = 63 - exponent;
  return (t >> shift) + ((t & ((uint64_t{1} << shift) - 1)) != 0 ? 1 : 0);
}

// Checks every implementation of the index on v against the oracle.
void ExpectAllAgree(uint64_t v) {
  const int64_t expected = OracleIndex(v);
  const ExponentialMapping mapping;
  ASSERT_EQ(orion_bucket_exact_index(v), expected) << "header, v = " << v;
  ASSERT_EQ(orion_bucket_exact_index_c(v), expected) << "header as plain C, v = " << v;
  ASSERT_EQ(mapping.index(v), expected) << "C++ integer path, v = " << v;
  ASSERT_EQ(IndexMapping::Kernel().index(v), expected) << "IndexMapping, v = " << v;
  if (v <= (uint64_t{1} << 53)) {  // exactly representable as a double
    ASSERT_EQ(mapping.index(static_cast<double>(v)), expected) << "C++ double path, v = " << v;
  }
  if (v < (uint64_t{1} << ORION_BUCKET_MAX_EXPONENT)) {
    ASSERT_EQ(orion_bucket_index(v), expected) << "kernel slot, v = " << v;
    ASSERT_EQ(orion_bucket_index_c(v), expected) << "slot, header as plain C, v = " << v;
  }
}

TEST(BucketIndex, BoundaryTableIsTheExactCeilingOfEachBoundary) {
  for (int k = 0; k < ORION_BUCKET_SUBBUCKETS; ++k) {
    const uint64_t t = orion_bucket_boundaries[k];
    const int64_t boundary_exponent = 63 * 64 + k;  // T[k] = min { t : t^64 >= 2^(63*64 + k) }
    EXPECT_GE(Pow64(t).bit_length() - 1, boundary_exponent) << "k = " << k;
    EXPECT_LE(Pow64(t - 1).bit_length() - 1, boundary_exponent - 1) << "k = " << k;
  }
}

TEST(BucketIndex, WalksEveryBoundaryFrom1nsTo2e40nsAndOneEitherSide) {
  for (int index = 0; index <= 64 * 40; ++index) {
    const uint64_t boundary = BoundaryFromTable(index);
    // The table's boundary really is the first integer of the bucket (or of a later one).
    ASSERT_GE(OracleIndex(boundary), index);
    if (boundary > 1) {
      ASSERT_LT(OracleIndex(boundary - 1), index);
      ExpectAllAgree(boundary - 1);
    }
    ExpectAllAgree(boundary);
    ExpectAllAgree(boundary + 1);
  }
}

TEST(BucketIndex, WalksEveryBoundaryFrom2e40nsTo2e64ns) {
  for (int index = 64 * 40; index < 64 * 64; ++index) {
    const uint64_t boundary = BoundaryFromTable(index);
    ASSERT_GE(OracleIndex(boundary), index);
    ASSERT_LT(OracleIndex(boundary - 1), index);
    ExpectAllAgree(boundary - 1);
    ExpectAllAgree(boundary);
    if (boundary != UINT64_MAX) ExpectAllAgree(boundary + 1);
  }
  ExpectAllAgree(UINT64_MAX);
}

TEST(BucketIndex, RandomIntegersOfEveryMagnitudeAgreeWithTheOracle) {
  std::mt19937_64 random(6);
  for (int i = 0; i < 20000; ++i) {
    const int bits = 1 + static_cast<int>(random() % 64);
    const uint64_t v = (random() >> (64 - bits)) | (uint64_t{1} << (bits - 1));
    ExpectAllAgree(v);
  }
}

TEST(BucketIndex, HeaderAndCppAgreeOnAMillionRandomIntegers) {
  std::mt19937_64 random(64);
  const ExponentialMapping mapping;
  for (int i = 0; i < 1000000; ++i) {
    const uint64_t v = (random() >> (random() % 64)) | 1;
    ASSERT_EQ(orion_bucket_exact_index(v), mapping.index(v)) << v;
  }
}

TEST(BucketIndex, DoublesAroundEveryBoundaryAgreeWithTheOracle) {
  const ExponentialMapping mapping;
  for (int index = -64 * 40; index <= 64 * 70; ++index) {
    double x = std::exp2(index / 64.0);
    for (int step = 0; step < 3; ++step) x = std::nextafter(x, 0.0);
    for (int step = 0; step < 7; ++step, x = std::nextafter(x, INFINITY)) {
      ASSERT_EQ(mapping.index(x), OracleIndex(x)) << "x = " << x << ", index " << index;
    }
  }
}

TEST(BucketIndex, ExtremeDoublesAgreeWithTheOracle) {
  const ExponentialMapping mapping;
  for (double x : {DBL_TRUE_MIN, 2 * DBL_TRUE_MIN, 3 * DBL_TRUE_MIN, DBL_MIN / 3, DBL_MIN,
                   std::nextafter(DBL_MIN, 0.0), 1e-300, 0.5, 1.0, 1e300, DBL_MAX}) {
    EXPECT_EQ(mapping.index(x), OracleIndex(x)) << "x = " << x;
  }
  EXPECT_EQ(mapping.index(DBL_TRUE_MIN), -64 * 1074);
  EXPECT_EQ(mapping.index(DBL_MAX), 64 * 1023 + 63);
}

// The boundary rule: bucket i holds [gamma^i, gamma^(i+1)), so 2^e opens bucket 64e.
TEST(BucketIndex, PowersOfTwoOpenTheirBucket) {
  const ExponentialMapping mapping;
  for (int e = 0; e < 64; ++e) {
    const uint64_t v = uint64_t{1} << e;
    EXPECT_EQ(orion_bucket_exact_index(v), 64 * e);
    EXPECT_EQ(mapping.index(std::ldexp(1.0, e)), 64 * e);
    EXPECT_EQ(mapping.index(std::ldexp(1.0, -e)), -64 * e);
    // OpenTelemetry / Prometheus are upper-inclusive: 2^e closes their bucket 64e - 1.
    EXPECT_EQ(mapping.OtelIndex(v), 64 * e - 1);
    if (e >= 7) {  // from 128 ns on, buckets are wider than 1 ns: v - 1 and v + 1 are neighbours
      EXPECT_EQ(orion_bucket_exact_index(v - 1), 64 * e - 1);
      EXPECT_EQ(mapping.OtelIndex(v - 1), 64 * e - 1);
      EXPECT_EQ(mapping.OtelIndex(v + 1), 64 * e);
    }
  }
}

// Why the integer code is authoritative: decoding gamma = 2^(1/64) and recomputing the index as
// floor(log(v) * multiplier) puts powers of two one bucket low.
TEST(BucketIndex, FloatingPointLogWouldPutBoundariesOneBucketLow) {
  const double base2_multiplier = 1 / std::log2(ExponentialMapping::kGamma);
  EXPECT_LT(base2_multiplier, 64.0);                                   // 63.999999999999915
  const double multiplier = 1 / std::log(ExponentialMapping::kGamma);  // sketches-go's
  for (int e = 1; e < 64; ++e) {
    const double v = std::ldexp(1.0, e);
    EXPECT_EQ(std::floor(std::log2(v) * base2_multiplier), 64 * e - 1) << e;
    EXPECT_EQ(std::floor(std::log(v) * multiplier), 64 * e - 1) << e;
  }

  // A decoded sketch with that gamma uses the exact mapping instead.
  CountSketch sketch(IndexMapping::Kernel());
  ASSERT_TRUE(sketch.add_integer(1024).ok());
  const auto decoded = DecodeDDSketch<DenseStore<uint64_t>>(EncodeDDSketch(sketch));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->mapping().is_kernel());
  EXPECT_EQ(decoded->mapping().index(1024.0), 640);
  EXPECT_EQ(decoded->positive_store().count_at(640), 1u);
}

TEST(BucketIndex, KernelSlotsSaturateAndCountZeroApart) {
  EXPECT_EQ(ORION_BUCKET_COUNT, 2816);
  EXPECT_EQ(orion_bucket_index(0), ORION_BUCKET_ZERO_SLOT);
  EXPECT_TRUE(orion_bucket_is_zero(orion_bucket_index(0)));
  EXPECT_EQ(orion_bucket_index(1), 0);
  EXPECT_EQ(orion_bucket_index(2), 64);  // no integer between 1 and 2: slot 1 is free for zero
  const uint64_t limit = uint64_t{1} << ORION_BUCKET_MAX_EXPONENT;
  EXPECT_EQ(orion_bucket_index(limit - 1), ORION_BUCKET_SATURATED_SLOT);  // its own bucket
  EXPECT_EQ(orion_bucket_exact_index(limit - 1), ORION_BUCKET_COUNT - 1);
  EXPECT_EQ(orion_bucket_index(limit), ORION_BUCKET_SATURATED_SLOT);
  EXPECT_EQ(orion_bucket_index(UINT64_MAX), ORION_BUCKET_SATURATED_SLOT);
  EXPECT_TRUE(orion_bucket_is_saturated(orion_bucket_index(limit)));
  EXPECT_FALSE(orion_bucket_is_saturated(orion_bucket_index(limit / 2)));
}

TEST(BucketIndex, LeadingBitIsFloorLog2) {
  for (int e = 0; e < 64; ++e) {
    const uint64_t v = uint64_t{1} << e;
    EXPECT_EQ(orion_bucket_leading_bit(v), e);
    EXPECT_EQ(orion_bucket_leading_bit(v | (v - 1)), e);
  }
}

// value(i) is within the relative accuracy of both ends of its bucket.
TEST(BucketIndex, RepresentativeValueIsWithinTheRelativeAccuracy) {
  const ExponentialMapping mapping;
  const double alpha = mapping.relative_accuracy();
  EXPECT_NEAR(alpha, (ExponentialMapping::kGamma - 1) / (ExponentialMapping::kGamma + 1), 1e-15);
  EXPECT_NEAR(alpha, 0.005415, 1e-6);
  for (int index = -5000; index < 5000; ++index) {
    const double low = mapping.lower_bound(index);
    const double high = mapping.lower_bound(index + 1);
    const double value = mapping.value(index);
    EXPECT_LE(std::abs(value - low) / low, alpha * (1 + 1e-12)) << index;
    EXPECT_LE(std::abs(value - high) / high, alpha * (1 + 1e-12)) << index;
    EXPECT_EQ(mapping.index(low), index) << index;
    EXPECT_EQ(mapping.index(std::nextafter(low, 0.0)), index - 1) << index;
    EXPECT_EQ(mapping.index(std::nextafter(high, 0.0)), index) << index;
  }
}

}  // namespace
}  // namespace orion::sketch
