#include "sketch/mapping/exponential_mapping.h"

#include <cfloat>
#include <cmath>

namespace orion::sketch {
namespace exponential_mapping_internal {
namespace {

constexpr uint64_t kSliceWidth = uint64_t{1} << 56;

constexpr uint64_t SliceFirst(int slice) {
  return (uint64_t{1} << 63) | (uint64_t(slice) << 56);
}
constexpr uint64_t SliceLast(int slice) {
  return SliceFirst(slice) + (kSliceWidth - 1);
}

// The k-th boundary after the one the slice starts in, if there is one and it lies in the slice.
constexpr bool SliceHoldsBoundary(int slice, int k) {
  const int subindex = orion_bucket_subindex(SliceFirst(slice)) + k;
  return subindex < ORION_BUCKET_SUBBUCKETS &&
         orion_bucket_boundaries[subindex] <= SliceLast(slice);
}

constexpr std::array<SubIndexHint, 128> BuildHints() {
  std::array<SubIndexHint, 128> hints{};
  for (int slice = 0; slice < 128; ++slice) {
    const int subindex = orion_bucket_subindex(SliceFirst(slice));
    const uint64_t threshold =
        SliceHoldsBoundary(slice, 1) ? orion_bucket_boundaries[subindex + 1] - 1 : UINT64_MAX;
    hints[slice] = {threshold, subindex};
  }
  return hints;
}

// The lookup is exact only if no slice holds two boundaries.
constexpr bool EverySliceHoldsAtMostOneBoundary() {
  for (int slice = 0; slice < 128; ++slice) {
    if (SliceHoldsBoundary(slice, 2)) return false;
  }
  return true;
}
static_assert(EverySliceHoldsAtMostOneBoundary());

}  // namespace

constinit const std::array<SubIndexHint, 128> kSubIndexHints = BuildHints();

}  // namespace exponential_mapping_internal

namespace {

// floor(a / b) for b > 0.
int FloorDiv(int a, int b) {
  return a / b - (a % b < 0 ? 1 : 0);
}

// The smallest double >= 2^(63 + k/64): doubles in [2^63, 2^64) are the multiples of 2^11, and
// the smallest one >= the boundary is the smallest one >= its ceiling orion_bucket_boundaries[k].
constexpr std::array<double, ORION_BUCKET_SUBBUCKETS> BuildLowerBounds() {
  std::array<double, ORION_BUCKET_SUBBUCKETS> bounds{};
  for (int k = 0; k < ORION_BUCKET_SUBBUCKETS; ++k) {
    const uint64_t rounded_up = (orion_bucket_boundaries[k] + 2047) & ~uint64_t{2047};
    bounds[k] = static_cast<double>(rounded_up);  // exact: 53 significant bits at most
  }
  return bounds;
}
constexpr std::array<double, ORION_BUCKET_SUBBUCKETS> kLowerBounds = BuildLowerBounds();

}  // namespace

double ExponentialMapping::lower_bound(int index) const {
  const int exponent = FloorDiv(index, kSubBuckets);
  return std::ldexp(kLowerBounds[index - exponent * kSubBuckets], exponent - 63);
}

double ExponentialMapping::max_indexable_value() const {
  return DBL_MAX;
}

}  // namespace orion::sketch
