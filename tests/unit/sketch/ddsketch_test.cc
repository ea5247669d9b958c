// DDSketch: counts, summary, zero and negative values, quantiles, merge rules, and folding the
// kernel's buckets.
#include "sketch/ddsketch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sketch/bucket_index.h"
#include "sketch/kernel_histogram.h"
#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/sparse_store.h"
#include "tests/unit/sketch/sketch_test_support.h"

namespace orion::sketch {
namespace {

using testing::Bins;
using testing::SameBins;

TEST(DDSketch, CountsSummaryZeroAndNegativeValues) {
  WeightedSketch sketch(*IndexMapping::Logarithmic(0.01));
  ASSERT_TRUE(sketch.add(10).ok());
  ASSERT_TRUE(sketch.add(-4, 2).ok());
  ASSERT_TRUE(sketch.add(0, 3).ok());
  ASSERT_TRUE(sketch.add(1e-320).ok());  // below the zero threshold: counts as zero
  ASSERT_TRUE(sketch.add(250, 0.5).ok());
  EXPECT_DOUBLE_EQ(sketch.count(), 7.5);
  EXPECT_DOUBLE_EQ(sketch.zero_count(), 4);
  EXPECT_DOUBLE_EQ(sketch.negative_store().total_count(), 2);
  EXPECT_DOUBLE_EQ(sketch.positive_store().total_count(), 1.5);
  EXPECT_EQ(sketch.min(), -4);
  EXPECT_EQ(sketch.max(), 250);
  EXPECT_DOUBLE_EQ(sketch.sum(), 10 - 8 + 1e-320 + 125);
}

TEST(DDSketch, QuantilesFollowDataDogsRankDefinition) {
  CountSketch sketch(IndexMapping::Kernel());
  // sorted: -100 -100 -1 0 0 5 7 1000  (n = 8, rank = q * 7)
  for (double v : {5.0, -100.0, 0.0, 1000.0, -1.0, 7.0, 0.0, -100.0}) {
    ASSERT_TRUE(sketch.add(v).ok());
  }
  const IndexMapping& m = sketch.mapping();
  const auto q = [&](double quantile) { return *sketch.quantile(quantile); };
  EXPECT_EQ(q(0), -m.value(m.index(100.0)));
  EXPECT_EQ(q(0.2), -m.value(m.index(100.0)));  // rank 1.4 -> element 1
  EXPECT_EQ(q(0.3), -m.value(m.index(1.0)));    // rank 2.1 -> element 2
  EXPECT_EQ(q(0.4), -m.value(m.index(1.0)));    // rank 2.8 -> element 2 (the lower one)
  EXPECT_EQ(q(0.45), 0);                        // rank 3.15 -> element 3
  EXPECT_EQ(q(0.6), 0);                         // rank 4.2 -> element 4
  EXPECT_EQ(q(0.72), m.value(m.index(5.0)));    // rank 5.04 -> element 5
  EXPECT_EQ(q(0.99), m.value(m.index(7.0)));    // rank 6.93 -> element 6
  EXPECT_EQ(q(1), m.value(m.index(1000.0)));
}

// With weights adding up to less than 1, q * (count - 1) is negative: rank 0, the lowest value.
TEST(DDSketch, QuantilesOfWeightsBelowOne) {
  WeightedSketch zeros(IndexMapping::Kernel());
  ASSERT_TRUE(zeros.add(0, 0.5).ok());
  EXPECT_EQ(*zeros.quantile(0.5), 0);
  EXPECT_EQ(*zeros.quantile(1), 0);
  WeightedSketch mixed(*IndexMapping::Logarithmic(0.01));
  ASSERT_TRUE(mixed.add(-3, 0.25).ok());
  ASSERT_TRUE(mixed.add(5, 0.25).ok());
  const IndexMapping& m = mixed.mapping();
  EXPECT_EQ(*mixed.quantile(0), -m.value(m.index(3.0)));
  EXPECT_EQ(*mixed.quantile(1), -m.value(m.index(3.0)));
}

TEST(DDSketch, QuantileErrors) {
  CountSketch sketch(IndexMapping::Kernel());
  EXPECT_EQ(sketch.quantile(0.5).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(sketch.add(1).ok());
  EXPECT_EQ(sketch.quantile(-0.1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sketch.quantile(1.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sketch.quantile(NAN).status().code(), StatusCode::kInvalidArgument);
}

TEST(DDSketch, UntrackableValuesAndCountsAreErrors) {
  WeightedSketch sketch(*IndexMapping::Logarithmic(0.01));
  EXPECT_FALSE(sketch.add(NAN).ok());
  EXPECT_FALSE(sketch.add(INFINITY).ok());
  EXPECT_FALSE(sketch.add(-INFINITY).ok());
  EXPECT_FALSE(sketch.add(1.7e308).ok());  // above max_indexable_value()
  EXPECT_FALSE(sketch.add(1, -1).ok());
  EXPECT_FALSE(sketch.add(1, NAN).ok());
  EXPECT_TRUE(sketch.empty());
  CountSketch kernel(IndexMapping::Kernel());
  EXPECT_TRUE(kernel.add(1.7e308).ok());  // every finite double has a kernel bucket
}

TEST(DDSketch, MergeNeedsTheSameMapping) {
  CountSketch kernel(IndexMapping::Kernel());
  CountSketch logarithmic(*IndexMapping::Logarithmic(0.01));
  ASSERT_TRUE(logarithmic.add(3).ok());
  const Status status = kernel.merge(logarithmic);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("different index mappings"), std::string::npos);
  EXPECT_NE(status.message().find("kernel"), std::string::npos);
  EXPECT_NE(status.message().find("logarithmic"), std::string::npos);
  EXPECT_TRUE(kernel.empty());
}

TEST(DDSketch, MergeCombinesCountsAndSummary) {
  CountSketch a(IndexMapping::Kernel()), b(IndexMapping::Kernel());
  ASSERT_TRUE(a.add(5).ok());
  ASSERT_TRUE(b.add(-2).ok());
  ASSERT_TRUE(b.add(0).ok());
  ASSERT_TRUE(a.merge(b).ok());
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.zero_count(), 1u);
  EXPECT_EQ(a.min(), -2);
  EXPECT_EQ(a.max(), 5);
  EXPECT_EQ(a.sum(), 3);
}

TEST(DDSketch, ClearEmptiesEverything) {
  CountSketch sketch(IndexMapping::Kernel());
  ASSERT_TRUE(sketch.add(5).ok());
  ASSERT_TRUE(sketch.add(0).ok());
  sketch.clear();
  EXPECT_TRUE(sketch.empty());
  EXPECT_EQ(sketch.count(), 0u);
  EXPECT_EQ(sketch.sum(), 0);
  EXPECT_TRUE(std::isnan(sketch.min()));
  EXPECT_TRUE(std::isnan(sketch.max()));
  ASSERT_TRUE(sketch.add(7).ok());
  EXPECT_EQ(sketch.min(), 7);
  EXPECT_EQ(sketch.max(), 7);
}

// The integer path, the double path and folding kernel slots give the same bins.
TEST(DDSketch, KernelBucketsFoldExactly) {
  std::mt19937_64 random(44);
  std::vector<uint64_t> slots(ORION_BUCKET_COUNT, 0);
  CountSketch by_integer(IndexMapping::Kernel()), by_double(IndexMapping::Kernel());
  for (int i = 0; i < 100000; ++i) {
    const uint64_t ns = random() >> (random() % 44 + 20);  // below 2^44 ns: no saturation
    ++slots[orion_bucket_index(ns)];
    ASSERT_TRUE(by_integer.add_integer(ns).ok());
    ASSERT_TRUE(by_double.add(static_cast<double>(ns)).ok());
  }
  CountSketch folded(IndexMapping::Kernel());
  ASSERT_TRUE(FoldKernelHistogram(slots, folded).ok());
  EXPECT_TRUE(SameBins(by_integer, by_double));
  EXPECT_TRUE(SameBins(by_integer, folded));
  EXPECT_GT(folded.zero_count(), 0u);
  EXPECT_EQ(folded.count(), 100000u);
}

TEST(DDSketch, KernelFoldSaturatesAndCountsZero) {
  std::vector<uint64_t> slots(ORION_BUCKET_COUNT, 0);
  slots[orion_bucket_index(0)] = 2;
  slots[orion_bucket_index(uint64_t{1} << 50)] = 3;
  slots[orion_bucket_index(1000)] = 1;
  CountSketch sketch(IndexMapping::Kernel());
  ASSERT_TRUE(FoldKernelHistogram(slots, sketch).ok());
  EXPECT_EQ(sketch.zero_count(), 2u);
  EXPECT_EQ(sketch.positive_store().count_at(ORION_BUCKET_SATURATED_SLOT), 3u);
  EXPECT_EQ(sketch.min(), 0);
  // Folded buckets contribute their representative value to the summary.
  EXPECT_EQ(sketch.max(), sketch.mapping().value(ORION_BUCKET_SATURATED_SLOT));
  EXPECT_NEAR(sketch.sum(), 3 * sketch.mapping().value(ORION_BUCKET_SATURATED_SLOT) + 1000,
              1000 * sketch.mapping().relative_accuracy());
}

TEST(DDSketch, KernelFoldRejectsTheWrongSketchOrSize) {
  std::vector<uint64_t> slots(ORION_BUCKET_COUNT, 1);
  CountSketch logarithmic(*IndexMapping::Logarithmic(0.01));
  EXPECT_FALSE(FoldKernelHistogram(slots, logarithmic).ok());
  CountSketch kernel(IndexMapping::Kernel());
  EXPECT_FALSE(FoldKernelHistogram(std::span(slots).first(100), kernel).ok());
  EXPECT_TRUE(kernel.empty());
}

TEST(DDSketch, SetSummaryReplacesTheEstimate) {
  CountSketch sketch(IndexMapping::Kernel());
  sketch.add_bucket_counts(640, 2);  // [1024, 1035.2)
  EXPECT_NE(sketch.min(), 1030);
  sketch.set_summary(2061, 1030, 1031);
  EXPECT_EQ(sketch.min(), 1030);
  EXPECT_EQ(sketch.max(), 1031);
  EXPECT_EQ(sketch.sum(), 2061);
}

TEST(DDSketch, WorksWithEveryStore) {
  DDSketch<SparseStore<uint64_t>> sparse(IndexMapping::Kernel());
  DDSketch<CollapsingLowestDenseStore<uint64_t>> collapsing(
      IndexMapping::Kernel(), CollapsingLowestDenseStore<uint64_t>(64));
  for (uint64_t v = 1; v < 100000; v *= 3) {
    ASSERT_TRUE(sparse.add_integer(v).ok());
    ASSERT_TRUE(collapsing.add_integer(v).ok());
  }
  EXPECT_EQ(*sparse.quantile(1), *collapsing.quantile(1));  // the top is never collapsed
  EXPECT_EQ(collapsing.positive_store().max_index() - collapsing.positive_store().min_index() + 1,
            64);
}

}  // namespace
}  // namespace orion::sketch
