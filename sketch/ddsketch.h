// DDSketch (Masson, Rim, Lee, VLDB 2019): quantiles with a guaranteed relative error, mergeable
// across CPUs, intervals and hosts.
//
// A sketch is an IndexMapping (value -> bin), a store of positive values, a store of negative
// values (keyed by the bin of -v) and a zero count.  Every quantile it returns is within
// mapping().relative_accuracy() of the exact quantile of the values added.
//
// Folding the kernel's histogram (bins are kernel bucket indexes, counts exact):
//
//   sketch::CountSketch sketch(sketch::IndexMapping::Kernel());
//   sketch.add_bucket_counts(slot, count);   // slot 1 is zeros: FoldKernelHistogram() knows
//   ASSIGN_OR_RETURN(double p99, sketch.quantile(0.99));
//
// Quantile definition (that of DataDog's sketches-java, and of sketches-go/-js for values >= 0):
// with n = count() and rank = q * (n - 1), quantile(q) is value(b) for the bin b holding the
// element of rank floor(rank) (counting from 0) of the values in ascending order: an estimate
// of the lower empirical quantile x[floor(q * (n - 1))] of the sorted values x[0..n-1].
//
// min(), max() and sum() are exact for values given to add(); bins given to
// add_bucket_counts() contribute their representative value(index), so are within the relative
// accuracy.  A sketch decoded from a protobuf that carries Orion's exact summary keeps it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "base/status.h"
#include "sketch/mapping/index_mapping.h"
#include "sketch/store/dense_store.h"
#include "sketch/store/store.h"

namespace orion::sketch {

template <Store S>
class DDSketch {
 public:
  using Count = typename S::Count;

  // `store` is the empty store both signs start from (e.g. a CollapsingDenseStore's max_bins).
  explicit DDSketch(IndexMapping mapping, S store = S())
      : mapping_(std::move(mapping)), positive_(store), negative_(std::move(store)) {}

  // Adds `count` occurrences of a finite value.  Magnitudes at or below
  // mapping().zero_threshold() count as zero; above max_indexable_value() they are rejected.
  Status add(double value, Count count = 1) {
    if (!(std::abs(value) <= mapping_.max_indexable_value())) {
      return InvalidArgument("value ", value, " cannot be tracked: its magnitude exceeds ",
                             mapping_.max_indexable_value(), " or it is not a number");
    }
    if constexpr (std::is_floating_point_v<Count>) {
      if (!(count >= 0) || !std::isfinite(count)) {
        return InvalidArgument("count must be finite and non-negative, not ", count);
      }
    }
    if (count == 0) return OkStatus();
    if (value > mapping_.zero_threshold()) {
      positive_.add(mapping_.index(value), count);
    } else if (value < -mapping_.zero_threshold()) {
      negative_.add(mapping_.index(-value), count);
    } else {
      zero_count_ += count;
    }
    Summarize(value, count);
    return OkStatus();
  }

  // Adds `count` occurrences of an integer (nanoseconds): with the kernel's mapping, in exactly
  // the bucket the kernel computes, with integer operations only; 0 goes to the zero count.
  Status add_integer(uint64_t value, Count count = 1) {
    if (!mapping_.is_kernel()) return add(static_cast<double>(value), count);
    if (count == 0) return OkStatus();
    if (value == 0) {
      zero_count_ += count;
    } else {
      positive_.add(mapping_.index(value), count);
    }
    Summarize(static_cast<double>(value), count);
    return OkStatus();
  }

  // Adds `count` to positive bin `index`: folds a kernel bucket (with the kernel's mapping, the
  // index is the kernel's bucket index) or a bin decoded from elsewhere.
  void add_bucket_counts(int index, Count count) {
    if (count == 0) return;
    positive_.add(index, count);
    Summarize(mapping_.value(index), count);
  }
  // The same for the bin of negative values whose magnitude falls in bin `index`.
  void add_negative_bucket_counts(int index, Count count) {
    if (count == 0) return;
    negative_.add(index, count);
    Summarize(-mapping_.value(index), count);
  }
  void add_zero_count(Count count) {
    if (count == 0) return;
    zero_count_ += count;
    Summarize(0, count);
  }

  // Adds every value of `other`.  Both must have the same mapping; the summary of the result is
  // exact where both were.
  Status merge(const DDSketch& other) {
    if (!(mapping_ == other.mapping_)) {
      return InvalidArgument("cannot merge sketches with different index mappings: ",
                             mapping_.Describe(), " and ", other.mapping_.Describe());
    }
    if (other.empty()) return OkStatus();
    positive_.merge(other.positive_);
    negative_.merge(other.negative_);
    zero_count_ += other.zero_count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    return OkStatus();
  }

  // The value at quantile q in [0, 1] (see the definition above).
  StatusOr<double> quantile(double q) const {
    if (!(q >= 0 && q <= 1)) return InvalidArgument("quantile must be in [0, 1], not ", q);
    if (empty()) return FailedPrecondition("the sketch is empty");
    // Weights can add up to less than 1: the rank is then 0, the lowest element.
    const double rank = std::max(0.0, q * (static_cast<double>(count()) - 1));
    const double negative_count = static_cast<double>(negative_.total_count());
    if (rank < negative_count) return -mapping_.value(negative_.key_at_descending_rank(rank));
    const double non_positive_count = negative_count + static_cast<double>(zero_count_);
    if (positive_.empty()) {  // the highest element, whatever the rounding of huge counts
      return zero_count_ > 0 ? 0.0 : -mapping_.value(negative_.min_index());
    }
    if (rank < non_positive_count) return 0.0;
    return mapping_.value(positive_.key_at_rank(rank - non_positive_count));
  }

  Count count() const { return positive_.total_count() + negative_.total_count() + zero_count_; }
  Count zero_count() const { return zero_count_; }
  bool empty() const { return count() == 0; }
  // NaN when empty.
  double min() const { return empty() ? std::numeric_limits<double>::quiet_NaN() : min_; }
  double max() const { return empty() ? std::numeric_limits<double>::quiet_NaN() : max_; }
  double sum() const { return sum_; }

  // Replaces the summary by exact statistics known elsewhere (Orion's protobuf fields, or sums
  // the kernel kept); later adds and merges update it.
  void set_summary(double sum, double min, double max) {
    sum_ = sum;
    min_ = min;
    max_ = max;
  }

  // Empties the sketch; the mapping and the stores' memory stay.
  void clear() {
    positive_.clear();
    negative_.clear();
    zero_count_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<double>::infinity();
    max_ = -std::numeric_limits<double>::infinity();
  }

  const IndexMapping& mapping() const { return mapping_; }
  const S& positive_store() const { return positive_; }
  const S& negative_store() const { return negative_; }

 private:
  void Summarize(double value, Count count) {
    sum_ += value * static_cast<double>(count);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  IndexMapping mapping_;
  S positive_;
  S negative_;
  Count zero_count_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

// Exact u64 counts: the kernel's buckets, and one count per value added.
using CountSketch = DDSketch<DenseStore<uint64_t>>;
// Double weights: values added with weights, and sketches decoded from other libraries.
using WeightedSketch = DDSketch<DenseStore<double>>;

}  // namespace orion::sketch
