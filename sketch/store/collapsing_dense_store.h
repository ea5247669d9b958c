// CollapsingDenseStore: a DenseStore with at most max_bins bins.
//
// When the span of indexes would exceed max_bins, the bins at the collapsing end fold into one
// (the DDSketch paper's bounded-memory variant).  With CollapseSide::kLowest, the default for
// latencies, quantiles above the collapsed bins keep their accuracy; with kHighest, those below.
// The result depends only on the values added, not their order, so merges are exact:
// kLowest  keeps bins >= max - max_bins + 1 and counts every lower value in that bin,
// kHighest keeps bins <= min + max_bins - 1 and counts every higher value in that bin.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sketch/store/dense_store.h"

namespace orion::sketch {

enum class CollapseSide { kLowest, kHighest };

template <typename C, CollapseSide kSide = CollapseSide::kLowest>
class CollapsingDenseStore {
 public:
  using Count = C;
  static constexpr bool kMemoryGrowsWithSpan = false;  // at most max_bins bins
  static constexpr int kDefaultMaxBins = 2048;         // as DataDog's libraries

  explicit CollapsingDenseStore(int max_bins = kDefaultMaxBins)
      : max_bins_(std::max(1, max_bins)) {}

  void add(int index, Count count) {
    if (count == 0) return;
    if (!dense_.empty()) index = MakeRoomFor(index);
    dense_.add(index, count);
  }

  void merge(const CollapsingDenseStore& other) {
    if (&other == this) {
      const CollapsingDenseStore copy = other;
      return merge(copy);
    }
    other.dense_.for_each([this](int index, Count count) { add(index, count); });
  }

  void clear() { dense_.clear(); }
  int max_bins() const { return max_bins_; }

  Count total_count() const { return dense_.total_count(); }
  bool empty() const { return dense_.empty(); }
  int min_index() const { return dense_.min_index(); }
  int max_index() const { return dense_.max_index(); }
  Count count_at(int index) const { return dense_.count_at(index); }
  int key_at_rank(double rank) const { return dense_.key_at_rank(rank); }
  int key_at_descending_rank(double rank) const { return dense_.key_at_descending_rank(rank); }
  template <typename F>
  void for_each(F&& visit) const {
    dense_.for_each(std::forward<F>(visit));
  }

 private:
  // Collapses what must go so that index fits within max_bins, and returns the bin index lands
  // in (itself, or the collapsed bin).
  int MakeRoomFor(int index) {
    const int64_t low = std::min(index, dense_.min_index());
    const int64_t high = std::max(index, dense_.max_index());
    if (high - low + 1 <= max_bins_) return index;
    if constexpr (kSide == CollapseSide::kLowest) {
      const int bound = static_cast<int>(high - max_bins_ + 1);
      dense_.collapse_below(bound);
      return std::max(index, bound);
    } else {
      const int bound = static_cast<int>(low + max_bins_ - 1);
      dense_.collapse_above(bound);
      return std::min(index, bound);
    }
  }

  DenseStore<Count> dense_;
  int max_bins_;
};

template <typename C>
using CollapsingLowestDenseStore = CollapsingDenseStore<C, CollapseSide::kLowest>;
template <typename C>
using CollapsingHighestDenseStore = CollapsingDenseStore<C, CollapseSide::kHighest>;

}  // namespace orion::sketch
