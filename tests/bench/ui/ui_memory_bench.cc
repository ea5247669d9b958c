// orion ui's memory once its kept window is full, without a cluster or a browser: the real
// CaptureRegistry and UiServer (userspace/ui), fed intervals shaped as the console bench's
// (10 functions x 3 nodes, each with a wall and an on-CPU sketch of --calls calls spread over
// two decades of latency) faster than real time, with a page's event stream connected the whole
// time and, once the window is full, a second event stream that reads the replay of the kept
// window and leaves every --replay-every intervals (a page that opens or reloads). The real
// cluster and chromium: scripts/bench/ui_goal.sh (`scripts/bench.sh ui-memory`).
//
//   ui_memory_bench [--window S] [--windows N] [--calls C] [--replay-every I]
//
// Prints one JSON document: per sample (every half window of intervals), this process's resident
// set, what the kept window holds and the allocator's figures (mallinfo2), and the ratio of the
// last sample's RSS to the first one's once the window is full.
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "userspace/ui/capture_registry.h"
#include "userspace/ui/ui_server.h"

namespace orion::ui {
namespace {

using nlohmann::json;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// The cluster is not needed: the stream's intervals are added to the registry directly.
class NoCluster : public UiBackend {
 public:
  Status StartCapture(const std::string&, const CaptureOptions&) override { return OkStatus(); }
  Status StopCapture(const std::string&) override { return OkStatus(); }
  StatusOr<json> Functions(const std::string&) override { return json::object(); }
  StatusOr<json> Nodes() override { return json::object(); }
  json DaemonStatus() override { return {{"daemon", "none"}, {"connected", true}}; }
};

uint64_t SelfRssKiB() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

protocol::IntervalEvent MakeInterval(uint64_t seq, uint64_t calls, std::mt19937_64& random) {
  std::lognormal_distribution<double> latency(std::log(50'000.0), 1.2);  // ~50 us, two decades
  protocol::IntervalEvent interval;
  interval.seq = seq;
  interval.end_ms = 1'700'000'000'000 + seq * 1000;
  interval.interval_ms = 1000;
  for (int n = 0; n < 3; ++n) {
    protocol::NodeInterval node;
    node.node = "bench" + std::to_string(n) + "@host" + std::to_string(n);
    node.host = "host" + std::to_string(n);
    node.os_pid = 1000 + n;
    for (int f = 0; f < 10; ++f) {
      probes::FunctionStats stats;
      stats.mfa = "orion_ui_workload:f" + std::to_string(f) + "/1";
      for (uint64_t c = 0; c < calls; ++c) {
        const double wall = latency(random);
        (void)stats.wall.add(wall, 1);
        (void)stats.cpu.add(wall / 3, 1);
      }
      node.functions.push_back(std::move(stats));
    }
    interval.nodes.push_back(std::move(node));
  }
  return interval;
}

// Reads the event stream of `id` until `stop` (the page), or until the replay's state event (a
// page that connects, takes the window and leaves). Returns the bytes read.
size_t ReadEvents(int port, const std::string& id, bool replay_only, const std::atomic<bool>& stop) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  size_t bytes = 0;
  std::string tail;
  client.Get(("/api/captures/" + id + "/events?token=" + kToken).c_str(),
             [&](const char* data, size_t n) {
               bytes += n;
               if (stop) return false;
               if (!replay_only) return true;
               tail.append(data, n);
               if (tail.find("event: state\n") != std::string::npos) return false;
               tail.erase(0, tail.size() > 32 ? tail.size() - 32 : 0);
               return true;
             });
  return bytes;
}

int Run(int window_s, int windows, int calls, int replay_every) {
  CaptureRegistry registry({.window_ms = uint64_t(window_s) * 1000});
  NoCluster cluster;
  auto server = UiServer::Start({.listen = {"127.0.0.1", 0}, .token = kToken}, registry, cluster);
  if (!server.ok()) {
    std::fprintf(stderr, "ui_memory_bench: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const int port = (*server)->port();
  auto id = registry.Add({.patterns = {"orion_ui_workload:f0/1"}}, 0);
  if (!id.ok()) return 1;
  const uint64_t rss_idle = SelfRssKiB();

  std::atomic<bool> stop{false};
  std::thread page([&] { ReadEvents(port, *id, false, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the page is connected

  std::mt19937_64 random(42);
  json samples = json::array();
  const int total = window_s * windows;
  size_t replays = 0, replay_bytes = 0;
  for (int seq = 1; seq <= total; ++seq) {
    registry.AddInterval(*id, MakeInterval(seq, calls, random));
    if (seq > window_s && seq % replay_every == 0) {
      replay_bytes = ReadEvents(port, *id, true, stop);
      ++replays;
    }
    if (seq % std::max(1, window_s / 2) == 0) {
      const struct mallinfo2 heap = ::mallinfo2();
      const KeptWindow kept = registry.Kept();
      samples.push_back({{"interval", seq},
                         {"rss_kib", SelfRssKiB()},
                         {"kept_intervals", kept.intervals},
                         {"kept_bytes", kept.bytes},
                         {"heap_in_use_bytes", heap.uordblks + heap.hblkhd},
                         {"heap_free_bytes", heap.fordblks},
                         {"heap_arena_bytes", heap.arena},
                         {"heap_mmapped_bytes", heap.hblkhd},
                         {"replays", replays},
                         {"last_replay_bytes", replay_bytes}});
      std::fprintf(stderr, "ui_memory_bench: %s\n", samples.back().dump().c_str());
    }
  }
  stop = true;
  registry.AddInterval(*id, MakeInterval(total + 1, 1, random));  // wakes the page's stream
  page.join();
  json full = json::array();
  for (const json& s : samples) {
    if (s["interval"].get<int>() > window_s) full.push_back(s);
  }
  const double ratio = full.size() > 1 ? full.back()["rss_kib"].get<double>() /
                                             full.front()["rss_kib"].get<double>()
                                       : 0.0;
  json out = {{"window_s", window_s}, {"windows", windows}, {"calls_per_function", calls},
              {"replay_every", replay_every}, {"rss_idle_kib", rss_idle},
              {"samples", samples}, {"rss_last_over_first_full", ratio}};
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}

}  // namespace
}  // namespace orion::ui

int main(int argc, char** argv) {
  int window_s = 600, windows = 4, calls = 200, replay_every = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--window") == 0) window_s = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--windows") == 0) windows = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--calls") == 0) calls = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--replay-every") == 0) replay_every = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "ui_memory_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (window_s < 10 || windows < 2 || calls < 1 || replay_every < 1) {
    std::fprintf(stderr, "ui_memory_bench: --window >= 10, --windows >= 2, --calls >= 1, "
                         "--replay-every >= 1\n");
    return 2;
  }
  return orion::ui::Run(window_s, windows, calls, replay_every);
}
