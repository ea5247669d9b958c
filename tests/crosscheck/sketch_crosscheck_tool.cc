// The C++ side of the sketches-js cross-check (check.js):
//
//   sketch_crosscheck_tool write DIR   writes Orion sketches DIR/<case>.pb and what Orion knows
//                                      about each, DIR/<case>.json (bins, count, quantiles)
//   sketch_crosscheck_tool read FILE   decodes a protobuf sketch (e.g. written by sketches-js)
//                                      and prints the same JSON on stdout
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "sketch/ddsketch.h"
#include "sketch/encoding/ddsketch_encoding.h"

namespace orion::sketch {
namespace {

const std::vector<double> kQuantiles = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1};

nlohmann::json BinsJson(const auto& store) {
  nlohmann::json bins = nlohmann::json::array();
  store.for_each([&bins](int index, auto count) {
    bins.push_back({index, static_cast<double>(count)});
  });
  return bins;
}

template <typename S>
nlohmann::json Describe(const DDSketch<S>& sketch) {
  nlohmann::json quantiles = nlohmann::json::array();
  for (double q : kQuantiles) quantiles.push_back({q, *sketch.quantile(q)});
  return {{"kernel", sketch.mapping().is_kernel()},
          {"gamma", sketch.mapping().gamma()},
          {"indexOffset", sketch.mapping().index_offset()},
          {"interpolation", static_cast<int>(sketch.mapping().interpolation())},
          {"positive", BinsJson(sketch.positive_store())},
          {"negative", BinsJson(sketch.negative_store())},
          {"zero", static_cast<double>(sketch.zero_count())},
          {"count", static_cast<double>(sketch.count())},
          {"quantiles", quantiles}};
}

void WriteCase(const std::string& dir, const std::string& name, const auto& sketch,
               std::vector<double> values) {
  const std::vector<uint8_t> bytes = EncodeDDSketch(sketch);
  std::ofstream(dir + "/" + name + ".pb", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  std::sort(values.begin(), values.end());
  nlohmann::json exact = nlohmann::json::array();
  for (double q : kQuantiles) {
    exact.push_back({q, values[static_cast<size_t>(std::floor(q * (values.size() - 1.0)))]});
  }
  nlohmann::json description = Describe(sketch);
  description["exact"] = exact;
  description["relativeAccuracy"] = sketch.mapping().relative_accuracy();
  std::ofstream(dir + "/" + name + ".json") << description.dump(1) << "\n";
}

int Write(const std::string& dir) {
  std::mt19937_64 random(2019);
  std::lognormal_distribution<double> latency(std::log(2e5), 1.2);

  CountSketch kernel(IndexMapping::Kernel());  // integer nanoseconds, as the kernel sees them
  std::vector<double> kernel_values;
  for (int i = 0; i < 20000; ++i) {
    const auto ns = static_cast<uint64_t>(latency(random)) + 1;
    if (!kernel.add_integer(ns).ok()) return 1;
    kernel_values.push_back(static_cast<double>(ns));
  }

  WeightedSketch mixed(IndexMapping::Kernel());  // negatives, zeros, fractions
  std::vector<double> mixed_values;
  for (int i = 0; i < 5000; ++i) {
    const double v = i % 10 == 0 ? 0 : (i % 3 == 0 ? -1 : 1) * latency(random) / 1000;
    if (!mixed.add(v).ok()) return 1;
    mixed_values.push_back(v);
  }

  WeightedSketch logarithmic(*IndexMapping::Logarithmic(0.01));  // sketches-js' own mapping
  for (double v : kernel_values) {
    if (!logarithmic.add(v).ok()) return 1;
  }

  CountSketch spread(IndexMapping::Kernel());  // a few values, bins far apart
  const std::vector<double> spread_values = {1, 3, 1024, 5e4, 7e6, 1e9, 3.6e12};
  for (double v : spread_values) {
    if (!spread.add_integer(static_cast<uint64_t>(v)).ok()) return 1;
  }

  WriteCase(dir, "kernel_latencies", kernel, kernel_values);
  WriteCase(dir, "kernel_mixed", mixed, mixed_values);
  WriteCase(dir, "logarithmic_1pct", logarithmic, kernel_values);
  WriteCase(dir, "kernel_spread", spread, spread_values);
  return 0;
}

int Read(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), {});
  const auto sketch = DecodeDDSketch<DenseStore<double>>(bytes);
  if (!sketch.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), sketch.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", Describe(*sketch).dump().c_str());
  return 0;
}

}  // namespace
}  // namespace orion::sketch

int main(int argc, char** argv) {
  const std::string command = argc == 3 ? argv[1] : "";
  if (command == "write") return orion::sketch::Write(argv[2]);
  if (command == "read") return orion::sketch::Read(argv[2]);
  std::fprintf(stderr, "usage: sketch_crosscheck_tool write DIR | read FILE\n");
  return 2;
}
