#include "userspace/metrics/prometheus.h"

#include <cmath>
#include <cstdio>

#include "sketch/encoding/proto_wire.h"

namespace orion::metrics {
namespace {

using sketch::proto::Writer;

// Field numbers of io.prometheus.client's metrics.proto.
namespace field {
constexpr int kFamilyName = 1, kFamilyHelp = 2, kFamilyType = 3, kFamilyMetric = 4;
constexpr int kMetricLabel = 1, kMetricGauge = 2, kMetricCounter = 3, kMetricHistogram = 7;
constexpr int kLabelName = 1, kLabelValue = 2;
constexpr int kValue = 1;  // Counter.value, Gauge.value
constexpr int kSampleCount = 1, kSampleSum = 2, kSchema = 5, kZeroThreshold = 6, kZeroCount = 7,
              kPositiveSpan = 12, kPositiveDelta = 13;
constexpr int kSpanOffset = 1, kSpanLength = 2;
}  // namespace field

// MetricType values.
constexpr uint64_t kTypeCounter = 0, kTypeGauge = 1, kTypeHistogram = 4;

uint64_t TypeOf(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return kTypeCounter;
    case MetricKind::kGauge:
      return kTypeGauge;
    case MetricKind::kHistogram:
      return kTypeHistogram;
  }
  return kTypeCounter;
}

// The positive buckets as spans of consecutive non-empty Prometheus buckets and the deltas of
// their counts (each against the previous bucket's count, the first against zero).
void WriteNativeBuckets(const sketch::CountSketch& h, Writer& histogram) {
  const auto& store = h.positive_store();
  if (store.empty()) {
    // A histogram with no positive bucket still needs a span to be read as native.
    Writer span;
    span.SInt32Field(field::kSpanOffset, 0);
    span.UnsignedField(field::kSpanLength, 0);
    histogram.MessageField(field::kPositiveSpan, span);
    return;
  }
  int64_t previous_count = 0;
  int next_expected = 0;  // the Prometheus index right after the last span
  bool first = true;
  for (int i = store.min_index(); i <= store.max_index();) {
    if (store.count_at(i) == 0) {
      ++i;
      continue;
    }
    int end = i;
    while (end + 1 <= store.max_index() && store.count_at(end + 1) != 0) ++end;
    const int start = PrometheusBucketIndex(i);
    Writer span;
    span.SInt32Field(field::kSpanOffset, first ? start : start - next_expected);
    span.UnsignedField(field::kSpanLength, static_cast<uint64_t>(end - i + 1));
    histogram.MessageField(field::kPositiveSpan, span);
    next_expected = PrometheusBucketIndex(end) + 1;
    first = false;
    i = end + 1;
  }
  for (int i = store.min_index(); i <= store.max_index(); ++i) {
    const auto count = static_cast<int64_t>(store.count_at(i));
    if (count == 0) continue;
    histogram.SInt64Field(field::kPositiveDelta, count - previous_count);
    previous_count = count;
  }
}

Writer NativeHistogram(const sketch::CountSketch& h) {
  Writer histogram;
  histogram.UnsignedField(field::kSampleCount, h.count());
  histogram.DoubleField(field::kSampleSum, h.sum());
  histogram.SInt32Field(field::kSchema, kSchema);
  histogram.DoubleField(field::kZeroThreshold, kZeroThreshold);
  histogram.UnsignedField(field::kZeroCount, h.zero_count());
  WriteNativeBuckets(h, histogram);
  return histogram;
}

Writer MetricMessage(const Family& family, const Series& series) {
  Writer metric;
  for (const Label& label : series.labels) {
    Writer pair;
    pair.BytesField(field::kLabelName, label.name);
    pair.BytesField(field::kLabelValue, label.value);
    metric.MessageField(field::kMetricLabel, pair);
  }
  if (family.kind == MetricKind::kHistogram) {
    if (series.histogram != nullptr) {
      metric.MessageField(field::kMetricHistogram, NativeHistogram(*series.histogram));
    }
  } else {
    Writer value;
    value.DoubleField(field::kValue, series.value);
    metric.MessageField(
        family.kind == MetricKind::kCounter ? field::kMetricCounter : field::kMetricGauge, value);
  }
  return metric;
}

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e18) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.17g", v);
  }
  return buf;
}

// {a="x",b="y"} with `extra` (e.g. le="1024") last; "" when there are no labels at all.
std::string TextLabels(const std::vector<Label>& labels, const std::string& extra = "") {
  std::string out;
  for (const Label& l : labels) {
    out += out.empty() ? "{" : ",";
    out += l.name + "=\"" + EscapeText(l.value, true) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  return out.empty() ? out : out + "}";
}

void WriteClassicHistogram(const std::string& name, const Series& series, std::string& out) {
  const sketch::CountSketch& h = *series.histogram;
  const auto& store = h.positive_store();
  uint64_t cumulative = h.zero_count();
  int index = store.empty() ? 0 : store.min_index();
  for (int e = kClassicFirstExponent; e <= kClassicLastExponent; ++e) {
    // Orion's buckets below 64e hold exactly the latencies below 2^e ns.
    for (; !store.empty() && index < 64 * e && index <= store.max_index(); ++index) {
      cumulative += store.count_at(index);
    }
    out += name + "_bucket" +
           TextLabels(series.labels, "le=\"" + FormatNumber(std::ldexp(1.0, e)) + "\"") + " " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket" + TextLabels(series.labels, "le=\"+Inf\"") + " " +
         std::to_string(h.count()) + "\n";
  out += name + "_sum" + TextLabels(series.labels) + " " + FormatNumber(h.sum()) + "\n";
  out += name + "_count" + TextLabels(series.labels) + " " + std::to_string(h.count()) + "\n";
}

}  // namespace

std::string EscapeText(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EncodeProtobuf(const std::vector<Family>& families) {
  std::string out;
  for (const Family& family : families) {
    if (family.series.empty()) continue;
    Writer message;
    message.BytesField(field::kFamilyName, family.name);
    message.BytesField(field::kFamilyHelp, family.help);
    message.UnsignedField(field::kFamilyType, TypeOf(family.kind));
    for (const Series& series : family.series) {
      message.MessageField(field::kFamilyMetric, MetricMessage(family, series));
    }
    Writer length;
    length.Varint(message.bytes().size());
    out.append(length.bytes().begin(), length.bytes().end());
    out.append(message.bytes().begin(), message.bytes().end());
  }
  return out;
}

std::string EncodeText(const std::vector<Family>& families) {
  std::string out;
  for (const Family& family : families) {
    if (family.series.empty()) continue;
    out += "# HELP " + family.name + " " + EscapeText(family.help, false) + "\n";
    out += "# TYPE " + family.name + " " +
           (family.kind == MetricKind::kHistogram ? "histogram"
            : family.kind == MetricKind::kCounter ? "counter"
                                                  : "gauge") +
           "\n";
    for (const Series& series : family.series) {
      if (family.kind == MetricKind::kHistogram) {
        if (series.histogram != nullptr) WriteClassicHistogram(family.name, series, out);
      } else {
        out += family.name + TextLabels(series.labels) + " " + FormatNumber(series.value) + "\n";
      }
    }
  }
  return out;
}

}  // namespace orion::metrics
