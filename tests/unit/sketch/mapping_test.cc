// The index mappings: DataDog-compatible indexes and parameters, and the relative-accuracy
// guarantee of value(index(v)) on values of every magnitude.
#include "sketch/mapping/index_mapping.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace orion::sketch {
namespace {

struct NamedMapping {
  std::string name;
  IndexMapping mapping;
};

std::vector<NamedMapping> AllMappings(double relative_accuracy) {
  return {{"kernel", IndexMapping::Kernel()},
          {"logarithmic", *IndexMapping::Logarithmic(relative_accuracy)},
          {"linear", *IndexMapping::LinearlyInterpolated(relative_accuracy)},
          {"cubic", *IndexMapping::CubicallyInterpolated(relative_accuracy)}};
}

// Log-uniform values from 1e-12 to 1e15.
std::vector<double> ValuesOfEveryMagnitude() {
  std::mt19937_64 random(2019);
  std::uniform_real_distribution<double> exponent(-12, 15);
  std::vector<double> values(200000);
  for (double& v : values) v = std::pow(10.0, exponent(random));
  return values;
}

TEST(Mapping, RepresentativeValueIsWithinTheRelativeAccuracy) {
  const std::vector<double> values = ValuesOfEveryMagnitude();
  for (double accuracy : {0.001, 0.01, 0.05}) {
    for (const auto& [name, mapping] : AllMappings(accuracy)) {
      const double alpha = mapping.relative_accuracy();
      if (!mapping.is_kernel()) {
        EXPECT_NEAR(alpha, accuracy, accuracy * 1e-9) << name;
      }
      for (double v : values) {
        const int index = mapping.index(v);
        ASSERT_LE(std::abs(mapping.value(index) - v), alpha * v * (1 + 1e-9))
            << name << " " << accuracy << " v = " << v;
        ASSERT_LE(mapping.lower_bound(index), v * (1 + 1e-12)) << name << " v = " << v;
        ASSERT_GT(mapping.lower_bound(index + 1), v * (1 - 1e-12)) << name << " v = " << v;
      }
    }
  }
}

TEST(Mapping, IndexIsMonotonic) {
  std::vector<double> values = ValuesOfEveryMagnitude();
  std::sort(values.begin(), values.end());
  for (const auto& [name, mapping] : AllMappings(0.01)) {
    for (size_t i = 1; i < values.size(); ++i) {
      ASSERT_LE(mapping.index(values[i - 1]), mapping.index(values[i])) << name;
    }
  }
}

// Indexes computed independently with sketches-go's formulas (in Python, same float64 ops).
TEST(Mapping, IndexesMatchSketchesGo) {
  const std::vector<double> values = {1e-9, 0.5, 1, 2, 3, 10, 1000, 123456.789, 1e9, 1e15};
  const std::vector<int> logarithmic = {-1037, -35, 0, 34, 54, 115, 345, 586, 1036, 1726};
  const std::vector<int> linear = {-1447, 0, 49, 99, 124, 212, 547, 894, 1543, 2538};
  const std::vector<int> cubic = {-1047, -35, 0, 34, 55, 116, 348, 591, 1046, 1743};
  const IndexMapping log_mapping = *IndexMapping::Logarithmic(0.01);
  const IndexMapping linear_mapping = *IndexMapping::LinearlyInterpolated(0.01);
  const IndexMapping cubic_mapping = *IndexMapping::CubicallyInterpolated(0.01);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(log_mapping.index(values[i]), logarithmic[i]) << values[i];
    EXPECT_EQ(linear_mapping.index(values[i]), linear[i]) << values[i];
    EXPECT_EQ(cubic_mapping.index(values[i]), cubic[i]) << values[i];
  }
}

TEST(Mapping, ParametersMatchDataDogsConstructors) {
  const IndexMapping log_mapping = *IndexMapping::Logarithmic(0.01);
  EXPECT_DOUBLE_EQ(log_mapping.gamma(), 1.01 / 0.99);
  EXPECT_EQ(log_mapping.index_offset(), 0);
  EXPECT_EQ(log_mapping.interpolation(), Interpolation::kNone);

  const IndexMapping linear = *IndexMapping::LinearlyInterpolated(0.01);
  EXPECT_DOUBLE_EQ(linear.gamma(), 1.013959948367022);
  EXPECT_DOUBLE_EQ(linear.index_offset(), 49.9983332888866);
  EXPECT_EQ(linear.interpolation(), Interpolation::kLinear);

  const IndexMapping cubic = *IndexMapping::CubicallyInterpolated(0.01);
  EXPECT_DOUBLE_EQ(cubic.gamma(), 1.0200022828058626);
  EXPECT_EQ(cubic.index_offset(), 0);
  EXPECT_EQ(cubic.interpolation(), Interpolation::kCubic);

  const IndexMapping kernel = IndexMapping::Kernel();
  EXPECT_EQ(kernel.gamma(), std::exp2(1.0 / 64));
  EXPECT_EQ(kernel.index_offset(), 0);
  EXPECT_EQ(kernel.interpolation(), Interpolation::kNone);
  EXPECT_EQ(kernel.zero_threshold(), 0);
}

TEST(Mapping, FromProtoRebuildsEachMapping) {
  for (const auto& [name, mapping] : AllMappings(0.02)) {
    const auto rebuilt =
        IndexMapping::FromProto(mapping.gamma(), mapping.index_offset(), mapping.interpolation());
    ASSERT_TRUE(rebuilt.ok()) << name << ": " << rebuilt.status().ToString();
    EXPECT_EQ(*rebuilt, mapping) << name;
    EXPECT_EQ(rebuilt->is_kernel(), mapping.is_kernel()) << name;
  }
}

TEST(Mapping, KernelMappingIsRecognisedWithinTolerance) {
  const double gamma = std::exp2(1.0 / 64);
  EXPECT_TRUE(IndexMapping::FromProto(gamma * (1 + 1e-14), 0, Interpolation::kNone)->is_kernel());
  EXPECT_FALSE(IndexMapping::FromProto(gamma * (1 + 1e-9), 0, Interpolation::kNone)->is_kernel());
  EXPECT_FALSE(IndexMapping::FromProto(gamma, 1, Interpolation::kNone)->is_kernel());
  EXPECT_FALSE(IndexMapping::FromProto(gamma, 0, Interpolation::kLinear)->is_kernel());
}

TEST(Mapping, EqualityUsesSketchesGosTolerance) {
  const IndexMapping a = *IndexMapping::Logarithmic(0.01);
  EXPECT_EQ(a, *IndexMapping::FromProto(a.gamma() * (1 + 1e-13), 0, Interpolation::kNone));
  EXPECT_FALSE(a == *IndexMapping::FromProto(a.gamma() * (1 + 1e-10), 0, Interpolation::kNone));
  EXPECT_FALSE(a == *IndexMapping::FromProto(a.gamma(), 0, Interpolation::kCubic));
  EXPECT_FALSE(a == IndexMapping::Kernel());
}

TEST(Mapping, InvalidParametersAreErrors) {
  EXPECT_FALSE(IndexMapping::Logarithmic(0).ok());
  EXPECT_FALSE(IndexMapping::Logarithmic(1).ok());
  EXPECT_FALSE(IndexMapping::CubicallyInterpolated(NAN).ok());
  EXPECT_FALSE(IndexMapping::FromProto(1.0, 0, Interpolation::kNone).ok());
  EXPECT_FALSE(IndexMapping::FromProto(0.5, 0, Interpolation::kLinear).ok());
  EXPECT_FALSE(IndexMapping::FromProto(INFINITY, 0, Interpolation::kCubic).ok());
  EXPECT_FALSE(IndexMapping::FromProto(1.02, NAN, Interpolation::kNone).ok());
  const auto quadratic = IndexMapping::FromProto(1.02, 0, Interpolation::kQuadratic);
  ASSERT_FALSE(quadratic.ok());
  EXPECT_NE(quadratic.status().message().find("QUADRATIC"), std::string::npos);
}

TEST(Mapping, IndexableRangeKeepsIndexesIn32Bits) {
  for (const auto& [name, mapping] : AllMappings(0.01)) {
    const double low = std::max(mapping.zero_threshold(), 1e-300);
    EXPECT_GE(mapping.index(std::nextafter(low, INFINITY)), INT32_MIN) << name;
    EXPECT_LE(mapping.index(mapping.max_indexable_value()), INT32_MAX) << name;
    EXPECT_TRUE(std::isfinite(mapping.value(mapping.index(mapping.max_indexable_value())))) << name;
  }
}

}  // namespace
}  // namespace orion::sketch
