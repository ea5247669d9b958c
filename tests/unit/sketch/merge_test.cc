// Merging sketches of parts equals the sketch of the whole, bin for bin; merge is associative
// and commutative.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sketch/ddsketch.h"
#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/sparse_store.h"
#include "tests/unit/sketch/sketch_test_support.h"

namespace orion::sketch {
namespace {

using testing::SameBins;

std::vector<double> Values(uint64_t seed) {
  std::vector<double> values;
  for (const auto& set : testing::PositiveDataSets(5000, seed)) {
    values.insert(values.end(), set.values.begin(), set.values.end());
  }
  std::mt19937_64 random(seed);
  for (double& v : values) {
    const auto u = random() % 10;
    if (u == 0) v = 0;
    if (u == 1) v = -v;
  }
  return values;
}

template <typename S>
class MergeTest : public ::testing::Test {
 protected:
  DDSketch<S> Sketch(const IndexMapping& mapping) { return DDSketch<S>(mapping, Store()); }
  static S Store() {
    if constexpr (std::is_same_v<S, CollapsingLowestDenseStore<uint64_t>>) {
      return S(300);  // small enough to collapse
    } else {
      return S();
    }
  }
};

using StoreTypes = ::testing::Types<DenseStore<uint64_t>, DenseStore<double>, SparseStore<uint64_t>,
                                    CollapsingLowestDenseStore<uint64_t>>;
TYPED_TEST_SUITE(MergeTest, StoreTypes);

TYPED_TEST(MergeTest, PartsMergeIntoTheWhole) {
  const std::vector<double> values = Values(1);
  for (const IndexMapping& mapping :
       {IndexMapping::Kernel(), *IndexMapping::CubicallyInterpolated(0.02)}) {
    std::mt19937_64 random(2);
    auto whole = this->Sketch(mapping);
    std::vector<DDSketch<TypeParam>> parts(7, this->Sketch(mapping));
    for (double v : values) {
      ASSERT_TRUE(whole.add(v).ok());
      ASSERT_TRUE(parts[random() % parts.size()].add(v).ok());
    }
    auto merged = this->Sketch(mapping);
    for (const auto& part : parts) ASSERT_TRUE(merged.merge(part).ok());
    EXPECT_TRUE(SameBins(merged, whole)) << mapping.Describe();
    EXPECT_EQ(merged.count(), whole.count());
    EXPECT_EQ(merged.min(), whole.min());
    EXPECT_EQ(merged.max(), whole.max());
    EXPECT_NEAR(merged.sum(), whole.sum(), 1e-9 * std::abs(whole.sum()) + 1e-3);
    for (double q : testing::TestedQuantiles()) EXPECT_EQ(*merged.quantile(q), *whole.quantile(q));
  }
}

TYPED_TEST(MergeTest, MergeIsAssociativeAndCommutative) {
  const IndexMapping mapping = IndexMapping::Kernel();
  auto a = this->Sketch(mapping), b = this->Sketch(mapping), c = this->Sketch(mapping);
  const std::vector<double> values = Values(3);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_TRUE((i % 3 == 0 ? a : i % 3 == 1 ? b : c).add(values[i]).ok());
  }
  auto ab_c = a;  // (a + b) + c
  ASSERT_TRUE(ab_c.merge(b).ok());
  ASSERT_TRUE(ab_c.merge(c).ok());
  auto bc = b;  // a + (b + c)
  ASSERT_TRUE(bc.merge(c).ok());
  auto a_bc = a;
  ASSERT_TRUE(a_bc.merge(bc).ok());
  EXPECT_TRUE(SameBins(ab_c, a_bc));

  auto ab = a, ba = b;
  ASSERT_TRUE(ab.merge(b).ok());
  ASSERT_TRUE(ba.merge(a).ok());
  EXPECT_TRUE(SameBins(ab, ba));
  EXPECT_EQ(ab.min(), ba.min());
  EXPECT_EQ(ab.max(), ba.max());
}

TYPED_TEST(MergeTest, MergingAnEmptySketchChangesNothing) {
  auto a = this->Sketch(IndexMapping::Kernel());
  ASSERT_TRUE(a.add(42).ok());
  const auto before = a;
  ASSERT_TRUE(a.merge(this->Sketch(IndexMapping::Kernel())).ok());
  EXPECT_TRUE(SameBins(a, before));
  EXPECT_EQ(a.min(), 42);
  EXPECT_EQ(a.max(), 42);
}

}  // namespace
}  // namespace orion::sketch
