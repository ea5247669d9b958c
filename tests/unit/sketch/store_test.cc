// The stores: growing both ways, ranks, merging, and collapsing past max_bins.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/dense_store.h"
#include "sketch/store/sparse_store.h"
#include "sketch/store/store.h"
#include "tests/unit/sketch/sketch_test_support.h"

namespace orion::sketch {
namespace {

using testing::Bins;

template <typename S>
class StoreTest : public ::testing::Test {};

using StoreTypes = ::testing::Types<DenseStore<uint64_t>, DenseStore<double>, SparseStore<uint64_t>,
                                    SparseStore<double>, CollapsingLowestDenseStore<uint64_t>,
                                    CollapsingHighestDenseStore<double>>;
TYPED_TEST_SUITE(StoreTest, StoreTypes);

static_assert(Store<DenseStore<uint64_t>> && Store<SparseStore<double>> &&
              Store<CollapsingLowestDenseStore<uint64_t>>);

TYPED_TEST(StoreTest, GrowsBothWays) {
  TypeParam store;
  EXPECT_TRUE(store.empty());
  store.add(100, 3);
  store.add(-50, 2);
  store.add(1000, 1);
  store.add(100, 4);
  store.add(7, 0);  // no effect
  EXPECT_FALSE(store.empty());
  EXPECT_EQ(store.total_count(), 10);
  EXPECT_EQ(store.min_index(), -50);
  EXPECT_EQ(store.max_index(), 1000);
  EXPECT_EQ(store.count_at(100), 7);
  EXPECT_EQ(store.count_at(-50), 2);
  EXPECT_EQ(store.count_at(1000), 1);
  EXPECT_EQ(store.count_at(7), 0);
  EXPECT_EQ(store.count_at(5000), 0);
  EXPECT_EQ(Bins(store).size(), 3u);
}

TYPED_TEST(StoreTest, KeyAtRankCountsFromEitherEnd) {
  TypeParam store;
  store.add(-3, 2);  // ranks 0, 1
  store.add(5, 1);   // rank 2
  store.add(9, 3);   // ranks 3, 4, 5
  EXPECT_EQ(store.key_at_rank(0), -3);
  EXPECT_EQ(store.key_at_rank(1.9), -3);
  EXPECT_EQ(store.key_at_rank(2), 5);
  EXPECT_EQ(store.key_at_rank(2.5), 5);
  EXPECT_EQ(store.key_at_rank(3), 9);
  EXPECT_EQ(store.key_at_rank(5), 9);
  EXPECT_EQ(store.key_at_rank(99), 9);
  EXPECT_EQ(store.key_at_descending_rank(0), 9);
  EXPECT_EQ(store.key_at_descending_rank(2.9), 9);
  EXPECT_EQ(store.key_at_descending_rank(3), 5);
  EXPECT_EQ(store.key_at_descending_rank(4), -3);
  EXPECT_EQ(store.key_at_descending_rank(99), -3);
}

TYPED_TEST(StoreTest, MergeAddsEveryBin) {
  std::mt19937_64 random(1);
  TypeParam a, b, both;
  for (int i = 0; i < 2000; ++i) {
    const int index = static_cast<int>(random() % 600) - 300;
    const int count = 1 + static_cast<int>(random() % 5);
    (i % 2 ? a : b).add(index, count);
    both.add(index, count);
  }
  a.merge(b);
  EXPECT_EQ(Bins(a), Bins(both));
  EXPECT_EQ(a.total_count(), both.total_count());
  a.merge(a);  // merging with itself doubles every bin
  for (const auto& [index, count] : Bins(both)) EXPECT_EQ(a.count_at(index), 2 * count);
}

TYPED_TEST(StoreTest, ClearEmptiesAndKeepsWorking) {
  TypeParam store;
  store.add(10, 1);
  store.add(-10, 1);
  store.clear();
  EXPECT_TRUE(store.empty());
  EXPECT_EQ(store.total_count(), 0);
  EXPECT_EQ(store.count_at(10), 0);
  store.add(3, 2);
  EXPECT_EQ(store.min_index(), 3);
  EXPECT_EQ(store.max_index(), 3);
  EXPECT_EQ(store.total_count(), 2);
}

TEST(DenseStore, HandlesIndexesFarApartAndAtTheInt32Limits) {
  DenseStore<uint64_t> store;
  store.add(INT32_MAX, 1);
  store.add(INT32_MAX - 100000, 2);
  EXPECT_EQ(store.count_at(INT32_MAX), 1u);
  EXPECT_EQ(store.key_at_rank(2), INT32_MAX);
  DenseStore<uint64_t> low;
  low.add(INT32_MIN, 5);
  low.add(INT32_MIN + 3, 1);
  EXPECT_EQ(low.min_index(), INT32_MIN);
  EXPECT_EQ(low.key_at_descending_rank(1), INT32_MIN);
}

TEST(CollapsingStore, LowestBinsCollapseIntoTheLowestKeptBin) {
  CollapsingLowestDenseStore<uint64_t> store(10);
  for (int index = 0; index < 20; ++index) store.add(index, 1);
  EXPECT_EQ(store.total_count(), 20u);
  EXPECT_EQ(store.min_index(), 10);
  EXPECT_EQ(store.max_index(), 19);
  EXPECT_EQ(store.count_at(10), 11u);  // 0..10
  for (int index = 11; index < 20; ++index) EXPECT_EQ(store.count_at(index), 1u);
  store.add(-1000, 4);  // below the kept range: lands in the lowest kept bin
  EXPECT_EQ(store.count_at(10), 15u);
  store.add(1000, 1);  // far above: everything else collapses into bin 991
  EXPECT_EQ(store.min_index(), 991);
  EXPECT_EQ(store.count_at(991), 24u);
  EXPECT_EQ(store.count_at(1000), 1u);
}

TEST(CollapsingStore, HighestBinsCollapseIntoTheHighestKeptBin) {
  CollapsingHighestDenseStore<uint64_t> store(10);
  for (int index = 0; index < 20; ++index) store.add(index, 1);
  EXPECT_EQ(store.min_index(), 0);
  EXPECT_EQ(store.max_index(), 9);
  EXPECT_EQ(store.count_at(9), 11u);  // 9..19
  store.add(-1000, 1);
  EXPECT_EQ(store.max_index(), -991);
  EXPECT_EQ(store.count_at(-991), 20u);
}

// The collapsed result depends on the values only: adding in any order, or merging parts,
// gives the same bins.
TEST(CollapsingStore, ResultDoesNotDependOnOrder) {
  std::mt19937_64 random(7);
  std::vector<int> indexes(3000);
  for (int& index : indexes) index = static_cast<int>(random() % 5000) - 2500;
  CollapsingLowestDenseStore<uint64_t> reference(256);
  for (int index : indexes) reference.add(index, 1);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(indexes.begin(), indexes.end(), random);
    CollapsingLowestDenseStore<uint64_t> whole(256), part_a(256), part_b(256);
    for (size_t i = 0; i < indexes.size(); ++i) {
      whole.add(indexes[i], 1);
      (i % 3 ? part_a : part_b).add(indexes[i], 1);
    }
    part_a.merge(part_b);
    EXPECT_EQ(Bins(whole), Bins(reference));
    EXPECT_EQ(Bins(part_a), Bins(reference));
  }
  EXPECT_LE(reference.max_index() - reference.min_index() + 1, 256);
}

}  // namespace
}  // namespace orion::sketch
