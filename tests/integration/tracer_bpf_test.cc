// orion capture --mode tracer, end to end: the real binary, Debian's stock erl (JIT, no USDT
// build, OTP 25), orion_tracer loaded over the hidden-node channel, its NIF timing the traced
// calls in the node's memory and orion reading them out. Checked: exact counts of the calls the
// match spec selects, quantiles against the workload's own timing, ERTS's return_trace semantics,
// and that the node is left as it was after the capture, after kill -9 of orion, and after a bad
// match spec. The core cases (the exact count with a match spec, the clean node after it and
// after kill -9 of orion) run on a stock JIT node of every release orion supports: OTP 25
// (Debian 12's erl), 27 and 29 (the --no-patches builds of beam_dtrace_build/build.sh), and on
// the interpreter (-emu_flavor emu) of 27 and 29, with the one orion_tracer.beam (compiled by
// OTP 25's erlc) and NIF (built against OTP 25's erl_nif.h) that orion embeds.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/capture_json.h"
#include "tests/integration/support/oracle.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::BeamNode;
using testing::FindCall;
using testing::kAlpha;
using testing::ParseIntegerList;
using testing::Subprocess;

constexpr char kStockErl[] = "/usr/bin/erl";
// What the node looks like with no Orion tracing: no pattern on the target, no flags for new
// processes, no process with flags (dead ones answer undefined), orion_tracer not loaded.
constexpr char kNodeStateExpr[] =
    "{erlang:trace_info({orion_tracer_workload, get_user, 2}, all),"
    " erlang:trace_info(new, flags),"
    " [P || P <- processes(), not lists:member(erlang:trace_info(P, flags), [{flags, []}, "
    "undefined])],"
    " code:is_loaded(orion_tracer), erlang:whereis(orion_tracer_session)}.";
constexpr char kUntouchedState[] = "{{all,false},{flags,[]},[],false,undefined}";
// True once a capture traces the workload module: its watchdog sets a meta trace pattern on
// each target (no process gets a trace flag), and orion runs once they are set.
// (orion's claim on the node is gone too: the start is over.)
constexpr char kTracingExpr[] =
    "lists:any(fun({F, A}) -> case erlang:trace_info({orion_tracer_workload, F, A}, meta) of"
    " {meta, {orion_tracer, _}} -> true; _ -> false end end,"
    " orion_tracer_workload:module_info(functions))"
    " andalso whereis(orion_tracer_claim) =:= undefined.";

// Starts `orion capture --json --duration 600 ARGS... orion_tracer_workload:get_user/2` on
// `node`, its log merged into its output, and waits until the capture traces the workload.
bool StartCaptureOn(BeamNode& node, Subprocess* orion, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ORION_TEST_ORION_BIN, "capture", "--json", "--duration", "600"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("orion_tracer_workload:get_user/2");
  if (!orion->Start(argv, {}, /*merge_stderr=*/true)) return false;
  return testing::WaitFor([&] { return !orion->Alive() || node.Eval(kTracingExpr) == "true"; },
                          std::chrono::seconds(30)) &&
         orion->Alive();
}

// `orion capture --pid` of `node`: no --mode, no --node, no --cookie-file (orion picks tracer
// mode and finds the cookie itself).
bool StartPidCapture(BeamNode& node, Subprocess* orion) {
  return StartCaptureOn(node, orion, {"--pid", std::to_string(node.os_pid())});
}

// Ends a StartCaptureOn with Ctrl-C: its exit status, its whole output (the log lines and the
// JSON document) in *out, and the document.
json StopCaptureOn(Subprocess* orion, std::string* out, int* status) {
  orion->Signal(SIGINT);
  *out = orion->ReadAll(std::chrono::seconds(60));
  *status = orion->Wait(std::chrono::seconds(10));
  const size_t at = out->find("\n{");
  if (at == std::string::npos) return json();
  return json::parse(out->substr(at + 1), nullptr, /*allow_exceptions=*/false);
}

class TracerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartStockNode(25); }

  // Starts node_: a stock (unpatched) node of OTP `release` in `flavor` (jit or emu; 25's is
  // Debian's erl, JIT only), distributed, with the workload loaded. A release whose build is
  // missing here skips with a reason (fails under ORION_REQUIRE_BPF=1: CI builds the releases
  // it tests).
  void StartStockNode(int release, const std::string& node_flavor = "jit") {
    ORION_REQUIRE_BPF_OR_SKIP();
    std::string erl = kStockErl;
    std::string flavor;  // Debian's erl: its only flavor, the JIT
    if (release != 25) {
      const std::string prefix = BeamNode::StockPrefix(release);
      erl = prefix + "/bin/erl";
      flavor = node_flavor;
      if (access(erl.c_str(), X_OK) != 0) {
        const std::string builder =
            release == 29 ? "scripts/setup.sh" : "scripts/test.sh --all-releases";
        const std::string reason = "no stock OTP " + std::to_string(release) + " build at " +
                                   prefix + ": build it with beam_dtrace_build/build.sh --otp " +
                                   std::to_string(release) + " --no-patches (or " + builder + ")";
        if (testing::BpfRequired()) FAIL() << reason << " (ORION_REQUIRE_BPF=1)";
        GTEST_SKIP() << "SKIPPING: " << reason;
      }
    } else if (access(kStockErl, X_OK) != 0) {
      GTEST_SKIP() << "SKIPPING: no " << kStockErl;
    }
    const std::string tag = std::to_string(getpid());
    cookie_file_ = "/tmp/orion_tracer_test_cookie_" + tag;
    {
      std::ofstream out(cookie_file_);
      out << "tracer_cookie_" << tag;
    }
    chmod(cookie_file_.c_str(), 0600);
    ASSERT_TRUE(node_.Start({.flavor = flavor,
                             .sname = "orion_tracer_" + tag,
                             .cookie = "tracer_cookie_" + tag,
                             .erl = erl}))
        << node_.error();
    ASSERT_EQ(node_.Eval("{erlang:system_info(otp_release), erlang:system_info(emu_flavor)}."),
              "{\"" + std::to_string(release) + "\"," + node_flavor + "}");
    // Loaded, so that trace_info on its functions answers (false) rather than undefined.
    ASSERT_EQ(node_.Eval("code:ensure_loaded(orion_tracer_workload)."),
              "{module,orion_tracer_workload}");
  }
  void TearDown() override {
    if (!cookie_file_.empty()) unlink(cookie_file_.c_str());
  }

  std::vector<std::string> OrionArgs(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {
        ORION_TEST_ORION_BIN, "capture",       "--mode",     "tracer", "--node",
        node_.node_name(),    "--cookie-file", cookie_file_, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Starts orion in the background and waits until the capture traces the workload (the
  // watchdog registers itself first, then sets the patterns, then orion is running).
  bool StartCapture(Subprocess* orion, const std::vector<std::string>& extra) {
    if (!orion->Start(OrionArgs(extra))) return false;
    return testing::WaitFor([&] { return !orion->Alive() || node_.Eval(kTracingExpr) == "true"; },
                            std::chrono::seconds(30)) &&
           orion->Alive();
  }

  json StopCapture(Subprocess* orion, int* status) {
    orion->Signal(SIGINT);
    const std::string out = orion->ReadAll(std::chrono::seconds(60));
    *status = orion->Wait(std::chrono::seconds(10));
    return json::parse(out, nullptr, /*allow_exceptions=*/false);
  }

  std::string NodeState() { return node_.Eval(kNodeStateExpr); }

  // True while the node's OS process maps Orion's NIF library (its counts live in it).
  bool NifMapped() const {
    std::ifstream maps("/proc/" + std::to_string(node_.os_pid()) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("orion_tracer_nif") != std::string::npos) return true;
    }
    return false;
  }

  BeamNode node_;
  std::string cookie_file_;
};

// The core cases on a stock node of each release: the JIT (test names end in /OTP25, /OTP27,
// /OTP29) and the interpreter of the USDT builds (/OTP27Emu, /OTP29Emu).
struct StockNode {
  int release;
  const char* flavor;
  friend void PrintTo(const StockNode& n, std::ostream* os) {
    *os << "OTP " << n.release << " " << n.flavor;
  }
};

class TracerReleaseTest : public TracerTest, public ::testing::WithParamInterface<StockNode> {
 protected:
  void SetUp() override { StartStockNode(GetParam().release, GetParam().flavor); }
};

INSTANTIATE_TEST_SUITE_P(StockReleases, TracerReleaseTest,
                         ::testing::Values(StockNode{25, "jit"}, StockNode{27, "jit"},
                                           StockNode{27, "emu"}, StockNode{29, "jit"},
                                           StockNode{29, "emu"}),
                         [](const ::testing::TestParamInfo<StockNode>& info) {
                           return "OTP" + std::to_string(info.param.release) +
                                  (std::string(info.param.flavor) == "emu" ? "Emu" : "");
                         });

// orion probes --list names a stock node's flavor: from its USDT probes where it has them
// (the stock 27 and 29 builds), else from the binary (beam.emu under -emu_flavor emu) or the
// JIT's executable memory (Debian's beam.smp, which has no probes to tell it by).
TEST_P(TracerReleaseTest, ProbesListNamesTheFlavorOfAStockNode) {
  std::string listed;
  ASSERT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "probes", "--list", "--pid",
                                 std::to_string(node_.os_pid())},
                                &listed),
            0)
      << listed;
  EXPECT_NE(listed.find(std::string("flavor ") + GetParam().flavor + " "), std::string::npos)
      << listed;
}

TEST_P(TracerReleaseTest, CountsExactlyTheCallsTheMatchSpecSelectsWithTheWorkloadsLatencies) {
  Subprocess orion;
  ASSERT_TRUE(StartCapture(&orion, {"--match", "[{[nadia, '_'], [], []}]", "--duration", "600",
                                    "orion_tracer_workload:get_user/2"}));
  // N = 200 matching calls of 2 ms, timed by the workload; M = 300 calls that do not match.
  const std::vector<double> oracle =
      ParseIntegerList(node_.Eval("orion_tracer_workload:timed_get_user(nadia, 2, 200)."));
  ASSERT_EQ(oracle.size(), 200u);
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(bob, 0, 300)."), "ok");
  int status = -1;
  const json doc = StopCapture(&orion, &status);
  ASSERT_FALSE(doc.is_discarded()) << "orion printed no JSON";
  EXPECT_EQ(status, 0);
  EXPECT_EQ(doc["mode"], "tracer");
  EXPECT_EQ(doc["pid"], node_.os_pid());

  const json* call = FindCall(doc, "orion_tracer_workload:get_user/2");
  ASSERT_NE(call, nullptr) << doc.dump();
  EXPECT_EQ((*call)["count"], 200u);
  EXPECT_EQ((*call)["exceptions"], 0u);
  testing::ExpectQuantilesMatchOracle(*call, oracle, kAlpha);
  EXPECT_LE((*call)["max_ns"].get<double>(), *std::max_element(oracle.begin(), oracle.end()));
  EXPECT_GE((*call)["min_ns"].get<double>(), 2e6) << "a call sleeps 2 ms";
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
  EXPECT_EQ(NodeState(), kUntouchedState);
}

TEST_F(TracerTest, ReturnTraceMakesEveryTailCallACallAndCountsExceptionsAcrossProcesses) {
  Subprocess orion;
  ASSERT_TRUE(StartCapture(&orion, {"--duration", "600", "orion_tracer_workload:loop/1",
                                    "orion_tracer_workload:raiser"}));
  // (raiser: every arity, "m:f/_".)
  // loop(9) re-enters itself 9 times by tail calls: under return_trace each is a call.
  ASSERT_EQ(node_.Eval("[orion_tracer_workload:loop(9) || _ <- lists:seq(1, 10)]."),
            "[done,done,done,done,done,done,done,done,done,done]");
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_raiser(50)."), "ok");
  // 4 processes at once, 250 x loop(3) each: 4 * 250 * 4 calls, paired per process.
  ASSERT_EQ(node_.Eval("Parent = self(),"
                       " [spawn(fun() -> [orion_tracer_workload:loop(3) || _ <- lists:seq(1, 250)],"
                       "                 Parent ! done end) || _ <- lists:seq(1, 4)],"
                       " [receive done -> ok end || _ <- lists:seq(1, 4)], ok."),
            "ok");
  int status = -1;
  const json doc = StopCapture(&orion, &status);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(status, 0);
  const json* loop = FindCall(doc, "orion_tracer_workload:loop/1");
  const json* raiser = FindCall(doc, "orion_tracer_workload:raiser/1");
  ASSERT_NE(loop, nullptr);
  ASSERT_NE(raiser, nullptr);
  EXPECT_EQ((*loop)["count"], 100u + 4u * 250 * 4);
  EXPECT_EQ((*raiser)["count"], 0u);
  EXPECT_EQ((*raiser)["exceptions"], 50u);
  EXPECT_EQ(doc["lost"]["unpaired_returns"], 0u);
}

// The NIF pairs calls per Erlang process in a table of 8,192 entries that needs no lock. Many
// processes at once on both schedulers, moving between them with calls in flight, are counted
// exactly. A process killed inside a traced call never ends it (no return, no exception_from
// under meta tracing) and leaves its entry behind: here 9,000 of them, more than the table
// holds (the calls with no room are reported, not hidden). The 300,000 calls that follow are
// all counted only if the entries of the dead processes are reclaimed. The purge at the end
// unmaps the library and its counts.
TEST_F(TracerTest, ThousandsOfProcessesPairExactlyAndDeadOnesEntriesAreReclaimed) {
  ASSERT_EQ(node_.Eval("erlang:system_info(schedulers_online)."), "2");
  Subprocess orion;
  ASSERT_TRUE(StartCapture(&orion, {"--duration", "600", "orion_tracer_workload:loop/1",
                                    "orion_tracer_workload:hold/1"}));
  ASSERT_TRUE(NifMapped());
  ASSERT_EQ(node_.Eval("orion_tracer_workload:hold_and_kill(9000)."), "ok");
  // 1,000 processes x 50 x loop(5) (6 calls each under return_trace) = 300,000 calls.
  ASSERT_EQ(node_.Eval("orion_tracer_workload:loops(1000, 50, 5)."), "ok");
  int status = -1;
  const json doc = StopCapture(&orion, &status);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(status, 0);
  const json* loop = FindCall(doc, "orion_tracer_workload:loop/1");
  const json* hold = FindCall(doc, "orion_tracer_workload:hold/1");
  ASSERT_NE(loop, nullptr) << doc.dump();
  ASSERT_NE(hold, nullptr) << doc.dump();
  EXPECT_EQ((*loop)["count"], 300'000u);
  EXPECT_EQ((*loop)["exceptions"], 0u);
  // 9,000 calls in flight for 8,192 entries: the ones with no room are reported.
  const uint64_t no_room = doc["lost"]["frames_evicted"].get<uint64_t>();
  EXPECT_GE(no_room, 9'000u - 8'192u);
  EXPECT_LE(no_room, 9'000u);
  EXPECT_EQ((*hold)["count"], 0u) << "no hold/1 call returned";
  EXPECT_EQ((*hold)["exceptions"], 0u) << "a killed process ends no call";
  EXPECT_EQ(doc["lost"]["unpaired_returns"], 0u);
  EXPECT_EQ(doc["lost"]["depth_overflow"], 0u);
  EXPECT_EQ(doc["lost"]["threads_over_limit"], 0u);
  EXPECT_EQ(NodeState(), kUntouchedState);
  EXPECT_TRUE(testing::WaitFor([&] { return !NifMapped(); }, std::chrono::seconds(10)))
      << "the purge unloads the NIF and frees its memory";
}

TEST_F(TracerTest, PidOfANodeWithoutFunctionProbesPicksTracerModeAndSaysSo) {
  // No --mode, no --node, no --cookie-file: the pid of a stock node (JIT, no USDT) with -sname and
  // -setcookie is enough.
  Subprocess orion;
  ASSERT_TRUE(StartPidCapture(node_, &orion));
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(bob, 0, 300)."), "ok");
  std::string out;
  int status = -1;
  const json doc = StopCaptureOn(&orion, &out, &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("has no USDT probes"), std::string::npos) << out;  // Debian's stock erl
  EXPECT_NE(out.find("using tracer mode on node " + node_.node_name()), std::string::npos) << out;
  ASSERT_TRUE(doc.is_object()) << out;
  EXPECT_EQ(doc["mode"], "tracer");
  EXPECT_EQ(testing::CountOf(doc, "orion_tracer_workload:get_user/2"), 300u) << doc.dump();
  EXPECT_EQ(NodeState(), kUntouchedState);
}

// The USDT build's JIT flavor: its function probes cannot fire (OTP 24+), but its emulator
// pairs calls (Orion's patch 0012), so `--pid` captures it from the kernel (capture_bpf_test's
// JitCaptureTest); tracer mode, asked for, works on it too, and the NIF counts exactly.
TEST(TracerUsdtJitTest, TheUsdtBuildsJitFlavorCanBeCapturedInTracerModeToo) {
  ORION_REQUIRE_BPF_OR_SKIP();
  const std::string tag = std::to_string(getpid());
  const std::string cookie = "tracer_jit_cookie_" + tag;
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "jit", .sname = "orion_tracer_jit_" + tag, .cookie = cookie}))
      << node.error();
  ASSERT_EQ(node.Eval("{erlang:system_info(emu_flavor), erlang:system_info(dynamic_trace)}."),
            "{jit,systemtap}");
  ASSERT_EQ(node.Eval("code:ensure_loaded(orion_tracer_workload)."),
            "{module,orion_tracer_workload}");
  const std::string cookie_file = "/tmp/orion_tracer_jit_cookie_" + tag;
  {
    std::ofstream out(cookie_file);
    out << cookie;
  }
  chmod(cookie_file.c_str(), 0600);
  Subprocess orion;
  ASSERT_TRUE(StartCaptureOn(
      node, &orion,
      {"--mode", "tracer", "--node", node.node_name(), "--cookie-file", cookie_file}));
  // 2 processes at once, 5,000 calls each, plus 123 in the REPL's process.
  ASSERT_EQ(node.Eval("Parent = self(),"
                      " [spawn(fun() -> orion_tracer_workload:call_get_user(x, 0, 5000),"
                      "                 Parent ! done end) || _ <- [1, 2]],"
                      " [receive done -> ok end || _ <- [1, 2]],"
                      " orion_tracer_workload:call_get_user(y, 0, 123)."),
            "ok");
  std::string out;
  int status = -1;
  const json doc = StopCaptureOn(&orion, &out, &status);
  unlink(cookie_file.c_str());
  EXPECT_EQ(status, 0) << out;
  ASSERT_TRUE(doc.is_object()) << out;
  EXPECT_EQ(doc["mode"], "tracer");
  EXPECT_EQ(testing::CountOf(doc, "orion_tracer_workload:get_user/2"), 10'123u) << doc.dump();
  EXPECT_EQ(doc["lost"]["unpaired_returns"], 0u);
  EXPECT_EQ(node.Eval("{erlang:trace_info({orion_tracer_workload, get_user, 2}, all),"
                      " code:is_loaded(orion_tracer)}."),
            "{{all,false},false}");
}

// Tracer mode is not only for the JIT: on the emu flavor (where --pid picks probes mode) it is
// asked for explicitly, and counts exactly too.
TEST(TracerUsdtEmuTest, TheEmuFlavorCanBeCapturedInTracerModeToo) {
  ORION_REQUIRE_BPF_OR_SKIP();
  const std::string tag = std::to_string(getpid());
  const std::string cookie = "tracer_emu_cookie_" + tag;
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu", .sname = "orion_tracer_emu_" + tag, .cookie = cookie}))
      << node.error();
  ASSERT_EQ(node.Eval("erlang:system_info(emu_flavor)."), "emu");
  ASSERT_EQ(node.Eval("code:ensure_loaded(orion_tracer_workload)."),
            "{module,orion_tracer_workload}");
  const std::string cookie_file = "/tmp/orion_tracer_emu_cookie_" + tag;
  {
    std::ofstream out(cookie_file);
    out << cookie;
  }
  chmod(cookie_file.c_str(), 0600);
  Subprocess orion;
  ASSERT_TRUE(StartCaptureOn(
      node, &orion,
      {"--mode", "tracer", "--node", node.node_name(), "--cookie-file", cookie_file}));
  ASSERT_EQ(node.Eval("orion_tracer_workload:call_get_user(y, 0, 4321)."), "ok");
  std::string out;
  int status = -1;
  const json doc = StopCaptureOn(&orion, &out, &status);
  unlink(cookie_file.c_str());
  EXPECT_EQ(status, 0) << out;
  ASSERT_TRUE(doc.is_object()) << out;
  EXPECT_EQ(doc["mode"], "tracer");
  EXPECT_EQ(testing::CountOf(doc, "orion_tracer_workload:get_user/2"), 4'321u) << doc.dump();
  EXPECT_EQ(node.Eval("{erlang:trace_info({orion_tracer_workload, get_user, 2}, all),"
                      " code:is_loaded(orion_tracer)}."),
            "{{all,false},false}");
}

TEST_F(TracerTest, OverloadGuardStopsTheTracerAndLeavesTheNodeAsItWas) {
  Subprocess orion;
  ASSERT_TRUE(StartCapture(
      &orion, {"--max-rate", "1000", "--duration", "600", "orion_tracer_workload:get_user/2"}));
  // 100,000 calls, two probe hits each, in well under a second.
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(bob, 0, 100000)."), "ok");
  EXPECT_TRUE(testing::WaitFor([&] { return !orion.Alive(); }, std::chrono::seconds(15)))
      << "orion stops by itself over --max-rate";
  int status = -1;
  const json doc = StopCapture(&orion, &status);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(status, 0);
  ASSERT_TRUE(doc["stopped"].is_object()) << doc.dump();
  EXPECT_EQ(doc["stopped"]["reason"], "max_rate");
  EXPECT_GT(doc["stopped"]["rate"].get<uint64_t>(), 1000u);
  // What was captured before the stop is reported: the calls made until then.
  EXPECT_GT(testing::CountOf(doc, "orion_tracer_workload:get_user/2"), 0u);
  EXPECT_LE(testing::CountOf(doc, "orion_tracer_workload:get_user/2"), 100000u);
  EXPECT_EQ(NodeState(), kUntouchedState);
}

TEST_F(TracerTest, TwoOrionsStartingAtOnceOneWinsAndTheNodeStaysClean) {
  // Started together, both pass the "is a capture running" check at about the same time: the
  // claim (a registered name, taken before anything is loaded) lets exactly one through.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Subprocess a, b;
    const auto args = OrionArgs({"--duration", "2", "orion_tracer_workload:get_user/2"});
    ASSERT_TRUE(a.Start(args, {}, /*merge_stderr=*/true));
    ASSERT_TRUE(b.Start(args, {}, /*merge_stderr=*/true));
    const std::string out_a = a.ReadAll(std::chrono::seconds(60));
    const std::string out_b = b.ReadAll(std::chrono::seconds(60));
    const int status_a = a.Wait(std::chrono::seconds(10));
    const int status_b = b.Wait(std::chrono::seconds(10));
    EXPECT_EQ((status_a == 0) + (status_b == 0), 1) << out_a << "\n----\n" << out_b;
    const std::string& loser = status_a == 0 ? out_b : out_a;
    EXPECT_EQ(status_a == 0 ? status_b : status_a, 4) << loser;
    EXPECT_NE(loser.find("another Orion tracer capture is"), std::string::npos) << loser;
    EXPECT_TRUE(
        testing::WaitFor([&] { return NodeState() == kUntouchedState; }, std::chrono::seconds(10)))
        << NodeState();
  }
}

TEST_P(TracerReleaseTest, NodeIsLeftAsItWasAfterKill9OfOrion) {
  ASSERT_EQ(node_.Eval("register(spinner, spawn(orion_tracer_workload, spin, [self()])), ok."),
            "ok");
  Subprocess orion;
  ASSERT_TRUE(StartCapture(&orion, {"--duration", "600", "orion_tracer_workload:get_user/2"}));
  ASSERT_NE(NodeState(), kUntouchedState) << "the capture traces the node";
  orion.Kill();  // SIGKILL: the watchdog sees the connection drop
  EXPECT_TRUE(
      testing::WaitFor([&] { return NodeState() == kUntouchedState; }, std::chrono::seconds(10)))
      << NodeState();
  // ... and purges the module, which unloads the NIF library and frees its counts.
  EXPECT_TRUE(testing::WaitFor([&] { return !NifMapped(); }, std::chrono::seconds(10)));
  // The node runs on: its processes, and a new capture.
  EXPECT_EQ(node_.Eval("spinner ! stop, receive stopped -> ok after 5000 -> timeout end."), "ok");
  Subprocess again;
  ASSERT_TRUE(StartCapture(&again, {"--duration", "600", "orion_tracer_workload:get_user/2"}));
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(x, 0, 7)."), "ok");
  int status = -1;
  const json doc = StopCapture(&again, &status);
  const json* call = FindCall(doc, "orion_tracer_workload:get_user/2");
  ASSERT_NE(call, nullptr) << doc.dump();
  EXPECT_EQ((*call)["count"], 7u);
  EXPECT_EQ(NodeState(), kUntouchedState);
}

TEST_F(TracerTest, WhenTheWatchdogDiesOrionNoticesAndStillCleansUp) {
  Subprocess orion;
  ASSERT_TRUE(StartCapture(&orion, {"--duration", "600", "orion_tracer_workload:get_user/2"}));
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(x, 0, 5)."), "ok");
  ASSERT_EQ(node_.Eval("exit(whereis(orion_tracer_session), kill)."), "true");
  // orion checks the watchdog every 2 s, stops on its own, and clears what the watchdog set.
  const json doc = json::parse(orion.ReadAll(std::chrono::seconds(30)), nullptr, false);
  EXPECT_EQ(orion.Wait(std::chrono::seconds(10)), 0);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["target_exited"], true);
  const json* call = FindCall(doc, "orion_tracer_workload:get_user/2");
  ASSERT_NE(call, nullptr) << doc.dump();
  EXPECT_EQ((*call)["count"], 5u);
  EXPECT_EQ(NodeState(), kUntouchedState);
}

// Other tools' tracing is neither taken over nor in the way: Orion sets meta trace patterns
// only, so a process that another tracer traces keeps its tracer and flags and its calls are
// counted too, and another tool's local call pattern on the same function stays. A function
// that another tool meta-traces is refused. One Orion capture per node.
TEST_F(TracerTest, OneCaptureAtATimeAndOtherToolsTracesAreLeftAlone) {
  ASSERT_EQ(
      node_.Eval("register(other_tracer, spawn(fun L() -> receive _ -> L() end end)),"
                 " register(other_traced, spawn(fun L() -> receive {go, N, From} ->"
                 "   orion_tracer_workload:call_get_user(o, 0, N), From ! done, L() end end)),"
                 " erlang:trace(whereis(other_traced), true,"
                 "              [send, {tracer, whereis(other_tracer)}])."),
      "1");
  ASSERT_EQ(
      node_.Eval("erlang:trace_pattern({orion_tracer_workload, get_user, 2}, true, [local])."),
      "1");
  const std::string other_state =
      "{erlang:trace_info(whereis(other_traced), flags),"
      " erlang:trace_info(whereis(other_traced), tracer) =:= {tracer, whereis(other_tracer)},"
      " erlang:trace_info({orion_tracer_workload, get_user, 2}, traced)}.";
  ASSERT_EQ(node_.Eval(other_state), "{{flags,[send]},true,{traced,local}}");

  Subprocess first;
  ASSERT_TRUE(StartCapture(&first, {"--duration", "600", "orion_tracer_workload:get_user/2"}));
  std::string out;
  EXPECT_EQ(
      testing::RunCommand(OrionArgs({"--duration", "1", "orion_tracer_workload:loop/1"}), &out), 4);
  EXPECT_NE(out.find("another Orion tracer capture is running"), std::string::npos) << out;
  ASSERT_EQ(node_.Eval("orion_tracer_workload:call_get_user(x, 0, 11)."), "ok");
  ASSERT_EQ(node_.Eval("other_traced ! {go, 4, self()}, receive done -> ok after 5000 -> timeout "
                       "end."),
            "ok");
  int status = -1;
  const json doc = StopCapture(&first, &status);
  EXPECT_EQ(status, 0);
  const json* call = FindCall(doc, "orion_tracer_workload:get_user/2");
  ASSERT_NE(call, nullptr) << doc.dump();
  EXPECT_EQ((*call)["count"], 15u) << "11 calls of the REPL, 4 of the process another tool traces";
  EXPECT_EQ(node_.Eval(other_state), "{{flags,[send]},true,{traced,local}}");

  // Another tool's meta pattern: refused, and left as it was.
  ASSERT_EQ(node_.Eval("erlang:trace_pattern({orion_tracer_workload, loop, 1}, true,"
                       " [{meta, whereis(other_tracer)}])."),
            "1");
  EXPECT_EQ(
      testing::RunCommand(OrionArgs({"--duration", "1", "orion_tracer_workload:loop/1"}), &out), 2);
  EXPECT_NE(out.find("orion_tracer_workload:loop/1 is already meta-traced"), std::string::npos)
      << out;
  EXPECT_EQ(node_.Eval("erlang:trace_info({orion_tracer_workload, loop, 1}, meta) =:="
                       " {meta, whereis(other_tracer)}."),
            "true");
  EXPECT_EQ(node_.Eval("{code:is_loaded(orion_tracer), erlang:whereis(orion_tracer_session)}."),
            "{false,undefined}");
}

TEST_F(TracerTest, BadMatchSpecsAreClearErrorsAndChangeNothing) {
  struct Case {
    const char* spec;
    const char* message;
  };
  const Case cases[] = {
      {"[{[nadia, '_'], [], []}", "bad match spec: syntax error"},
      {"[{[nadia, '_'], [{bogus, '$1'}], []}]", "bad match spec: Function bogus/1"},
      {"[{[nadia], [], []}]", "has 1 arguments but orion_tracer_workload:get_user/2 takes 2"},
      {"[{['_', '_'], [], [{trace, [], [send]}]}]", "match spec bodies must be []"},
  };
  for (const Case& c : cases) {
    std::string out;
    const int status = testing::RunCommand(
        OrionArgs({"--match", c.spec, "--duration", "1", "orion_tracer_workload:get_user/2"}),
        &out);
    EXPECT_EQ(status, 2) << c.spec << ": " << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.spec << ": " << out;
    EXPECT_EQ(NodeState(), kUntouchedState) << c.spec;
  }
  std::string out;
  EXPECT_EQ(
      testing::RunCommand(OrionArgs({"--duration", "1", "orion_tracer_workload:nope/2"}), &out), 2);
  EXPECT_NE(out.find("has no function orion_tracer_workload:nope/2"), std::string::npos) << out;
  EXPECT_EQ(NodeState(), kUntouchedState);
}

TEST(TracerCliTest, UsageAndPrivilegeErrorsAreClear) {
  struct Case {
    std::vector<std::string> args;
    int status;
    const char* message;
  };
  const Case cases[] = {
      {{"--mode", "tracer", "m:f/1"}, 2, "--mode tracer needs --node NAME"},
      {{"--pid", "1", "--match", "[]", "m:f/1"}, 2, "--match needs tracer mode"},
      {{"--mode", "probes", "--daemon", "orion@h", "--match", "[]", "m:f/1"},
       2,
       "--match needs tracer mode"},
      {{"--mode", "auto", "--pid", "1", "m:f/1"}, 2, "--mode auto is for --daemon"},
      {{"--mode", "bogus", "--pid", "1", "m:f/1"}, 2, "--mode is auto, probes or tracer"},
      {{"--mode", "tracer", "--node", "a@b", "--pid", "1", "m:f/1"}, 2, "takes --node, not --pid"},
      // Unprivileged (nobody): refused before anything touches the node.
      {{"--mode", "tracer", "--node", "a@b", "m:f/1"}, 3, "needs root"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv;
    if (c.status == 3)
      argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    argv.push_back(ORION_TEST_ORION_BIN);
    argv.push_back("capture");
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    std::string out;
    const int status = testing::RunCommand(argv, &out);
    if (c.status == 3 && (status == 126 || status == 127)) continue;  // nobody cannot run it here
    EXPECT_EQ(status, c.status) << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace orion
