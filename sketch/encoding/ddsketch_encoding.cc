#include "sketch/encoding/ddsketch_encoding.h"

#include <climits>

namespace orion::sketch::encoding_internal {
namespace {

constexpr double kTwoTo64 = 18446744073709551616.0;

bool IsCountOfValues(double count) {
  return count >= 0 && count < kTwoTo64 && std::floor(count) == count;
}

Status CheckIntegerCounts(const proto::ProtoStore& store, const char* name) {
  Status status;
  ForEachBin(store, [&](int index, double count) {
    if (status.ok() && !IsCountOfValues(count)) {
      status = InvalidArgument(name, " bin ", index, " has count ", count,
                               ", not an integer count of values (decode it with double counts)");
    }
  });
  return status;
}

Status CheckStore(const proto::ProtoStore& store, const char* name,
                  std::optional<int64_t> max_bin_span) {
  const int64_t last_contiguous =
      int64_t{store.contiguous_bin_index_offset} + int64_t(store.contiguous_bin_counts.size()) - 1;
  if (last_contiguous > INT_MAX) {
    return InvalidArgument(name, ": contiguous bins run to index ", last_contiguous,
                           ", past the 32-bit range");
  }
  int64_t low = INT64_MAX;
  int64_t high = INT64_MIN;
  ForEachBin(store, [&](int index, double) {
    low = std::min<int64_t>(low, index);
    high = std::max<int64_t>(high, index);
  });
  if (max_bin_span && low <= high && high - low + 1 > *max_bin_span) {
    return InvalidArgument(name, ": bins ", low, " to ", high, " span ", high - low + 1,
                           " bins, more than the limit of ", *max_bin_span);
  }
  return OkStatus();
}

// The counts of all bins and the zero count must add up to a number the sketch can hold:
// finite, and below 2^64 for integer counts (so that no bin or total overflows).
Status CheckTotal(const proto::ProtoSketch& sketch, bool integer_counts) {
  double total = sketch.zero_count;
  unsigned __int128 integer_total = integer_counts ? static_cast<uint64_t>(sketch.zero_count) : 0;
  for (const proto::ProtoStore* store : {&sketch.positive_values, &sketch.negative_values}) {
    ForEachBin(*store, [&](int, double count) {
      total += count;
      if (integer_counts) integer_total += static_cast<uint64_t>(count);
    });
  }
  if (!std::isfinite(total)) return InvalidArgument("the counts add up to infinity");
  if (integer_counts && (integer_total >> 64) != 0) {
    return InvalidArgument("the counts add up to 2^64 or more");
  }
  return OkStatus();
}

}  // namespace

StatusOr<IndexMapping> MappingFromProto(const proto::ProtoSketch& sketch) {
  if (!sketch.mapping) return InvalidArgument("the sketch has no index mapping (field 1)");
  const proto::ProtoIndexMapping& m = *sketch.mapping;
  if (m.interpolation > static_cast<uint64_t>(Interpolation::kCubic)) {
    return InvalidArgument("byte ", m.offset, ": index mapping: unknown interpolation ",
                           m.interpolation);
  }
  StatusOr<IndexMapping> mapping =
      IndexMapping::FromProto(m.gamma, m.index_offset, static_cast<Interpolation>(m.interpolation));
  if (!mapping.ok()) {
    return mapping.status().WithContext("byte " + std::to_string(m.offset) + ": index mapping");
  }
  return mapping;
}

Status CheckBins(const proto::ProtoSketch& sketch, std::optional<int64_t> max_bin_span,
                 bool integer_counts) {
  RETURN_IF_ERROR(CheckStore(sketch.positive_values, "positiveValues", max_bin_span));
  RETURN_IF_ERROR(CheckStore(sketch.negative_values, "negativeValues", max_bin_span));
  if (integer_counts) {
    RETURN_IF_ERROR(CheckIntegerCounts(sketch.positive_values, "positiveValues"));
    RETURN_IF_ERROR(CheckIntegerCounts(sketch.negative_values, "negativeValues"));
    if (!IsCountOfValues(sketch.zero_count)) {
      return InvalidArgument("zeroCount ", sketch.zero_count,
                             " is not an integer count of values (decode it with double counts)");
    }
  }
  return CheckTotal(sketch, integer_counts);
}

}  // namespace orion::sketch::encoding_internal

namespace orion::sketch::encoding_internal {

Status CheckSummary(const proto::ProtoSketch& sketch) {
  const int present = sketch.sum.has_value() + sketch.min.has_value() + sketch.max.has_value();
  if (present == 0) return OkStatus();
  if (present != 3)
    return InvalidArgument("Orion's summary needs all of orionSum, orionMin, orionMax");
  if (!(*sketch.min <= *sketch.max)) {
    return InvalidArgument("Orion's summary is inconsistent: sum ", *sketch.sum, ", min ",
                           *sketch.min, ", max ", *sketch.max);
  }
  return OkStatus();
}

}  // namespace orion::sketch::encoding_internal
