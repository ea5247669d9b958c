// The console's goals, measured (scripts/bench/ui_goal.sh, docs/ui.md "Performance"): one
// capture of 10 functions over 3 nodes for 10 minutes and more, in headless chromium on a real
// `orion ui`, daemons and USDT BEAMs (tests/integration/support/test_cluster.h).
//
//   ui_bench [--seconds N] [--rate CALLS_PER_S_PER_NODE]     (root; prints one JSON document)
//
// It measures what the page measures itself (window.orionConsole): the time to draw each new
// interval and the time from pressing Start to the first point drawn; and, every 30 s, the
// resident memory of `orion ui`, the page's JS heap after a garbage collection (DevTools'
// Runtime.getHeapUsage; typed arrays live outside it) and the page's renderer process (its
// proportional set size). Baselines from the same run: each before the capture starts.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

int Run(int seconds, int rate) {
  testing::TestCluster cluster;
  if (!cluster.Create(3)) return Fail("cluster: " + cluster.error());
  testing::Subprocess ui;
  if (!ui.Start({ORION_UI_ORION, "ui", "--daemon", cluster.daemon_node(0), "--cookie-file",
                 cluster.cookie_file(), "--listen", "127.0.0.1:0"},
                {}, /*merge_stderr=*/true)) {
    return Fail("cannot start orion ui");
  }
  std::string url = ui.WaitForLine("http://", std::chrono::seconds(30));
  url = url.substr(0, url.find_first_of(" \t"));
  if (url.empty()) return Fail("orion ui printed no URL");

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
  for (int t = 30; t <= seconds; t += 30) {
    std::this_thread::sleep_until(begin + std::chrono::seconds(t));
    if (t > 600 && !restarted) {
      run({{"op", "waitFor"}, {"id", id}, {"state", "done"}, {"timeoutMs", 30000}});
      restarted = run({{"op", "click"}, {"id", id}, {"selector", "[data-testid=restart]"}}).value("ok", false);
    }
    const json heap = run({{"op", "heap"}});
    const json renderer = run({{"op", "processMemory"}});
    const json stats = run({{"op", "stats"}});
    samples.push_back({{"t_s", t},
                       {"ui_rss_kib", RssKiB(ui.pid())},
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
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--rate") == 0) rate = std::atoi(argv[i + 1]);
    else return orion::Fail(std::string("unknown option ") + argv[i]);
  }
  if (seconds < 30 || rate < 10) return orion::Fail("--seconds >= 30, --rate >= 10");
  return orion::Run(seconds, rate);
}
