// Proves Orion's BEAM patches (beam_dtrace_build/patches/) with an oracle that is not our
// code: bpftrace prints every function probe of the test module, and the test checks the
// semantics documented in docs/probes.md.
//   - while an Orion capture holds the enable table, every call returns through a return probe
//     (deallocate_return included, patch 0009's runtime-patched sites): fact(5) fires 6
//     entries and 6 returns, pairwise at equal depths; with no capture, deallocate_return
//     fires no return, as in stock OTP, and its site costs nothing;
//   - a tail call f -> g fires two entries at one depth and one return;
//   - an exception caught by a caller fires exception__catch at the depth the dead call was
//     entered at.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>


#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/subprocess.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/enable_table.h"

namespace orion {
namespace {

using testing::BeamNode;
using testing::Subprocess;

struct Event {
  char kind;  // 'E' entry, 'R' return, 'C' catch
  std::string pid;
  std::string mfa;  // "" for 'C'
  int depth;
};

// bpftrace attaches uprobes through tracefs; mount it if the machine has not.
bool EnsureTracefs() {
  if (access("/sys/kernel/tracing/uprobe_events", F_OK) == 0) return true;
  mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr);
  return access("/sys/kernel/tracing/uprobe_events", F_OK) == 0;
}

class UsdtPatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    if (access("/usr/bin/bpftrace", X_OK) != 0 || !EnsureTracefs()) {
      if (testing::BpfRequired()) FAIL() << "bpftrace (the oracle) or tracefs is unavailable";
      GTEST_SKIP() << "SKIPPING: bpftrace (the oracle) or tracefs is unavailable";
    }
    ASSERT_TRUE(node_.Start({.flavor = "emu"})) << node_.error();
    auto beam = beam::InspectBeam(node_.os_pid());
    ASSERT_TRUE(beam.ok()) << beam.status().ToString();
    beam_ = *beam;
    repl_pid_ = node_.Eval("pid_to_list(self()).");
    repl_pid_ = repl_pid_.substr(1, repl_pid_.size() - 2);  // strip the quotes
  }

  // What a capture does before it attaches: holds the enable table (here for every module,
  // so nothing is filtered), which turns on deallocate_return's return sites.
  void HoldEnableTable() {
    auto table = beam::EnableTable::Locate(beam_);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    auto claim = table->Claim({}, /*all=*/true);
    ASSERT_TRUE(claim.ok()) << claim.status().ToString();
    claim_ = std::move(*claim);
  }

  // Runs `expr` in the node while bpftrace records the module's probes.
  std::vector<Event> Trace(const std::string& expr) {
    const std::string bin = beam_.exe;
    const std::string filter = "/strncmp(str(arg1), \"orion_workload:\", 15) == 0/";
    // orion_workload:other/1 is the end marker: bpftrace exits by itself when it sees it
    // (it does not always react to SIGINT).
    const std::string script =
        "BEGIN { printf(\"ATTACHED\\n\"); }\n"
        "usdt:" + bin + ":erlang:global__function__entry, usdt:" + bin +
        ":erlang:local__function__entry " + filter +
        " { printf(\"E %s %s %d\\n\", str(arg0), str(arg1), arg2);"
        " if (strncmp(str(arg1), \"orion_workload:other/1\", 22) == 0) { exit(); } }\n"
        "usdt:" + bin + ":erlang:function__return " + filter +
        " { printf(\"R %s %s %d\\n\", str(arg0), str(arg1), arg2); }\n"
        "usdt:" + bin + ":erlang:exception__catch { printf(\"C %s - %d\\n\", str(arg0), arg1); }\n";
    Subprocess bpftrace;
    EXPECT_TRUE(bpftrace.Start({"/usr/bin/bpftrace", "-p", std::to_string(node_.os_pid()), "-e",
                                script}));
    EXPECT_NE(bpftrace.WaitForLine("ATTACHED", std::chrono::seconds(60)), "")
        << "bpftrace did not attach";
    EXPECT_EQ(node_.Eval(expr), "ok");
    EXPECT_EQ(node_.Eval("timer:sleep(100), orion_workload:other(1)."), "2");
    std::string out = bpftrace.ReadAll(std::chrono::seconds(30));
    EXPECT_EQ(bpftrace.Wait(std::chrono::seconds(10)), 0) << "bpftrace did not stop at the marker";

    std::vector<Event> events;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      Event e;
      std::string kind;
      if (!(fields >> kind >> e.pid >> e.mfa >> e.depth) || kind.size() != 1) continue;
      if (e.pid != repl_pid_) continue;
      e.kind = kind[0];
      if (e.kind == 'C') e.mfa.clear();
      events.push_back(e);
    }
    return events;
  }

  static std::vector<int> Depths(const std::vector<Event>& events, char kind,
                                 const std::string& mfa) {
    std::vector<int> d;
    for (const auto& e : events) {
      if (e.kind == kind && e.mfa == mfa) d.push_back(e.depth);
    }
    std::sort(d.begin(), d.end());
    return d;
  }

  BeamNode node_;
  beam::BeamProcess beam_;
  beam::EnableTableClaim claim_;
  std::string repl_pid_;
};

TEST_F(UsdtPatchTest, BodyRecursionReturnsThroughEveryFrameAtEqualDepths) {
  HoldEnableTable();
  auto events = Trace("orion_workload:fact(5), ok.");
  const std::string fact = "orion_workload:fact/1";
  auto entries = Depths(events, 'E', fact);
  auto returns = Depths(events, 'R', fact);
  ASSERT_EQ(entries.size(), 6u);  // fact(5) .. fact(0)
  EXPECT_EQ(entries, returns);    // every entry depth has its return at the same depth
  EXPECT_EQ(std::set<int>(entries.begin(), entries.end()).size(), 6u) << "nested calls differ";
}

// Without a capture the emulator's deallocate_return sites are the nop they were compiled as:
// fact(N > 0) returns through deallocate_return and fires nothing, as in stock OTP; fact(0)
// returns through move_return, which tests the probe's semaphore as stock OTP does. Once a
// capture holds the enable table, the same calls fire all six returns; once it lets go, one.
TEST_F(UsdtPatchTest, DeallocateReturnFiresOnlyWhileACaptureHoldsTheEnableTable) {
  const std::string fact = "orion_workload:fact/1";
  auto before = Trace("orion_workload:fact(5), ok.");
  EXPECT_EQ(Depths(before, 'E', fact).size(), 6u);
  EXPECT_EQ(Depths(before, 'R', fact).size(), 1u) << "a return fired from deallocate_return";

  HoldEnableTable();
  auto held = Trace("orion_workload:fact(5), ok.");
  EXPECT_EQ(Depths(held, 'R', fact), Depths(held, 'E', fact));
  EXPECT_EQ(Depths(held, 'R', fact).size(), 6u);

  ASSERT_TRUE(claim_.Release().ok());
  // The release does not wait for the emulator: a sync that waits does.
  auto pair = beam::PairTable::Locate(beam_);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  auto on = pair->SyncReturnSites(std::chrono::seconds(5));
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_FALSE(*on);
  auto after = Trace("orion_workload:fact(5), ok.");
  EXPECT_EQ(Depths(after, 'R', fact).size(), 1u);
}

TEST_F(UsdtPatchTest, TailCallFiresTwoEntriesAtOneDepthAndOneReturn) {
  HoldEnableTable();
  auto events = Trace("orion_workload:call_tail(1, 1).");
  auto caller = Depths(events, 'E', "orion_workload:tail_caller/1");
  auto callee = Depths(events, 'E', "orion_workload:tail_callee/1");
  ASSERT_EQ(caller.size(), 1u);
  ASSERT_EQ(callee.size(), 1u);
  EXPECT_EQ(caller[0], callee[0]);
  EXPECT_TRUE(Depths(events, 'R', "orion_workload:tail_caller/1").empty());
  EXPECT_EQ(Depths(events, 'R', "orion_workload:tail_callee/1"), callee);
}

TEST_F(UsdtPatchTest, CaughtExceptionFiresCatchAtTheDeadCallsDepth) {
  HoldEnableTable();
  auto events = Trace("orion_workload:call_catcher(1, 7).");
  auto catcher = Depths(events, 'E', "orion_workload:catcher/1");
  auto raiser = Depths(events, 'E', "orion_workload:raiser/1");
  auto catches = Depths(events, 'C', "");
  ASSERT_EQ(catcher.size(), 1u);
  ASSERT_EQ(raiser.size(), 1u);
  EXPECT_TRUE(Depths(events, 'R', "orion_workload:raiser/1").empty()) << "a raise returned";
  ASSERT_EQ(catches.size(), 1u);
  EXPECT_EQ(catches[0], raiser[0]);
  EXPECT_GT(raiser[0], catcher[0]);
  // known/1, called by catcher/1 after the catch, pairs normally. (It may enter shallower
  // than raiser/1 did: the compiler trims dead stack slots between calls.)
  auto known = Depths(events, 'E', "orion_workload:known/1");
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(Depths(events, 'R', "orion_workload:known/1"), known);
  EXPECT_GT(known[0], catcher[0]);
  EXPECT_LE(known[0], raiser[0]);
  EXPECT_EQ(Depths(events, 'R', "orion_workload:catcher/1"), catcher);
}

}  // namespace
}  // namespace orion
