#include "sketch/encoding/ddsketch_proto.h"

#include <algorithm>
#include <cmath>

#include "sketch/encoding/proto_wire.h"

namespace orion::sketch::proto {
namespace {

enum SketchField { kMapping = 1, kPositiveValues = 2, kNegativeValues = 3, kZeroCount = 4 };
enum OrionField { kOrionSum = 1001, kOrionMin = 1002, kOrionMax = 1003 };
enum MappingField { kGamma = 1, kIndexOffset = 2, kInterpolation = 3 };
enum StoreField { kBinCounts = 1, kContiguousBinCounts = 2, kContiguousBinIndexOffset = 3 };
enum MapEntryField { kKey = 1, kValue = 2 };

Status ExpectWireType(const Reader& reader, const FieldKey& key, WireType expected,
                      const char* name) {
  if (key.type == expected) return OkStatus();
  return reader.ErrorAt(key.offset, "field ", name, " (", key.number, ") has wire type ",
                        static_cast<int>(key.type), ", expected ", static_cast<int>(expected));
}

StatusOr<double> ReadCount(Reader& reader, const char* name) {
  const size_t offset = reader.offset();
  ASSIGN_OR_RETURN(double count, reader.ReadDouble());
  if (!std::isfinite(count) || count < 0) {
    return reader.ErrorAt(offset, name, " is ", count, ": counts must be finite and >= 0");
  }
  return count;
}

StatusOr<double> ReadDoubleField(Reader& reader, const FieldKey& key, const char* name) {
  RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kFixed64, name));
  return reader.ReadDouble();
}

Status ParseMapping(Reader reader, ProtoIndexMapping& mapping) {
  while (!reader.done()) {
    ASSIGN_OR_RETURN(FieldKey key, reader.ReadKey());
    switch (key.number) {
      case kGamma: {
        ASSIGN_OR_RETURN(mapping.gamma, ReadDoubleField(reader, key, "gamma"));
        break;
      }
      case kIndexOffset: {
        ASSIGN_OR_RETURN(mapping.index_offset, ReadDoubleField(reader, key, "indexOffset"));
        break;
      }
      case kInterpolation: {
        RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kVarint, "interpolation"));
        ASSIGN_OR_RETURN(mapping.interpolation, reader.ReadVarint());
        break;
      }
      default:
        RETURN_IF_ERROR(reader.Skip(key.type));
    }
  }
  return OkStatus();
}

// A binCounts map entry: sint32 key = 1, double value = 2, either may be absent (0).
Status ParseBinCount(Reader reader, std::vector<std::pair<int32_t, double>>& bin_counts) {
  int32_t index = 0;
  double count = 0;
  while (!reader.done()) {
    ASSIGN_OR_RETURN(FieldKey key, reader.ReadKey());
    if (key.number == kKey) {
      RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kVarint, "binCounts key"));
      ASSIGN_OR_RETURN(uint64_t zigzag, reader.ReadVarint());
      index = ZigZagDecode(static_cast<uint32_t>(zigzag));  // protobuf keeps the low 32 bits
    } else if (key.number == kValue) {
      RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kFixed64, "binCounts value"));
      ASSIGN_OR_RETURN(count, ReadCount(reader, "a binCounts value"));
    } else {
      RETURN_IF_ERROR(reader.Skip(key.type));
    }
  }
  bin_counts.emplace_back(index, count);
  return OkStatus();
}

Status ParseContiguousBinCounts(Reader& reader, const FieldKey& key, std::vector<double>& counts) {
  if (key.type == WireType::kFixed64) {  // one unpacked element
    ASSIGN_OR_RETURN(double count, ReadCount(reader, "a contiguousBinCounts element"));
    counts.push_back(count);
    return OkStatus();
  }
  RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kLengthDelimited, "contiguousBinCounts"));
  ASSIGN_OR_RETURN(Reader packed, reader.ReadLengthDelimited());
  while (!packed.done()) {
    ASSIGN_OR_RETURN(double count, ReadCount(packed, "a contiguousBinCounts element"));
    counts.push_back(count);
  }
  return OkStatus();
}

// Map semantics: the last entry of a key wins.
void KeepLastOfEachKey(std::vector<std::pair<int32_t, double>>& bin_counts) {
  std::stable_sort(bin_counts.begin(), bin_counts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<int32_t, double>> unique;
  for (const auto& entry : bin_counts) {
    if (!unique.empty() && unique.back().first == entry.first) {
      unique.back() = entry;
    } else {
      unique.push_back(entry);
    }
  }
  bin_counts = std::move(unique);
}

Status ParseStore(Reader reader, ProtoStore& store) {
  while (!reader.done()) {
    ASSIGN_OR_RETURN(FieldKey key, reader.ReadKey());
    switch (key.number) {
      case kBinCounts: {
        RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kLengthDelimited, "binCounts"));
        ASSIGN_OR_RETURN(Reader entry, reader.ReadLengthDelimited());
        RETURN_IF_ERROR(ParseBinCount(entry, store.bin_counts));
        break;
      }
      case kContiguousBinCounts:
        RETURN_IF_ERROR(ParseContiguousBinCounts(reader, key, store.contiguous_bin_counts));
        break;
      case kContiguousBinIndexOffset: {
        RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kVarint, "contiguousBinIndexOffset"));
        ASSIGN_OR_RETURN(uint64_t zigzag, reader.ReadVarint());
        store.contiguous_bin_index_offset = ZigZagDecode(static_cast<uint32_t>(zigzag));
        break;
      }
      default:
        RETURN_IF_ERROR(reader.Skip(key.type));
    }
  }
  return OkStatus();
}

Status ParseSketchField(Reader& reader, const FieldKey& key, ProtoSketch& sketch) {
  switch (key.number) {
    case kMapping: {
      RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kLengthDelimited, "mapping"));
      ASSIGN_OR_RETURN(Reader nested, reader.ReadLengthDelimited());
      if (!sketch.mapping) sketch.mapping = ProtoIndexMapping{};
      sketch.mapping->offset = key.offset;
      return ParseMapping(nested, *sketch.mapping);
    }
    case kPositiveValues:
    case kNegativeValues: {
      const char* name = key.number == kPositiveValues ? "positiveValues" : "negativeValues";
      RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kLengthDelimited, name));
      ASSIGN_OR_RETURN(Reader nested, reader.ReadLengthDelimited());
      return ParseStore(
          nested, key.number == kPositiveValues ? sketch.positive_values : sketch.negative_values);
    }
    case kZeroCount: {
      RETURN_IF_ERROR(ExpectWireType(reader, key, WireType::kFixed64, "zeroCount"));
      ASSIGN_OR_RETURN(sketch.zero_count, ReadCount(reader, "zeroCount"));
      return OkStatus();
    }
    case kOrionSum: {
      ASSIGN_OR_RETURN(sketch.sum, ReadDoubleField(reader, key, "orionSum"));
      return OkStatus();
    }
    case kOrionMin: {
      ASSIGN_OR_RETURN(sketch.min, ReadDoubleField(reader, key, "orionMin"));
      return OkStatus();
    }
    case kOrionMax: {
      ASSIGN_OR_RETURN(sketch.max, ReadDoubleField(reader, key, "orionMax"));
      return OkStatus();
    }
    default:
      return reader.Skip(key.type);
  }
}

Writer SerializeStore(const ProtoStore& store) {
  Writer writer;
  for (const auto& [index, count] : store.bin_counts) {
    Writer entry;
    entry.SInt32Field(kKey, index);
    entry.DoubleField(kValue, count);
    writer.MessageField(kBinCounts, entry);
  }
  writer.PackedDoublesField(kContiguousBinCounts, store.contiguous_bin_counts);
  writer.SInt32Field(kContiguousBinIndexOffset, store.contiguous_bin_index_offset);
  return writer;
}

}  // namespace

StatusOr<ProtoSketch> ParseProtoSketch(std::span<const uint8_t> bytes) {
  ProtoSketch sketch;
  Reader reader(bytes);
  while (!reader.done()) {
    ASSIGN_OR_RETURN(FieldKey key, reader.ReadKey());
    RETURN_IF_ERROR(ParseSketchField(reader, key, sketch));
  }
  KeepLastOfEachKey(sketch.positive_values.bin_counts);
  KeepLastOfEachKey(sketch.negative_values.bin_counts);
  return sketch;
}

ProtoStore StoreFromBins(std::span<const std::pair<int32_t, double>> bins) {
  ProtoStore store;
  if (bins.empty()) return store;
  const int64_t span = int64_t{bins.back().first} - bins.front().first + 1;
  if (span > kMaxContiguousSpan) {
    store.bin_counts.assign(bins.begin(), bins.end());
    return store;
  }
  store.contiguous_bin_index_offset = bins.front().first;
  store.contiguous_bin_counts.assign(static_cast<size_t>(span), 0);
  for (const auto& [index, count] : bins) {
    store.contiguous_bin_counts[static_cast<size_t>(index - bins.front().first)] = count;
  }
  return store;
}

std::vector<uint8_t> SerializeProtoSketch(const ProtoSketch& sketch) {
  Writer writer;
  if (sketch.mapping) {
    Writer mapping;
    mapping.DoubleField(kGamma, sketch.mapping->gamma);
    mapping.DoubleField(kIndexOffset, sketch.mapping->index_offset);
    mapping.UnsignedField(kInterpolation, sketch.mapping->interpolation);
    writer.MessageField(kMapping, mapping);
  }
  writer.MessageField(kPositiveValues, SerializeStore(sketch.positive_values));
  writer.MessageField(kNegativeValues, SerializeStore(sketch.negative_values));
  writer.DoubleField(kZeroCount, sketch.zero_count);
  if (sketch.sum) writer.DoubleField(kOrionSum, *sketch.sum);
  if (sketch.min) writer.DoubleField(kOrionMin, *sketch.min);
  if (sketch.max) writer.DoubleField(kOrionMax, *sketch.max);
  return writer.Release();
}

}  // namespace orion::sketch::proto
