// The console's goals, measured (scripts/bench/ui_goal.sh, docs/ui.md "Performance"): one
// capture of 10 functions over 3 nodes for 10 minutes and more, in headless chromium on a real
// `orion ui`, daemons and USDT BEAMs (tests/integration/support/test_cluster.h).
//
//   ui_bench [--seconds N] [--rate CALLS_PER_S_PER_NODE] [--window S] [--sample S]
//                                                             (root; prints one JSON document)
//
// It measures what the page measures itself (window.orionConsole): the time to draw each new
// interval and the time from pressing Start to the first point drawn; and, every --sample
// seconds (30), the resident memory of `orion ui`, the page's JS heap after a garbage collection
// (DevTools' Runtime.getHeapUsage; typed arrays live outside it) and the page's renderer process
// (its proportional set size). Baselines from the same run: each before the capture starts.
//
// `orion ui`'s side: each sample also has what its kept window holds and what its allocator
// holds (GET /api/status "memory": mallinfo2), and, once the window is full, a second event
// stream connects first (as a page that opens or reloads does: the whole kept window is
// replayed to it), reads the replay and leaves. --window S keeps S seconds in `orion ui`
// (ORION_UI_WINDOW_S; the product keeps 600) so that the window is full early in the run.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "tests/integration/support/subprocess.h"
#include "tests/integration/support/process_stats.h"
#include "tests/integration/support/test_cluster.h"
#include "tests/ui/browser_driver.h"

namespace orion {
namespace {

using nlohmann::json;

using testing::RssKiB;

int Fail(const std::string& what) {
  std::fprintf(stderr, "ui_bench: %s\n", what.c_str());
  return 1;
}

// `orion ui`'s API from outside the page and the browser: GET a JSON document.
json GetJson(httplib::Client& client, const std::string& path, const std::string& token) {
  auto response = client.Get(path.c_str(), {{"Authorization", "Bearer " + token}});
  if (!response || response->status != 200) return json::object();
  return json::parse(response->body, nullptr, /*allow_exceptions=*/false);
}

// A page that connects: reads the event stream's replay (up to the state event that ends it),
// then leaves. Returns the bytes it read and how long it took.
std::pair<size_t, double> ReadReplay(int port, const std::string& id, const std::string& token) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  size_t bytes = 0;
  std::string tail;
  const auto begin = std::chrono::steady_clock::now();
  client.Get(("/api/captures/" + id + "/events?token=" + token).c_str(),
             [&](const char* data, size_t n) {
               bytes += n;
               tail.append(data, n);
               if (tail.find("event: state\n") != std::string::npos) return false;
               tail.erase(0, tail.size() > 32 ? tail.size() - 32 : 0);
               return true;
             });
  return {bytes, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
                     .count()};
}

int Run(int seconds, int rate, int window_s, int sample_s) {
  testing::TestCluster cluster;
  if (!cluster.Create(3)) return Fail("cluster: " + cluster.error());
  testing::Subprocess ui;
  std::vector<std::string> env;
  if (window_s != 600) env.push_back("ORION_UI_WINDOW_S=" + std::to_string(window_s));
  if (!ui.Start({ORION_UI_ORION, "ui", "--daemon", cluster.daemon_node(0), "--cookie-file",
                 cluster.cookie_file(), "--listen", "127.0.0.1:0"},
                env, /*merge_stderr=*/true)) {
    return Fail("cannot start orion ui");
  }
  std::string url = ui.WaitForLine("http://", std::chrono::seconds(30));
  url = url.substr(0, url.find_first_of(" \t"));
  if (url.empty()) return Fail("orion ui printed no URL");
  const size_t colon = url.rfind(':');
  const int port = std::atoi(url.c_str() + colon + 1);
  const std::string token = url.substr(url.find("token=") + 6);
  httplib::Client api("127.0.0.1", port);
  api.set_read_timeout(30, 0);

  testing::BrowserDriver browser;
  if (!browser.Start(ORION_UI_NODE, ORION_UI_DRIVER)) return Fail("cannot start the driver");
  auto run = [&](const json& command) {
    json answer = browser.Run(command, std::chrono::seconds(120));
    if (!answer.value("ok", false)) {
      std::fprintf(stderr, "ui_bench: %s: %s\n", command.dump().c_str(), answer.dump().c_str());
    }
    return answer;
  };
  if (!run({{"op", "goto"}, {"url", url}}).value("ok", false)) return Fail("page did not load");

  const uint64_t ui_rss_idle = RssKiB(ui.pid());
  const json ui_memory_idle = GetJson(api, "/api/status", token).value("memory", json::object());
  const json heap_idle = run({{"op", "heap"}});
  const json renderer_idle = run({{"op", "processMemory"}});

  std::string patterns;
  for (int f = 0; f < 10; ++f) patterns += "orion_ui_workload:f" + std::to_string(f) + "/1 ";
  for (int i = 0; i < cluster.size(); ++i) {
    const std::string started = cluster.beam(i).Eval(
        "orion_ui_workload:start(" + std::to_string(rate) + ", " + std::to_string(seconds + 60) +
        ").");
    if (started != "ok") return Fail("workload on host " + std::to_string(i) + ": " + started);
  }
  run({{"op", "fill"}, {"selector", "[data-testid=query]"}, {"text", patterns}});
  run({{"op", "select"}, {"selector", "[data-testid=duration]"}, {"value", "600"}});
  const json started = run({{"op", "start"}});
  if (!started.value("ok", false)) return Fail("the capture did not start");
  const std::string id = started["id"];

  // A capture lasts 10 minutes at most: past that, Restart continues it (its intervals append to
  // the window, which then slides), as a person would.
  json samples = json::array();
  const auto begin = std::chrono::steady_clock::now();
  bool restarted = false;
  for (int t = sample_s; t <= seconds; t += sample_s) {
    std::this_thread::sleep_until(begin + std::chrono::seconds(t));
    if (t > 600 && !restarted) {
      run({{"op", "waitFor"}, {"id", id}, {"state", "done"}, {"timeoutMs", 30000}});
      restarted = run({{"op", "click"}, {"id", id}, {"selector", "[data-testid=restart]"}}).value("ok", false);
    }
    // Once the window is full, a page connects and takes the replay of it, before the sample.
    std::pair<size_t, double> replay{0, 0.0};
    if (t >= window_s) replay = ReadReplay(port, id, token);
    const json heap = run({{"op", "heap"}});
    const json renderer = run({{"op", "processMemory"}});
    const json stats = run({{"op", "stats"}});
    const json ui_memory = GetJson(api, "/api/status", token).value("memory", json::object());
    const json kept = GetJson(api, "/api/captures/" + id, token).value("kept", json::object());
    samples.push_back({{"t_s", t},
                       {"ui_rss_kib", RssKiB(ui.pid())},
                       {"ui_memory", ui_memory},
                       {"kept", kept},
                       {"replay_bytes", replay.first},
                       {"replay_ms", replay.second},
                       {"page_heap_bytes", heap.value("usedSize", 0.0)},
                       {"renderer_pss_kib", renderer.value("rendererKiB", 0)},
                       {"page_data_bytes", stats["stats"].value("dataBytes", 0.0)}});
    std::fprintf(stderr, "ui_bench: %s\n", samples.back().dump().c_str());
  }
  const json stats = run({{"op", "stats"}});
  const json capture = run({{"op", "capture"}, {"id", id}});
  const json summary = run({{"op", "api"}, {"path", "/api/captures/" + id}});
  run({{"op", "api"}, {"method", "DELETE"}, {"path", "/api/captures/" + id}});

  // Draws of one new interval (a replay or a backlog draws several at once: reported apart).
  std::vector<double> single;
  std::vector<double> batched;
  for (const auto& draw : stats["stats"]["draws"]) {
    (draw.value("intervals", 1) == 1 ? single : batched).push_back(draw["ms"].get<double>());
  }
  std::sort(single.begin(), single.end());
  auto at = [&](double q) {
    return single.empty() ? 0.0 : single[static_cast<size_t>(q * (single.size() - 1))];
  };
  const auto& functions = capture["capture"]["functions"];
  json out = {
      {"seconds", seconds},
      {"window_s", window_s},
      {"sample_s", sample_s},
      {"rate_per_node", rate},
      {"nodes", cluster.size()},
      {"functions_seen", functions.is_object() ? functions.size() : 0},
      {"summary_intervals", summary["json"].value("intervals", 0)},
      {"first_point_ms", stats["stats"]["firstPoint"].value(id, -1.0)},
      {"draws", single.size()},
      {"draw_ms_p50", at(0.5)},
      {"draw_ms_p99", at(0.99)},
      {"draw_ms_max", single.empty() ? 0.0 : single.back()},
      {"draws_over_50ms", std::count_if(single.begin(), single.end(), [](double ms) { return ms >= 50; })},
      {"batched_draws", batched.size()},
      {"batched_draw_ms_max", batched.empty() ? 0.0 : *std::max_element(batched.begin(), batched.end())},
      {"ui_rss_idle_kib", ui_rss_idle},
      {"ui_memory_idle", ui_memory_idle},
      {"page_heap_idle_bytes", heap_idle.value("usedSize", 0.0)},
      {"renderer_pss_idle_kib", renderer_idle.value("rendererKiB", 0)},
      {"samples", samples},
      {"page_errors", stats["pageErrors"]},
  };
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}

}  // namespace
}  // namespace orion

int main(int argc, char** argv) {
  int seconds = 720;
  int rate = 2000;
  int window_s = 600;
  int sample_s = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--rate") == 0) rate = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--window") == 0) window_s = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--sample") == 0) sample_s = std::atoi(argv[i + 1]);
    else return orion::Fail(std::string("unknown option ") + argv[i]);
  }
  if (seconds < 30 || rate < 10) return orion::Fail("--seconds >= 30, --rate >= 10");
  if (window_s < 10 || window_s > 600) return orion::Fail("--window from 10 to 600 (seconds)");
  if (sample_s < 5) return orion::Fail("--sample >= 5 (seconds)");
  return orion::Run(seconds, rate, window_s, sample_s);
}
