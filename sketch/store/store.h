// What a DDSketch needs from a store: bins of counts indexed by int, in index order.
//
// Count is uint64_t (exact counts: kernel counters, one per value) or double (weights).
// Counts are never negative; a bin with count 0 is absent.  Three stores:
//   DenseStore             contiguous bins with an offset, grows both ways (the default)
//   SparseStore            only the non-empty bins (for mappings with very many bins)
//   CollapsingDenseStore   dense with at most max_bins bins: past that the lowest (or highest)
//                          bins collapse into one, as in the DDSketch paper
#pragma once

#include <concepts>
#include <functional>

namespace orion::sketch {

template <typename S>
concept Store = requires(S store, const S& other, int index, typename S::Count count, double rank,
                         std::function<void(int, typename S::Count)> visit) {
  store.add(index, count);  // adds count to the bin (no effect if count is 0)
  store.merge(other);       // adds every bin of other
  store.clear();
  { other.total_count() } -> std::same_as<typename S::Count>;
  { other.empty() } -> std::same_as<bool>;
  { other.min_index() } -> std::same_as<int>;  // lowest non-empty bin; only when !empty()
  { other.max_index() } -> std::same_as<int>;  // highest non-empty bin; only when !empty()
  { other.count_at(index) } -> std::same_as<typename S::Count>;
  // The lowest bin whose cumulative count (from the lowest bin up) exceeds rank, or
  // max_index() if none does: the bin of the element of rank floor(rank), counting from 0.
  { other.key_at_rank(rank) } -> std::same_as<int>;
  // The same, counting from the highest bin down.
  { other.key_at_descending_rank(rank) } -> std::same_as<int>;
  other.for_each(visit);  // visit(index, count) for every non-empty bin, ascending index
  // Whether memory grows with the span of indexes (highest - lowest), which decoding bounds.
  { S::kMemoryGrowsWithSpan } -> std::convertible_to<bool>;
};

}  // namespace orion::sketch
