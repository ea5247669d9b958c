// DataDog's ddsketch.proto (sketches-go/-java/-js), field by field, without libprotobuf:
//
//   message DDSketch {
//     IndexMapping mapping = 1;   Store positiveValues = 2;   Store negativeValues = 3;
//     double zeroCount = 4;
//     double orionSum = 1001; double orionMin = 1002; double orionMax = 1003;   // Orion's
//   }
//   message IndexMapping { double gamma = 1; double indexOffset = 2; Interpolation interpolation =
//   3; } message Store {
//     map<sint32, double> binCounts = 1;
//     repeated double contiguousBinCounts = 2 [packed = true];
//     sint32 contiguousBinIndexOffset = 3;
//   }
//
// Fields 1001-1003 are Orion's own: the exact sum, min and max.  Protobuf parsers skip fields
// they do not know, so DataDog's libraries read Orion's sketches unchanged (proved by the
// sketches-js cross-check); a sketch without them gets a summary estimated from its bins.
// Parsing follows protobuf's rules: fields in any order, repeated fields packed or not, a
// message field given twice is merged, the last value of a scalar or a map key wins, a bin
// present in both encodings of a store counts the sum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/status.h"

namespace orion::sketch::proto {

struct ProtoIndexMapping {
  double gamma = 0;
  double index_offset = 0;
  uint64_t interpolation = 0;
  size_t offset = 0;  // of the mapping field, for errors
};

struct ProtoStore {
  std::vector<std::pair<int32_t, double>> bin_counts;  // unique keys, ascending
  std::vector<double> contiguous_bin_counts;
  int32_t contiguous_bin_index_offset = 0;
};

struct ProtoSketch {
  std::optional<ProtoIndexMapping> mapping;
  ProtoStore positive_values;
  ProtoStore negative_values;
  double zero_count = 0;
  std::optional<double> sum, min, max;  // Orion's exact summary
};

// Parses a DDSketch message.  Counts must be finite and non-negative; errors give the byte.
StatusOr<ProtoSketch> ParseProtoSketch(std::span<const uint8_t> bytes);

// Widest span of bins written as contiguousBinCounts (512 KiB of counts); wider stores use the
// binCounts map.  sketches-js reads contiguousBinCounts only, and the kernel's buckets for 1 ns
// to 2^44 ns span 2,816 bins.
inline constexpr int64_t kMaxContiguousSpan = int64_t{1} << 16;

// The Store message for non-empty bins given in ascending index order: contiguousBinCounts
// from the lowest to the highest bin, or the binCounts map past kMaxContiguousSpan.
ProtoStore StoreFromBins(std::span<const std::pair<int32_t, double>> bins);

// Writes a DDSketch message with the mapping, both stores and the zero count always present
// (sketches-js fails on a missing store), and Orion's summary fields when set.
std::vector<uint8_t> SerializeProtoSketch(const ProtoSketch& sketch);

}  // namespace orion::sketch::proto
