// Reading the JSON documents of `orion capture --json` (local, daemon and tracer modes) in tests.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/support/oracle.h"

namespace orion::testing {

// The entry of `mfa` in doc["calls"], or nullptr.
inline const nlohmann::json* FindCall(const nlohmann::json& doc, const std::string& mfa) {
  if (!doc.contains("calls")) return nullptr;
  for (const auto& c : doc["calls"]) {
    if (c["mfa"] == mfa) return &c;
  }
  return nullptr;
}

// Its "count", 0 if absent.
inline uint64_t CountOf(const nlohmann::json& doc, const std::string& mfa) {
  const nlohmann::json* c = FindCall(doc, mfa);
  return c ? (*c)["count"].get<uint64_t>() : 0;
}

// A call's p50, p90 and p99 against the exact quantiles of the workload's own timing of the
// same calls (`oracle`): at most the exact one plus the sketch's relative error `alpha`, at
// least QuantileLowerBound's.
inline void ExpectQuantilesMatchOracle(const nlohmann::json& call,
                                       const std::vector<double>& oracle, double alpha) {
  for (auto [q, key] : {std::pair{0.5, "p50_ns"}, {0.9, "p90_ns"}, {0.99, "p99_ns"}}) {
    const double got = call[key].get<double>();
    EXPECT_LE(got, LowerQuantile(oracle, q) * (1 + alpha) + 1) << key;
    EXPECT_GE(got, QuantileLowerBound(oracle, q, alpha)) << key;
  }
}

}  // namespace orion::testing
