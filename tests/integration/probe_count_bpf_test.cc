// The first proof that the chain works on this kernel: a BPF program of ours, attached with
// libbpf's USDT support to a real USDT-enabled BEAM, counts exactly the calls the node makes.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"
#include "userspace/beam/beam_process.h"
#include "userspace/probes/probe_counter.h"

namespace orion {
namespace {

using testing::BeamNode;

uint64_t TargetHits(const std::vector<probes::ProbeCounter::Count>& counts,
                    const std::string& probe) {
  for (const auto& c : counts) {
    if (c.probe == probe) return c.target_hits;
  }
  return ~0ull;
}

uint64_t Hits(const std::vector<probes::ProbeCounter::Count>& counts, const std::string& probe) {
  for (const auto& c : counts) {
    if (c.probe == probe) return c.hits;
  }
  return ~0ull;
}

TEST(ProbeCountBpfTest, CountsExactlyTheCallsOfOneMfaOnTheEmuFlavor) {
  ORION_REQUIRE_BPF_OR_SKIP();
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu"})) << node.error();
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok()) << beam.status().ToString();
  EXPECT_EQ(beam->flavor, beam::Flavor::kEmu);
  EXPECT_TRUE(beam->function_probes);
  EXPECT_TRUE(beam->exception_probe) << "the OTP build lacks Orion's patch 0002";

  auto counter = probes::ProbeCounter::Start(
      *beam, {"global__function__entry", "local__function__entry", "function__return"},
      "orion_workload:known/1");
  ASSERT_TRUE(counter.ok()) << counter.status().ToString();

  constexpr int kCalls = 12345;
  ASSERT_EQ(node.Eval("orion_workload:call_known(" + std::to_string(kCalls) + ")."), "ok");
  auto counts = (*counter)->Read();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  // call_known/1 calls known/1 locally: every call is one local entry and one return.
  EXPECT_EQ(TargetHits(*counts, "local__function__entry"), kCalls);
  EXPECT_EQ(TargetHits(*counts, "global__function__entry"), 0u);
  EXPECT_EQ(TargetHits(*counts, "function__return"), kCalls);
  EXPECT_GE(Hits(*counts, "local__function__entry"), static_cast<uint64_t>(kCalls));
}

TEST(ProbeCountBpfTest, JitFlavorHasRuntimeProbesButNoFunctionProbes) {
  ORION_REQUIRE_BPF_OR_SKIP();
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "jit"})) << node.error();
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok()) << beam.status().ToString();
  EXPECT_EQ(beam->flavor, beam::Flavor::kJit);
  Status check = beam::CheckFunctionProbes(*beam);
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(check.message().find("-emu_flavor emu"), std::string::npos) << check.message();

  auto counter = probes::ProbeCounter::Start(*beam, {"process__spawn", "process__exit"}, "");
  ASSERT_TRUE(counter.ok()) << counter.status().ToString();
  ASSERT_EQ(node.Eval("[spawn(fun() -> ok end) || _ <- lists:seq(1, 100)], timer:sleep(200), ok."),
            "ok");
  auto counts = (*counter)->Read();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_GE(Hits(*counts, "process__spawn"), 100u);
  EXPECT_GE(Hits(*counts, "process__exit"), 100u);
}

// `orion probes` says which flavor runs and prints the pairing table the same way on both
// flavors of the patched build (the JIT pairs calls too: patch 0012), counting or listing.
TEST(ProbeCountBpfTest, ProbesReportFlavorAndPairingTableTheSameWayOnBothFlavors) {
  ORION_REQUIRE_BPF_OR_SKIP();
  for (const std::string flavor : {"jit", "emu"}) {
    SCOPED_TRACE(flavor);
    BeamNode node;
    ASSERT_TRUE(node.Start({.flavor = flavor})) << node.error();
    const std::string pid = std::to_string(node.os_pid());
    std::string counted, listed;
    ASSERT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "probes", "--pid", pid, "--duration", "1"},
                                  &counted),
              0)
        << counted;
    EXPECT_NE(counted.find("(" + flavor + " flavor)"), std::string::npos) << counted;
    EXPECT_NE(counted.find("\npairing table: 0 of 4 records held\n"), std::string::npos) << counted;
    EXPECT_NE(counted.find("orion__calls"), std::string::npos) << counted;
    ASSERT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "probes", "--pid", pid, "--list"}, &listed),
              0)
        << listed;
    EXPECT_NE(listed.find("flavor " + flavor), std::string::npos) << listed;
    EXPECT_NE(listed.find("\npairing table: 0 of 4 records held\n"), std::string::npos) << listed;
  }
}

TEST(ProbeCountBpfTest, SemaphoresAreSetWhileAttachedAndClearedAfterwards) {
  ORION_REQUIRE_BPF_OR_SKIP();
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu"})) << node.error();
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok()) << beam.status().ToString();
  EXPECT_EQ(testing::SemaphoreOf(*beam, "local__function__entry"), 0);
  {
    auto counter = probes::ProbeCounter::Start(*beam, {"local__function__entry"}, "");
    ASSERT_TRUE(counter.ok()) << counter.status().ToString();
    EXPECT_EQ(testing::SemaphoreOf(*beam, "local__function__entry"), 1);
    EXPECT_EQ(testing::SemaphoreOf(*beam, "function__return"), 0);
  }
  EXPECT_EQ(testing::SemaphoreOf(*beam, "local__function__entry"), 0);
  EXPECT_EQ(node.Eval("orion_workload:call_known(10)."), "ok");
}

TEST(ProbeCountBpfTest, NothingStaysAttachedAfterKill9OfOrion) {
  ORION_REQUIRE_BPF_OR_SKIP();
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu"})) << node.error();
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok()) << beam.status().ToString();

  testing::Subprocess orion;
  ASSERT_TRUE(orion.Start({ORION_TEST_ORION_BIN, "probes", "--pid", std::to_string(node.os_pid()),
                           "--duration", "300"}));
  ASSERT_TRUE(testing::WaitFor([&] { return testing::SemaphoreOf(*beam, "process__scheduled") > 0; },
                               std::chrono::seconds(20)))
      << "orion probes never attached";
  const std::set<int> programs = testing::ProcessBpfProgramIds(orion.pid());
  EXPECT_GT(testing::CountLinksOfPrograms(programs), 0);
  ASSERT_TRUE(orion.Signal(SIGKILL));
  orion.Wait(std::chrono::seconds(10));
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return testing::SemaphoreOf(*beam, "process__scheduled") == 0 &&
               testing::SemaphoreOf(*beam, "local__function__entry") == 0;
      },
      std::chrono::seconds(10)))
      << "a USDT semaphore is still set after kill -9 of orion";
  EXPECT_EQ(testing::CountLinksOfPrograms(programs), 0);
  EXPECT_EQ(node.Eval("orion_workload:call_known(10)."), "ok");
}

}  // namespace
}  // namespace orion
