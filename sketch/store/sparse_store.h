// SparseStore: only the non-empty bins, in an ordered map.
//
// Memory is proportional to the number of non-empty bins, whatever their span: for mappings
// with very many bins (tiny relative accuracy) or data with far-apart clusters.  Slower to add
// to than DenseStore.
#pragma once

#include <cstdint>
#include <map>

namespace orion::sketch {

template <typename C>
class SparseStore {
 public:
  using Count = C;
  static constexpr bool kMemoryGrowsWithSpan = false;

  void add(int index, Count count) {
    if (count == 0) return;
    bins_[index] += count;
    total_ += count;
  }

  void merge(const SparseStore& other) {
    if (&other == this) {
      for (auto& [index, count] : bins_) count += count;
      total_ += total_;
      return;
    }
    for (const auto& [index, count] : other.bins_) bins_[index] += count;
    total_ += other.total_;
  }

  void clear() {
    bins_.clear();
    total_ = 0;
  }

  Count total_count() const { return total_; }
  bool empty() const { return bins_.empty(); }
  int min_index() const { return bins_.begin()->first; }
  int max_index() const { return bins_.rbegin()->first; }
  Count count_at(int index) const {
    const auto it = bins_.find(index);
    return it == bins_.end() ? 0 : it->second;
  }

  int key_at_rank(double rank) const {
    Count cumulative = 0;
    for (const auto& [index, count] : bins_) {
      cumulative += count;
      if (static_cast<double>(cumulative) > rank) return index;
    }
    return max_index();
  }

  int key_at_descending_rank(double rank) const {
    Count cumulative = 0;
    for (auto it = bins_.rbegin(); it != bins_.rend(); ++it) {
      cumulative += it->second;
      if (static_cast<double>(cumulative) > rank) return it->first;
    }
    return min_index();
  }

  template <typename F>
  void for_each(F&& visit) const {
    for (const auto& [index, count] : bins_) visit(index, count);
  }

 private:
  std::map<int, Count> bins_;
  Count total_ = 0;
};

}  // namespace orion::sketch
