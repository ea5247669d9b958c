// DataDog's protobuf format: exact bytes, round trips, protobuf parsing rules, and clear errors
// with byte offsets for malformed input.
#include "sketch/encoding/ddsketch_encoding.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sketch/encoding/base64.h"
#include "sketch/encoding/proto_wire.h"
#include "sketch/store/collapsing_dense_store.h"
#include "sketch/store/sparse_store.h"
#include "tests/unit/sketch/sketch_test_support.h"

namespace orion::sketch {
namespace {

using proto::Writer;
using testing::Bins;
using testing::SameBins;

std::vector<uint8_t> Bytes(std::initializer_list<int> bytes) {
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

void Append(std::vector<uint8_t>& to, const std::vector<uint8_t>& bytes) {
  to.insert(to.end(), bytes.begin(), bytes.end());
}

std::vector<uint8_t> LittleEndian(double v) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 8; ++i)
    bytes.push_back(static_cast<uint8_t>(std::bit_cast<uint64_t>(v) >> (8 * i)));
  return bytes;
}

// The message of a kernel sketch holding one value, 1 ns, written out by hand from
// ddsketch.proto: field numbers, wire types and lengths.
TEST(Encoding, KernelSketchHasTheExpectedBytes) {
  CountSketch sketch(IndexMapping::Kernel());
  ASSERT_TRUE(sketch.add_integer(1).ok());
  std::vector<uint8_t> expected = Bytes({0x0a, 0x14, 0x09});  // mapping, 20 bytes; gamma
  Append(expected, LittleEndian(std::exp2(1.0 / 64)));
  Append(expected, Bytes({0x11}));  // indexOffset 0
  Append(expected, LittleEndian(0));
  Append(expected, Bytes({0x18, 0x00}));              // interpolation NONE
  Append(expected, Bytes({0x12, 0x0c, 0x12, 0x08}));  // positiveValues: contiguousBinCounts [1]
  Append(expected, LittleEndian(1));
  Append(expected, Bytes({0x18, 0x00}));                          // contiguousBinIndexOffset 0
  Append(expected, Bytes({0x1a, 0x04, 0x12, 0x00, 0x18, 0x00}));  // negativeValues, empty
  Append(expected, Bytes({0x21}));                                // zeroCount 0
  Append(expected, LittleEndian(0));
  for (int tag : {0xc9, 0xd1, 0xd9}) {  // orionSum/Min/Max = 1: field 1001..1003, fixed64
    Append(expected, Bytes({tag, 0x3e}));
    Append(expected, LittleEndian(1));
  }
  EXPECT_EQ(EncodeDDSketch(sketch), expected);
}

template <typename S>
void ExpectRoundTrip(const DDSketch<S>& sketch, S store = S()) {
  const std::vector<uint8_t> bytes = EncodeDDSketch(sketch);
  const auto decoded = DecodeDDSketch<S>(bytes, store);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(SameBins(*decoded, sketch)) << sketch.mapping().Describe();
  EXPECT_EQ(decoded->count(), sketch.count());
  EXPECT_EQ(decoded->sum(), sketch.sum());
  if (!sketch.empty()) {
    EXPECT_EQ(decoded->min(), sketch.min());
    EXPECT_EQ(decoded->max(), sketch.max());
  }
  EXPECT_EQ(EncodeDDSketch(*decoded), bytes);
}

TEST(Encoding, RoundTripsEveryMappingAndStore) {
  const std::vector<IndexMapping> mappings = {
      IndexMapping::Kernel(), *IndexMapping::Logarithmic(0.01),
      *IndexMapping::LinearlyInterpolated(0.02), *IndexMapping::CubicallyInterpolated(0.005)};
  std::mt19937_64 random(5);
  for (const IndexMapping& mapping : mappings) {
    CountSketch counts(mapping);
    WeightedSketch weights(mapping);
    DDSketch<SparseStore<uint64_t>> sparse(mapping);
    DDSketch<CollapsingLowestDenseStore<double>> collapsing(
        mapping, CollapsingLowestDenseStore<double>(100));
    for (int i = 0; i < 5000; ++i) {
      const double v = std::lognormal_distribution<double>(5, 3)(random) * (i % 7 == 0 ? -1 : 1);
      ASSERT_TRUE(counts.add(v).ok());
      ASSERT_TRUE(weights.add(v, 0.25 + i % 3).ok());
      ASSERT_TRUE(sparse.add(v).ok());
      ASSERT_TRUE(collapsing.add(v).ok());
    }
    ASSERT_TRUE(counts.add(0, 5).ok());
    ExpectRoundTrip(counts);
    ExpectRoundTrip(weights);
    ExpectRoundTrip(sparse);
    ExpectRoundTrip(collapsing, CollapsingLowestDenseStore<double>(100));
  }
  ExpectRoundTrip(CountSketch(IndexMapping::Kernel()));  // empty
}

TEST(Encoding, FarApartBinsUseTheSparseEncoding) {
  DDSketch<SparseStore<uint64_t>> sketch(*IndexMapping::Logarithmic(0.0001));
  ASSERT_TRUE(sketch.add(1e-100).ok());
  ASSERT_TRUE(sketch.add(1e100).ok());
  const auto bytes = EncodeDDSketch(sketch);
  EXPECT_LT(bytes.size(), 200u);  // two map entries, not 4.6 million contiguous bins
  ExpectRoundTrip(sketch);
}

// Protobuf's rules: any order, unknown fields skipped, repeated fields packed or not and in
// several chunks, map keys last-wins, a bin in both encodings counts the sum, messages merged.
TEST(Encoding, DecodesEverythingProtobufAllows) {
  Writer store;
  Writer entry;
  entry.SInt32Field(1, -7);
  entry.DoubleField(2, 100);  // overwritten below: last value of a key wins
  store.MessageField(1, entry);
  Writer entry2;
  entry2.DoubleField(2, 3);  // no key: key 0
  entry2.SInt32Field(1, -7);
  store.MessageField(1, entry2);
  Writer zero_key;
  zero_key.DoubleField(2, 2);
  store.MessageField(1, zero_key);
  store.UnsignedField(99, 12345);  // unknown varint
  store.SInt32Field(3, 5);
  store.PackedDoublesField(2, std::vector<double>{1, 0});  // bins 5, 6
  store.DoubleField(2, 4);                                 // unpacked: bin 7
  store.PackedDoublesField(2, std::vector<double>{0, 6});  // bins 8, 9
  Writer map_overlap;
  map_overlap.SInt32Field(1, 9);
  map_overlap.DoubleField(2, 10);
  store.MessageField(1, map_overlap);  // bin 9 in both encodings: 6 + 10

  Writer mapping_a, mapping_b;
  mapping_a.DoubleField(1, std::exp2(1.0 / 64));
  mapping_b.UnsignedField(3, 0);
  mapping_b.DoubleField(2, 0);

  Writer sketch;
  sketch.DoubleField(4, 2);  // zeroCount before the rest
  sketch.MessageField(2, store);
  sketch.MessageField(1, mapping_a);
  Writer unknown;
  unknown.DoubleField(1, 1);
  sketch.MessageField(50, unknown);   // unknown length-delimited
  sketch.MessageField(1, mapping_b);  // merged into the first mapping
  sketch.DoubleField(88, 1.5);        // unknown fixed64

  std::vector<uint8_t> bytes = Bytes({0xed, 0x04, 1, 2, 3, 4});  // unknown field 77, fixed32
  Append(bytes, sketch.bytes());

  const auto decoded = DecodeDDSketch<DenseStore<double>>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->mapping().is_kernel());
  const std::map<int, double> expected = {{-7, 3}, {0, 2}, {5, 1}, {7, 4}, {9, 16}};
  EXPECT_EQ(Bins(decoded->positive_store()), expected);
  EXPECT_EQ(decoded->zero_count(), 2);
  EXPECT_TRUE(decoded->negative_store().empty());
  // No Orion summary: it is estimated from the bins.
  EXPECT_EQ(decoded->max(), decoded->mapping().value(9));
}

struct BadInput {
  std::string name;
  std::vector<uint8_t> bytes;
  std::string error;  // a part of the expected message
};

std::vector<uint8_t> WithMapping(double gamma, uint64_t interpolation, const Writer& rest) {
  Writer mapping;
  mapping.DoubleField(1, gamma);
  mapping.UnsignedField(3, interpolation);
  Writer sketch;
  sketch.MessageField(1, mapping);
  std::vector<uint8_t> bytes = sketch.Release();
  Append(bytes, rest.bytes());
  return bytes;
}

Writer PositiveStore(const Writer& store) {
  Writer w;
  w.MessageField(2, store);
  return w;
}

std::vector<BadInput> BadInputs() {
  std::vector<BadInput> inputs;
  const double kernel_gamma = std::exp2(1.0 / 64);
  inputs.push_back({"truncated varint", Bytes({0x0a, 0x80}), "byte 1: truncated varint"});
  inputs.push_back({"length past the end", Bytes({0x0a, 0x05, 0x09}), "byte 1: length 5 exceeds"});
  inputs.push_back({"truncated double", Bytes({0x21, 0, 0, 0}), "byte 1: truncated 64-bit"});
  inputs.push_back({"field 0", Bytes({0x00}), "byte 0: invalid field number 0"});
  inputs.push_back({"group", Bytes({0x2b}), "byte 1: groups"});
  inputs.push_back(
      {"wrong wire type", Bytes({0x20, 0x01}), "byte 0: field zeroCount (4) has wire type 0"});
  inputs.push_back({"11-byte varint",
                    Bytes({0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}),
                    "byte 1: varint longer than 64 bits"});
  {
    Writer w;
    w.DoubleField(4, -1);
    inputs.push_back({"negative zero count", WithMapping(kernel_gamma, 0, w), "zeroCount is -1"});
  }
  {
    Writer store;
    store.PackedDoublesField(2, std::vector<double>{1, NAN});
    inputs.push_back(
        {"NaN count", WithMapping(kernel_gamma, 0, PositiveStore(store)), "counts must be finite"});
  }
  {
    Writer w;
    w.DoubleField(4, 1);
    inputs.push_back({"no mapping", w.Release(), "no index mapping"});
  }
  inputs.push_back(
      {"gamma below 1", WithMapping(0.5, 0, Writer()), "byte 0: index mapping: gamma"});
  inputs.push_back({"quadratic", WithMapping(1.02, 2, Writer()), "QUADRATIC"});
  inputs.push_back(
      {"unknown interpolation", WithMapping(1.02, 9, Writer()), "unknown interpolation 9"});
  {
    Writer store;
    store.SInt32Field(3, INT32_MAX - 1);
    store.PackedDoublesField(2, std::vector<double>{1, 1, 1});
    inputs.push_back({"contiguous bins past int32",
                      WithMapping(kernel_gamma, 0, PositiveStore(store)), "past the 32-bit range"});
  }
  {
    Writer store, low, high;
    low.SInt32Field(1, -2000000);
    low.DoubleField(2, 1);
    high.SInt32Field(1, 2000000);
    high.DoubleField(2, 1);
    store.MessageField(1, low);
    store.MessageField(1, high);
    inputs.push_back({"span too wide", WithMapping(kernel_gamma, 0, PositiveStore(store)),
                      "more than the limit"});
  }
  {
    Writer w;
    w.DoubleField(1001, 5);
    inputs.push_back({"partial summary", WithMapping(kernel_gamma, 0, w), "needs all of"});
  }
  {
    Writer store, entry;
    entry.SInt32Field(1, 3);
    entry.DoubleField(2, 1.7e308);
    store.MessageField(1, entry);
    store.SInt32Field(3, 3);
    store.PackedDoublesField(2, std::vector<double>{1.7e308});  // the same bin: the sum overflows
    inputs.push_back({"counts overflow", WithMapping(kernel_gamma, 0, PositiveStore(store)),
                      "add up to infinity"});
  }
  return inputs;
}

TEST(Encoding, MalformedInputGivesAClearError) {
  for (const BadInput& input : BadInputs()) {
    const auto decoded = DecodeDDSketch<DenseStore<double>>(input.bytes);
    ASSERT_FALSE(decoded.ok()) << input.name;
    EXPECT_NE(decoded.status().message().find(input.error), std::string::npos)
        << input.name << ": " << decoded.status().message();
  }
}

TEST(Encoding, FractionalCountsNeedAWeightedSketch) {
  WeightedSketch weighted(IndexMapping::Kernel());
  ASSERT_TRUE(weighted.add(10, 0.5).ok());
  const auto bytes = EncodeDDSketch(weighted);
  const auto as_counts = DecodeDDSketch<DenseStore<uint64_t>>(bytes);
  ASSERT_FALSE(as_counts.ok());
  EXPECT_NE(as_counts.status().message().find("not an integer count"), std::string::npos);
  EXPECT_TRUE(DecodeDDSketch<DenseStore<double>>(bytes).ok());
}

TEST(Encoding, IntegerCountsMustNotOverflow) {
  Writer store;
  store.PackedDoublesField(2, std::vector<double>{1.8e19, 1.8e19});
  const auto bytes = WithMapping(std::exp2(1.0 / 64), 0, PositiveStore(store));
  const auto counts = DecodeDDSketch<DenseStore<uint64_t>>(bytes);
  ASSERT_FALSE(counts.ok());
  EXPECT_NE(counts.status().message().find("2^64"), std::string::npos);
  EXPECT_TRUE(DecodeDDSketch<DenseStore<double>>(bytes).ok());
}

TEST(Encoding, SpanLimitIsAnOption) {
  CountSketch sketch(IndexMapping::Kernel());
  ASSERT_TRUE(sketch.add(1).ok());
  ASSERT_TRUE(sketch.add(1e6).ok());
  const auto bytes = EncodeDDSketch(sketch);
  EXPECT_FALSE(DecodeDDSketch<DenseStore<uint64_t>>(bytes, {}, DecodeOptions{100}).ok());
  EXPECT_TRUE(DecodeDDSketch<DenseStore<uint64_t>>(bytes, {}, DecodeOptions{2000}).ok());
}

TEST(Base64, KnownVectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    const std::vector<uint8_t> bytes(plain.begin(), plain.end());
    EXPECT_EQ(Base64Encode(bytes), encoded);
    EXPECT_EQ(*Base64Decode(encoded), bytes);
  }
}

TEST(Base64, RoundTripsAndIgnoresWhitespace) {
  std::mt19937_64 random(9);
  for (size_t n = 0; n < 100; ++n) {
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(random());
    std::string text = Base64Encode(bytes);
    EXPECT_TRUE(n == 0 || LooksLikeBase64(text));
    text.insert(text.size() / 2, "\n ");
    text += "\n";
    EXPECT_EQ(*Base64Decode(text), bytes);
    while (!text.empty() && (text.back() == '=' || text.back() == '\n')) text.pop_back();
    EXPECT_EQ(*Base64Decode(text), bytes) << "without padding";
  }
}

TEST(Base64, ErrorsGiveTheOffset) {
  EXPECT_NE(Base64Decode("Zm9v!").status().message().find("byte 4"), std::string::npos);
  EXPECT_NE(Base64Decode("Zm9vY").status().message().find("truncated"), std::string::npos);
  EXPECT_NE(Base64Decode("Zg==Zg").status().message().find("after '='"), std::string::npos);
  EXPECT_FALSE(LooksLikeBase64(std::string("\x0a\x14\x09", 3)));
  EXPECT_FALSE(LooksLikeBase64(" \n"));
}

}  // namespace
}  // namespace orion::sketch
