// orion capture, end to end: the real binary, a real USDT BEAM, real probes. Every assertion
// is a property of the calls the workload made: exact counts, quantiles within the sketch's
// relative accuracy of an oracle measured on the same calls, and nothing left attached
// afterwards. Each test runs on the emu flavor with the BEAM pairing calls itself (patch
// 0007, its ended calls fired in batches by patch 0010) and with BPF pairing them from the
// function probes (--pairing bpf), and on the JIT flavor, which pairs in the BEAM only (patch
// 0012): all must agree on every property. The core ones (CoreCaptureTest) also run on a JIT
// node in the frame-pointer layout (+JPperf true), where every frame is two words, and on the
// debug JIT emulator (beam_dtrace_build/build.sh --debug; erl -emu_type debug), whose
// assertions and stack checks catch a frame the return trap gets wrong (label all-releases:
// scripts/test.sh --all-releases builds it).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/capture_json.h"
#include "tests/integration/support/oracle.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pair_table.h"
#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::FindCall;
using testing::CountOf;
using testing::BeamNode;
using testing::Subprocess;
using testing::kAlpha;
using testing::ParseIntegerList;

// --pairing of the captures the current test starts: "beam" or "bpf" (CaptureTest's param).
std::string g_pairing = "beam";

// Where a test runs: the node's flavor, --pairing, and the JIT's frame layout.
struct CaptureParam {
  std::string flavor;           // "emu" or "jit"
  std::string pairing;          // "beam" or "bpf" (the emu flavor only)
  bool frame_pointers = false;  // a JIT node with +JPperf true: frames of two words
  bool debug = false;           // the debug JIT emulator (build.sh --debug, -emu_type debug)
};

// How gtest prints a param in its output ("GetParam() = ..."): the words, not the bytes.
void PrintTo(const CaptureParam& p, std::ostream* os) {
  *os << "{flavor " << p.flavor << ", pairing " << p.pairing
      << (p.frame_pointers ? ", +JPperf true" : "") << (p.debug ? ", -emu_type debug}" : "}");
}

// Whether a capture is attached: the semaphore of the probe one of the pairings uses (a
// capture the BEAM's pairing table cannot hold pairs in BPF).
bool CaptureAttached(const beam::BeamProcess& beam) {
  return testing::SemaphoreOf(beam, "orion__call") > 0 ||
         testing::SemaphoreOf(beam, "function__return") > 0;
}

// A capture running in the background: orion capture --json until Stop().
class RunningCapture {
 public:
  bool Start(const BeamNode& node, const std::vector<std::string>& patterns,
             std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {ORION_TEST_ORION_BIN, "capture", "--json", "--duration",
                                     "600", "--pid", std::to_string(node.os_pid()),
                                     "--pairing", g_pairing};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), patterns.begin(), patterns.end());
    if (!process_.Start(args)) return false;
    auto beam = beam::InspectBeam(node.os_pid());
    if (!beam.ok()) return false;
    // Attached once the BEAM sees the semaphore of the pairing's probe set.
    return testing::WaitFor([&] { return CaptureAttached(*beam) || !process_.Alive(); },
        std::chrono::seconds(30)) &&
           process_.Alive();
  }

  // SIGINT (Ctrl-C): orion detaches and prints the JSON document.
  json Stop(int signal = SIGINT) {
    process_.Signal(signal);
    std::string out = process_.ReadAll(std::chrono::seconds(60));
    exit_status_ = process_.Wait(std::chrono::seconds(10));
    return json::parse(out, nullptr, /*allow_exceptions=*/false);
  }

  int exit_status() const { return exit_status_; }
  Subprocess& process() { return process_; }

 private:
  Subprocess process_;
  int exit_status_ = -1;
};

// `orion probes` counting every probe hit of the node while `workload` runs: the hits of
// `probe` (all calls of all modules for a function probe, as far as the BEAM fires them).
uint64_t ProbeHitsDuring(BeamNode& node, const std::string& workload, const std::string& probe) {
  Subprocess probes;
  if (!probes.Start({ORION_TEST_ORION_BIN, "probes", "--duration", "600", "--pid",
                     std::to_string(node.os_pid())},
                    {}, /*merge_stderr=*/true) ||
      probes.WaitForLine("orion: info: counting probes", std::chrono::seconds(30)).empty()) {
    ADD_FAILURE() << "orion probes did not start";
    return 0;
  }
  EXPECT_EQ(node.Eval(workload), "ok");
  probes.Signal(SIGINT);
  std::istringstream out(probes.ReadAll(std::chrono::seconds(30)));
  std::string name;
  uint64_t hits = 0;
  for (std::string line; std::getline(out, line);) {
    std::istringstream fields(line);
    if (fields >> name >> hits && name == probe) return hits;
  }
  ADD_FAILURE() << "no line for " << probe << " in orion probes' output";
  return 0;
}

// `orion probes --list`'s line that starts with `prefix`: "enable table: " (patch 0003),
// "pairing table: " (patch 0007).
std::string ProbesListLine(const BeamNode& node, const std::string& prefix) {
  std::string out;
  testing::RunCommand({ORION_TEST_ORION_BIN, "probes", "--list", "--pid",
                       std::to_string(node.os_pid())},
                      &out);
  const size_t at = out.find(prefix);
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}
std::string EnableTableLine(const BeamNode& node) { return ProbesListLine(node, "enable table: "); }
std::string PairTableLine(const BeamNode& node) { return ProbesListLine(node, "pairing table: "); }

class CaptureTest : public ::testing::TestWithParam<CaptureParam> {
 protected:
  void SetUp() override {
    g_pairing = GetParam().pairing;
    ORION_REQUIRE_BPF_OR_SKIP();
    std::vector<std::string> extra;
    std::string erl;  // the default prefix's
    if (GetParam().frame_pointers) extra = {"+JPperf", "true"};
    if (GetParam().debug) {
      const std::string prefix = BeamNode::DebugPrefix();
      erl = prefix + "/bin/erl";
      // build.sh's stamp: written once the prefix is complete.
      if (prefix.empty() || access((prefix + "/.orion-build").c_str(), F_OK) != 0) {
        const std::string reason = "no debug JIT emulator build at " + prefix +
                                   ": build it with beam_dtrace_build/build.sh --debug (or "
                                   "scripts/test.sh --all-releases)";
        if (testing::BpfRequired()) FAIL() << reason << " (ORION_REQUIRE_BPF=1)";
        GTEST_SKIP() << "SKIPPING: " << reason;
      }
      extra = {"-emu_type", "debug"};
    }
    ASSERT_TRUE(node_.Start({.flavor = GetParam().flavor, .erl = erl, .extra_args = extra}))
        << node_.error();
    ASSERT_EQ(node_.Eval("erlang:system_info(emu_flavor)."), GetParam().flavor);
    if (GetParam().debug) ASSERT_EQ(node_.Eval("erlang:system_info(build_type)."), "debug");
  }
  void TearDown() override {
    if (!GetParam().frame_pointers || node_.os_pid() <= 0) return;
    // +JPperf true writes the JIT's symbols for perf: /tmp/perf-PID.map and /tmp/jit-PID.dump.
    const pid_t pid = node_.os_pid();
    node_.Kill();
    std::remove(("/tmp/perf-" + std::to_string(pid) + ".map").c_str());
    std::remove(("/tmp/jit-" + std::to_string(pid) + ".dump").c_str());
  }
  bool emu() const { return GetParam().flavor == "emu"; }
  BeamNode node_;
};

// The properties every flavor and frame layout must keep: they also run in the JIT's
// frame-pointer layout.
class CoreCaptureTest : public CaptureTest {};
// What only the emu flavor has: function probes, so BPF pairing and its fallbacks.
class EmuCaptureTest : public CaptureTest {};

TEST_P(CoreCaptureTest, CountsEveryCallExactlyAcrossProcessesRecursionTailCallsAndExceptions) {
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:known/1", "orion_workload:fact/1",
                                    "orion_workload:tail_caller/1", "orion_workload:tail_callee/1",
                                    "orion_workload:self_tail/1", "orion_workload:raiser/1",
                                    "orion_workload:catcher/1"}));
  // 4 processes at once, each: 5,000 calls of known/1, 300 of fact(6) (7 nested calls
  // each, returning through deallocate_return), 200 tail calls, 100 self-tail-recursive
  // runs of 9 re-entries, 150 caught exceptions (catcher/1 also calls known/1 once).
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 5000, fun orion_workload:call_known/1)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 300, fun(N) -> orion_workload:call_fact(N, 6) end)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 200, fun(N) -> orion_workload:call_tail(N, 1) end)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 100, fun(N) -> orion_workload:call_self_tail(N, 9) end)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 150, fun(N) -> orion_workload:call_catcher(N, 3) end)."), "ok");
  json doc = capture.Stop();
  ASSERT_FALSE(doc.is_discarded()) << "orion printed no JSON";
  EXPECT_EQ(capture.exit_status(), 0);

  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 4u * 5000 + 4u * 150);
  EXPECT_EQ(CountOf(doc, "orion_workload:fact/1"), 4u * 300 * 7);
  EXPECT_EQ(CountOf(doc, "orion_workload:tail_caller/1"), 4u * 200);
  EXPECT_EQ(CountOf(doc, "orion_workload:tail_callee/1"), 4u * 200);
  const json* self_tail = FindCall(doc, "orion_workload:self_tail/1");
  ASSERT_NE(self_tail, nullptr);
  EXPECT_EQ((*self_tail)["count"], 4u * 100);
  EXPECT_EQ((*self_tail)["tail_calls"], 4u * 100 * 9);
  const json* raiser = FindCall(doc, "orion_workload:raiser/1");
  ASSERT_NE(raiser, nullptr);
  EXPECT_EQ((*raiser)["count"], 0u);
  EXPECT_EQ((*raiser)["exceptions"], 4u * 150);
  EXPECT_EQ(CountOf(doc, "orion_workload:catcher/1"), 4u * 150);
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
  // Named functions only: call_known/1 and friends ran, but were not asked for.
  EXPECT_EQ(FindCall(doc, "orion_workload:call_known/1"), nullptr);
  EXPECT_EQ(doc["calls"].size(), 7u);
  EXPECT_EQ(doc["paired_in_beam"], g_pairing == "beam" ? 1u : 0u);
}

// How the calls of `mfa` ended, as the capture counted them: returned, raised, cut short.
void ExpectEndings(const json& doc, const std::string& mfa, uint64_t returned,
                   uint64_t exceptions, uint64_t exits) {
  const json* call = FindCall(doc, mfa);
  ASSERT_NE(call, nullptr) << mfa << " is not in " << doc.dump();
  EXPECT_EQ((*call)["count"], returned) << mfa;
  EXPECT_EQ((*call)["exceptions"], exceptions) << mfa;
  EXPECT_EQ((*call)["exits"], exits) << mfa;
}

TEST_P(CoreCaptureTest, CallsCutShortByTheirProcessesExitAreCountedAsExits) {
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:doomed/1", "orion_workload:known/1"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_doomed(250)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:call_known(100)."), "ok");
  json doc = capture.Stop();
  ExpectEndings(doc, "orion_workload:doomed/1", 0, 0, 250);
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 100u) << "the BEAM went on pairing";
}

TEST_P(EmuCaptureTest, PatternsBeyondThePairingTablePairInBpfWithTheSameCounts) {
  // 17 patterns: more than a record of the BEAM's pairing table holds (16).
  std::vector<std::string> patterns = {"orion_workload:known/1"};
  for (int i = 0; i < 16; ++i) patterns.push_back("orion_workload:absent" + std::to_string(i));
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, patterns));
  ASSERT_EQ(node_.Eval("orion_workload:parallel(2, 1500, fun orion_workload:call_known/1)."), "ok");
  json doc = capture.Stop();
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 3000u) << doc.dump();
  EXPECT_EQ(doc["paired_in_beam"], 0u);
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
}

TEST_P(CaptureTest, QuantilesAgreeWithTheWorkloadsOwnTiming) {
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:sleeper/1"}));
  // 200 calls of sleeper(3): the workload times each call itself (monotonic_time around it).
  std::vector<double> oracle = ParseIntegerList(node_.Eval("orion_workload:call_sleeper(200, 3)."));
  ASSERT_EQ(oracle.size(), 200u);
  json doc = capture.Stop();
  const json* sleeper = FindCall(doc, "orion_workload:sleeper/1");
  ASSERT_NE(sleeper, nullptr);
  ASSERT_EQ((*sleeper)["count"], 200u);
  testing::ExpectQuantilesMatchOracle(*sleeper, oracle, kAlpha);
  EXPECT_LE((*sleeper)["max_ns"].get<double>(), *std::max_element(oracle.begin(), oracle.end()));
}

TEST_P(CoreCaptureTest, OnCpuTimeSeparatesWaitingFromComputing) {
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:sleeper/1", "orion_workload:busy_wrapper/1"}));
  ASSERT_NE(node_.Eval("orion_workload:call_sleeper(20, 10)."), "DEAD");
  ASSERT_NE(node_.Eval("orion_workload:call_busy(20, 300000)."), "DEAD");
  json doc = capture.Stop();
  const json* sleeper = FindCall(doc, "orion_workload:sleeper/1");
  const json* busy = FindCall(doc, "orion_workload:busy_wrapper/1");
  ASSERT_NE(sleeper, nullptr);
  ASSERT_NE(busy, nullptr);
  const double sleep_wall = (*sleeper)["p50_ns"], sleep_cpu = (*sleeper)["cpu"]["p50_ns"];
  const double busy_wall = (*busy)["p50_ns"], busy_cpu = (*busy)["cpu"]["p50_ns"];
  EXPECT_GE(sleep_wall, 10e6 * (1 - kAlpha));
  EXPECT_LT(sleep_cpu, sleep_wall / 100) << "a sleeping call is mostly off-CPU";
  // The debug emulator (-O0, assertions) is slower everywhere, in the scheduler's work between
  // two time slices of the busy process too, which is off that process's on-CPU clock: 0.77 of
  // the wall time in one of two runs on 2026-12-07 (load average ~20 on 2 CPUs).
  const double busy_on_cpu = GetParam().debug ? 0.6 : 0.8;
  EXPECT_GT(busy_cpu, busy_wall * busy_on_cpu)
      << "a busy loop is mostly on-CPU (on-CPU / wall " << busy_cpu / busy_wall << ")";
  EXPECT_LE(busy_cpu, busy_wall * (1 + kAlpha));
  EXPECT_EQ((*busy)["cpu"]["count"], (*busy)["count"]);
}

TEST_P(CaptureTest, PatternsMatchWhatTheyNameAndNothingElse) {
  // Patterns name whole atoms: neither a prefix of a function nor of a module matches.
  RunningCapture prefixes;
  ASSERT_TRUE(prefixes.Start(node_, {"orion_workload:tail_c", "orion_work"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_tail(10, 1)."), "ok");
  json none = prefixes.Stop();
  ASSERT_FALSE(none.is_discarded());
  EXPECT_TRUE(none["calls"].empty()) << none.dump();

  RunningCapture by_name;
  ASSERT_TRUE(by_name.Start(node_, {"orion_workload:fact", "orion_workload:tail_callee/_"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_fact(10, 2)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:call_tail(10, 1)."), "ok");
  json names = by_name.Stop();
  ASSERT_EQ(names["calls"].size(), 2u) << names.dump();
  EXPECT_EQ(CountOf(names, "orion_workload:fact/1"), 30u);
  EXPECT_EQ(CountOf(names, "orion_workload:tail_callee/1"), 10u);

  RunningCapture module;
  ASSERT_TRUE(module.Start(node_, {"orion_workload"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_tail(10, 1)."), "ok");
  json all = module.Stop();
  // call_tail/2 itself (11 entries: 10 recursions are tail calls of itself) and its callees.
  EXPECT_EQ(CountOf(all, "orion_workload:call_tail/2"), 1u);
  EXPECT_EQ(CountOf(all, "orion_workload:tail_caller/1"), 10u);
  EXPECT_EQ(CountOf(all, "orion_workload:tail_callee/1"), 10u);
  EXPECT_EQ(FindCall(all, "orion_workload:other/1"), nullptr);
  for (const auto& c : all["calls"]) {
    EXPECT_EQ(c["mfa"].get<std::string>().rfind("orion_workload:", 0), 0u) << c["mfa"];
  }
}

TEST_P(CaptureTest, ElixirStylePatternsNameElixirModules) {
  // 'Elixir.Orion.Demo' is what an Elixir module Orion.Demo compiles to.
  ASSERT_EQ(node_.Eval("orion_workload:load_elixir_style_module()."), "ok");
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"Orion.Demo.double/1"}));
  ASSERT_EQ(node_.Eval("lists:foreach(fun(I) -> 'Elixir.Orion.Demo':double(I) end, lists:seq(1, 321))."),
            "ok");
  json doc = capture.Stop();
  EXPECT_EQ(CountOf(doc, "'Elixir.Orion.Demo':double/1"), 321u) << doc.dump();
}

TEST_P(CoreCaptureTest, ModulesLoadedAndReloadedDuringACaptureCountFromTheirFirstCall) {
  // The capture starts before 'Elixir.Orion.Demo' is loaded (each test has a node of its
  // own); the workload loads it and calls it at once, in one process, then loads it again (a
  // new version of the code) and calls the new code. Pairing in the BEAM puts the
  // breakpoints in while the loader still has the new code to itself.
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"Orion.Demo.double/1"}));
  ASSERT_EQ(node_.Eval("begin ok = orion_workload:load_elixir_style_module(), "
                       "lists:foreach(fun(I) -> 'Elixir.Orion.Demo':double(I) end, "
                       "lists:seq(1, 321)), "
                       "ok = orion_workload:load_elixir_style_module(), "
                       "lists:foreach(fun(I) -> 'Elixir.Orion.Demo':double(I) end, "
                       "lists:seq(1, 100)) end."),
            "ok");
  json doc = capture.Stop();
  EXPECT_EQ(CountOf(doc, "'Elixir.Orion.Demo':double/1"), 421u) << doc.dump();
}

TEST_P(CaptureTest, EachPairingRecordHasBreakpointsInExactlyItsFunctions) {
  // Two captures start before orion_workload is loaded (each test has a node of its own): fact/1
  // in one, tail_caller/1 and tail_callee/1 in the other, plus a module that never loads. The
  // emulator puts their breakpoints in when the module loads, and says how many each has.
  RunningCapture one, two;
  ASSERT_TRUE(one.Start(node_, {"orion_workload:fact/1", "no_such_module:f/1"}));
  const int links = testing::CountProcessBpfLinks(one.process().pid());
  ASSERT_GT(links, 0);
  ASSERT_TRUE(two.Start(node_, {"orion_workload:tail_caller/1", "orion_workload:tail_callee/1"}));
  // The semaphores were up already: the second capture is attached when its links are.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::CountProcessBpfLinks(two.process().pid()) == links; },
      std::chrono::seconds(30)));
  const auto breakpoints = [&](RunningCapture& c, int n) {
    return "orion pid " + std::to_string(c.process().pid()) + ": breakpoints in " +
           std::to_string(n) + " function(s)";
  };
  std::string line = PairTableLine(node_);
  if (g_pairing == "beam") {
    EXPECT_EQ(line.rfind("pairing table: 2 of 4 records held", 0), 0u) << line;
    EXPECT_NE(line.find(breakpoints(one, 0)), std::string::npos) << line;
    EXPECT_NE(line.find(breakpoints(two, 0)), std::string::npos) << line;
  } else {
    EXPECT_EQ(line.rfind("pairing table: 0 of 4 records held", 0), 0u) << line;
  }
  ASSERT_EQ(node_.Eval("element(1, code:ensure_loaded(orion_workload))."), "module");
  if (g_pairing == "beam") {
    line = PairTableLine(node_);
    EXPECT_NE(line.find(breakpoints(one, 1)), std::string::npos) << line;
    EXPECT_NE(line.find(breakpoints(two, 2)), std::string::npos) << line;
  }
  ASSERT_EQ(node_.Eval("orion_workload:call_fact(10, 2)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:call_tail(10, 1)."), "ok");
  json first = one.Stop();
  json second = two.Stop();
  EXPECT_EQ(CountOf(first, "orion_workload:fact/1"), 30u) << first.dump();
  EXPECT_EQ(CountOf(second, "orion_workload:tail_caller/1"), 10u) << second.dump();
  EXPECT_EQ(CountOf(second, "orion_workload:tail_callee/1"), 10u) << second.dump();
  EXPECT_EQ(PairTableLine(node_).rfind("pairing table: 0 of 4 records held", 0), 0u)
      << PairTableLine(node_);
}

TEST_P(CoreCaptureTest, PairedFunctionsKeepTheirStacktraces) {
  const std::string probe = "orion_workload:call_stack_probes().";
  const std::string before = node_.Eval(probe);
  ASSERT_NE(before.find("{orion_workload,call_stack_probes,0}"), std::string::npos) << before;
  RunningCapture capture;
  ASSERT_TRUE(
      capture.Start(node_, {"orion_workload:stack_probe/0", "orion_workload:raise_probe/0"}));
  EXPECT_EQ(node_.Eval(probe), before) << "the capture changed what the program sees";
  json doc = capture.Stop();
  EXPECT_EQ(CountOf(doc, "orion_workload:stack_probe/0"), 1u) << doc.dump();
  const json* raised = FindCall(doc, "orion_workload:raise_probe/0");
  ASSERT_NE(raised, nullptr) << doc.dump();
  EXPECT_EQ((*raised)["exceptions"], 1u);
}

TEST_P(CaptureTest, ReturnsThroughAnotherModuleEndTheTargetedCall) {
  // each_known/1 tail-calls lists:foreach/2, which calls known/1 back: with the enable table
  // on, lists neither enters nor returns through the probes, except for the one return that
  // ends each_known/1 (at its depth).
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:each_known/1", "orion_workload:known/1"}));
  ASSERT_EQ(node_.Eval("orion_workload:parallel(4, 50, fun(M) -> orion_workload:call_each_known(M, 20) end)."),
            "ok");
  json doc = capture.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const json* each = FindCall(doc, "orion_workload:each_known/1");
  ASSERT_NE(each, nullptr) << doc.dump();
  EXPECT_EQ((*each)["count"], 4u * 50);
  EXPECT_EQ((*each)["exceptions"], 0u) << "a frame ended by a later entry, not by its return";
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 4u * 50 * 20);
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
}

TEST_P(CaptureTest, UntargetedModulesFireNoProbesWhileACaptureRuns) {
  // 100,000 calls of lists' functions and 2,001 of orion_workload's.
  const std::string workload =
      "begin 100000 = length(lists:reverse(lists:seq(1, 100000))), "
      "lists:foldl(fun(X, _) -> X end, 0, lists:seq(1, 100000)), "
      "orion_workload:call_known(1000) end.";
  ASSERT_EQ(node_.Eval(workload), "ok");  // loads everything it needs
  uint64_t unfiltered = 0;  // the JIT has no function probes to fire
  if (emu()) {
    unfiltered = ProbeHitsDuring(node_, workload, "local__function__entry");
    EXPECT_GE(unfiltered, 100000u) << "without a capture every call fires";
  }
  EXPECT_EQ(EnableTableLine(node_).rfind("enable table: off", 0), 0u) << EnableTableLine(node_);

  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:known/1"}));
  if (g_pairing == "beam") {
    // Pairing in the BEAM reaches known/1 through its breakpoint (patch 0008): no function
    // probe is attached, so no call formats anything, and the calls that end are fired in
    // batches of 64 (patch 0010), never one probe per call; the capture's flush delivers the
    // last batch.
    auto beam = beam::InspectBeam(node_.os_pid());
    ASSERT_TRUE(beam.ok());
    EXPECT_LE(testing::SemaphoreOf(*beam, "local__function__entry"), 0);
    EXPECT_LE(testing::SemaphoreOf(*beam, "function__return"), 0);  // -1: none (the JIT)
    EXPECT_EQ(EnableTableLine(node_).rfind("enable table: off", 0), 0u) << EnableTableLine(node_);
    EXPECT_EQ(ProbeHitsDuring(node_, workload, "orion__call"), 0u);
    const uint64_t batches = ProbeHitsDuring(node_, workload, "orion__calls");
    EXPECT_GE(batches, 1000u / 64);     // full batches of this run's calls
    EXPECT_LE(batches, 1000u / 64 + 4);  // and partial ones: an age flush, a scheduler switch
    json doc = capture.Stop();
    EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 2000u) << doc.dump();  // two runs
    return;
  }
  EXPECT_EQ(EnableTableLine(node_).rfind("enable table: filtering for 1 capture", 0), 0u)
      << EnableTableLine(node_);
  const uint64_t filtered = ProbeHitsDuring(node_, workload, "local__function__entry");
  // orion_workload's calls fire (call_known/1's first call is a global one): 1,000 of
  // known/1 and 1,000 recursions of call_known/2; other modules only if their atom hash
  // shares orion_workload's slot, which the 1 % margin allows for.
  EXPECT_GE(filtered, 2000u);
  EXPECT_LE(filtered, 2000u + unfiltered / 100) << "unfiltered: " << unfiltered;
  json doc = capture.Stop();
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 1000u) << doc.dump();
  EXPECT_EQ(EnableTableLine(node_).rfind("enable table: off", 0), 0u) << EnableTableLine(node_);
}

// A running capture sees calls while the node stays busy, not only when it stops: pairing in
// the BEAM, a scheduler keeps its ended calls in a batch (patch 0010) and fires it once the
// oldest is 20 ms old, checked when it switches processes, even if no targeted call ends
// after them and it never runs out of work (the spinners keep every scheduler busy for 3 s).
// The capture runs in this process (probes::Capture, as orion's commands use it) so that it
// can be read in the middle.
TEST_P(CaptureTest, CallsAreDeliveredWithinABoundWhileEverySchedulerStaysBusy) {
  auto beam = beam::InspectBeam(node_.os_pid());
  ASSERT_TRUE(beam.ok()) << beam.status().ToString();
  auto pattern = probes::ParseMfaPattern("orion_workload:known/1");
  ASSERT_TRUE(pattern.ok());
  probes::CaptureOptions options{.patterns = {*pattern}, .pairing = g_pairing == "beam"};
  auto capture = probes::Capture::Start({*beam}, options);
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  if (g_pairing == "beam") {
    ASSERT_EQ((*capture)->PairedBeams(), 1u);
    EXPECT_GT(testing::SemaphoreOf(*beam, "orion__calls"), 0);  // batches on
  }
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(node_.Eval("orion_workload:known_then_spin(10, 3000)."), "ok");
  uint64_t seen = 0;
  for (;;) {
    auto snap = (*capture)->Read();
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    seen = 0;
    for (const auto& f : snap->functions) {
      if (f.mfa == "orion_workload:known/1") seen = f.wall.count();
    }
    if (seen == 10 || std::chrono::steady_clock::now() - start > std::chrono::milliseconds(1500)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  // Well before the spinners end (3 s): 20 ms, a time slice, and this machine's jitter.
  EXPECT_EQ(seen, 10u) << "after " << waited.count() << " ms";
  (*capture)->Detach();
  auto final_snap = (*capture)->Read();
  ASSERT_TRUE(final_snap.ok());
  ASSERT_EQ(final_snap->functions.size(), 1u);
  EXPECT_EQ(final_snap->functions[0].wall.count(), 10u);
}

TEST_P(CaptureTest, CapturesOfDifferentModulesShareTheEnableTable) {
  ASSERT_EQ(node_.Eval("orion_workload:load_elixir_style_module()."), "ok");
  const std::string both =
      "begin orion_workload:call_known(500), "
      "lists:foreach(fun(I) -> 'Elixir.Orion.Demo':double(I) end, lists:seq(1, 300)) end.";
  RunningCapture known, demo;
  ASSERT_TRUE(known.Start(node_, {"orion_workload:known/1"}));
  const int links = testing::CountProcessBpfLinks(known.process().pid());
  ASSERT_GT(links, 0);
  ASSERT_TRUE(demo.Start(node_, {"Orion.Demo.double/1"}));
  // The semaphores were up already: the second capture is attached when its links are.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::CountProcessBpfLinks(demo.process().pid()) == links; },
      std::chrono::seconds(30)))
      << testing::CountProcessBpfLinks(demo.process().pid()) << " links of " << links;
  // Only the function probes (BPF pairing) read the enable table.
  EXPECT_EQ(EnableTableLine(node_).rfind(g_pairing == "beam" ? "enable table: off"
                                                             : "enable table: filtering for 2 capture",
                                         0),
            0u)
      << EnableTableLine(node_);
  ASSERT_EQ(node_.Eval(both), "ok");
  json known_doc = known.Stop();
  // The first capture's end gives back its modules only: the second still sees every call.
  ASSERT_EQ(node_.Eval(both), "ok");
  json demo_doc = demo.Stop();
  EXPECT_EQ(CountOf(known_doc, "orion_workload:known/1"), 500u) << known_doc.dump();
  EXPECT_EQ(CountOf(demo_doc, "'Elixir.Orion.Demo':double/1"), 600u) << demo_doc.dump();
  EXPECT_EQ(EnableTableLine(node_).rfind("enable table: off", 0), 0u) << EnableTableLine(node_);
}

TEST_P(CaptureTest, SuccessiveCapturesKeepNothingOfTheOnesBefore) {
  // A process calls known/1 all along while captures of fact/1 and of known/1 take turns.
  // Pairing in the BEAM they get the same record, a new generation each time: the emulator's
  // cache of which function has which slot must not survive into the next capture (known/1
  // would then be counted under fact/1's slot), nor calls in flight across the switch.
  ASSERT_EQ(node_.Eval("begin register(orion_bg, spawn(fun F() -> orion_workload:call_known(500), "
                       "receive stop -> ok after 0 -> F() end end)), ok end."),
            "ok");
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    RunningCapture fact;
    ASSERT_TRUE(fact.Start(node_, {"orion_workload:fact/1"}));
    ASSERT_EQ(node_.Eval("orion_workload:call_fact(100, 4)."), "ok");
    json fact_doc = fact.Stop();
    EXPECT_EQ(CountOf(fact_doc, "orion_workload:fact/1"), 500u) << fact_doc.dump();
    EXPECT_EQ(fact_doc["calls"].size(), 1u) << fact_doc.dump();

    RunningCapture known;
    ASSERT_TRUE(known.Start(node_, {"orion_workload:known/1"}));
    ASSERT_EQ(node_.Eval("orion_workload:call_fact(100, 4)."), "ok");
    json known_doc = known.Stop();
    ASSERT_EQ(known_doc["calls"].size(), 1u) << known_doc.dump();
    EXPECT_GT(CountOf(known_doc, "orion_workload:known/1"), 0u);
    for (const auto& [name, value] : known_doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
  }
  EXPECT_EQ(node_.Eval("begin orion_bg ! stop, ok end."), "ok");
}

TEST_P(CoreCaptureTest, FiveCapturesOfOneFunctionEachCountEveryCall) {
  // Pairing in the BEAM, its table holds 4 records: each capture's program sees the others'
  // calls and keeps its own; on the emu flavor the fifth capture pairs in BPF. Every one counts
  // every call. The JIT has no function probes: there the fifth is refused, naming tracer
  // mode, and leaves the four running.
  std::vector<std::unique_ptr<RunningCapture>> captures;
  for (int i = 0; i < (emu() ? 5 : 4); ++i) {
    captures.push_back(std::make_unique<RunningCapture>());
    ASSERT_TRUE(captures.back()->Start(node_, {"orion_workload:known/1"}));
    // The semaphores were up already: a capture pairing in the BEAM is attached when it has
    // as many links as the first (the BPF-pairing fifth has other links).
    const int links = testing::CountProcessBpfLinks(captures.front()->process().pid());
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          const int own = testing::CountProcessBpfLinks(captures.back()->process().pid());
          return i == 4 ? own > 0 : own == links;
        },
        std::chrono::seconds(30)));
  }
  if (!emu()) {
    std::string out;
    EXPECT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "capture", "--duration", "1", "--pid",
                                   std::to_string(node_.os_pid()), "orion_workload:known/1"},
                                  &out),
              4)
        << out;
    EXPECT_NE(out.find("already pairs calls for 4 live captures"), std::string::npos) << out;
    EXPECT_NE(out.find("--mode tracer"), std::string::npos) << out;
  }
  ASSERT_EQ(node_.Eval("orion_workload:parallel(2, 400, fun orion_workload:call_known/1)."), "ok");
  uint64_t paired = 0;
  for (auto& capture : captures) {
    json doc = capture->Stop();
    EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 800u) << doc.dump();
    paired += doc["paired_in_beam"].get<uint64_t>();
  }
  EXPECT_EQ(paired, g_pairing == "beam" ? 4u : 0u);
  EXPECT_EQ(PairTableLine(node_).rfind("pairing table: 0 of 4 records held", 0), 0u)
      << PairTableLine(node_);
}

StatusOr<bool> ReturnSitesOn(const beam::BeamProcess& beam) {
  ASSIGN_OR_RETURN(beam::PairTable table, beam::PairTable::Locate(beam));
  return table.ReturnSites();
}

TEST_P(CoreCaptureTest, NothingStaysAttachedAfterExitSigtermOrKill9) {
  auto beam = beam::InspectBeam(node_.os_pid());
  ASSERT_TRUE(beam.ok());
  for (int signal : {0, SIGTERM, SIGKILL}) {
    SCOPED_TRACE("signal " + std::to_string(signal));
    std::set<int> programs;  // of the orion that is stopped, killed or exits
    if (signal == 0) {
      std::string out;
      EXPECT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "capture", "--json", "--duration", "1",
                                     "--pid", std::to_string(node_.os_pid()), "--pairing",
                                     g_pairing, "orion_workload:known/1"},
                                    &out),
                0)
          << out;
    } else {
      RunningCapture capture;
      ASSERT_TRUE(capture.Start(node_, {"orion_workload:known/1"}));
      programs = testing::ProcessBpfProgramIds(capture.process().pid());
      EXPECT_GT(testing::CountLinksOfPrograms(programs), 0);
      // Patch 0009: deallocate_return's return sites are on exactly while a capture holds the
      // enable table (pairing in BPF).
      auto sites = ReturnSitesOn(*beam);
      ASSERT_TRUE(sites.ok()) << sites.status().ToString();
      EXPECT_EQ(*sites, g_pairing == "bpf");
      capture.process().Signal(signal);
      capture.process().Wait(std::chrono::seconds(20));
    }
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          // (-1: the JIT has no function probes)
          return testing::SemaphoreOf(*beam, "function__return") <= 0 &&
                 testing::SemaphoreOf(*beam, "local__function__entry") <= 0 &&
                 testing::SemaphoreOf(*beam, "process__scheduled") == 0 &&
                 testing::SemaphoreOf(*beam, "orion__call") == 0 &&
                 testing::SemaphoreOf(*beam, "orion__function") == 0;
        },
        std::chrono::seconds(10)))
        << "a USDT semaphore is still set: the BEAM still formats probe arguments";
    if (signal != 0) {
      EXPECT_EQ(testing::CountLinksOfPrograms(programs), 0);
    }
    // A killed orion cannot give its enable-table record back; the next orion to look at the
    // BEAM drops it, so that other tracers see every call again.
    const std::string table = EnableTableLine(node_);
    EXPECT_EQ(table.rfind("enable table: off", 0), 0u) << table;
    // ... and the return sites go back to the nop (the release, or that drop, asked for it).
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          auto on = ReturnSitesOn(*beam);
          return on.ok() && !*on;
        },
        std::chrono::seconds(10)))
        << "deallocate_return's return sites are still on";
    EXPECT_EQ(table.find("dead orion") != std::string::npos,
              signal == SIGKILL && g_pairing == "bpf")
        << table;
    // Its pairing record stays until the next capture takes it over (the emulator pairs for
    // it only while another capture has the probe attached).
    const std::string pairing = PairTableLine(node_);
    EXPECT_EQ(pairing.find("dead orion") != std::string::npos,
              signal == SIGKILL && g_pairing == "beam")
        << pairing;
    EXPECT_EQ(node_.Eval("orion_workload:call_known(1000)."), "ok") << "the BEAM was harmed";
  }
  // The next capture counts exactly: pairing in the BEAM, it takes over the killed orion's
  // record (a new generation: what was in flight for the dead one is dropped).
  RunningCapture next;
  ASSERT_TRUE(next.Start(node_, {"orion_workload:known/1"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_known(321)."), "ok");
  EXPECT_EQ(CountOf(next.Stop(), "orion_workload:known/1"), 321u);
}

TEST_P(CaptureTest, OverloadGuardStopsAndReportsWhatWasCaptured) {
  // --max-rate 20000. Pairing in BPF, a tail-recursive loop in the targeted module fires
  // about a million entry probes a second; pairing in the BEAM, only targeted calls fire a
  // probe, one each: a million calls of known/1.
  const bool in_beam = g_pairing == "beam";
  const std::string pattern = in_beam ? "orion_workload:known/1" : "orion_workload:busy_wrapper/1";
  const std::string workload =
      in_beam ? "orion_workload:call_known(1000000)." : "orion_workload:call_busy(5, 300000).";
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {pattern}, {"--max-rate", "20000"}));
  ASSERT_NE(node_.Eval(workload), "DEAD");
  EXPECT_TRUE(testing::WaitFor([&] { return !capture.process().Alive(); }, std::chrono::seconds(10)))
      << "orion stops by itself when the probes fire faster than --max-rate";
  json doc = capture.Stop();
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(capture.exit_status(), 0);
  ASSERT_TRUE(doc["stopped"].is_object()) << doc.dump();
  EXPECT_EQ(doc["stopped"]["reason"], "max_rate");
  EXPECT_GT(doc["stopped"]["rate"].get<uint64_t>(), 20000u);
  // Nothing stays attached: the BEAM stops formatting probe arguments.
  auto beam = beam::InspectBeam(node_.os_pid());
  ASSERT_TRUE(beam.ok());
  EXPECT_FALSE(CaptureAttached(*beam));
  // Without the guard the same capture runs to the end.
  RunningCapture unlimited;
  ASSERT_TRUE(unlimited.Start(node_, {pattern}, {"--max-rate", "0"}));
  ASSERT_NE(node_.Eval(workload), "DEAD");
  json all = unlimited.Stop();
  EXPECT_TRUE(all["stopped"].is_null()) << all.dump();
  EXPECT_EQ(CountOf(all, pattern), in_beam ? 1000000u : 5u);
}

TEST_P(CaptureTest, ReportsWhatWasCapturedWhenTheBeamExits) {
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:known/1"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_known(777)."), "ok");
  // Ended calls reach the kernel in batches, at most 20 ms and a process switch late
  // (docs/probes.md, patch 0010): a BEAM killed sooner takes its last batch with it.
  ASSERT_EQ(node_.Eval("timer:sleep(100)."), "ok");
  node_.Kill();
  std::string out = capture.process().ReadAll(std::chrono::seconds(30));
  EXPECT_EQ(capture.process().Wait(std::chrono::seconds(10)), 0);
  json doc = json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 777u);
  EXPECT_EQ(doc["target_exited"], true);
}

TEST_P(CoreCaptureTest, CallsInFlightWhenTheirProcessHibernatesEndAsExits) {
  // 50 processes each enter sleepy/1, which hibernates (erlang:hibernate/3 discards the stack,
  // the return traps with it): the call can never return and ends as an exit. Each wakes up in
  // a fresh call of woke/1, which returns, and exits normally.
  RunningCapture capture;
  ASSERT_TRUE(capture.Start(node_, {"orion_workload:sleepy/1", "orion_workload:woke/1"}));
  ASSERT_EQ(node_.Eval("orion_workload:call_sleepy(50)."), "ok");
  ASSERT_EQ(node_.Eval("orion_workload:call_known(10)."), "ok");
  json doc = capture.Stop();
  ExpectEndings(doc, "orion_workload:sleepy/1", 0, 0, 50);
  ExpectEndings(doc, "orion_workload:woke/1", 50, 0, 0);
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
}

std::string CaptureParamName(const ::testing::TestParamInfo<CaptureParam>& info) {
  const CaptureParam& p = info.param;
  return std::string(p.pairing == "beam" ? "InBeam" : "InBpf") + (p.flavor == "emu" ? "Emu" : "Jit") +
         (p.frame_pointers ? "FramePointers" : "") + (p.debug ? "Debug" : "");
}

const CaptureParam kInBeamEmu{"emu", "beam"}, kInBpfEmu{"emu", "bpf"}, kInBeamJit{"jit", "beam"},
    kInBeamJitFramePointers{"jit", "beam", true}, kInBeamJitDebug{"jit", "beam", false, true};
INSTANTIATE_TEST_SUITE_P(Pairing, CaptureTest,
                         ::testing::Values(kInBeamEmu, kInBpfEmu, kInBeamJit), CaptureParamName);
INSTANTIATE_TEST_SUITE_P(Pairing, CoreCaptureTest,
                         ::testing::Values(kInBeamEmu, kInBpfEmu, kInBeamJit,
                                           kInBeamJitFramePointers, kInBeamJitDebug),
                         CaptureParamName);
INSTANTIATE_TEST_SUITE_P(Pairing, EmuCaptureTest, ::testing::Values(kInBeamEmu, kInBpfEmu),
                         CaptureParamName);

// The JIT flavor has no function probes: its emulator pairs a capture's calls (patch 0012), or
// orion says why it cannot and names tracer mode. No BPF pairing to fall back on.
class JitCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    ASSERT_TRUE(node_.Start({.flavor = "jit"})) << node_.error();
  }
  int Capture(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {ORION_TEST_ORION_BIN, "capture", "--duration", "1", "--pid",
                                     std::to_string(node_.os_pid())};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, out);
  }
  BeamNode node_;
};

// The plain `orion capture --pid PID PATTERN` of issue 20 on a JIT node, its table read as a
// user would: 20 calls paired in the BEAM, with wall and on-CPU quantiles.
void ExpectJitCapturePairsInTheBeamWithWallAndOnCpuTime(BeamNode& node) {
  ASSERT_EQ(node.Eval("element(1, code:ensure_loaded(orion_workload))."), "module");
  Subprocess orion;
  ASSERT_TRUE(orion.Start({ORION_TEST_ORION_BIN, "capture", "--duration", "600", "--pid",
                           std::to_string(node.os_pid()), "orion_workload:sleeper/1"},
                          {}, /*merge_stderr=*/true));
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return testing::SemaphoreOf(*beam, "orion__call") > 0; },
                               std::chrono::seconds(30)));
  ASSERT_NE(node.Eval("orion_workload:call_sleeper(20, 2)."), "DEAD");
  orion.Signal(SIGINT);
  const std::string out = orion.ReadAll(std::chrono::seconds(30));
  EXPECT_EQ(orion.Wait(std::chrono::seconds(10)), 0) << out;
  EXPECT_NE(out.find("20 targeted calls (paired in the BEAM)"), std::string::npos) << out;
  EXPECT_NE(out.find("CPU P50"), std::string::npos) << out;
  EXPECT_NE(out.find("orion_workload:sleeper/1"), std::string::npos) << out;
  EXPECT_EQ(out.find("tracer mode"), std::string::npos) << out;
}

TEST_F(JitCaptureTest, PairsInTheBeamByDefaultWithWallAndOnCpuTime) {
  ExpectJitCapturePairsInTheBeamWithWallAndOnCpuTime(node_);
}

TEST_F(JitCaptureTest, WhatItCannotPairIsRefusedNamingTracerMode) {
  std::string out;
  // --pairing bpf needs function probes.
  EXPECT_EQ(Capture({"--pairing", "bpf", "orion_workload:known/1"}, &out), 4) << out;
  EXPECT_NE(out.find("JIT flavor"), std::string::npos) << out;
  EXPECT_NE(out.find("--mode tracer"), std::string::npos) << out;
  // 17 patterns: more than a record of the pairing table holds.
  std::vector<std::string> patterns = {"orion_workload:known/1"};
  for (int i = 0; i < 16; ++i) patterns.push_back("orion_workload:absent" + std::to_string(i));
  EXPECT_EQ(Capture(patterns, &out), 4) << out;
  EXPECT_NE(out.find("at most 16 patterns"), std::string::npos) << out;
  EXPECT_NE(out.find("--mode tracer"), std::string::npos) << out;
  EXPECT_EQ(PairTableLine(node_).rfind("pairing table: 0 of 4 records held", 0), 0u)
      << PairTableLine(node_);
}

// Error cases: the message says what to do, the exit code says what kind of problem.
class CaptureErrorTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  static int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {ORION_TEST_ORION_BIN, "capture"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, out);
  }
};

TEST_F(CaptureErrorTest, InvalidPatternSaysWhere) {
  std::string out;
  EXPECT_EQ(Run({"--pid", "1", "lists:sort/x"}, &out), 2);
  EXPECT_NE(out.find("arity at column 12"), std::string::npos) << out;
  EXPECT_EQ(Run({"--pid", "1", "Lists:sort/1"}, &out), 2);
  EXPECT_NE(out.find("uppercase"), std::string::npos) << out;
}

TEST_F(CaptureErrorTest, MissingPidAndNonBeamPid) {
  std::string out;
  EXPECT_EQ(Run({"--pid", "4000000", "lists:sort/1"}, &out), 4);
  EXPECT_NE(out.find("no process with pid 4000000"), std::string::npos) << out;
  EXPECT_EQ(Run({"--pid", std::to_string(getpid()), "lists:sort/1"}, &out), 4);
  EXPECT_NE(out.find("not a BEAM"), std::string::npos) << out;
}

TEST_F(CaptureErrorTest, BeamWithoutUsdtProbesPointsToTheBuild) {
  if (access("/usr/lib/erlang/erts-13.1.5/bin/beam.smp", X_OK) != 0) {
    GTEST_SKIP() << "SKIPPING: Debian's stock erlang-base is not installed";
  }
  BeamNode stock;
  ASSERT_TRUE(stock.Start({.flavor = "", .erl = "/usr/bin/erl"})) << stock.error();
  std::string out;
  EXPECT_EQ(Run({"--pid", std::to_string(stock.os_pid()), "lists:sort/1"}, &out), 4);
  EXPECT_NE(out.find("no erlang USDT probes"), std::string::npos) << out;
  EXPECT_NE(out.find("beam_dtrace_build"), std::string::npos) << out;
}

TEST_F(CaptureErrorTest, JitWithoutOrionsPatchesNamesThePatchedBuildAndTracerMode) {
  // A USDT JIT that does not pair calls: stock OTP 29, which CI builds for tracer mode.
  const std::string prefix = BeamNode::StockPrefix(29);
  if (prefix.empty() || access((prefix + "/bin/erl").c_str(), X_OK) != 0) {
    if (testing::BpfRequired()) FAIL() << "no stock OTP 29: beam_dtrace_build/build.sh --otp 29 --no-patches";
    GTEST_SKIP() << "SKIPPING: no stock OTP 29 (beam_dtrace_build/build.sh --otp 29 --no-patches)";
  }
  BeamNode jit;
  ASSERT_TRUE(jit.Start({.flavor = "jit", .erl = prefix + "/bin/erl"})) << jit.error();
  std::string out;
  EXPECT_EQ(Run({"--pid", std::to_string(jit.os_pid()), "lists:sort/1"}, &out), 4);
  EXPECT_NE(out.find("JIT flavor"), std::string::npos) << out;
  EXPECT_NE(out.find("does not pair calls"), std::string::npos) << out;
  EXPECT_NE(out.find("build.sh --print-prefix"), std::string::npos) << out;
  EXPECT_NE(out.find("--mode tracer"), std::string::npos) << out;
}

// The JIT of each release's patched build pairs in the BEAM (25's patch 0012, ported to 27 and
// 29 as their patch 0004), whatever build ORION_OTP_PREFIX names: the release's own
// `build.sh --otp R` prefix. Test names end in /OTP27 (label all-releases: CI does not build the
// patched 27; Pairing/*/InBeamJit* run on it through ORION_OTP_PREFIX, docs/releases.md).
class ReleaseCaptureTest : public CaptureErrorTest, public ::testing::WithParamInterface<int> {};

TEST_P(ReleaseCaptureTest, PatchedJitPairsInTheBeamWithWallAndOnCpuTime) {
  const std::string prefix = BeamNode::PatchedPrefix(GetParam());
  if (prefix.empty() || access((prefix + "/bin/erl").c_str(), X_OK) != 0) {
    const std::string reason = "no patched OTP " + std::to_string(GetParam()) +
                               ": beam_dtrace_build/build.sh --otp " + std::to_string(GetParam());
    if (testing::BpfRequired()) FAIL() << reason;
    GTEST_SKIP() << "SKIPPING: " << reason;
  }
  BeamNode jit;
  ASSERT_TRUE(jit.Start({.flavor = "jit", .erl = prefix + "/bin/erl"})) << jit.error();
  ASSERT_EQ(jit.Eval("erlang:system_info(otp_release)."), "\"" + std::to_string(GetParam()) + "\"");
  ExpectJitCapturePairsInTheBeamWithWallAndOnCpuTime(jit);
}

INSTANTIATE_TEST_SUITE_P(, ReleaseCaptureTest, ::testing::Values(27),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "OTP" + std::to_string(info.param);
                         });

TEST_F(CaptureErrorTest, NotRootIsRefusedWithNothingAttached) {
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu"})) << node.error();
  std::string out;
  // setpriv drops to nobody; orion cannot even read the BEAM's /proc entry then.
  int rc = testing::RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", ORION_TEST_ORION_BIN, "capture", "--pid",
                                std::to_string(node.os_pid()), "lists:sort/1"},
                               &out);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("root"), std::string::npos) << out;
}

}  // namespace
}  // namespace orion
