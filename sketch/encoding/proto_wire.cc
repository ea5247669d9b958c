#include "sketch/encoding/proto_wire.h"

#include <bit>

namespace orion::sketch::proto {

void Writer::Varint(uint64_t value) {
  while (value >= 0x80) {
    bytes_.push_back(static_cast<uint8_t>(value | 0x80));
    value >>= 7;
  }
  bytes_.push_back(static_cast<uint8_t>(value));
}

void Writer::Fixed64(uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void Writer::DoubleField(int field, double value) {
  Tag(field, WireType::kFixed64);
  Fixed64(std::bit_cast<uint64_t>(value));
}

void Writer::UnsignedField(int field, uint64_t value) {
  Tag(field, WireType::kVarint);
  Varint(value);
}

void Writer::SInt32Field(int field, int32_t value) {
  Tag(field, WireType::kVarint);
  Varint(ZigZagEncode(value));
}

void Writer::SInt64Field(int field, int64_t value) {
  Tag(field, WireType::kVarint);
  Varint(ZigZagEncode64(value));
}

void Writer::BytesField(int field, std::string_view bytes) {
  Tag(field, WireType::kLengthDelimited);
  Varint(bytes.size());
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
}

void Writer::MessageField(int field, const Writer& message) {
  Tag(field, WireType::kLengthDelimited);
  Varint(message.bytes_.size());
  bytes_.insert(bytes_.end(), message.bytes_.begin(), message.bytes_.end());
}

void Writer::PackedDoublesField(int field, std::span<const double> values) {
  Tag(field, WireType::kLengthDelimited);
  Varint(values.size() * 8);
  for (double v : values) Fixed64(std::bit_cast<uint64_t>(v));
}

StatusOr<uint64_t> Reader::ReadVarint() {
  const size_t start = offset();
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (done()) return ErrorAt(start, "truncated varint");
    const uint8_t byte = data_[position_++];
    if (shift == 63 && byte > 1) return ErrorAt(start, "varint longer than 64 bits");
    value |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  return ErrorAt(start, "varint longer than 10 bytes");
}

StatusOr<FieldKey> Reader::ReadKey() {
  const size_t start = offset();
  ASSIGN_OR_RETURN(uint64_t key, ReadVarint());
  const uint64_t number = key >> 3;
  if (number == 0 || number > (uint64_t{1} << 29) - 1) {
    return ErrorAt(start, "invalid field number ", number);
  }
  return FieldKey{static_cast<int>(number), static_cast<WireType>(key & 7), start};
}

StatusOr<uint64_t> Reader::ReadFixed(size_t size) {
  if (data_.size() - position_ < size) {
    return ErrorAt(offset(), "truncated ", size * 8, "-bit value (", data_.size() - position_,
                   " bytes left)");
  }
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= uint64_t(data_[position_ + i]) << (8 * i);
  position_ += size;
  return value;
}

StatusOr<double> Reader::ReadDouble() {
  ASSIGN_OR_RETURN(uint64_t bits, ReadFixed(8));
  return std::bit_cast<double>(bits);
}

StatusOr<Reader> Reader::ReadLengthDelimited() {
  const size_t start = offset();
  ASSIGN_OR_RETURN(uint64_t length, ReadVarint());
  const size_t left = data_.size() - position_;
  if (length > left) {
    return ErrorAt(start, "length ", length, " exceeds the ", left, " bytes left");
  }
  Reader nested(data_.subspan(position_, length), offset());
  position_ += length;
  return nested;
}

Status Reader::Skip(WireType type) {
  switch (type) {
    case WireType::kVarint:
      return ReadVarint().status();
    case WireType::kFixed64:
      return ReadFixed(8).status();
    case WireType::kFixed32:
      return ReadFixed(4).status();
    case WireType::kLengthDelimited:
      return ReadLengthDelimited().status();
    case WireType::kStartGroup:
    case WireType::kEndGroup:
      return ErrorAt(offset(), "groups (wire type 3/4) are not supported");
  }
  return ErrorAt(offset(), "invalid wire type ", static_cast<int>(type));
}

}  // namespace orion::sketch::proto
