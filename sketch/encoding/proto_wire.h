// The protobuf wire format, hand-rolled for the few field kinds ddsketch.proto and Prometheus's
// metrics.proto (userspace/metrics/) use: small, bounded and easy to fuzz.  Reader never reads
// past its span and reports every error with the byte offset where it was found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace orion::sketch::proto {

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// Appends fields to a byte buffer.
class Writer {
 public:
  void Varint(uint64_t value);
  void Tag(int field, WireType type) { Varint((uint64_t(field) << 3) | uint64_t(type)); }
  void DoubleField(int field, double value);
  void UnsignedField(int field, uint64_t value);
  void SInt32Field(int field, int32_t value);
  void SInt64Field(int field, int64_t value);
  void BytesField(int field, std::string_view bytes);  // also string fields
  void MessageField(int field, const Writer& message);
  void PackedDoublesField(int field, std::span<const double> values);

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Release() { return std::move(bytes_); }

 private:
  void Fixed64(uint64_t value);

  std::vector<uint8_t> bytes_;
};

// One field's key, and where it starts.
struct FieldKey {
  int number;
  WireType type;
  size_t offset;  // of the key, from the start of the outermost message
};

// Reads fields from a span; offsets in errors count from the start of the outermost message.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data, size_t base_offset = 0)
      : data_(data), base_offset_(base_offset) {}

  bool done() const { return position_ == data_.size(); }
  size_t offset() const { return base_offset_ + position_; }

  StatusOr<FieldKey> ReadKey();
  StatusOr<uint64_t> ReadVarint();
  StatusOr<double> ReadDouble();
  // The bytes of a length-delimited field, as a Reader of their own.
  StatusOr<Reader> ReadLengthDelimited();
  // Skips the value of a field this parser does not know.
  Status Skip(WireType type);

  // "byte 12: <what>"
  template <typename... Args>
  Status ErrorAt(size_t offset, Args&&... what) const {
    return InvalidArgument("byte ", offset, ": ", std::forward<Args>(what)...);
  }

 private:
  StatusOr<uint64_t> ReadFixed(size_t size);

  std::span<const uint8_t> data_;
  size_t base_offset_;
  size_t position_ = 0;
};

// ZigZag for sint32: 0, -1, 1, -2 ... <-> 0, 1, 2, 3 ...
inline uint32_t ZigZagEncode(int32_t v) {
  return (uint32_t(v) << 1) ^ uint32_t(v >> 31);
}
inline int32_t ZigZagDecode(uint32_t v) {
  return int32_t((v >> 1) ^ (~(v & 1) + 1));
}
// ZigZag for sint64.
inline uint64_t ZigZagEncode64(int64_t v) {
  return (uint64_t(v) << 1) ^ uint64_t(v >> 63);
}

}  // namespace orion::sketch::proto
