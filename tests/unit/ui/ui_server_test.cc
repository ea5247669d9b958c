// orion ui's HTTP layer (userspace/ui/ui_server.h, capture_registry.h) through a real HTTP
// client (cpp-httplib's) on a real socket: the token, Host and Origin checks, the JSON API and
// its errors, and the event streams (replay of the kept window, Last-Event-ID, live events,
// deletion). The cluster side is a stand-in UiBackend that feeds the registry what a daemon's
// stream would deliver; the daemon side is tested by the integration tests.
#include "userspace/ui/ui_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/ui/capture_registry.h"

namespace orion::ui {
namespace {

using nlohmann::json;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// What a cluster would do, without one: records the calls, refuses a pattern with "bad" in it
// as a daemon refuses a bad pattern.
class StandInBackend : public UiBackend {
 public:
  Status StartCapture(const std::string& id, const CaptureOptions& options) override {
    std::lock_guard lock(mu);
    for (const auto& p : options.patterns) {
      if (p.find("bad") != std::string::npos) {
        return InvalidArgument("bad pattern '", p, "': write mod:fun/arity");
      }
    }
    started.push_back(id);
    return OkStatus();
  }
  Status StopCapture(const std::string& id) override {
    std::lock_guard lock(mu);
    stopped.push_back(id);
    return OkStatus();
  }
  StatusOr<json> Functions(const std::string& prefix) override {
    ++functions_asked;
    return json{{"functions", json::array({prefix + "rt/1"})}, {"truncated", false}};
  }
  StatusOr<json> Nodes() override {
    return json{{"nodes", json::array({{{"node", "app@h"}, {"host", "h"}, {"daemon", "orion@h"}}})},
                {"daemons", json::array()}};
  }
  json DaemonStatus() override { return {{"daemon", "orion@h"}, {"connected", true}}; }

  std::mutex mu;
  std::vector<std::string> started, stopped;
  std::atomic<int> functions_asked{0};
};

// One interval of `calls` calls of lists:sort/1 taking `ns` each, on app@h.
protocol::IntervalEvent Interval(uint64_t seq, uint64_t calls, double ns) {
  protocol::IntervalEvent interval;
  interval.seq = seq;
  interval.end_ms = 1'700'000'000'000 + seq * 1000;
  interval.interval_ms = 1000;
  protocol::NodeInterval node;
  node.node = "app@h";
  node.host = "h";
  node.os_pid = 42;
  probes::FunctionStats f;
  f.mfa = "lists:sort/1";
  EXPECT_TRUE(f.wall.add(ns, calls).ok());
  EXPECT_TRUE(f.cpu.add(ns / 2, calls).ok());
  node.functions.push_back(std::move(f));
  interval.nodes.push_back(std::move(node));
  return interval;
}

// The whole replay of a new event stream, up to and including the state that ends it.
std::vector<std::shared_ptr<const Event>> Replay(CaptureRegistry& registry, const std::string& id) {
  auto capture = registry.Find(id);
  EXPECT_TRUE(capture);
  std::vector<std::shared_ptr<const Event>> events;
  if (!capture) return events;
  Cursor cursor;
  for (int batches = 0; !cursor.live && batches < 100'000; ++batches) {
    const auto batch = registry.Next(*capture, cursor, std::chrono::milliseconds(0));
    events.insert(events.end(), batch.events.begin(), batch.events.end());
  }
  return events;
}

class UiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = UiServer::Start({.listen = {"127.0.0.1", 0}, .token = kToken}, registry_,
                                  backend_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(10, 0);
  }

  httplib::Headers Auth() const { return {{"Authorization", std::string("Bearer ") + kToken}}; }

  std::string NewCapture(const json& body = {{"patterns", {"lists:sort/1"}}}) {
    auto r = client_->Post("/api/captures", Auth(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 201) << r->body;
    return json::parse(r->body).value("id", "");
  }

  // Reads the event stream of `id` until `events` events came (or 10 s), feeding `during`
  // once the stream is open.
  std::vector<std::pair<std::string, json>> ReadEvents(const std::string& id, size_t events,
                                                       httplib::Headers headers = {},
                                                       std::function<void()> during = {}) {
    std::string text;
    std::vector<std::pair<std::string, json>> out;
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(10, 0);
    bool fed = false;
    client.Get(("/api/captures/" + id + "/events?token=" + kToken).c_str(), headers,
               [&](const httplib::Response& response) {
                 EXPECT_EQ(response.get_header_value("Content-Encoding"), "")
                     << "a compressed event stream is held back in the compressor";
                 EXPECT_EQ(response.get_header_value("Content-Type"), "text/event-stream");
                 return true;
               },
               [&](const char* data, size_t n) {
                 text.append(data, n);
                 size_t end;
                 while ((end = text.find("\n\n")) != std::string::npos) {
                   const std::string block = text.substr(0, end);
                   text.erase(0, end + 2);
                   std::string type, data_line, id_line;
                   size_t pos = 0;
                   while (pos < block.size()) {
                     const size_t nl = std::min(block.find('\n', pos), block.size());
                     const std::string line = block.substr(pos, nl - pos);
                     if (line.rfind("event: ", 0) == 0) type = line.substr(7);
                     if (line.rfind("data: ", 0) == 0) data_line = line.substr(6);
                     if (line.rfind("id: ", 0) == 0) id_line = line.substr(4);
                     pos = nl + 1;
                   }
                   if (type.empty()) continue;  // a keep-alive comment
                   json event = json::parse(data_line);
                   event["_id"] = std::stoull(id_line);
                   out.emplace_back(type, event);
                 }
                 if (!fed && during) {
                   fed = true;
                   during();
                 }
                 return out.size() < events;
               });
    return out;
  }

  CaptureRegistry registry_;
  StandInBackend backend_;
  std::unique_ptr<UiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(UiServerTest, ThePageNeedsTheTokenAndComesWithItsSecurityHeaders) {
  auto r = client_->Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->body.find("<html"), std::string::npos);
  r = client_->Get("/?token=wrongwrongwrongwrongwrongwrong12");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = client_->Get((std::string("/?token=") + kToken).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("connect-src 'self'"),
            std::string::npos);
  EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer");
  EXPECT_TRUE(r->body.starts_with("<!doctype html>"));
}

TEST_F(UiServerTest, TheApiTakesTheTokenAsBearerOrQueryAndRefusesAnyOtherWithJson) {
  auto r = client_->Get("/api/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(json::parse(r->body).value("error", "").find("token"), std::string::npos);
  r = client_->Get("/api/status", {{"Authorization", "Bearer 0123456789abcdef0123456789abcdee"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = client_->Get("/api/status", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  {
    json status = json::parse(r->body);
    EXPECT_EQ(status["memory"]["kept_intervals"], 0) << status.dump();
    EXPECT_GT(status["memory"]["heap_in_use_bytes"].get<uint64_t>(), 0u) << status.dump();
    status.erase("memory");
    EXPECT_EQ(status, json({{"daemon", "orion@h"}, {"connected", true}}));
  }
  r = client_->Get((std::string("/api/status?token=") + kToken).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(UiServerTest, ARequestFromAnotherOriginIsRefused) {
  auto headers = Auth();
  headers.emplace("Origin", "http://evil.example");
  auto r = client_->Post("/api/captures", headers, R"({"patterns": ["lists:sort/1"]})",
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_TRUE(backend_.started.empty()) << "a cross-origin request started a capture";
  headers = Auth();
  headers.emplace("Origin", "http://127.0.0.1:" + std::to_string(server_->port()));
  r = client_->Post("/api/captures", headers, R"({"patterns": ["lists:sort/1"]})",
                    "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
}

TEST_F(UiServerTest, AHostHeaderThatIsNotThisServerIsRefused) {
  // A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host header says so.
  auto headers = Auth();
  headers.emplace("Host", "evil.example:" + std::to_string(server_->port()));
  auto r = client_->Get("/api/status", headers);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  headers = Auth();
  headers.emplace("Host", "localhost:" + std::to_string(server_->port()));
  r = client_->Get("/api/status", headers);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  headers = Auth();
  headers.emplace("Host", "127.0.0.1:1");
  r = client_->Get("/api/status", headers);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(UiServerTest, ABadCaptureRequestIs400WithAMessageAndHoldsNothing) {
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "JSON"},
      {R"({"match_spec": ""})", "patterns"},
      {R"({"patterns": []})", "patterns"},
      {R"({"patterns": ["lists:sort/1"], "duration_s": 601})", "duration_s"},
      {R"({"patterns": ["lists:sort/1"], "interval_ms": 10})", "interval_ms"},
      {R"({"patterns": ["lists:sort/1"], "colour": "red"})", "colour"},
      {R"({"patterns": ["bad:pattern("]})", "bad pattern"},  // the daemon's word
  };
  for (const auto& [body, says] : cases) {
    auto r = client_->Post("/api/captures", Auth(), body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_NE(json::parse(r->body).value("error", "").find(says), std::string::npos)
        << body << " -> " << r->body;
  }
  auto r = client_->Get("/api/captures", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["captures"], json::array());
}

TEST_F(UiServerTest, ACaptureIsListedSummarizedStoppedRestartedAndDeleted) {
  const std::string id = NewCapture({{"patterns", {"lists:sort/1"}}, {"duration_s", 60}});
  ASSERT_EQ(id, "c1");
  ASSERT_EQ(backend_.started, std::vector<std::string>{"c1"});
  auto r = client_->Get("/api/captures", Auth());
  ASSERT_TRUE(r);
  const json list = json::parse(r->body)["captures"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], "c1");
  EXPECT_EQ(list[0]["state"], "running");
  EXPECT_EQ(list[0]["duration_s"], 60);
  EXPECT_EQ(list[0]["patterns"], json::array({"lists:sort/1"}));

  registry_.AddInterval(id, Interval(1, 100, 2000));
  registry_.AddInterval(id, Interval(2, 50, 4000));
  r = client_->Get("/api/captures/c1", Auth());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  json summary = json::parse(r->body);
  EXPECT_EQ(summary["id"], "c1");
  EXPECT_EQ(summary["daemon"], "orion@h");
  EXPECT_EQ(summary["intervals"], 2);
  ASSERT_EQ(summary["calls"].size(), 1u);
  EXPECT_EQ(summary["calls"][0]["mfa"], "lists:sort/1");
  EXPECT_EQ(summary["calls"][0]["count"], 150);  // orion capture --json's keys
  EXPECT_EQ(summary["calls"][0]["cpu"]["count"], 150);
  EXPECT_EQ(summary["calls"][0]["max_ns"], 4000);
  EXPECT_EQ(summary["nodes"][0]["node"], "app@h");
  EXPECT_EQ(summary["nodes"][0]["calls"], 150);
  EXPECT_EQ(summary["nodes"][0]["status"], "ok");
  EXPECT_EQ(summary["lost"]["total"], 0);

  r = client_->Post("/api/captures/c1/stop", Auth(), "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(backend_.stopped, std::vector<std::string>{"c1"});
  EXPECT_EQ(registry_.State("c1"), "stopped");
  r = client_->Post("/api/captures/c1/restart", Auth(), "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(backend_.started, (std::vector<std::string>{"c1", "c1"}));
  EXPECT_EQ(registry_.State("c1"), "running");

  r = client_->Delete("/api/captures/c1", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(backend_.stopped, (std::vector<std::string>{"c1", "c1"}));
  r = client_->Get("/api/captures/c1", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(json::parse(r->body).value("error", "").empty());
}

TEST_F(UiServerTest, FunctionsNodesAndUnknownPathsAnswerJson) {
  auto r = client_->Get("/api/functions?prefix=lists:so", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["functions"], json::array({"lists:sort/1"}));
  r = client_->Get("/api/nodes", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["nodes"][0]["daemon"], "orion@h");
  r = client_->Get("/api/nothing", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(json::parse(r->body).value("error", "").empty());
}

TEST(UiServerFunctionsTest, AnswersAreKeptPerPrefixForAWhileAndBoundedInNumber) {
  CaptureRegistry registry;
  StandInBackend backend;
  auto server = UiServer::Start({.listen = {"127.0.0.1", 0},
                                 .token = kToken,
                                 .functions_ttl = std::chrono::milliseconds(300),
                                 .functions_cache_entries = 2},
                                registry, backend);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  httplib::Client client("127.0.0.1", (*server)->port());
  const auto ask = [&](const std::string& prefix) {
    auto r = client.Get(("/api/functions?prefix=" + prefix + "&token=" + kToken).c_str());
    EXPECT_TRUE(r && r->status == 200);
    return r ? json::parse(r->body)["functions"][0].get<std::string>() : "";
  };
  EXPECT_EQ(ask("lists:so"), "lists:sort/1");
  EXPECT_EQ(ask("lists:so"), "lists:sort/1");  // each keystroke of a person typing asks again
  EXPECT_EQ(backend.functions_asked, 1) << "the same prefix asked the cluster twice";
  ask("a:");
  ask("b:");  // a third prefix: the oldest answer ("lists:so") goes
  EXPECT_EQ(backend.functions_asked, 3);
  ask("lists:so");
  EXPECT_EQ(backend.functions_asked, 4) << "more than 2 answers kept";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ask("lists:so");  // too old: a module loaded since shows up
  EXPECT_EQ(backend.functions_asked, 5);
}

TEST_F(UiServerTest, TheEventStreamReplaysTheKeptWindowThenTheStateThenGoesLive) {
  const std::string id = NewCapture();
  registry_.AddInterval(id, Interval(1, 10, 1000));
  registry_.AddInterval(id, Interval(2, 20, 1000));
  // As a browser asks: compression would hold the events back in the compressor's buffer.
  const auto events = ReadEvents(id, 4, {{"Accept-Encoding", "gzip, deflate, br"}},
                                 [&] { registry_.AddInterval(id, Interval(3, 30, 1000)); });
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].first, "interval");
  EXPECT_EQ(events[0].second["seq"], 1);
  EXPECT_EQ(events[1].second["seq"], 2);
  EXPECT_EQ(events[2].first, "state");
  EXPECT_EQ(events[2].second["state"], "running");
  EXPECT_EQ(events[3].first, "interval");
  EXPECT_EQ(events[3].second["seq"], 3);
  EXPECT_LT(events[1].second["_id"], events[3].second["_id"]);
  // The page's format: per node and function, counts and the sketch's own bins.
  const json& f = events[3].second["nodes"][0]["functions"][0];
  EXPECT_EQ(f["name"], "lists:sort/1");
  EXPECT_EQ(f["mfa"], "lists:sort/1");
  EXPECT_EQ(f["calls"], 30);
  const int index = sketch::IndexMapping::Kernel().index(1000.0);
  EXPECT_EQ(f["wall"], json({{"zero", 0}, {"bins", json::array({json::array({index, 30})})}}));
  EXPECT_EQ(events[3].second["nodes"][0]["os_pid"], 42);
}

TEST_F(UiServerTest, AReconnectingStreamGetsOnlyWhatItMissed) {
  const std::string id = NewCapture();
  for (uint64_t seq = 1; seq <= 3; ++seq) registry_.AddInterval(id, Interval(seq, seq, 1000));
  const auto first = ReadEvents(id, 4);
  ASSERT_EQ(first.size(), 4u);
  const uint64_t last_seen = first[1].second["_id"];  // seq 2
  const auto again =
      ReadEvents(id, 1, {{"Last-Event-ID", std::to_string(last_seen)}});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first, "interval");
  EXPECT_EQ(again[0].second["seq"], 3);
}

TEST_F(UiServerTest, StateAndNodeEventsReachTheStreamAndADeletedCaptureEndsIt) {
  const std::string id = NewCapture();
  registry_.AddInterval(id, Interval(1, 10, 1000));
  std::thread later;
  const auto events = ReadEvents(id, 10, {}, [&] {
    later = std::thread([&] {
      registry_.NodeDown(id, "orion@h", "connection closed");
      registry_.SetState(id, "overloaded", "the overload guard stopped it at 3000000 events/s");
      auto r = httplib::Client("127.0.0.1", server_->port())
                   .Delete("/api/captures/" + id, Auth());
      EXPECT_TRUE(r && r->status == 204);
    });
  });
  later.join();
  ASSERT_EQ(events.size(), 5u) << "the stream did not end after the deletion";
  EXPECT_EQ(events[2].first, "node");
  EXPECT_EQ(events[2].second["node"], "orion@h");
  EXPECT_EQ(events[2].second["status"], "down");
  EXPECT_EQ(events[3].first, "state");
  EXPECT_EQ(events[3].second["state"], "overloaded");
  EXPECT_EQ(events[4].first, "state");
  EXPECT_EQ(events[4].second["state"], "deleted");
}

TEST(CaptureRegistryTest, TheKeptWindowCoversTenMinutesAndNoMore) {
  CaptureRegistry registry;
  auto id = registry.Add({.patterns = {"lists:sort/1"}}, 0);
  ASSERT_TRUE(id.ok());
  for (uint64_t seq = 1; seq <= 1500; ++seq) registry.AddInterval(*id, Interval(seq, 1, 1000));
  size_t intervals = 0;
  uint64_t first_seq = 0;
  for (const auto& e : Replay(registry, *id)) {
    if (e->type != "interval") continue;
    if (intervals++ == 0) first_seq = json::parse(e->data)["seq"];
  }
  EXPECT_GE(intervals, 600u) << "less than 10 minutes kept";
  EXPECT_LE(intervals, 602u) << "more than 10 minutes kept";
  EXPECT_EQ(first_seq + intervals - 1, 1500u);
  // The summary still has every call.
  EXPECT_EQ((*registry.Summary(*id))["calls"][0]["count"], 1500);
}

TEST(CaptureRegistryTest, ARestartedStreamGoesOnAfterTheOldOneAndAPauseIsAGap) {
  CaptureRegistry registry;
  auto id = registry.Add({.patterns = {"lists:sort/1"}}, 0);
  ASSERT_TRUE(id.ok());
  registry.AddInterval(*id, Interval(1, 1, 1000));
  registry.AddInterval(*id, Interval(2, 1, 1000));
  // The restarted stream numbers from 1 again, 10 s later.
  protocol::IntervalEvent again = Interval(1, 1, 1000);
  again.end_ms += 11'000;
  registry.AddInterval(*id, again);
  std::vector<uint64_t> seqs, stream_seqs;
  for (const auto& e : Replay(registry, *id)) {
    if (e->type != "interval") continue;
    seqs.push_back(json::parse(e->data)["seq"]);
    stream_seqs.push_back(json::parse(e->data)["stream_seq"]);
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 12}));
  EXPECT_EQ(stream_seqs, (std::vector<uint64_t>{1, 2, 1}));
}

TEST(CaptureRegistryTest, TheKeptWindowIsBoundedInBytes) {
  CaptureRegistry registry({.max_window_bytes = 64 * 1024});
  auto id = registry.Add({.patterns = {"lists:sort/1"}}, 0);
  ASSERT_TRUE(id.ok());
  for (uint64_t seq = 1; seq <= 600; ++seq) registry.AddInterval(*id, Interval(seq, 1, 1000));
  const auto events = Replay(registry, *id);
  size_t bytes = 0;
  for (const auto& e : events) bytes += e->data.size();
  EXPECT_LE(bytes, 64u * 1024 + 200);
  EXPECT_GT(events.size(), 10u);
  const json kept = (*registry.Summary(*id))["kept"];
  EXPECT_LE(kept["bytes"].get<size_t>(), 64u * 1024);
  EXPECT_EQ(kept["events"].get<size_t>() + 1, events.size()) << "the replay is the kept window and the state";
}

TEST(CaptureRegistryTest, WhatItKeepsStaysTheSameOnceTheWindowIsFull) {
  CaptureRegistry registry({.window_ms = 60'000});
  auto id = registry.Add({.patterns = {"lists:sort/1"}}, 0);
  ASSERT_TRUE(id.ok());
  std::vector<json> kept;
  for (uint64_t seq = 1; seq <= 600; ++seq) {
    registry.AddInterval(*id, Interval(seq, 1000, 1000 + seq % 7));
    if (seq % 60 == 0 && seq > 60) kept.push_back((*registry.Summary(*id))["kept"]);
  }
  // 60 s at 1 s: 60 intervals, and one more so the window is never short.
  for (const json& k : kept) {
    EXPECT_EQ(k["intervals"], kept.front()["intervals"]) << k.dump();
    EXPECT_GE(k["intervals"].get<size_t>(), 60u);
    EXPECT_LE(k["intervals"].get<size_t>(), 62u);
    EXPECT_NEAR(k["bytes"].get<double>(), kept.front()["bytes"].get<double>(),
                0.02 * kept.front()["bytes"].get<double>())
        << k.dump();
  }
  EXPECT_EQ(registry.Kept().intervals, kept.back()["intervals"].get<size_t>());
}

TEST(CaptureRegistryTest, AReplayComesInBoundedBatchesOfEventsSharedWithTheWindow) {
  CaptureRegistry registry({.max_batch_bytes = 4096});
  auto id = registry.Add({.patterns = {"lists:sort/1"}}, 0);
  ASSERT_TRUE(id.ok());
  for (uint64_t seq = 1; seq <= 100; ++seq) registry.AddInterval(*id, Interval(seq, 1, 1000));
  registry.SetState(*id, "stopped", "from a test");
  auto capture = registry.Find(*id);
  Cursor cursor;
  std::vector<std::shared_ptr<const Event>> events;
  size_t batches = 0;
  while (!cursor.live) {
    const auto batch = registry.Next(*capture, cursor, std::chrono::milliseconds(0));
    size_t bytes = 0;
    for (const auto& e : batch.events) bytes += e->data.size();
    EXPECT_TRUE(batch.events.size() == 1 || bytes <= 4096) << bytes << " bytes in one batch";
    events.insert(events.end(), batch.events.begin(), batch.events.end());
    ASSERT_LT(++batches, 1000u);
  }
  EXPECT_GT(batches, 2u);
  ASSERT_EQ(events.size(), 101u) << "100 intervals, then the state";
  EXPECT_EQ(json::parse(events.back()->data)["state"], "stopped");
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(events[i]->type, "interval");
    EXPECT_EQ(json::parse(events[i]->data)["seq"], i + 1);
  }
  // The same events, not copies: a second stream's replay holds the very same objects.
  const auto again = Replay(registry, *id);
  ASSERT_EQ(again.size(), events.size());
  EXPECT_EQ(again.front().get(), events.front().get());
  // Then live: nothing pending, and the next interval alone.
  EXPECT_TRUE(registry.Next(*capture, cursor, std::chrono::milliseconds(0)).events.empty());
  registry.AddInterval(*id, Interval(101, 1, 1000));
  const auto live = registry.Next(*capture, cursor, std::chrono::milliseconds(0));
  ASSERT_EQ(live.events.size(), 1u);
  EXPECT_EQ(json::parse(live.events[0]->data)["stream_seq"], 101);
}

TEST(CaptureRegistryTest, CapturesAreBoundedInNumber) {
  CaptureRegistry registry({.max_captures = 2});
  ASSERT_TRUE(registry.Add({.patterns = {"a:b/1"}}, 0).ok());
  ASSERT_TRUE(registry.Add({.patterns = {"a:b/1"}}, 0).ok());
  const auto third = registry.Add({.patterns = {"a:b/1"}}, 0);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("delete one"), std::string::npos);
}

}  // namespace
}  // namespace orion::ui
