// What the tests compare Orion's numbers with: the sketch's accuracy, the workload's own
// timing (orion_workload:call_sleeper/2 returns the wall time of each call), and the quantile
// definition of the sketch.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace orion::testing {

// The sketch's relative accuracy: (gamma - 1) / (gamma + 1) with gamma = 2^(1/64).
inline const double kAlpha = (std::exp2(1.0 / 64) - 1) / (std::exp2(1.0 / 64) + 1);

// The workload's timing interval contains the kernel's (entry and return probes fire inside
// it), plus the call's own instructions and the probes' cost: a few microseconds.
inline constexpr double kOracleSlackNs = 50'000;

// Parses an Erlang list of integers printed by the REPL: "[1,2,3]".
inline std::vector<double> ParseIntegerList(std::string text) {
  std::replace(text.begin(), text.end(), '[', ' ');
  std::replace(text.begin(), text.end(), ']', ' ');
  std::replace(text.begin(), text.end(), ',', ' ');
  std::istringstream in(text);
  std::vector<double> v;
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

// The quantile definition of the sketch (docs/sketch.md): the element of rank
// floor(q * (n - 1)) of the sorted values.
inline double LowerQuantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::floor(q * (static_cast<double>(v.size()) - 1)))];
}

// The lower bound a measured quantile must reach. Each call's measured time lies inside the
// workload's own interval around it, usually within kOracleSlackNs of it; but on a loaded
// 2-core machine the OS can preempt the node between the workload's clock read and the call
// (or after its return) for longer. Allowing `outliers` such calls, the measured q-quantile
// is at least the oracle's quantile `outliers` ranks lower, minus the slack.
inline double QuantileLowerBound(const std::vector<double>& oracle, double q, double alpha,
                                 int outliers = 2) {
  const double shifted = std::max(0.0, q - outliers / static_cast<double>(oracle.size() - 1));
  return LowerQuantile(oracle, shifted) * (1 - alpha) - kOracleSlackNs;
}

}  // namespace orion::testing
