// Every quantile of every sketch is within the mapping's relative accuracy of the exact
// quantile x[floor(q * (n - 1))] of the sorted data (DataDog's definition), on lognormal,
// Pareto, exponential, uniform, bimodal, signed and adversarial data, for every mapping and
// store.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sketch/ddsketch.h"
#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/sparse_store.h"
#include "tests/unit/sketch/sketch_test_support.h"

namespace orion::sketch {
namespace {

using testing::DataSet;
using testing::ExactQuantile;
using testing::TestedQuantiles;

constexpr size_t kValues = 20000;

std::vector<IndexMapping> Mappings() {
  return {IndexMapping::Kernel(), *IndexMapping::Logarithmic(0.01),
          *IndexMapping::LinearlyInterpolated(0.01), *IndexMapping::CubicallyInterpolated(0.01)};
}

std::vector<DataSet> AllDataSets() {
  std::vector<DataSet> sets = testing::PositiveDataSets(kValues, 2019);
  sets.push_back({"adversarial", testing::AdversarialValues()});
  std::mt19937_64 random(7);
  std::vector<double> signed_values(kValues);
  for (double& v : signed_values) {
    const double u = std::uniform_real_distribution<double>(0, 1)(random);
    const double magnitude = std::lognormal_distribution<double>(std::log(1e4), 2)(random);
    v = u < 0.1 ? 0 : u < 0.4 ? -magnitude : magnitude;
  }
  sets.push_back({"signed", signed_values});
  return sets;
}

// Checks every tested quantile; `trust(exact)` says which exact values the sketch must track.
template <typename S>
void ExpectAccurate(
    const DDSketch<S>& sketch, std::vector<double> values, const std::string& what,
    const std::function<bool(double)>& trust = [](double) { return true; }) {
  std::sort(values.begin(), values.end());
  ASSERT_EQ(static_cast<double>(sketch.count()), static_cast<double>(values.size())) << what;
  const double alpha = sketch.mapping().relative_accuracy();
  for (double q : TestedQuantiles()) {
    const double exact = ExactQuantile(values, q);
    if (!trust(exact)) continue;
    const StatusOr<double> estimate = sketch.quantile(q);
    ASSERT_TRUE(estimate.ok()) << what;
    EXPECT_LE(std::abs(*estimate - exact), alpha * std::abs(exact) * (1 + 1e-9))
        << what << ", q = " << q << ": exact " << exact << ", estimate " << *estimate
        << ", relative accuracy " << alpha;
  }
}

template <typename S>
void CheckEveryMappingAndDataSet(const std::string& store_name, S store = S()) {
  for (const IndexMapping& mapping : Mappings()) {
    for (const DataSet& set : AllDataSets()) {
      DDSketch<S> sketch(mapping, store);
      for (double v : set.values) ASSERT_TRUE(sketch.add(v).ok()) << v;
      ExpectAccurate(sketch, set.values, store_name + ", " + mapping.Describe() + ", " + set.name);
    }
  }
}

TEST(Accuracy, DenseStoreWithExactCounts) {
  CheckEveryMappingAndDataSet<DenseStore<uint64_t>>("dense u64");
}

TEST(Accuracy, DenseStoreWithWeights) {
  CheckEveryMappingAndDataSet<DenseStore<double>>("dense");
}

TEST(Accuracy, SparseStore) {
  CheckEveryMappingAndDataSet<SparseStore<uint64_t>>("sparse");
}

// With enough bins for the data (as for latencies from 1 ns to 1000 s), nothing collapses.
TEST(Accuracy, CollapsingStoreWithRoomForTheData) {
  for (const DataSet& set : testing::PositiveDataSets(kValues, 3)) {
    DDSketch<CollapsingLowestDenseStore<uint64_t>> sketch(IndexMapping::Kernel());
    for (double v : set.values) ASSERT_TRUE(sketch.add(v).ok());
    ExpectAccurate(sketch, set.values, "collapsing, " + set.name);
  }
}

// Past max_bins the lowest bins collapse: quantiles above them keep the guarantee.
TEST(Accuracy, CollapsingStoreKeepsTheUpperQuantiles) {
  const DataSet set = testing::PositiveDataSets(kValues, 4).front();  // lognormal, about 1,250 bins
  DDSketch<CollapsingLowestDenseStore<uint64_t>> sketch(IndexMapping::Kernel(),
                                                        CollapsingLowestDenseStore<uint64_t>(600));
  for (double v : set.values) ASSERT_TRUE(sketch.add(v).ok());
  const auto& store = sketch.positive_store();
  ASSERT_EQ(store.max_index() - store.min_index() + 1, 600);  // it did collapse
  const double kept_from = sketch.mapping().lower_bound(store.min_index() + 1);
  ExpectAccurate(sketch, set.values, "collapsed", [&](double exact) { return exact >= kept_from; });
  EXPECT_GE(*sketch.quantile(0.95), kept_from);  // so the upper quantiles were checked
}

// Integer nanoseconds through the kernel's integer path, including values past 2^53.
TEST(Accuracy, KernelIntegerPath) {
  std::vector<double> values;
  CountSketch sketch(IndexMapping::Kernel());
  std::mt19937_64 random(11);
  for (size_t i = 0; i < kValues; ++i) {
    const uint64_t ns = (random() >> (random() % 64)) | 1;
    ASSERT_TRUE(sketch.add_integer(ns).ok());
    values.push_back(static_cast<double>(ns));
  }
  for (int e = 0; e < 64; ++e) {
    ASSERT_TRUE(sketch.add_integer(uint64_t{1} << e).ok());
    values.push_back(std::ldexp(1.0, e));
  }
  ASSERT_TRUE(sketch.add_integer(UINT64_MAX).ok());
  values.push_back(18446744073709551615.0);
  ExpectAccurate(sketch, values, "kernel integers");
}

}  // namespace
}  // namespace orion::sketch
