#include "userspace/cli/latency_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "sketch/encoding/base64.h"
#include "sketch/encoding/ddsketch_encoding.h"

namespace orion::cli {
namespace {

uint64_t QuantileNs(const sketch::CountSketch& s, double q) {
  auto v = s.quantile(q);
  return v.ok() ? static_cast<uint64_t>(std::llround(*v)) : 0;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  // Width in terminal columns: count UTF-8 lead bytes only.
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xC0) != 0x80;
  if (cols >= width) return s;
  std::string pad(width - cols, ' ');
  return right ? pad + s : s + pad;
}

}  // namespace

std::string FormatDuration(double ns) {
  char buf[32];
  if (!std::isfinite(ns)) return "-";
  if (ns < 1e3) {
    std::snprintf(buf, sizeof(buf), "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof(buf), "%.3g µs", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof(buf), "%.3g ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g s", ns / 1e9);
  }
  return buf;
}

nlohmann::json SummaryJson(const sketch::CountSketch& s) {
  nlohmann::json j;
  j["count"] = s.count();
  const bool empty = s.empty();
  j["min_ns"] = empty ? 0 : static_cast<uint64_t>(s.min());
  j["max_ns"] = empty ? 0 : static_cast<uint64_t>(s.max());
  j["sum_ns"] = static_cast<uint64_t>(s.sum());
  j["p50_ns"] = QuantileNs(s, 0.50);
  j["p90_ns"] = QuantileNs(s, 0.90);
  j["p99_ns"] = QuantileNs(s, 0.99);
  j["p999_ns"] = QuantileNs(s, 0.999);
  return j;
}

nlohmann::json FunctionJson(const probes::FunctionStats& f) {
  nlohmann::json j = SummaryJson(f.wall);
  j["mfa"] = f.mfa;
  j["cpu"] = SummaryJson(f.cpu);
  j["exceptions"] = f.exceptions;
  j["tail_calls"] = f.tail_calls;
  j["exits"] = f.exits;
  j["sketch"] = sketch::Base64Encode(sketch::EncodeDDSketch(f.wall));
  return j;
}

nlohmann::json LostJson(const probes::LostCounters& lost) {
  return {{"frames_evicted", lost.frames_evicted},
          {"depth_overflow", lost.depth_overflow},
          {"functions_over_limit", lost.functions_over_limit},
          {"mfa_truncated", lost.mfa_truncated},
          {"read_errors", lost.read_errors},
          {"recursion_misses", lost.recursion_misses},
          {"hash_collisions", lost.hash_collisions}};
}

std::string Sparkline(const sketch::CountSketch& s, int width) {
  static const char* kBars[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (s.empty() || width <= 0) return std::string(std::max(width, 0), ' ');
  // Columns span [min, max] on a log scale; each bin's count goes to its column.
  const double lo = std::log(std::max(s.min(), 1.0));
  const double hi = std::log(std::max(s.max(), 1.0));
  std::vector<double> cols(width, 0);
  s.positive_store().for_each([&](int index, uint64_t count) {
    double v = std::log(std::max(s.mapping().value(index), 1.0));
    int c = hi > lo ? static_cast<int>((v - lo) / (hi - lo) * (width - 1) + 0.5) : 0;
    cols[std::clamp(c, 0, width - 1)] += static_cast<double>(count);
  });
  cols[0] += static_cast<double>(s.zero_count());
  const double peak = *std::max_element(cols.begin(), cols.end());
  std::string out;
  for (double c : cols) {
    int level = c <= 0 ? 0 : 1 + static_cast<int>(c / peak * 7.999);
    out += kBars[std::clamp(level, 0, 8)];
  }
  return out;
}

std::string RenderTable(const probes::CaptureSnapshot& snap, const probes::CaptureSnapshot* previous,
                        double rate_seconds) {
  std::map<std::string, uint64_t> before;
  if (previous) {
    for (const auto& f : previous->functions) before[f.mfa] = f.wall.count();
  }
  size_t name_width = 8;
  for (const auto& f : snap.functions) name_width = std::max(name_width, f.mfa.size());
  name_width = std::min<size_t>(name_width, 48);

  std::string out = Pad("FUNCTION", name_width, false) + "  " + Pad("CALLS", 9, true) + " " +
                    Pad("CALLS/S", 9, true) + " " + Pad("P50", 9, true) + " " +
                    Pad("P90", 9, true) + " " + Pad("P99", 9, true) + " " + Pad("MAX", 9, true) +
                    " " + Pad("CPU P50", 9, true) + " " + Pad("EXC", 5, true) +
                    "  DISTRIBUTION (min..max, log)\n";
  for (const auto& f : snap.functions) {
    const uint64_t calls = f.wall.count();
    const double rate =
        rate_seconds > 0 ? static_cast<double>(calls - before[f.mfa]) / rate_seconds : 0;
    char rate_buf[32];
    std::snprintf(rate_buf, sizeof(rate_buf), "%.0f", rate);
    auto q = [&](const sketch::CountSketch& s, double p) {
      auto v = s.quantile(p);
      return v.ok() ? FormatDuration(*v) : std::string("-");
    };
    std::string name = f.mfa.size() > name_width ? f.mfa.substr(0, name_width - 1) + "…" : f.mfa;
    out += Pad(name, name_width, false) + "  " + Pad(std::to_string(calls), 9, true) + " " +
           Pad(rate_buf, 9, true) + " " + Pad(q(f.wall, 0.5), 9, true) + " " +
           Pad(q(f.wall, 0.9), 9, true) + " " + Pad(q(f.wall, 0.99), 9, true) + " " +
           Pad(f.wall.empty() ? "-" : FormatDuration(f.wall.max()), 9, true) + " " +
           Pad(q(f.cpu, 0.5), 9, true) + " " + Pad(std::to_string(f.exceptions), 5, true) + "  " +
           Sparkline(f.wall, 24) + "\n";
  }
  if (snap.functions.empty()) out += "(no call of a targeted function has returned yet)\n";
  return out;
}

std::string RenderLost(const probes::LostCounters& lost) {
  std::string out;
  auto line = [&](uint64_t n, const char* what) {
    if (n) out += "warning: " + std::to_string(n) + " " + what + "\n";
  };
  line(lost.frames_evicted, "in-flight calls lost: processes evicted from the frame map (raise --max-procs)");
  line(lost.depth_overflow, "nested calls not measured: more than 32 targeted calls in flight in one process");
  line(lost.functions_over_limit, "calls not measured: more functions matched than --max-functions");
  line(lost.mfa_truncated, "MFA strings longer than the probes read (their calls are matched on a prefix)");
  line(lost.read_errors, "probe arguments could not be read");
  line(lost.recursion_misses, "probe hits skipped by the kernel while another BPF program ran on the CPU");
  line(lost.hash_collisions, "functions matched by hash but not by name, dropped");
  return out;
}

}  // namespace orion::cli
