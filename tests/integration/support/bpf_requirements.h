// Gate for tests that need root, BPF and the USDT-enabled BEAM. Outside CI such a test
// skips with a loud reason; with ORION_REQUIRE_BPF=1 (set by .ci/run) it fails instead.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace orion::testing {

// "" if BPF integration tests can run here, else the reason they cannot.
std::string BpfUnavailableReason();

bool BpfRequired();  // ORION_REQUIRE_BPF=1

}  // namespace orion::testing

#define ORION_REQUIRE_BPF_OR_SKIP()                                                   \
  do {                                                                                \
    const std::string orion_reason_ = ::orion::testing::BpfUnavailableReason();       \
    if (!orion_reason_.empty()) {                                                     \
      if (::orion::testing::BpfRequired()) {                                          \
        FAIL() << "BPF test cannot run (ORION_REQUIRE_BPF=1): " << orion_reason_;     \
      }                                                                               \
      GTEST_SKIP() << "SKIPPING BPF TEST: " << orion_reason_;                         \
    }                                                                                 \
  } while (0)
