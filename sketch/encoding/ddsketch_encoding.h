// A DDSketch to and from DataDog's protobuf format (ddsketch_proto.h), so that a sketch written
// by Orion decodes in DataDog's libraries and back.
//
//   std::vector<uint8_t> bytes = EncodeDDSketch(sketch);
//   ASSIGN_OR_RETURN(CountSketch copy, DecodeDDSketch<DenseStore<uint64_t>>(bytes));
//
// The kernel's mapping is written as IndexMapping{gamma = 2^(1/64), indexOffset = 0, NONE}: the
// bins mean the same in sketches-go/-java, whose index is floor(log_gamma(v)) + indexOffset.
// sketches-js (and sketches-py) read the same message with ceil(log_gamma(v)) + indexOffset:
// every bin one bucket lower, so their quantiles are Orion's divided by gamma (docs/sketch.md).
// Decoding recognises that mapping (gamma to 1e-12) as the kernel's, exact.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/status.h"
#include "sketch/ddsketch.h"
#include "sketch/encoding/ddsketch_proto.h"

namespace orion::sketch {

struct DecodeOptions {
  // Most bins between a store's lowest and highest non-empty bin, for stores whose memory grows
  // with that span (DenseStore), so that a hostile message cannot make one allocate without
  // bound (1 Mi bins = 8 MiB; the kernel's mapping spans at most 134,272 bins over all doubles).
  int64_t max_bin_span = int64_t{1} << 20;
};

namespace encoding_internal {

StatusOr<IndexMapping> MappingFromProto(const proto::ProtoSketch& sketch);
// Checks the bin indexes fit in 32 bits, that no store spans more than max_bin_span bins
// (unless it is nullopt), for integer counts that every count is an integer, and that all
// counts add up to a finite number (below 2^64 for integer counts).
Status CheckBins(const proto::ProtoSketch& sketch, std::optional<int64_t> max_bin_span,
                 bool integer_counts);
// Orion's summary fields come together, and min <= max (the sum may be infinite or NaN when
// bins stand for infinite values).
Status CheckSummary(const proto::ProtoSketch& sketch);

// visit(index, count) for every non-empty bin of a Store message (both encodings).
template <typename F>
void ForEachBin(const proto::ProtoStore& store, F&& visit) {
  for (const auto& [index, count] : store.bin_counts) {
    if (count != 0) visit(index, count);
  }
  int64_t index = store.contiguous_bin_index_offset;
  for (double count : store.contiguous_bin_counts) {
    if (count != 0) visit(static_cast<int>(index), count);
    ++index;
  }
}

template <Store S>
std::vector<std::pair<int32_t, double>> Bins(const S& store) {
  std::vector<std::pair<int32_t, double>> bins;
  store.for_each(
      [&bins](int index, auto count) { bins.emplace_back(index, static_cast<double>(count)); });
  return bins;
}

}  // namespace encoding_internal

template <Store S>
std::vector<uint8_t> EncodeDDSketch(const DDSketch<S>& sketch) {
  proto::ProtoSketch message;
  const IndexMapping& mapping = sketch.mapping();
  message.mapping = proto::ProtoIndexMapping{mapping.gamma(), mapping.index_offset(),
                                             static_cast<uint64_t>(mapping.interpolation())};
  message.positive_values = proto::StoreFromBins(encoding_internal::Bins(sketch.positive_store()));
  message.negative_values = proto::StoreFromBins(encoding_internal::Bins(sketch.negative_store()));
  message.zero_count = static_cast<double>(sketch.zero_count());
  if (!sketch.empty()) {
    message.sum = sketch.sum();
    message.min = sketch.min();
    message.max = sketch.max();
  }
  return proto::SerializeProtoSketch(message);
}

// Decodes into a sketch whose stores start as `store` (e.g. a collapsing store's max_bins).
// Integer-count sketches reject fractional counts.
template <Store S>
StatusOr<DDSketch<S>> DecodeDDSketch(std::span<const uint8_t> bytes, S store = S(),
                                     const DecodeOptions& options = {}) {
  using Count = typename S::Count;
  ASSIGN_OR_RETURN(proto::ProtoSketch message, proto::ParseProtoSketch(bytes));
  ASSIGN_OR_RETURN(IndexMapping mapping, encoding_internal::MappingFromProto(message));
  const std::optional<int64_t> max_bin_span =
      S::kMemoryGrowsWithSpan ? std::optional(options.max_bin_span) : std::nullopt;
  RETURN_IF_ERROR(encoding_internal::CheckBins(message, max_bin_span, std::is_integral_v<Count>));
  RETURN_IF_ERROR(encoding_internal::CheckSummary(message));
  DDSketch<S> sketch(std::move(mapping), std::move(store));
  encoding_internal::ForEachBin(message.positive_values, [&sketch](int index, double count) {
    sketch.add_bucket_counts(index, static_cast<Count>(count));
  });
  encoding_internal::ForEachBin(message.negative_values, [&sketch](int index, double count) {
    sketch.add_negative_bucket_counts(index, static_cast<Count>(count));
  });
  sketch.add_zero_count(static_cast<Count>(message.zero_count));
  if (message.sum && !sketch.empty()) {
    sketch.set_summary(*message.sum, *message.min, *message.max);
  }
  return sketch;
}

}  // namespace orion::sketch
