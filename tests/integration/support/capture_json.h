// Reading the JSON documents of `orion capture --json` (local, daemon and tracer modes) in tests.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

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

}  // namespace orion::testing
