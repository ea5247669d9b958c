// What the sketch tests share: named data sets, the exact quantile, and bin-by-bin comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sketch/bucket_index.h"
#include "sketch/ddsketch.h"

namespace orion::sketch::testing {

struct DataSet {
  std::string name;
  std::vector<double> values;
};

// Positive data from the named distributions of the accuracy tests (latency-like scales, ns).
inline std::vector<DataSet> PositiveDataSets(size_t n, uint64_t seed) {
  std::mt19937_64 random(seed);
  auto draw = [&](auto distribution) {
    std::vector<double> values(n);
    for (double& v : values) v = distribution(random);
    return values;
  };
  std::vector<DataSet> sets;
  sets.push_back({"lognormal", draw(std::lognormal_distribution<double>(std::log(5e4), 1.5))});
  sets.push_back({"pareto", draw([](std::mt19937_64& r) {
                    // Pareto(x_m = 1000, alpha = 1.2) by inversion
                    const double u = std::uniform_real_distribution<double>(0, 1)(r);
                    return 1000 / std::pow(1 - u, 1 / 1.2);
                  })});
  sets.push_back({"exponential", draw(std::exponential_distribution<double>(1 / 2e4))});
  sets.push_back({"uniform", draw(std::uniform_real_distribution<double>(1, 1e6))});
  sets.push_back({"bimodal", draw([](std::mt19937_64& r) {
                    const bool fast = std::bernoulli_distribution(0.9)(r);
                    return std::lognormal_distribution<double>(std::log(fast ? 2e3 : 3e6), 0.3)(r);
                  })});
  return sets;
}

// The adversarial data: powers of two and their neighbours, every kernel bucket boundary up to
// 2^40 ns and one either side, 1 ns many times, huge values.
inline std::vector<double> AdversarialValues() {
  std::vector<double> values;
  for (int e = 0; e < 63; ++e) {
    const double p = std::ldexp(1.0, e);
    values.insert(values.end(), {p, p + 1, std::max(1.0, p - 1)});
  }
  for (int index = 0; index <= 64 * 40; ++index) {
    const int exponent = index / 64;
    const uint64_t t = orion_bucket_boundaries[index % 64];
    const double boundary = std::ceil(std::ldexp(static_cast<double>(t), exponent - 63));
    values.insert(values.end(), {boundary - 1, boundary, boundary + 1});
  }
  values.insert(values.end(), 1000, 1.0);
  values.insert(values.end(), {1e15, 1e18, 9.2e18, 1.8e19, 1e30, 1e100, 1e300});
  std::erase_if(values, [](double v) { return v < 1; });
  return values;
}

// The exact quantile of DataDog's definition: x[floor(q * (n - 1))] of the sorted values.
inline double ExactQuantile(const std::vector<double>& sorted, double q) {
  const double rank = q * (static_cast<double>(sorted.size()) - 1);
  return sorted[static_cast<size_t>(std::floor(rank))];
}

inline const std::vector<double>& TestedQuantiles() {
  static const std::vector<double> quantiles = {0,    0.001, 0.01, 0.05, 0.1,   0.25,   0.5,
                                                0.75, 0.9,   0.95, 0.99, 0.999, 0.9999, 1};
  return quantiles;
}

// The non-empty bins of a store, as a map for comparison.
template <typename S>
std::map<int, typename S::Count> Bins(const S& store) {
  std::map<int, typename S::Count> bins;
  store.for_each([&bins](int index, typename S::Count count) { bins[index] = count; });
  return bins;
}

// Same mapping, same bins on both sides, same zero count.
template <typename S>
bool SameBins(const DDSketch<S>& a, const DDSketch<S>& b) {
  return a.mapping() == b.mapping() && Bins(a.positive_store()) == Bins(b.positive_store()) &&
         Bins(a.negative_store()) == Bins(b.negative_store()) && a.zero_count() == b.zero_count();
}

}  // namespace orion::sketch::testing
