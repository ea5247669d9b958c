// What the C++ sketch library computes, for the page's sketch code to be compared with
// (userspace/ui/web/test/sketch.test.js, ctest ui.web_unit_tests):
//
//   ui_sketch_fixture_tool         prints one JSON document on stdout:
//     gamma, relativeAccuracy      ExponentialMapping's
//     integers   [[v, index], ...] v as a decimal string (u64), index = orion_bucket_exact_index(v)
//                                  (checked equal to ExponentialMapping::index(v) here)
//     doubles    [[v, index], ...] ExponentialMapping::index(double), subnormals included
//     bins       [[i, lower_bound, value], ...]
//     sketches   [{parts: [{zero, bins}], zero, bins, count, max, quantiles: [[q, v], ...]}]:
//                CountSketches built from kernel bins (add_bucket_counts/add_zero_count), one
//                per part, merged; the page must merge the parts to the same bins and quantiles
//   ui_sketch_fixture_tool decode FILE   decodes a protobuf sketch (the page's export) and
//                                        prints {zero, bins, count, quantiles}
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "sketch/bucket_index.h"
#include "sketch/ddsketch.h"
#include "sketch/encoding/ddsketch_encoding.h"

namespace orion::sketch {
namespace {

const std::vector<double> kQuantiles = {0,    0.001, 0.01, 0.1,   0.25,   0.333, 0.5,
                                        0.75, 0.9,   0.99, 0.999, 0.9999, 1};

nlohmann::json Bins(const CountSketch& sketch) {
  nlohmann::json bins = nlohmann::json::array();
  sketch.positive_store().for_each([&bins](int index, uint64_t count) {
    bins.push_back({index, count});
  });
  return bins;
}

nlohmann::json Describe(const CountSketch& sketch) {
  nlohmann::json quantiles = nlohmann::json::array();
  for (double q : kQuantiles) quantiles.push_back({q, *sketch.quantile(q)});
  return {{"zero", sketch.zero_count()}, {"bins", Bins(sketch)}, {"count", sketch.count()},
          {"max", sketch.max()},         {"quantiles", quantiles}};
}

nlohmann::json Integers(std::mt19937_64& random) {
  const ExponentialMapping mapping;
  std::vector<uint64_t> values = {1, 2, 3, 1000, 1023, 1024, 1025, UINT64_MAX};
  // Every boundary 2^(e + k/64) and its neighbours, as the kernel sees them.
  for (int e = 0; e < 64; ++e) {
    for (int k = 0; k < ORION_BUCKET_SUBBUCKETS; ++k) {
      const unsigned __int128 boundary = orion_bucket_boundaries[k];
      const auto at = static_cast<uint64_t>(e >= 63 ? boundary << (e - 63) : boundary >> (63 - e));
      if (at >= 2) values.push_back(at - 1);
      values.push_back(at);
      if (at != UINT64_MAX) values.push_back(at + 1);
    }
  }
  for (int i = 0; i < 20000; ++i) values.push_back(random() >> (random() % 64));
  nlohmann::json out = nlohmann::json::array();
  for (uint64_t v : values) {
    if (v == 0) continue;
    const int index = orion_bucket_exact_index(v);
    if (index != mapping.index(v)) {
      std::fprintf(stderr, "header and ExponentialMapping disagree at %llu\n",
                   static_cast<unsigned long long>(v));
      std::exit(1);
    }
    out.push_back({std::to_string(v), index});
  }
  return out;
}

nlohmann::json Doubles(std::mt19937_64& random) {
  const ExponentialMapping mapping;
  std::vector<double> values = {5e-324, 1e-310, 2.2250738585072014e-308, 0.5, 1, 1.5, 1e300,
                                1.7976931348623157e308};
  for (int i = -80 * 64; i < 80 * 64; i += 7) {
    const double bound = mapping.lower_bound(i);
    values.push_back(bound);
    values.push_back(std::nextafter(bound, 0.0));
    values.push_back(std::nextafter(bound, INFINITY));
  }
  std::uniform_real_distribution<double> exponent(-30, 60);
  for (int i = 0; i < 5000; ++i) values.push_back(std::exp2(exponent(random)));
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back({v, mapping.index(v)});
  return out;
}

nlohmann::json BinValues() {
  const ExponentialMapping mapping;
  nlohmann::json out = nlohmann::json::array();
  for (int i = -70 * 64; i < 4200; ++i) {
    out.push_back({i, mapping.lower_bound(i), mapping.value(i)});
  }
  return out;
}

// One part: `n` latencies from a log-normal around `median` ns, with `zeros` zeros, as the
// kernel's bins of one interval.
nlohmann::json Part(std::mt19937_64& random, int n, double median, double sigma, int zeros) {
  const ExponentialMapping mapping;
  std::lognormal_distribution<double> latency(std::log(median), sigma);
  std::map<int, uint64_t> bins;
  for (int i = 0; i < n; ++i) {
    const auto ns = static_cast<uint64_t>(std::min(latency(random), 1e13)) + 1;
    ++bins[orion_bucket_index(ns)];
  }
  nlohmann::json out = {{"zero", zeros}, {"bins", nlohmann::json::array()}};
  for (const auto& [index, count] : bins) out["bins"].push_back({index, count});
  return out;
}

nlohmann::json Sketches(std::mt19937_64& random) {
  struct Case {
    int parts, n;
    double median, sigma;
    int zeros;
  };
  const std::vector<Case> cases = {
      {1, 1, 1000, 0.1, 0},      {1, 2, 1000, 1, 0},        {1, 0, 1, 1, 3},
      {1, 5, 1000, 1, 7},        {3, 100, 2e3, 0.3, 0},     {10, 1000, 2e6, 1.5, 0},
      {60, 500, 5e4, 2.5, 1},    {5, 20000, 300, 0.05, 0},  {4, 3, 1e12, 3, 0},
      {30, 2000, 1e5, 1.0, 100}, {2, 100000, 8e3, 0.8, 0},
  };
  nlohmann::json out = nlohmann::json::array();
  for (const Case& c : cases) {
    CountSketch merged(IndexMapping::Kernel());
    nlohmann::json parts = nlohmann::json::array();
    for (int p = 0; p < c.parts; ++p) {
      nlohmann::json part = Part(random, c.n, c.median * (1 + p % 3), c.sigma, c.zeros);
      CountSketch sketch(IndexMapping::Kernel());
      for (const auto& bin : part["bins"]) {
        sketch.add_bucket_counts(bin[0].get<int>(), bin[1].get<uint64_t>());
      }
      sketch.add_zero_count(part["zero"].get<uint64_t>());
      if (!merged.merge(sketch).ok()) std::exit(1);
      parts.push_back(std::move(part));
    }
    nlohmann::json description = Describe(merged);
    description["parts"] = std::move(parts);
    out.push_back(std::move(description));
  }
  return out;
}

int Write() {
  std::mt19937_64 random(21);
  const ExponentialMapping mapping;
  const nlohmann::json out = {{"gamma", mapping.gamma()},
                              {"relativeAccuracy", mapping.relative_accuracy()},
                              {"integers", Integers(random)},
                              {"doubles", Doubles(random)},
                              {"bins", BinValues()},
                              {"sketches", Sketches(random)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int Decode(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), {});
  const auto sketch = DecodeDDSketch<DenseStore<uint64_t>>(bytes);
  if (!sketch.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), sketch.status().ToString().c_str());
    return 1;
  }
  if (!sketch->mapping().is_kernel()) {
    std::fprintf(stderr, "%s: not the kernel's mapping\n", path.c_str());
    return 1;
  }
  nlohmann::json out = Describe(*sketch);
  out["min"] = sketch->min();
  out["sum"] = sketch->sum();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace orion::sketch

int main(int argc, char** argv) {
  if (argc == 1) return orion::sketch::Write();
  if (argc == 3 && std::string(argv[1]) == "decode") return orion::sketch::Decode(argv[2]);
  std::fprintf(stderr, "usage: ui_sketch_fixture_tool [decode FILE]\n");
  return 2;
}
