// Orion's histograms for Prometheus: the exposition formats a scrape of `orion daemon`'s
// /metrics is answered in (docs/export.md).
//
// Native histograms, protobuf format. Orion's kernel buckets are Prometheus schema-6 buckets in
// integer nanoseconds: Orion's bucket i holds [2^(i/64), 2^((i+1)/64)) ns (sketch/bucket_index.h,
// lower-inclusive), Prometheus's bucket k holds (2^((k-1)/64), 2^(k/64)] (upper-inclusive), so
// Orion's bucket i is exported as Prometheus's bucket i + 1. The only integers on a boundary are
// powers of two: a latency of exactly 2^e ns is in Orion's bucket 64e and belongs to
// Prometheus's bucket 64e, one below where it is exported. Everything else lands in exactly the
// bucket Prometheus itself would have chosen, with no re-bucketing. Zero latencies are the zero
// bucket; the kernel's saturated slot (>= 2^44 ns, about 4.9 hours) is exported as its bucket.
//
// Classic buckets, text format (version 0.0.4), for scrapers that do not negotiate protobuf:
// cumulative counts at le = 2^e ns, e = 10 .. 36 (1.024 us .. 68.7 s), and +Inf. `le` is
// inclusive; the count at 2^e is the sum of Orion's buckets below 64e, which leaves out the
// latencies of exactly 2^e ns (the same boundary rule as above).
//
//   std::vector<metrics::Family> families = ...;     // built from the watches' cumulative sketches
//   std::string body = metrics::EncodeProtobuf(families);   // Content-Type: kProtobufContentType
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sketch/ddsketch.h"

namespace orion::metrics {

inline constexpr std::string_view kProtobufContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
    "encoding=delimited";
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// The schema of Orion's buckets: 2^(2^-6) = 2^(1/64).
inline constexpr int kSchema = 6;
// Native histograms' zero bucket holds |v| <= this: only the zero latencies (and the client
// libraries' default, so series from elsewhere merge without widening it).
inline constexpr double kZeroThreshold = 2.938735877055719e-39;  // 2^-128
// The text format's classic bucket bounds: le = 2^e ns for e in [first, last].
inline constexpr int kClassicFirstExponent = 10;
inline constexpr int kClassicLastExponent = 36;

// Prometheus's schema-6 bucket index of Orion's (positive) bucket `orion_index`.
constexpr int PrometheusBucketIndex(int orion_index) {
  return orion_index + 1;
}

enum class MetricKind { kCounter, kGauge, kHistogram };

struct Label {
  std::string name;
  std::string value;
};

// One time series: a counter or gauge value, or a cumulative histogram of nanoseconds (a sketch
// with the kernel's mapping, IndexMapping::Kernel(); its sum is the exact sum the kernel kept).
struct Series {
  std::vector<Label> labels;
  double value = 0;
  const sketch::CountSketch* histogram = nullptr;
};

struct Family {
  std::string name;  // e.g. orion_function_duration_nanoseconds
  std::string help;
  MetricKind kind = MetricKind::kCounter;
  std::vector<Series> series;
};

// Length-delimited io.prometheus.client.MetricFamily messages, native histograms.
std::string EncodeProtobuf(const std::vector<Family>& families);
// The text exposition format, classic buckets for histograms.
std::string EncodeText(const std::vector<Family>& families);

// A label value or help text escaped for the text format (\\, \" and \n).
std::string EscapeText(std::string_view text, bool quotes);

}  // namespace orion::metrics
