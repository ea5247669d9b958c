// `orion ui` joined to a real cluster (support/test_cluster.h: a network namespace per host, each
// with a USDT BEAM and an `orion daemon`) through one daemon, and asked through its HTTP API with
// a real HTTP client (cpp-httplib's), as the page asks it.
//
// What is proved: the first stdout line is the URL with a 32-hex-digit token and the port that
// was picked; orion ui reaches its daemon and lists every host's BEAM node (the peers' through
// their own daemons); it says when its daemon is gone and when it is back; SIGTERM stops it
// cleanly.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/subprocess.h"
#include "tests/integration/support/test_cluster.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::Subprocess;
using testing::TestCluster;

class UiClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- orion ui output ----\n%s\n",
                   ui_.ReadAll(std::chrono::seconds(1)).c_str());
    }
  }

  // The cluster and orion ui on a free port through host 0's daemon.
  void StartUi(int hosts) {
    ASSERT_TRUE(cluster_.Create(hosts)) << cluster_.error();
    ASSERT_TRUE(ui_.Start({ORION_TEST_ORION_BIN, "ui", "--daemon", cluster_.daemon_node(0),
                           "--cookie-file", cluster_.cookie_file(), "--listen", "127.0.0.1:0"},
                          {}, /*merge_stderr=*/true));
    const std::string url = ui_.WaitForLine("http://", std::chrono::seconds(30));
    std::smatch m;
    ASSERT_TRUE(std::regex_match(url, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]{32}))")))
        << "not the URL: '" << url << "'";
    port_ = std::stoi(m[1]);
    token_ = m[2];
    ASSERT_NE(port_, 0);
  }

  json Get(const std::string& path, int* status = nullptr) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(30, 0);
    auto r = client.Get(path.c_str(), {{"Authorization", "Bearer " + token_}});
    if (!r) return json();
    if (status != nullptr) *status = r->status;
    return json::parse(r->body, nullptr, false);
  }

  // Polls GET /api/status until "connected" is `want` (or 15 s).
  bool WaitConnected(bool want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Get("/api/status").value("connected", !want) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  TestCluster cluster_;
  Subprocess ui_;
  int port_ = 0;
  std::string token_;
};

TEST_F(UiClusterTest, JoinsThroughOneDaemonAndListsEveryHostsNode) {
  StartUi(2);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitConnected(true)) << Get("/api/status").dump();
  EXPECT_EQ(Get("/api/status")["daemon"], cluster_.daemon_node(0));
  int status = 0;
  const json nodes = Get("/api/nodes", &status);
  ASSERT_EQ(status, 200) << nodes.dump();
  for (int i = 0; i < cluster_.size(); ++i) {
    bool found = false;
    for (const json& n : nodes["nodes"]) {
      if (n["node"] == cluster_.beam_node(i)) {
        found = true;
        EXPECT_EQ(n["daemon"], cluster_.daemon_node(i));
        EXPECT_EQ(n["host"], cluster_.ip(i));
      }
    }
    EXPECT_TRUE(found) << cluster_.beam_node(i) << " missing from " << nodes.dump();
  }
  ASSERT_EQ(nodes["daemons"].size(), 2u) << nodes.dump();
  for (const json& d : nodes["daemons"]) EXPECT_EQ(d["status"], "ok") << d.dump();
}

TEST_F(UiClusterTest, SaysWhenItsDaemonIsGoneAndWhenItIsBack) {
  StartUi(1);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitConnected(true));
  cluster_.KillDaemon(0);
  ASSERT_TRUE(WaitConnected(false)) << "orion ui did not notice its daemon's death";
  int status = 0;
  const json refused = Get("/api/nodes", &status);
  EXPECT_EQ(status, 503) << refused.dump();
  EXPECT_NE(refused.value("error", "").find(cluster_.daemon_node(0)), std::string::npos)
      << refused.dump();
  ASSERT_TRUE(cluster_.StartDaemon(0)) << cluster_.error();
  EXPECT_TRUE(WaitConnected(true)) << "orion ui did not reconnect";
  EXPECT_EQ(Get("/api/nodes", &status)["nodes"].size(), 1u);
}

// GET /api/functions: {functions, Prefix} of the daemon, over every host's BEAMs.
TEST_F(UiClusterTest, CompletesTheFunctionNamesLoadedOnEveryHost) {
  StartUi(2);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitConnected(true));
  for (int i = 0; i < cluster_.size(); ++i) {
    ASSERT_EQ(cluster_.beam(i).Eval("element(1, code:ensure_loaded(orion_workload))."), "module");
  }
  // Loaded on host 1 only: the daemon of host 0 finds it through its peer.
  ASSERT_EQ(cluster_.beam(1).Eval("element(1, code:ensure_loaded(orion_top_workload))."), "module");
  int status = 0;
  json answer = Get("/api/functions?prefix=orion_workload%3Akno", &status);
  EXPECT_EQ(status, 200);
  std::printf("FUNCTIONS %s\n", answer.dump().c_str());  // docs/ui.md shows it
  EXPECT_EQ(answer, json::parse(R"({"functions": ["orion_workload:known/1",
                                                  "orion_workload:known_then_spin/2"],
                                    "truncated": false})"));
  answer = Get("/api/functions?prefix=orion_top_w", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(answer, json::parse(R"({"functions": ["orion_top_workload:"], "truncated": false})"));
  answer = Get("/api/functions?prefix=" + std::string(300, 'a'), &status);
  EXPECT_EQ(status, 400) << answer.dump();
  EXPECT_NE(answer.value("error", "").find("prefix"), std::string::npos) << answer.dump();
}

// Against daemons that stream (protocol v2, daemon_streams.cc).
TEST_F(UiClusterTest, ACaptureCountsWhatEveryHostCalledInItsSummaryAndItsEvents) {
  StartUi(2);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitConnected(true));
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(30, 0);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token_}};
  auto r = client.Post("/api/captures", auth,
                       R"({"patterns": ["orion_workload:known/1"], "duration_s": 60})",
                       "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  std::this_thread::sleep_for(std::chrono::seconds(3));  // attached on both hosts
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(3000)."), "ok");
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(2000)."), "ok");
  json summary;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    summary = Get("/api/captures/" + id);
    if (summary.contains("calls") && !summary["calls"].empty() &&
        summary["calls"][0].value("count", 0) >= 5000) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(summary["calls"].size(), 1u) << summary.dump();
  EXPECT_EQ(summary["calls"][0]["mfa"], "orion_workload:known/1");
  EXPECT_EQ(summary["calls"][0]["count"], 5000) << summary.dump();
  for (const json& n : summary["nodes"]) {
    if (n["node"] == cluster_.beam_node(0)) EXPECT_EQ(n["calls"], 3000) << n.dump();
    if (n["node"] == cluster_.beam_node(1)) EXPECT_EQ(n["calls"], 2000) << n.dump();
  }
  // The events say the same: the replay of every interval so far adds up to the summary.
  uint64_t calls = 0;
  std::string text;
  client.Get(("/api/captures/" + id + "/events?token=" + token_).c_str(),
             [&](const char* data, size_t n) {
               text.append(data, n);
               return text.find("event: state") == std::string::npos;
             });
  for (size_t at = text.find("event: interval\ndata: "); at != std::string::npos;
       at = text.find("event: interval\ndata: ", at + 1)) {
    const size_t begin = at + std::string("event: interval\ndata: ").size();
    const json interval = json::parse(text.substr(begin, text.find('\n', begin) - begin));
    for (const json& node : interval["nodes"]) {
      for (const json& f : node["functions"]) calls += f["calls"].get<uint64_t>();
    }
  }
  EXPECT_EQ(calls, 5000u);
  r = client.Post("/api/captures/" + id + "/stop", auth, "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Get("/api/captures/" + id)["state"], "stopped");
}

TEST_F(UiClusterTest, StopsCleanlyOnSigterm) {
  StartUi(1);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitConnected(true));
  ASSERT_TRUE(ui_.Signal(SIGTERM));
  EXPECT_EQ(ui_.Wait(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace orion
