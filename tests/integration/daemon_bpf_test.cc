// orion daemon, end to end: a cluster of network namespaces on this machine, each with its own
// address, epmd, USDT BEAM and daemon (support/test_cluster.h); the orion CLI and plain `erl`
// shells in the root namespace talk to them over real distribution connections.
//
// What is proved: merged counts are the sums of exact per-host counts; the merged sketch is,
// bin for bin, the merge of the per-host sketches of the same calls; merged quantiles are within
// the sketch's accuracy of the exact quantiles of all calls; a plain shell gets the documented
// map; dead and cut-off peers are reported within the deadline and the rest is merged; hostile
// input gets the documented answer and the daemon keeps serving with bounded memory.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sketch/ddsketch.h"
#include "sketch/encoding/base64.h"
#include "sketch/encoding/ddsketch_encoding.h"
#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/capture_json.h"
#include "tests/integration/support/elixir_app.h"
#include "tests/integration/support/oracle.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/process_stats.h"
#include "tests/integration/support/test_cluster.h"
#include "userspace/beam/beam_process.h"
#include "userspace/daemon/host_capture.h"
#include "userspace/erlang/c_node.h"
#include "userspace/erlang/gen_call.h"
#include "userspace/erlang/term.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::FindCall;
using testing::CountOf;
using testing::kAlpha;
using testing::LineAfter;
using testing::RssKiB;
using testing::TestCluster;

sketch::CountSketch SketchOf(const json& call) {
  auto bytes = sketch::Base64Decode(call["sketch"].get<std::string>());
  EXPECT_TRUE(bytes.ok());
  auto decoded = sketch::DecodeDDSketch<sketch::DenseStore<uint64_t>>(*bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.status().message();
  return *decoded;
}

std::string StatusOf(const json& doc, const std::string& node) {
  for (const auto& n : doc["nodes"]) {
    if (n["node"] == node) return n["status"];
  }
  return "absent";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until each daemon of the cluster logged `captures` attached captures. (The BEAM's
// USDT semaphores cannot tell: the kernel counts a probe site once however many programs use
// it.)
::testing::AssertionResult WaitForCaptures(TestCluster& cluster, size_t captures,
                                           std::chrono::seconds timeout) {
  std::vector<size_t> seen(cluster.size());
  const bool ok = testing::WaitFor(
      [&] {
        bool all = true;
        for (int i = 0; i < cluster.size(); ++i) {
          seen[i] = Occurrences(ReadFile(cluster.daemon_log(i)), "capture attached");
          all = all && seen[i] >= captures;
        }
        return all;
      },
      timeout);
  if (ok) return ::testing::AssertionSuccess();
  std::string values;
  for (size_t s : seen) values += " " + std::to_string(s);
  return ::testing::AssertionFailure() << "captures attached per daemon:" << values;
}

class DaemonClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  // On failure, the daemons' logs say what they saw.
  void TearDown() override {
    if (!HasFailure()) return;
    for (int i = 0; i < cluster_.size(); ++i) {
      std::string text = ReadFile(cluster_.daemon_log(i));
      if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
      std::fprintf(stderr, "---- %s log (%s) ----\n%s\n", cluster_.daemon_node(i).c_str(),
                   cluster_.daemon_log(i).c_str(), text.c_str());
    }
  }

  // orion capture --daemon ... --json in the background.
  std::future<std::pair<int, json>> CaptureAsync(std::vector<std::string> args) {
    return std::async(std::launch::async, [this, args] {
      std::vector<std::string> argv = {"capture", "--json", "--cookie-file",
                                       cluster_.cookie_file()};
      argv.insert(argv.end(), args.begin(), args.end());
      std::string out;
      const int status = cluster_.RunOrion(argv, &out);
      return std::pair{status, json::parse(out, nullptr, /*allow_exceptions=*/false)};
    });
  }

  TestCluster cluster_;
};

const json* NodeEntry(const json& doc, const std::string& node) {
  for (const auto& n : doc["nodes"]) {
    if (n["node"] == node) return &n;
  }
  return nullptr;
}

TEST_F(DaemonClusterTest, ClusterCaptureMergesEveryHostExactly) {
  ASSERT_TRUE(cluster_.Create(3)) << cluster_.error();
  const std::vector<std::string> patterns = {"orion_workload:known/1", "orion_workload:sleeper/1"};
  // One cluster capture through host 0, with each host's own part (--per-node): the merged
  // result must be exactly the merge of the parts. (Two captures side by side would not do:
  // each takes its own timestamps, a few hundred nanoseconds apart.)
  std::vector<std::string> args = {"--daemon", cluster_.daemon_node(0), "--cluster",
                                   "--per-node", "--duration", "20"};
  args.insert(args.end(), patterns.begin(), patterns.end());
  auto whole = CaptureAsync(args);
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(15)));

  std::vector<double> all_sleeps;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(cluster_.beam(i).Eval("orion_workload:call_known(" + std::to_string(1000 * (i + 1)) +
                                    ")."),
              "ok");
    auto sleeps = testing::ParseIntegerList(cluster_.beam(i).Eval(
        "orion_workload:call_sleeper(40, " + std::to_string(2 * (i + 1)) + ")."));
    ASSERT_EQ(sleeps.size(), 40u);
    all_sleeps.insert(all_sleeps.end(), sleeps.begin(), sleeps.end());
  }

  auto [status, merged] = whole.get();
  ASSERT_EQ(status, 0);
  ASSERT_FALSE(merged.is_discarded());
  ASSERT_EQ(merged["nodes"].size(), 3u);
  EXPECT_EQ(CountOf(merged, "orion_workload:known/1"), 1000u + 2000u + 3000u);
  EXPECT_EQ(CountOf(merged, "orion_workload:sleeper/1"), 3u * 40);

  for (const std::string& mfa : patterns) {
    std::optional<sketch::CountSketch> expected;
    for (int i = 0; i < 3; ++i) {
      const json* part = NodeEntry(merged, cluster_.daemon_node(i));
      ASSERT_NE(part, nullptr);
      ASSERT_EQ((*part)["status"], "ok") << part->dump();
      if (mfa == "orion_workload:known/1") {
        EXPECT_EQ(CountOf(*part, mfa), 1000u * (i + 1)) << "host " << i;
      }
      const json* call = FindCall(*part, mfa);
      ASSERT_NE(call, nullptr) << "host " << i << " " << mfa;
      if (!expected) {
        expected = SketchOf(*call);
      } else {
        ASSERT_TRUE(expected->merge(SketchOf(*call)).ok());
      }
    }
    const sketch::CountSketch got = SketchOf(*FindCall(merged, mfa));
    EXPECT_EQ(sketch::encoding_internal::Bins(got.positive_store()),
              sketch::encoding_internal::Bins(expected->positive_store()))
        << mfa;
    EXPECT_EQ(got.count(), expected->count()) << mfa;
    EXPECT_EQ((*FindCall(merged, mfa))["max_ns"], static_cast<uint64_t>(expected->max())) << mfa;
    EXPECT_EQ((*FindCall(merged, mfa))["sum_ns"], static_cast<uint64_t>(expected->sum())) << mfa;
  }
  // Quantiles of the merged sleeps against the exact quantiles of all sleeps together, as the
  // workload timed them.
  const json& sleeper = *FindCall(merged, "orion_workload:sleeper/1");
  testing::ExpectQuantilesMatchOracle(sleeper, all_sleeps, kAlpha);
}

TEST_F(DaemonClusterTest, TracerModeThroughTheDaemonsCountsWhatTheMatchSpecSelects) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  // A match spec makes every daemon capture its nodes in tracer mode (ERTS call tracing with
  // orion_tracer, loaded over the distribution channel with the cluster's cookie).
  auto whole = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--cluster", "--per-node",
                             "--duration", "15", "--match", "[{[7], [], []}]",
                             "orion_workload:known/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(30)));
  for (int i = 0; i < 2; ++i) {
    // 100 * (i + 1) calls of known(7), and call_known(500): 500 calls of known/1, one of them
    // known(7).
    ASSERT_EQ(cluster_.beam(i).Eval("begin [orion_workload:known(7) || _ <- lists:seq(1, " +
                                    std::to_string(100 * (i + 1)) +
                                    ")], orion_workload:call_known(500) end."),
              "ok");
  }
  auto [status, merged] = whole.get();
  ASSERT_EQ(status, 0);
  ASSERT_FALSE(merged.is_discarded());
  EXPECT_EQ(CountOf(merged, "orion_workload:known/1"), 101u + 201u) << merged.dump();
  for (int i = 0; i < 2; ++i) {
    const json* part = NodeEntry(merged, cluster_.daemon_node(i));
    ASSERT_NE(part, nullptr);
    EXPECT_EQ((*part)["status"], "ok") << part->dump();
    EXPECT_EQ(CountOf(*part, "orion_workload:known/1"), 100u * (i + 1) + 1) << "host " << i;
  }
  // Each daemon cleared what it set: no pattern, no orion_tracer, and the nodes run on.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cluster_.beam(i).Eval("erlang:trace_info({orion_workload, known, 1}, all)."),
              "{all,false}");
    EXPECT_TRUE(testing::WaitFor(
        [&] { return cluster_.beam(i).Eval("code:is_loaded(orion_tracer).") == "false"; },
        std::chrono::seconds(10)));
    EXPECT_EQ(cluster_.beam(i).Eval("orion_workload:call_known(10)."), "ok");
  }
  // A match spec the nodes refuse is the request's error, and changes nothing.
  std::string out;
  EXPECT_NE(cluster_.RunOrion({"capture", "--daemon", cluster_.daemon_node(0), "--cluster",
                               "--cookie-file", cluster_.cookie_file(), "--duration", "2",
                               "--match", "[{[7], [], [{message, hello}]}]",
                               "orion_workload:known/1"},
                              &out),
            0);
  EXPECT_NE(out.find("match spec bodies must be []"), std::string::npos) << out;
  EXPECT_EQ(cluster_.beam(0).Eval("erlang:trace_info({orion_workload, known, 1}, all)."),
            "{all,false}");
}

TEST_F(DaemonClusterTest, PlainErlangShellGetsTheDocumentedMap) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  // The BEAMs call known/1 continuously; the shell asks for a 3 s cluster capture.
  for (int i = 0; i < 2; ++i) {
    ASSERT_NE(cluster_.beam(i).Eval(
                  "spawn(fun L() -> orion_workload:call_known(100), timer:sleep(5), L() end)."),
              "DEAD");
  }
  const std::string out = cluster_.ShellEval(
      "{ok, #{calls := Calls, nodes := Nodes}} = gen_server:call({orion, '" +
      cluster_.daemon_node(0) +
      "'}, {capture, #{patterns => [<<\"orion_workload:known/1\">>], duration_ms => 3000}}, "
      "30000),"
      "[#{mfa := Mfa, count := Count, p50_ns := P50, p90_ns := P90, p99_ns := P99, "
      "   p999_ns := P999, max_ns := Max, sketch := Sketch}] = Calls,"
      "io:format(\"MFA ~s~n\", [Mfa]),"
      "io:format(\"ORDERED ~p~n\", [Count > 0 andalso P50 =< P90 andalso P90 =< P99 andalso "
      "                              P99 =< P999 andalso P999 =< Max * 1.01]),"
      "io:format(\"SKETCH ~p~n\", [is_binary(Sketch) andalso byte_size(Sketch) > 0]),"
      "io:format(\"NODES ~p~n\", [lists:sort([{N, S} || #{node := N, status := S} <- Nodes])]),"
      "io:format(\"PING ~p~n\", [gen_server:call({orion, '" + cluster_.daemon_node(1) +
      "'}, {ping})]),"
      "{ok, V} = gen_server:call({orion, '" + cluster_.daemon_node(1) + "'}, {version}),"
      "io:format(\"PROTOCOL ~p~n\", [maps:get(protocol, V)]),"
      "{ok, T} = gen_server:call({orion, '" + cluster_.daemon_node(1) + "'}, {targets}),"
      "io:format(\"TARGETS ~p~n\", [[{N, F, P} || #{node := N, flavor := F, function_probes := P} "
      "                              <- maps:get(beams, T)]]),");
  EXPECT_EQ(LineAfter(out, "MFA "), "orion_workload:known/1") << out;
  EXPECT_EQ(LineAfter(out, "ORDERED "), "true") << out;
  EXPECT_EQ(LineAfter(out, "SKETCH "), "true") << out;
  EXPECT_EQ(LineAfter(out, "NODES "),
            "[{'" + cluster_.daemon_node(0) + "',ok},{'" + cluster_.daemon_node(1) + "',ok}]")
      << out;
  EXPECT_EQ(LineAfter(out, "PING "), "{ok,pong}") << out;
  EXPECT_EQ(LineAfter(out, "PROTOCOL "), "2") << out;
  EXPECT_EQ(LineAfter(out, "TARGETS "), "[{'" + cluster_.beam_node(1) + "',emu,true}]") << out;
}

TEST_F(DaemonClusterTest, DeadAndCutOffPeersAreReportedInTimeAndTheRestIsMerged) {
  ASSERT_TRUE(cluster_.Create(3)) << cluster_.error();
  constexpr int kDurationS = 12;
  const auto started = std::chrono::steady_clock::now();
  auto whole = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--cluster", "--duration",
                             std::to_string(kDurationS), "orion_workload:known/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(kDurationS - 4)));
  ASSERT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(500)."), "ok");
  cluster_.KillDaemon(1);  // kill -9 mid-capture
  cluster_.CutOff(2);      // host 2 drops off the network mid-capture
  auto [status, doc] = whole.get();
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  cluster_.Restore(2);

  ASSERT_EQ(status, 0) << "the rest is still merged and shown";
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(StatusOf(doc, cluster_.daemon_node(0)), "ok");
  EXPECT_EQ(StatusOf(doc, cluster_.daemon_node(1)), "error");
  EXPECT_EQ(StatusOf(doc, cluster_.daemon_node(2)), "error");
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 500u);
  // The daemon's deadline for its peers is the duration plus its grace (10 s); the CLI's own
  // deadline (duration + 20 s) was not reached: the answer came from the daemon.
  EXPECT_LT(took, kDurationS + 20);

  // The survivors keep serving: host 2 is back, host 1 is still dead.
  std::string out;
  ASSERT_EQ(cluster_.RunOrion({"capture", "--json", "--cookie-file", cluster_.cookie_file(),
                               "--daemon", cluster_.daemon_node(0), "--cluster", "--duration",
                               "1", "orion_workload:known/1"},
                              &out),
            0);
  const json again = json::parse(out, nullptr, false);
  ASSERT_FALSE(again.is_discarded()) << out;
  EXPECT_EQ(StatusOf(again, cluster_.daemon_node(0)), "ok");
  EXPECT_EQ(StatusOf(again, cluster_.daemon_node(1)), "error");
  EXPECT_EQ(StatusOf(again, cluster_.daemon_node(2)), "ok");
  EXPECT_TRUE(cluster_.DaemonAlive(0));
  EXPECT_TRUE(cluster_.DaemonAlive(2));
}

TEST_F(DaemonClusterTest, BeamRestartDuringACaptureIsReportedNotCrashedOn) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  auto capture = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--duration", "10",
                               "orion_workload:known/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(8)));
  ASSERT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(300)."), "ok");
  // Ended calls reach the kernel in batches, at most 20 ms and a process switch late
  // (docs/probes.md, patch 0010): a BEAM killed sooner takes its last batch with it.
  ASSERT_EQ(cluster_.beam(0).Eval("timer:sleep(100)."), "ok");
  ASSERT_TRUE(cluster_.RestartBeam(0)) << cluster_.error();
  auto [status, doc] = capture.get();
  ASSERT_EQ(status, 0);
  EXPECT_EQ(StatusOf(doc, cluster_.daemon_node(0)), "ok");
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), 300u) << "the calls before the restart";
  EXPECT_TRUE(cluster_.DaemonAlive(0));
  const std::string text = ReadFile(cluster_.daemon_log(0));
  EXPECT_NE(text.find("exited during the capture"), std::string::npos) << text;

  // The restarted node is found by the next capture.
  auto next = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--duration", "10",
                            "orion_workload:known/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 2, std::chrono::seconds(8)));
  ASSERT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(200)."), "ok");
  auto [next_status, next_doc] = next.get();
  ASSERT_EQ(next_status, 0);
  EXPECT_EQ(CountOf(next_doc, "orion_workload:known/1"), 200u);
}

TEST_F(DaemonClusterTest, OverloadGuardStopsAHostsCaptureAndSaysSo) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  // The BEAM pairs calls itself (patch 0007): one probe per call of known/1, a million.
  auto capture = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--duration", "30",
                               "--max-rate", "20000", "orion_workload:known/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(10)));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_NE(cluster_.beam(0).Eval("orion_workload:call_known(1000000)."), "DEAD");
  auto [status, doc] = capture.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20))
      << "stopped long before its 30 s";
  ASSERT_EQ(status, 0);
  const json* node = NodeEntry(doc, cluster_.daemon_node(0));
  ASSERT_NE(node, nullptr);
  EXPECT_EQ((*node)["status"], "ok");
  ASSERT_TRUE((*node).contains("stopped")) << doc.dump();
  EXPECT_EQ((*node)["stopped"]["reason"], "max_rate");
  EXPECT_GT((*node)["stopped"]["rate"].get<uint64_t>(), 20000u);
}

TEST_F(DaemonClusterTest, DiscoveryFindsPeersThroughTheBeamNodes) {
  ASSERT_TRUE(cluster_.Create(3, /*daemons=*/false)) << cluster_.error();
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(cluster_.beam(0).Eval("net_kernel:connect_node('" + cluster_.beam_node(i) + "')."),
              "true");
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster_.StartDaemon(i, {}, /*discover=*/true));
  const std::string expr = "{ok, T} = gen_server:call({orion, '" + cluster_.daemon_node(0) +
                           "'}, {targets}), io:format(\"PEERS ~p~n\", [maps:get(peers, T)]),";
  const std::string want = "[#{node => '" + cluster_.daemon_node(1) + "'},#{node => '" +
                           cluster_.daemon_node(2) + "'}]";
  std::string out;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        out = cluster_.ShellEval(expr);
        return LineAfter(out, "PEERS ") == want;
      },
      std::chrono::seconds(40)))
      << out;
}

TEST_F(DaemonClusterTest, HostileInputGetsTheDocumentedAnswerAndMemoryStaysBounded) {
  ASSERT_TRUE(cluster_.Create(1, true, {"--max-captures", "2"})) << cluster_.error();
  const pid_t daemon = cluster_.daemon_pid(0);
  const std::string node = cluster_.daemon_node(0);

  // A wrong cookie is refused by the handshake.
  EXPECT_EQ(LineAfter(cluster_.ShellEval("io:format(\"PING ~p~n\", [net_adm:ping('" + node +
                                             "')]),",
                                         "not-the-cookie"),
                      "PING "),
            "pang");
  std::string out;
  EXPECT_EQ(cluster_.RunOrion({"capture", "--daemon", node, "--cookie-file", "/dev/null",
                               "--duration", "1", "lists:sort/1"},
                              &out),
            3)
      << "a cookie file others can read is refused";

  // Raw bytes that are not a term, and a term that is not a gen_server call: dropped.
  auto self = erlang::CNode::Create(*erlang::ParseNodeName("hostile@10.77.0.254", true),
                                    TestCluster::kCookie);
  ASSERT_TRUE(self.ok());
  {
    auto conn = (*self)->Connect(node, 3000);
    ASSERT_TRUE(conn.ok()) << conn.status().message();
    const std::vector<uint8_t> garbage = {131, 104, 3, 100, 0, 200, 1, 2, 3};
    EXPECT_TRUE((*conn)->SendToRegistered(**self, "orion", garbage, 1000).ok());
    const std::vector<uint8_t> not_a_call =
        erlang::EncodeTerm(erlang::Term::Tuple({erlang::Term::Atom("hello")}));
    EXPECT_TRUE((*conn)->SendToRegistered(**self, "orion", not_a_call, 1000).ok());
  }
  auto pong = erlang::GenServerCall(**self, node, "orion",
                                    erlang::Term::Tuple({erlang::Term::Atom("ping")}),
                                    std::chrono::steady_clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(pong.ok()) << pong.status().message();
  EXPECT_EQ(erlang::FormatTerm(*pong), "{ok,pong}");

  const uint64_t rss_before = RssKiB(daemon);
  out = cluster_.ShellEval(
      "D = '" + node + "',"
      "Call = fun(Req, T) -> case catch gen_server:call({orion, D}, Req, T) of"
      "  {error, {Kind, Msg}} when is_binary(Msg) -> {error, Kind};"
      "  {'EXIT', {timeout, _}} -> timeout;"
      "  {'EXIT', {{nodedown, _}, _}} -> nodedown;"
      "  Other -> Other end end,"
      "P = [<<\"orion_workload:known/1\">>],"
      "io:format(\"UNKNOWN ~p~n\", [Call({bogus}, 5000)]),"
      "io:format(\"NOTATUPLE ~p~n\", [Call(hello, 5000)]),"
      "io:format(\"BADKEY ~p~n\", [Call({capture, #{patterns => P, duration_ms => 100, evil => 1}}, 5000)]),"
      "io:format(\"TOOMANY ~p~n\", [Call({capture, #{patterns => [<<\"m:f/1\">> || _ <- lists:seq(1, 100)], duration_ms => 100}}, 5000)]),"
      "io:format(\"DURATION ~p~n\", [Call({capture, #{patterns => P, duration_ms => 100000000}}, 5000)]),"
      "io:format(\"BADPATTERN ~p~n\", [Call({capture, #{patterns => [<<\"m:f(\">>], duration_ms => 100}}, 5000)]),"
      "io:format(\"NOTBINARY ~p~n\", [Call({capture, #{patterns => [self()], duration_ms => 100}}, 5000)]),"
      "Deep = lists:foldl(fun(_, A) -> [A] end, x, lists:seq(1, 200)),"
      "io:format(\"DEEP ~p~n\", [Call({capture, #{patterns => [Deep], duration_ms => 100}}, 2000)]),"
      "io:format(\"AFTERDEEP ~p~n\", [Call({ping}, 5000)]),"
      "Big = binary:copy(<<\"a\">>, 4000000),"
      "io:format(\"BIG ~p~n\", [Call({capture, #{patterns => [Big], duration_ms => 100}}, 5000)]),"
      "timer:sleep(200),"
      "io:format(\"AFTERBIG ~p~n\", [Call({ping}, 5000)]),"
      "Self = self(),"
      "[spawn(fun() -> Self ! {capture, Call({capture, #{patterns => P, duration_ms => 2000, scope => local}}, 20000)} end) || _ <- lists:seq(1, 3)],"
      "Caps = [receive {capture, R} -> R after 25000 -> timeout end || _ <- lists:seq(1, 3)],"
      "io:format(\"BUSY ~p~n\", [lists:sort([element(1, C) || C <- Caps])]),"
      "[spawn(fun() -> Self ! {pong, Call({ping}, 30000)} end) || _ <- lists:seq(1, 1000)],"
      "Pongs = [receive {pong, R} -> R after 40000 -> timeout end || _ <- lists:seq(1, 1000)],"
      "io:format(\"BURST ~p~n\", [length([ok || {ok, pong} <- Pongs])]),");
  EXPECT_EQ(LineAfter(out, "UNKNOWN "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "NOTATUPLE "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "BADKEY "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "TOOMANY "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "DURATION "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "BADPATTERN "), "{error,bad_request}") << out;
  EXPECT_EQ(LineAfter(out, "NOTBINARY "), "{error,bad_request}") << out;
  // Nested deeper than the decoder allows: not decoded at all, so nobody to answer: dropped.
  EXPECT_EQ(LineAfter(out, "DEEP "), "timeout") << out;
  EXPECT_EQ(LineAfter(out, "AFTERDEEP "), "{ok,pong}") << out;
  // Over the message size limit: the connection is dropped before the body is read.
  EXPECT_EQ(LineAfter(out, "BIG "), "nodedown") << out;
  EXPECT_EQ(LineAfter(out, "AFTERBIG "), "{ok,pong}") << out;
  // --max-captures 2: the third concurrent capture is refused as busy.
  EXPECT_EQ(LineAfter(out, "BUSY "), "[error,ok,ok]") << out;
  EXPECT_EQ(LineAfter(out, "BURST "), "1000") << out;
  EXPECT_TRUE(cluster_.DaemonAlive(0));
  const uint64_t rss_after = RssKiB(daemon);
  EXPECT_LT(rss_after, rss_before + 64 * 1024) << "RSS grew from " << rss_before << " KiB to "
                                               << rss_after << " KiB";
}

TEST_F(DaemonClusterTest, TopThroughTheDaemonsShowsEveryHostsBeams) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  // Host 1 has a registered process with a growing mailbox; host 0 a busy loop.
  ASSERT_NE(cluster_.beam(1).Eval("register(orion_sink, spawn(fun() -> receive never -> ok end end))."),
            "DEAD");
  ASSERT_NE(cluster_.beam(0).Eval("register(orion_spin, spawn(fun L() -> _ = lists:seq(1, 100), L() end))."),
            "DEAD");
  auto sends = std::async(std::launch::async, [&] {
    // Once the top has attached on host 1 (its daemon logs it): 100,000 messages.
    if (!testing::WaitFor(
            [&] {
              return ReadFile(cluster_.daemon_log(1)).find("top attached") != std::string::npos;
            },
            std::chrono::seconds(20))) {
      return std::string("top did not attach");
    }
    return cluster_.beam(1).Eval("[orion_sink ! {m, I} || I <- lists:seq(1, 100000)], ok.");
  });
  const std::string out = cluster_.ShellEval(
      "{ok, #{beams := Beams, nodes := Nodes}} = gen_server:call({orion, '" +
      cluster_.daemon_node(0) +
      "'}, {top, #{duration_ms => 8000, sort => queue, limit => 1}}, 60000),"
      "[io:format(\"BEAM ~s ~s ~p ~p~n\", [maps:get(node, B), maps:get(name, P), "
      "   maps:get(queue_len_max, P) >= 100000, maps:get(host, B)]) "
      " || B <- lists:sort(Beams), P <- maps:get(processes, B)],"
      // Where the queue lengths came from, and what the node said (memory, current function,
      // ETS tables): the daemon asks each node with the cluster's cookie.
      "[io:format(\"COLS ~s ~p ~p ~p ~p~n\", [maps:get(node, B), maps:get(queue_source, B), "
      "   is_integer(maps:get(memory, P)), is_binary(maps:get(current_function, P)), "
      "   maps:get(tables, maps:get(ets, B)) > 5]) "
      " || B <- lists:sort(Beams), P <- maps:get(processes, B)],"
      "io:format(\"NODES ~p~n\", [lists:sort([S || #{status := S} <- Nodes])]),");
  ASSERT_EQ(sends.get(), "ok");
  EXPECT_EQ(LineAfter(out, "BEAM " + cluster_.beam_node(1) + " "),
            "orion_sink true '" + cluster_.daemon_node(1) + "'")
      << out;
  EXPECT_EQ(LineAfter(out, "COLS " + cluster_.beam_node(1) + " "), "senders true true true")
      << out;
  EXPECT_EQ(LineAfter(out, "NODES "), "[ok,ok]") << out;
}

// A host as an operator finds it: an Elixir application node, the Erlang node the cluster
// starts (it has no Bar.Repo either), and the operator's own Elixir shell, which asks.
class DaemonBeamsTest : public DaemonClusterTest {
 protected:
  // The Elixir app (tests/elixir/bar_repo_app.exs, support/elixir_app.h) on host 0: bar@<host 0>.
  bool StartApp() {
    app_pid_ = testing::StartBarRepoApp(cluster_, 0, &app_);
    return app_pid_ != 0;
  }
  std::string app_node() const { return testing::BarRepoAppNode(cluster_, 0); }

  testing::Subprocess app_;
  pid_t app_pid_ = 0;
};

TEST_F(DaemonBeamsTest, AShellWithoutTheModuleDoesNotFailItsHostsCapture) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  ASSERT_TRUE(StartApp()) << "the Elixir app did not start in the emu flavor";
  // The operator's shell: Debian's elixir on Debian's erl (a JIT node without USDT probes),
  // on the same host, asks the daemon with no node given, as in docs/protocol.md.
  testing::Subprocess shell;
  std::vector<std::string> argv = cluster_.launcher(0);
  argv.insert(argv.end(), {"/usr/bin/elixir", "--name", "shell@" + cluster_.ip(0),
                           "--cookie", TestCluster::kCookie, "-e", R"(
      reply = GenServer.call({:orion, :")" + cluster_.daemon_node(0) + R"("},
                             {:capture, %{patterns: ["Bar.Repo.get/1"], duration_ms: 8000}},
                             60_000)
      {:ok, %{calls: calls, nodes: [%{status: status, beams: beams}]}} = reply
      for c <- calls, do: IO.puts("CALL #{c.mfa} #{c.count}")
      IO.puts("HOST #{status}")
      for b <- beams do
        IO.puts("BEAM #{b.os_pid} #{b.node} #{b.flavor} #{b.mode} #{b.status} #{b.calls} #{b.reason}")
      end
      IO.puts("TRACER #{:code.is_loaded(:orion_tracer)}")
      IO.puts("SHELL #{System.pid()}")
    )"});
  ASSERT_TRUE(shell.Start(argv, {"PATH=/usr/bin:/bin"}, /*merge_stderr=*/true));
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(30)));
  app_.WriteLine("run 1000");
  ASSERT_EQ(app_.WaitForLine("DONE ", std::chrono::seconds(20)), "DONE 1000");
  const std::string out = shell.ReadAll(std::chrono::seconds(60));
  EXPECT_EQ(shell.Wait(std::chrono::seconds(5)), 0) << out;

  // Every call of the app, no error for the host.
  EXPECT_EQ(LineAfter(out, "CALL "), "'Elixir.Bar.Repo':get/1 1000") << out;
  EXPECT_EQ(LineAfter(out, "HOST "), "ok") << out;
  const std::string shell_pid = LineAfter(out, "SHELL ");
  // Each BEAM on its own: the app counted, the cluster's Erlang node (probes mode: no function
  // of its loaded code matches) and the asking shell (tracer mode: the module does not load)
  // lack the module.
  EXPECT_EQ(LineAfter(out, "BEAM " + std::to_string(app_pid_) + " "),
            app_node() + " emu probes counted 1000 ")
      << out;
  EXPECT_EQ(LineAfter(out, "BEAM " + std::to_string(cluster_.beam(0).os_pid()) + " "),
            cluster_.beam_node(0) +
                " emu probes module_not_loaded 0 none of the patterns names a function of its "
                "loaded code")
      << out;
  EXPECT_EQ(LineAfter(out, "BEAM " + shell_pid + " "),
            "shell@" + cluster_.ip(0) +
                " jit tracer module_not_loaded 0 cannot load module 'Elixir.Bar.Repo': nofile")
      << out;
  size_t beam_lines = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) beam_lines += line.rfind("BEAM ", 0) == 0;
  EXPECT_EQ(beam_lines, 3u) << out;
  // Nothing of Orion stays in the shell.
  EXPECT_EQ(LineAfter(out, "TRACER "), "false") << out;

  // The CLI's --json has the same per-BEAM detail (the shell has exited by now).
  auto cli =
      CaptureAsync({"--daemon", cluster_.daemon_node(0), "--duration", "4", "Bar.Repo.get/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 2, std::chrono::seconds(30)));
  app_.WriteLine("run 500");
  ASSERT_EQ(app_.WaitForLine("DONE ", std::chrono::seconds(20)), "DONE 500");
  auto [status, doc] = cli.get();
  ASSERT_EQ(status, 0);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(CountOf(doc, "'Elixir.Bar.Repo':get/1"), 500u) << doc.dump();
  const json* host = NodeEntry(doc, cluster_.daemon_node(0));
  ASSERT_NE(host, nullptr);
  std::map<std::string, std::string> statuses;
  for (const json& b : (*host)["beams"]) {
    statuses[b["node"].get<std::string>()] = b["mode"].get<std::string>() + " " +
                                             b["status"].get<std::string>() + " " +
                                             std::to_string(b["calls"].get<uint64_t>());
  }
  EXPECT_EQ(statuses, (std::map<std::string, std::string>{
                          {app_node(), "probes counted 500"},
                          {cluster_.beam_node(0), "probes module_not_loaded 0"}}))
      << host->dump();
}

// The overload guard is each BEAM's: the call-heavy node is detached alone and listed refused
// with its rate, and the app on the same host goes on being counted.
TEST_F(DaemonBeamsTest, TheOverloadGuardStopsOnlyTheBeamOverItsRate) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  ASSERT_TRUE(StartApp()) << "the Elixir app did not start in the emu flavor";
  auto capture = CaptureAsync({"--daemon", cluster_.daemon_node(0), "--duration", "15",
                               "--max-rate", "20000", "orion_workload:known/1",
                               "Bar.Repo.get/1"});
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(30)));
  // The cluster's node pairs calls itself (patch 0007): one event per call, a million.
  ASSERT_NE(cluster_.beam(0).Eval("orion_workload:call_known(1000000)."), "DEAD");
  ASSERT_TRUE(testing::WaitFor(
      [&] { return ReadFile(cluster_.daemon_log(0)).find("stopped early") != std::string::npos; },
      std::chrono::seconds(10)));
  // After the heavy node was stopped: the app's calls are still counted.
  app_.WriteLine("run 500");
  ASSERT_EQ(app_.WaitForLine("DONE ", std::chrono::seconds(20)), "DONE 500");
  auto [status, doc] = capture.get();
  ASSERT_EQ(status, 0);
  ASSERT_FALSE(doc.is_discarded());
  const json* host = NodeEntry(doc, cluster_.daemon_node(0));
  ASSERT_NE(host, nullptr);
  EXPECT_EQ((*host)["status"], "ok") << host->dump();
  ASSERT_TRUE(host->contains("stopped")) << host->dump();
  EXPECT_EQ((*host)["stopped"]["reason"], "max_rate") << host->dump();
  EXPECT_EQ(CountOf(doc, "'Elixir.Bar.Repo':get/1"), 500u) << doc.dump();
  std::map<std::string, json> beams;
  for (const json& b : (*host)["beams"]) beams[b["node"].get<std::string>()] = b;
  ASSERT_EQ(beams.size(), 2u) << host->dump();
  EXPECT_EQ(beams[app_node()]["status"], "counted") << host->dump();
  EXPECT_EQ(beams[app_node()]["calls"], 500u) << host->dump();
  const json& heavy = beams[cluster_.beam_node(0)];
  EXPECT_EQ(heavy["status"], "refused") << host->dump();
  EXPECT_NE(heavy["reason"].get<std::string>().find("over max_rate 20000"), std::string::npos)
      << host->dump();
  // Its calls until then are counted (all of them, if the million ended before the guard's
  // once-a-second look), and they are what the merged result has of known/1.
  EXPECT_GT(heavy["calls"].get<uint64_t>(), 0u) << host->dump();
  EXPECT_EQ(CountOf(doc, "orion_workload:known/1"), heavy["calls"].get<uint64_t>())
      << doc.dump();
}

// The issue's cluster: three hosts, asked from a plain `erl` shell on host 0, which is a BEAM
// of that host and has no orion_workload. Every call of every host is merged; the shell is
// listed as lacking the module, not as its host's error.
TEST_F(DaemonBeamsTest, AClusterCaptureAskedFromAShellOnAHostCountsEveryHostsCalls) {
  ASSERT_TRUE(cluster_.Create(3)) << cluster_.error();
  auto asked = std::async(std::launch::async, [this] {
    return cluster_.ShellEvalOn(
        0,
        "{ok, #{calls := Calls, nodes := Nodes}} = gen_server:call({orion, '" +
            cluster_.daemon_node(0) +
            "'}, {capture, #{patterns => [<<\"orion_workload:known/1\">>], "
            "duration_ms => 8000}}, 60000),"
            "[io:format(\"CALL ~s ~p~n\", [M, C]) || #{mfa := M, count := C} <- Calls],"
            "[io:format(\"HOST ~s ~s~n\", [N, S]) || #{node := N, status := S} <- Nodes],"
            "[io:format(\"BEAM ~s ~s ~s ~p ~s~n\", [N, B, S, C, R]) || #{node := N, beams := Bs} "
            "<- Nodes, #{node := B, status := S, calls := C, reason := R} <- Bs],"
            "io:format(\"TRACER ~p~n\", [code:is_loaded(orion_tracer)]),"
            "io:format(\"SHELL ~s~n\", [node()]),");
  });
  ASSERT_TRUE(WaitForCaptures(cluster_, 1, std::chrono::seconds(30)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(cluster_.beam(i).Eval("orion_workload:call_known(300)."), "ok");
  }
  const std::string out = asked.get();

  EXPECT_EQ(LineAfter(out, "CALL "), "orion_workload:known/1 900") << out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(LineAfter(out, "HOST " + cluster_.daemon_node(i) + " "), "ok") << out;
    EXPECT_EQ(LineAfter(out, "BEAM " + cluster_.daemon_node(i) + " " + cluster_.beam_node(i) + " "),
              "counted 300 ")
        << out;
  }
  const std::string shell = LineAfter(out, "SHELL ");
  ASSERT_FALSE(shell.empty()) << out;
  EXPECT_EQ(LineAfter(out, "BEAM " + cluster_.daemon_node(0) + " " + shell + " "),
            "module_not_loaded 0 cannot load module orion_workload: nofile")
      << out;
  EXPECT_EQ(Occurrences(out, "\nBEAM ") + (out.rfind("BEAM ", 0) == 0), 4u) << out;
  // Nothing of Orion stays in the shell.
  EXPECT_EQ(LineAfter(out, "TRACER "), "false") << out;
}

TEST_F(DaemonClusterTest, CliErrorsSayWhatIsWrongAndNeverHang) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  std::string out;
  // No daemon on that host: epmd there does not know the name.
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(cluster_.RunOrion({"capture", "--daemon", "orion_nobody@" + cluster_.ip(0),
                               "--cookie-file", cluster_.cookie_file(), "--duration", "1",
                               "lists:sort/1"},
                              &out),
            1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(25));
  // Flags that do not go together, and a bad pattern, before anything is sent.
  EXPECT_EQ(cluster_.RunOrion({"capture", "--pid", "1", "--daemon", cluster_.daemon_node(0),
                               "lists:sort/1"},
                              &out),
            2);
  EXPECT_EQ(cluster_.RunOrion({"capture", "--cluster", "--pid", "1", "lists:sort/1"}, &out), 2);
  EXPECT_EQ(cluster_.RunOrion({"capture", "--daemon", cluster_.daemon_node(0), "--cookie-file",
                               cluster_.cookie_file(), "lists:sort("},
                              &out),
            2);
  // The daemon refuses a cookie on its command line and a cookie file others can read.
  EXPECT_EQ(cluster_.RunOrion({"daemon", "--cookie", "secret"}, &out), 2);
  const std::string open_cookie = cluster_.cookie_file() + ".open";
  {
    std::ofstream(open_cookie) << "secret\n";
  }
  ::chmod(open_cookie.c_str(), 0644);
  EXPECT_EQ(cluster_.RunOrion({"daemon", "--name", "orion_x", "--cookie-file", open_cookie}, &out),
            3);
}

// The daemon's `mode => auto` on a JIT node of Orion's patched build: the emulator pairs the
// calls (patch 0012), so the host captures it from the kernel, not in tracer mode, and counts
// exactly. RunHostCapture is what the daemon runs for each host.
TEST(HostCaptureTest, AutoModeCapturesAPatchedJitNodeFromTheKernel) {
  ORION_REQUIRE_BPF_OR_SKIP();
  const std::string tag = std::to_string(getpid());
  testing::BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "jit", .sname = "orion_auto_jit_" + tag,
                          .cookie = "auto_jit_" + tag}))
      << node.error();
  ASSERT_EQ(node.Eval("element(1, code:ensure_loaded(orion_workload))."), "module");
  daemon::HostCaptureSpec spec{.patterns = {"orion_workload:known/1"},
                               .duration_ms = 60000,
                               .node = node.node_name(),
                               .mode = protocol::CaptureMode::kAuto,
                               .cookie = "auto_jit_" + tag};
  std::atomic<bool> stop{false};
  auto capture = std::async(std::launch::async, [&] { return daemon::RunHostCapture(spec, stop); });
  auto beam = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(beam.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return testing::SemaphoreOf(*beam, "orion__call") > 0; },
                               std::chrono::seconds(30)))
      << "the host capture did not attach to the JIT node's pairing probes";
  ASSERT_EQ(node.Eval("orion_workload:parallel(2, 3000, fun orion_workload:call_known/1)."), "ok");
  stop = true;
  auto result = capture.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->tracer_nodes.empty()) << "tracer mode on " << result->tracer_nodes.front();
  ASSERT_EQ(result->functions.size(), 1u);
  EXPECT_EQ(result->functions[0].mfa, "orion_workload:known/1");
  EXPECT_EQ(result->functions[0].wall.count(), 6000u);
  EXPECT_EQ(result->functions[0].cpu.count(), 6000u);
  EXPECT_EQ(testing::SemaphoreOf(*beam, "orion__call"), 0);
}

}  // namespace
}  // namespace orion
