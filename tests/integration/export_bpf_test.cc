// Watches exported to a real Prometheus (docs/export.md): Debian's prometheus 2.42 with
// --enable-feature=native-histograms, started by the test on loopback, scrapes an `orion
// daemon` whose config file watches a function of a real USDT node.
//
// What is proved: Prometheus ingests the native histograms (protobuf, schema 6) with the
// bearer token; the count it reports equals the calls the workload made; its p99 agrees with
// `orion capture`'s p99 of the same calls within the one-bucket boundary rule; a watch survives
// a restart of its BEAM, the histogram goes on from where it was, and the gap shows as a gap.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/capture_json.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"
#include "userspace/beam/beam_process.h"

namespace orion {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kCookie[] = "orion-export-test";
constexpr char kToken[] = "export-test-token-0123456789abcdef";
constexpr char kFunction[] = "orion_workload:sleeper/1";

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600) {
  { std::ofstream(path) << text; }
  ::chmod(path.c_str(), mode);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    char tmpl[] = "/tmp/orion-export-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(fs::exists(kPrometheus))
        << kPrometheus << " is missing: scripts/setup.sh installs Debian's prometheus";
  }

  void TearDown() override {
    if (HasFailure()) {
      std::string log = ReadFile(dir_ + "/daemon.log");
      if (log.size() > 6000) log = "..." + log.substr(log.size() - 6000);
      std::fprintf(stderr, "---- daemon log ----\n%s\n", log.c_str());
      std::string prom = ReadFile(dir_ + "/prometheus.log");
      if (prom.size() > 3000) prom = "..." + prom.substr(prom.size() - 3000);
      std::fprintf(stderr, "---- prometheus log ----\n%s\n", prom.c_str());
    }
    if (daemon_.Alive()) daemon_.Kill();
    if (prometheus_.Alive()) prometheus_.Kill();
    fs::remove_all(dir_);
  }

  // The daemon, watching kFunction on `node`, serving /metrics.
  // (No node: no [[watch]] in the config, only the /metrics listener.)
  void StartDaemon(const std::string& node) {
    metrics_port_ = FreePort();
    WriteFile(dir_ + "/cookie", kCookie);
    WriteFile(dir_ + "/token", std::string(kToken) + "\n");
    std::string config = "metrics_listen = \"127.0.0.1:" + std::to_string(metrics_port_) +
                         "\"\nmetrics_token_file = \"" + dir_ + "/token\"\n";
    if (!node.empty()) {
      config += std::string("\n[[watch]]\npatterns = [\"") + kFunction + "\"]\nnode = \"" + node +
                "\"\n";
    }
    WriteFile(dir_ + "/orion.toml", config);
    ASSERT_TRUE(daemon_.Start({"/bin/sh", "-c",
                               std::string("exec ") + ORION_TEST_ORION_BIN +
                                   " daemon --name orion_exporttest --no-discover --config " +
                                   dir_ + "/orion.toml --cookie-file " + dir_ + "/cookie > " +
                                   dir_ + "/daemon.log 2>&1"}));
  }

  void StartPrometheus() {
    prometheus_port_ = FreePort();
    WriteFile(dir_ + "/prometheus.yml",
              "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
              "scrape_configs:\n  - job_name: orion\n    authorization:\n"
              "      credentials_file: " + dir_ + "/token\n"
              "    static_configs:\n      - targets: ['127.0.0.1:" + std::to_string(metrics_port_) +
                  "']\n",
              0644);
    ASSERT_TRUE(prometheus_.Start(
        {"/bin/sh", "-c",
         std::string("exec ") + kPrometheus + " --config.file=" + dir_ +
             "/prometheus.yml --storage.tsdb.path=" + dir_ +
             "/tsdb --web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_) +
             " --enable-feature=native-histograms > " + dir_ + "/prometheus.log 2>&1"}));
  }

  // Waits until the daemon has logged `n` attached captures (its watch sessions).
  bool WaitForAttached(size_t n, std::chrono::seconds timeout) {
    return testing::WaitFor(
        [&] {
          const std::string log = ReadFile(dir_ + "/daemon.log");
          size_t count = 0;
          for (size_t at = log.find("capture attached"); at != std::string::npos;
               at = log.find("capture attached", at + 1)) {
            ++count;
          }
          return count >= n;
        },
        timeout);
  }

  // An instant query (at `time`, a Unix time in seconds, or now); the result array.
  json Query(const std::string& promql, std::optional<double> time = std::nullopt) {
    httplib::Client client("127.0.0.1", prometheus_port_);
    httplib::Params params{{"query", promql}};
    if (time) params.emplace("time", std::to_string(*time));
    auto response = client.Post("/api/v1/query", params);
    if (!response || response->status != 200) return json::array();
    const json doc = json::parse(response->body, nullptr, false);
    if (doc.is_discarded() || doc["status"] != "success") return json::array();
    return doc["data"]["result"];
  }

  // The first result's scalar value of an instant query, or NaN.
  double Value(const std::string& promql, std::optional<double> time = std::nullopt) {
    const json result = Query(promql, time);
    if (result.empty() || !result[0].contains("value")) return std::nan("");
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  // The raw samples of the watched histogram over the last `seconds`: (timestamp, count).
  std::vector<std::pair<double, double>> Samples(int seconds) {
    const json result = Query(std::string("orion_function_duration_nanoseconds{function=\"") +
                              kFunction + "\"}[" + std::to_string(seconds) + "s]");
    std::vector<std::pair<double, double>> out;
    if (result.empty()) return out;
    for (const auto& h : result[0]["histograms"]) {
      out.emplace_back(h[0].get<double>(), std::stod(h[1]["count"].get<std::string>()));
    }
    return out;
  }

  std::string Selector() const {
    return std::string("orion_function_duration_nanoseconds{function=\"") + kFunction + "\"}";
  }

  // GET /metrics in the text format, with the token.
  std::string ScrapeText() {
    httplib::Client client("127.0.0.1", metrics_port_);
    auto response = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
    return response && response->status == 200 ? response->body : "";
  }

  std::string dir_;
  int metrics_port_ = 0;
  int prometheus_port_ = 0;
  testing::Subprocess daemon_;
  testing::Subprocess prometheus_;
};

TEST_F(ExportTest, PrometheusSeesEveryCallOfAWatchedFunction) {
  testing::BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu", .sname = "exportapp", .cookie = kCookie}))
      << node.error();
  StartDaemon(node.node_name());
  ASSERT_TRUE(WaitForAttached(1, std::chrono::seconds(30))) << "the watch did not attach";
  StartPrometheus();

  // The scrape works with the token, and without it /metrics refuses.
  {
    httplib::Client client("127.0.0.1", metrics_port_);
    auto refused = client.Get("/metrics");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 401);
  }
  ASSERT_TRUE(testing::WaitFor([&] { return Value("orion_watch_up") == 1; },
                               std::chrono::seconds(60)))
      << "Prometheus never saw orion_watch_up == 1";
  ASSERT_TRUE(testing::WaitFor([&] { return Samples(30).size() >= 2; }, std::chrono::seconds(30)))
      << "no histogram samples of " << kFunction;
  const auto before = Samples(30);
  ASSERT_EQ(before.back().second, 0) << "nothing calls " << kFunction << " before the workload";

  // orion capture over the same calls, for its p99.
  testing::Subprocess capture;
  ASSERT_TRUE(capture.Start({ORION_TEST_ORION_BIN, "capture", "--pid",
                             std::to_string(node.os_pid()), "--json", kFunction}));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // attached (it takes < 1 s)
  constexpr int kCalls = 300;
  ASSERT_EQ(testing::ParseIntegerList(node.Eval("orion_workload:call_sleeper(" +
                                                std::to_string(kCalls) + ", 1).")).size(),
            static_cast<size_t>(kCalls));
  capture.Signal(SIGINT);  // Ctrl-C: it detaches and prints what it captured
  const std::string doc_text = capture.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(capture.Wait(std::chrono::seconds(10)), 0) << doc_text;
  const json doc = json::parse(doc_text);
  ASSERT_EQ(testing::CountOf(doc, kFunction), static_cast<uint64_t>(kCalls)) << doc_text;
  const double capture_p99 = (*testing::FindCall(doc, kFunction))["p99_ns"].get<double>();

  // Prometheus's samples: from before the workload (count 0) to after it (count kCalls). An
  // increase() over exactly that range needs no extrapolation.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const auto s = Samples(60);
        return !s.empty() && s.back().second == kCalls;
      },
      std::chrono::seconds(20)))
      << "Prometheus's count never reached " << kCalls;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto samples = Samples(120);
  double first = 0, last = 0;
  for (const auto& [t, count] : samples) {
    if (count == 0) first = t;
    last = t;
  }
  ASSERT_GT(first, 0);
  const std::string range = std::to_string(static_cast<int64_t>(std::llround((last - first) * 1000))) + "ms";
  const std::string increase = "increase(" + Selector() + "[" + range + "])";
  EXPECT_EQ(Value("histogram_count(" + increase + ")", last), kCalls);
  const double prom_p99 = Value("histogram_quantile(0.99, " + increase + ")", last);
  // Both come from the same kernel buckets: Prometheus interpolates inside the bucket
  // (2^(1/64) wide), Orion reports its bucket's value; and a latency of exactly 2^e ns sits one
  // bucket apart (docs/export.md). Two buckets of relative width bound the difference.
  const double bucket = std::exp2(1.0 / 64) - 1;
  std::printf("p99 of %d calls: prometheus %.0f ns, orion capture %.0f ns (ratio %.4f)\n", kCalls,
              prom_p99, capture_p99, prom_p99 / capture_p99);
  EXPECT_NEAR(prom_p99 / capture_p99, 1.0, 2 * bucket)
      << "prometheus p99 " << prom_p99 << " ns, orion capture p99 " << capture_p99 << " ns";
}

TEST_F(ExportTest, AWatchKeepsItsHistogramAcrossABeamRestartAndTheGapShows) {
  auto node = std::make_unique<testing::BeamNode>();
  ASSERT_TRUE(node->Start({.flavor = "emu", .sname = "exportrestart", .cookie = kCookie}))
      << node->error();
  const std::string node_name = node->node_name();
  StartDaemon(node_name);
  ASSERT_TRUE(WaitForAttached(1, std::chrono::seconds(30)));
  StartPrometheus();
  ASSERT_TRUE(testing::WaitFor([&] { return Value("orion_watch_up") == 1; },
                               std::chrono::seconds(60)));
  ASSERT_EQ(testing::ParseIntegerList(node->Eval("orion_workload:call_sleeper(100, 1).")).size(),
            100u);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const auto s = Samples(60);
        return !s.empty() && s.back().second == 100;
      },
      std::chrono::seconds(20)))
      << "Prometheus's count never reached 100";

  // The BEAM dies; some scrapes later, it is back under the same name.
  node->Kill();
  node.reset();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  node = std::make_unique<testing::BeamNode>();
  ASSERT_TRUE(node->Start({.flavor = "emu", .sname = "exportrestart", .cookie = kCookie}))
      << node->error();
  ASSERT_TRUE(WaitForAttached(2, std::chrono::seconds(30))) << "the watch did not re-attach";
  ASSERT_EQ(testing::ParseIntegerList(node->Eval("orion_workload:call_sleeper(50, 1).")).size(),
            50u);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const auto s = Samples(120);
        return !s.empty() && s.back().second == 150;
      },
      std::chrono::seconds(20)))
      << "the histogram did not go on from 100 to 150 after the restart";

  // The series was absent while the BEAM was down: a run of missing scrapes (scrape interval
  // 1 s) between the last sample at 100 calls and the first of the new BEAM.
  const auto samples = Samples(120);
  double longest_gap = 0;
  for (size_t i = 1; i < samples.size(); ++i) {
    EXPECT_GE(samples[i].second, samples[i - 1].second) << "the count went down at " << samples[i].first;
    longest_gap = std::max(longest_gap, samples[i].first - samples[i - 1].first);
  }
  EXPECT_GE(longest_gap, 4.0) << "no gap in the series while its BEAM was down";
  EXPECT_GE(Value("orion_watch_gaps_total"), 1);
}


TEST_F(ExportTest, AShellAddsListsAndRemovesAWatch) {
  testing::BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu", .sname = "exportshell", .cookie = kCookie}))
      << node.error();
  StartDaemon("");
  const std::string host = node.node_name().substr(node.node_name().find('@') + 1);
  const std::string daemon = "'orion_exporttest@" + host + "'";
  ASSERT_TRUE(testing::WaitFor([&] { return !ScrapeText().empty(); }, std::chrono::seconds(30)))
      << "the daemon's /metrics never answered";
  const auto call = [&](const std::string& request) {
    return node.Eval("gen_server:call({orion, " + daemon + "}, " + request + ", 10000).");
  };
  EXPECT_EQ(call("{watch_add, #{patterns => [<<\"orion_workload:known/1\">>], node => '" +
                 node.node_name() + "'}}"),
            "{ok,1}");
  ASSERT_TRUE(WaitForAttached(1, std::chrono::seconds(30))) << "the watch did not attach";
  ASSERT_EQ(node.Eval("orion_workload:call_known(1000)."), "ok");
  const std::string series = "orion_function_duration_nanoseconds_count{function=\"orion_workload:"
                             "known/1\",node=\"" + node.node_name() + "\",host=\"" + host + "\"} ";
  ASSERT_TRUE(testing::WaitFor([&] { return ScrapeText().find(series + "1000\n") != std::string::npos; },
                               std::chrono::seconds(20)))
      << ScrapeText();
  const std::string listed = call("{watches}");
  EXPECT_NE(listed.find("origin => protocol"), std::string::npos) << listed;
  EXPECT_NE(listed.find("<<\"live\">>"), std::string::npos) << listed;

  EXPECT_EQ(call("{watch_remove, 1}"), "ok");
  ASSERT_TRUE(testing::WaitFor([&] { return ScrapeText().find(series) == std::string::npos; },
                               std::chrono::seconds(20)))
      << "the removed watch's series is still exported";
  EXPECT_EQ(call("{watches}"), "{ok,[]}");
  EXPECT_NE(call("{watch_remove, 1}").find("not_found"), std::string::npos);
  auto inspected = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(inspected.ok());
  EXPECT_TRUE(testing::WaitFor([&] { return testing::SemaphoreOf(*inspected, "orion__call") == 0; },
                               std::chrono::seconds(10)))
      << "the removed watch left the node's probes attached";
}

// A watch in probes mode on a JIT node of Orion's patched build: the emulator pairs the calls
// (patch 0012), so the watch gets a session and counts from the kernel, with no tracer.
TEST_F(ExportTest, AProbesModeWatchCountsAPatchedJitNodeFromTheKernel) {
  testing::BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "jit", .sname = "exportjit", .cookie = kCookie}))
      << node.error();
  StartDaemon("");
  const std::string host = node.node_name().substr(node.node_name().find('@') + 1);
  ASSERT_TRUE(testing::WaitFor([&] { return !ScrapeText().empty(); }, std::chrono::seconds(30)))
      << "the daemon's /metrics never answered";
  EXPECT_EQ(node.Eval("gen_server:call({orion, 'orion_exporttest@" + host +
                      "'}, {watch_add, #{patterns => [<<\"orion_workload:known/1\">>], node => '" +
                      node.node_name() + "', mode => probes}}, 10000)."),
            "{ok,1}");
  ASSERT_TRUE(WaitForAttached(1, std::chrono::seconds(30))) << "the watch did not attach";
  auto inspected = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(inspected.ok());
  EXPECT_GT(testing::SemaphoreOf(*inspected, "orion__call"), 0) << "not captured from the kernel";
  ASSERT_EQ(node.Eval("orion_workload:call_known(1000)."), "ok");
  const std::string series = "orion_function_duration_nanoseconds_count{function=\"orion_workload:"
                             "known/1\",node=\"" + node.node_name() + "\",host=\"" + host + "\"} ";
  EXPECT_TRUE(testing::WaitFor([&] { return ScrapeText().find(series + "1000\n") != std::string::npos; },
                               std::chrono::seconds(20)))
      << ScrapeText();
}

}  // namespace
}  // namespace orion
