// DenseStore: contiguous bins with an offset, growing both ways as indexes arrive.
//
// Memory is proportional to the span of indexes (highest - lowest + 1), whatever the number of
// values: about 2,600 bins for latencies from 1 ns to 1000 s with the kernel's mapping.  The
// right store when non-empty bins are close together, which they are for latencies.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

namespace orion::sketch {

template <typename C>
class DenseStore {
 public:
  using Count = C;
  static constexpr bool kMemoryGrowsWithSpan = true;

  void add(int index, Count count) {
    if (count == 0) return;
    if (index < min_index_ || index > max_index_) ExtendRange(index, index);
    bins_[Position(index)] += count;
    total_ += count;
  }

  void merge(const DenseStore& other) {
    if (other.empty()) return;
    ExtendRange(other.min_index_, other.max_index_);
    const Count* from = &other.bins_[other.Position(other.min_index_)];
    Count* to = &bins_[Position(other.min_index_)];
    const int64_t n = int64_t{other.max_index_} - other.min_index_ + 1;
    for (int64_t i = 0; i < n; ++i) to[i] += from[i];
    total_ += other.total_;
  }

  void clear() {
    if (!empty()) std::fill(&bins_[Position(min_index_)], &bins_[Position(max_index_)] + 1, 0);
    min_index_ = INT_MAX;
    max_index_ = INT_MIN;
    total_ = 0;
  }

  Count total_count() const { return total_; }
  bool empty() const { return min_index_ > max_index_; }
  int min_index() const { return min_index_; }
  int max_index() const { return max_index_; }
  Count count_at(int index) const {
    return index < min_index_ || index > max_index_ ? 0 : bins_[Position(index)];
  }

  int key_at_rank(double rank) const {
    Count cumulative = 0;
    for (int64_t index = min_index_; index <= max_index_; ++index) {
      cumulative += bins_[Position(index)];
      if (static_cast<double>(cumulative) > rank) return static_cast<int>(index);
    }
    return max_index_;
  }

  int key_at_descending_rank(double rank) const {
    Count cumulative = 0;
    for (int64_t index = max_index_; index >= min_index_; --index) {
      cumulative += bins_[Position(index)];
      if (static_cast<double>(cumulative) > rank) return static_cast<int>(index);
    }
    return min_index_;
  }

  template <typename F>
  void for_each(F&& visit) const {
    for (int64_t index = min_index_; index <= max_index_; ++index) {
      const Count count = bins_[Position(index)];
      if (count != 0) visit(static_cast<int>(index), count);
    }
  }

  // Moves the counts of every bin below `bound` into bin `bound` (for CollapsingDenseStore).
  void collapse_below(int bound) {
    if (empty() || min_index_ >= bound) return;
    if (max_index_ < bound) return CollapseAllInto(bound);
    Count collapsed = 0;
    for (int64_t index = min_index_; index < bound; ++index) {
      collapsed += bins_[Position(index)];
      bins_[Position(index)] = 0;
    }
    bins_[Position(bound)] += collapsed;
    min_index_ = bound;
  }

  // Moves the counts of every bin above `bound` into bin `bound` (for CollapsingDenseStore).
  void collapse_above(int bound) {
    if (empty() || max_index_ <= bound) return;
    if (min_index_ > bound) return CollapseAllInto(bound);
    Count collapsed = 0;
    for (int64_t index = max_index_; index > bound; --index) {
      collapsed += bins_[Position(index)];
      bins_[Position(index)] = 0;
    }
    bins_[Position(bound)] += collapsed;
    max_index_ = bound;
  }

 private:
  static constexpr int64_t kChunk = 128;  // bins are allocated in multiples of this

  size_t Position(int64_t index) const { return static_cast<size_t>(index - offset_); }

  // Makes room for [low, high] and widens the non-empty range to include it.
  void ExtendRange(int low, int high) {
    const int new_min = std::min(low, min_index_);
    const int new_max = std::max(high, max_index_);
    const int64_t capacity = static_cast<int64_t>(bins_.size());
    if (new_min < offset_ || int64_t{new_max} >= offset_ + capacity) Reallocate(new_min, new_max);
    min_index_ = new_min;
    max_index_ = new_max;
  }

  // Moves the bins into a new array with room for [new_min, new_max] and half as much again,
  // centred, so that growing is amortised in either direction.
  void Reallocate(int new_min, int new_max) {
    const int64_t span = int64_t{new_max} - new_min + 1;
    const int64_t length = (span + span / 2 + kChunk - 1) / kChunk * kChunk;
    const int64_t new_offset = new_min - (length - span) / 2;
    std::vector<Count> bins(static_cast<size_t>(length), 0);
    if (!empty()) {
      std::copy(&bins_[Position(min_index_)], &bins_[Position(max_index_)] + 1,
                &bins[static_cast<size_t>(min_index_ - new_offset)]);
    }
    bins_ = std::move(bins);
    offset_ = new_offset;
  }

  void CollapseAllInto(int bound) {
    const Count total = total_;
    clear();
    add(bound, total);
  }

  std::vector<Count> bins_;
  int64_t offset_ = 0;       // index of bins_[0]
  int min_index_ = INT_MAX;  // lowest non-empty bin (INT_MAX when empty)
  int max_index_ = INT_MIN;  // highest non-empty bin (INT_MIN when empty)
  Count total_ = 0;
};

}  // namespace orion::sketch
