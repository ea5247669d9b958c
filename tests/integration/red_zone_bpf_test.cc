// The red zone under an optimized uprobe (docs/probes.md, "The red zone"). Linux optimizes a
// uprobe on a 5-byte nop (the probe sites of patch 0004) into a call to a trampoline, which
// pushes its return address below %rsp, where a function compiled with a red zone may keep its
// locals. support/red_zone_site.c is a -O0 leaf with such a site, built twice: with the red zone
// and with -mno-red-zone, the flag patch 0004 compiles the emulator with. bpftrace (an attacher
// that is not Orion's) puts a uprobe on the site; the program checks its own results.
#include <gtest/gtest.h>
#include <unistd.h>

#include <iostream>
#include <regex>
#include <string>

#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/subprocess.h"

namespace orion {
namespace {

constexpr int kRounds = 1000;

struct SiteRun {
  long wrong = -1;
  long hits = -1;
  std::string output;
};

// Runs `binary` under bpftrace, counting the hits of its site.
SiteRun UnderAUprobe(const std::string& binary) {
  SiteRun run;
  const std::string program = "usdt:" + binary + ":orion_test:site { @hits = count(); }";
  testing::RunCommand({"/usr/bin/bpftrace", "-e", program, "-c", binary + " " + std::to_string(kRounds)},
                      &run.output);
  std::smatch m;
  if (std::regex_search(run.output, m, std::regex(R"((\d+) of (\d+) results wrong)"))) {
    run.wrong = std::stol(m[1]);
  }
  if (std::regex_search(run.output, m, std::regex(R"(@hits: (\d+))"))) run.hits = std::stol(m[1]);
  return run;
}

TEST(RedZoneTest, ALeafBuiltWithoutARedZoneKeepsItsLocalsUnderAUprobeOnAFiveByteNopSite) {
  ORION_REQUIRE_BPF_OR_SKIP();
  if (access("/usr/bin/bpftrace", X_OK) != 0) {
    if (testing::BpfRequired()) FAIL() << "bpftrace (the attacher) is not installed";
    GTEST_SKIP() << "SKIPPING: bpftrace (the attacher) is not installed";
  }
  const SiteRun fixed = UnderAUprobe(ORION_TEST_RED_ZONE_SITE_NO_RED_ZONE);
  ASSERT_EQ(fixed.hits, kRounds) << fixed.output;
  EXPECT_EQ(fixed.wrong, 0) << fixed.output;

  // The control, the same code with the red zone: on a kernel that optimizes 5-byte nops (6.18)
  // every hit after the first (an int3 trap) clobbers a local. A kernel that does not (before
  // the optimization, or since it moved to 10-byte nops) leaves it intact too.
  const SiteRun exposed = UnderAUprobe(ORION_TEST_RED_ZONE_SITE);
  ASSERT_EQ(exposed.hits, kRounds) << exposed.output;
  std::cout << "with the red zone: " << exposed.wrong << " of " << kRounds
            << " results wrong (0 if this kernel does not optimize a uprobe on a 5-byte nop)\n";
}

}  // namespace
}  // namespace orion
