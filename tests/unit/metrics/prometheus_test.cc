#include "userspace/metrics/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <span>

#include "sketch/encoding/proto_wire.h"

namespace orion::metrics {
namespace {

using sketch::proto::Reader;
using sketch::proto::WireType;

// What a reader of metrics.proto makes of one native histogram: absolute counts per Prometheus
// bucket index, rebuilt from spans and deltas as Prometheus does.
struct DecodedHistogram {
  uint64_t count = 0;
  double sum = 0;
  int32_t schema = -100;
  double zero_threshold = -1;
  uint64_t zero_count = 0;
  std::map<int, uint64_t> buckets;
};

std::pair<int32_t, uint32_t> ReadSpan(Reader r) {
  int32_t offset = 0;
  uint32_t length = 0;
  while (!r.done()) {
    const auto key = r.ReadKey();
    const uint64_t v = *r.ReadVarint();
    if (key->number == 1) offset = sketch::proto::ZigZagDecode(static_cast<uint32_t>(v));
    if (key->number == 2) length = static_cast<uint32_t>(v);
  }
  return {offset, length};
}

DecodedHistogram DecodeHistogram(Reader r) {
  DecodedHistogram h;
  std::vector<std::pair<int32_t, uint32_t>> spans;
  std::vector<int64_t> deltas;
  while (!r.done()) {
    const auto key = r.ReadKey();
    EXPECT_TRUE(key.ok());
    if (key->type == WireType::kFixed64) {
      const double d = *r.ReadDouble();
      if (key->number == 2) h.sum = d;
      if (key->number == 6) h.zero_threshold = d;
    } else if (key->type == WireType::kVarint) {
      const uint64_t v = *r.ReadVarint();
      if (key->number == 1) h.count = v;
      if (key->number == 5) h.schema = sketch::proto::ZigZagDecode(static_cast<uint32_t>(v));
      if (key->number == 7) h.zero_count = v;
      if (key->number == 13)
        deltas.push_back(static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1));
    } else {
      Reader inner = *r.ReadLengthDelimited();
      if (key->number == 12) spans.push_back(ReadSpan(inner));
    }
  }
  int index = 0;
  size_t d = 0;
  int64_t count = 0;
  bool first = true;
  for (auto [offset, length] : spans) {
    index = first ? offset : index + offset;
    first = false;
    for (uint32_t i = 0; i < length; ++i, ++index) {
      count += deltas.at(d++);
      h.buckets[index] = static_cast<uint64_t>(count);
    }
  }
  EXPECT_EQ(d, deltas.size());
  return h;
}

// The one histogram of the one metric of the first family in `body`.
DecodedHistogram FirstHistogram(const std::string& body) {
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  Reader all(bytes);
  const uint64_t length = *all.ReadVarint();
  EXPECT_EQ(length + (all.offset()), body.size());
  Reader family(bytes.subspan(all.offset()));
  while (!family.done()) {
    auto key = family.ReadKey();
    if (key->number == 4) {
      Reader metric = *family.ReadLengthDelimited();
      while (!metric.done()) {
        auto mkey = metric.ReadKey();
        if (mkey->number == 7) return DecodeHistogram(*metric.ReadLengthDelimited());
        EXPECT_TRUE(metric.Skip(mkey->type).ok());
      }
    } else {
      EXPECT_TRUE(family.Skip(key->type).ok());
    }
  }
  ADD_FAILURE() << "no histogram";
  return {};
}

int PrometheusIndexOf(uint64_t ns) {
  // Upper-inclusive: the smallest k with ns <= 2^(k/64), by exact search around the estimate.
  int k = static_cast<int>(std::ceil(64 * std::log2(static_cast<double>(ns)))) - 2;
  while (!(static_cast<double>(ns) <= std::exp2(k / 64.0))) ++k;
  return k;
}

TEST(PrometheusTest, NativeBucketsAreWherePrometheusPutsTheSameLatencies) {
  sketch::CountSketch h(sketch::IndexMapping::Kernel());
  // Latencies that are not powers of two, over many orders of magnitude, with gaps between.
  std::map<int, uint64_t> expected;
  uint64_t sum = 0;
  for (uint64_t ns : {3ull, 5ull, 7ull, 1000ull, 1001ull, 1500ull, 3000ull, 123457ull, 999999ull,
                      2500000ull, 2500001ull, 40000001ull}) {
    ASSERT_TRUE(h.add_integer(ns).ok());
    ++expected[PrometheusIndexOf(ns)];
    sum += ns;
  }
  ASSERT_TRUE(h.add_integer(0, 3).ok());
  h.set_summary(static_cast<double>(sum), 0, 40000001);
  const DecodedHistogram got =
      FirstHistogram(EncodeProtobuf({{"orion_function_duration_nanoseconds",
                                      "help",
                                      MetricKind::kHistogram,
                                      {{{{"function", "m:f/1"}}, 0, &h}}}}));
  EXPECT_EQ(got.schema, 6);
  EXPECT_EQ(got.count, 15u);
  EXPECT_EQ(got.zero_count, 3u);
  EXPECT_EQ(got.zero_threshold, kZeroThreshold);
  EXPECT_EQ(got.sum, static_cast<double>(sum));
  EXPECT_EQ(got.buckets, expected);
}

TEST(PrometheusTest, APowerOfTwoIsExportedOneBucketAboveItsPrometheusBucket) {
  sketch::CountSketch h(sketch::IndexMapping::Kernel());
  ASSERT_TRUE(h.add_integer(1024).ok());
  const DecodedHistogram got =
      FirstHistogram(EncodeProtobuf({{"x", "h", MetricKind::kHistogram, {{{}, 0, &h}}}}));
  EXPECT_EQ(PrometheusIndexOf(1024), 640);
  EXPECT_EQ(got.buckets, (std::map<int, uint64_t>{{641, 1}}));
}

TEST(PrometheusTest, AnEmptyHistogramStillReadsAsNative) {
  sketch::CountSketch h(sketch::IndexMapping::Kernel());
  const DecodedHistogram got =
      FirstHistogram(EncodeProtobuf({{"x", "h", MetricKind::kHistogram, {{{}, 0, &h}}}}));
  EXPECT_EQ(got.schema, 6);
  EXPECT_EQ(got.count, 0u);
  EXPECT_TRUE(got.buckets.empty());
}

TEST(PrometheusTest, TextFormatHasClassicCumulativeBuckets) {
  sketch::CountSketch h(sketch::IndexMapping::Kernel());
  ASSERT_TRUE(h.add_integer(1000).ok());        // below 1024
  ASSERT_TRUE(h.add_integer(2047).ok());        // below 2048
  ASSERT_TRUE(h.add_integer(2048).ok());        // exactly 2^11: counted from le="4096" (documented)
  ASSERT_TRUE(h.add_integer(1ull << 40).ok());  // beyond the last bound
  h.set_summary(1000 + 2047 + 2048 + double(1ull << 40), 1000, double(1ull << 40));
  const std::string text =
      EncodeText({{"orion_function_duration_nanoseconds",
                   "Wall time \"of\" calls",
                   MetricKind::kHistogram,
                   {{{{"function", "Bar.Repo.get/1"}, {"node", "app@h"}}, 0, &h}}},
                  {"orion_function_exceptions_total",
                   "x",
                   MetricKind::kCounter,
                   {{{{"function", "a\\b\"c"}}, 7, nullptr}}}});
  const std::string name = "orion_function_duration_nanoseconds";
  const std::string labels = "function=\"Bar.Repo.get/1\",node=\"app@h\"";
  const auto has = [&](const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has("# HELP " + name + " Wall time \"of\" calls"));
  EXPECT_TRUE(has("# TYPE " + name + " histogram"));
  EXPECT_TRUE(has(name + "_bucket{" + labels + ",le=\"1024\"} 1"));
  EXPECT_TRUE(has(name + "_bucket{" + labels + ",le=\"2048\"} 2"));
  EXPECT_TRUE(has(name + "_bucket{" + labels + ",le=\"4096\"} 3"));
  EXPECT_TRUE(has(name + "_bucket{" + labels + ",le=\"68719476736\"} 3"));
  EXPECT_TRUE(has(name + "_bucket{" + labels + ",le=\"+Inf\"} 4"));
  EXPECT_TRUE(has(name + "_count{" + labels + "} 4"));
  EXPECT_TRUE(has(name + "_sum{" + labels + "} 1099511632871"));
  EXPECT_TRUE(has("# TYPE orion_function_exceptions_total counter"));
  EXPECT_TRUE(has("orion_function_exceptions_total{function=\"a\\\\b\\\"c\"} 7"));
}

}  // namespace
}  // namespace orion::metrics
