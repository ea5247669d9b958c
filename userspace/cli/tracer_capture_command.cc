#include "userspace/cli/tracer_capture_command.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "userspace/cli/cli_support.h"
#include "userspace/cli/latency_report.h"
#include "userspace/cli/signals.h"
#include "userspace/dist/cookie.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/tracer_capture.h"

namespace orion::cli {
namespace {

using Clock = std::chrono::steady_clock;

// How often the capture checks (over rpc) that the node's watchdog still runs; this also keeps
// the distribution connection ticking.
constexpr auto kCheckEvery = std::chrono::seconds(2);
// The watchdog's own limit beyond --duration, and without a duration.
constexpr auto kWatchdogGrace = std::chrono::seconds(60);
constexpr auto kUntilInterrupted = std::chrono::hours(1);

nlohmann::json Document(const TracerCaptureRequest& request, const probes::TracerCapture& capture,
                        const probes::TracerSnapshot& snap, double elapsed, bool ended_early) {
  nlohmann::json doc;
  doc["mode"] = "tracer";
  doc["node"] = request.node;
  doc["pid"] = capture.beam_pid();
  doc["duration_s"] = elapsed;
  doc["patterns"] = nlohmann::json::array();
  for (const auto& p : request.patterns) doc["patterns"].push_back(p.ToString());
  doc["match_spec"] =
      request.match_spec.empty() ? nlohmann::json(nullptr) : nlohmann::json(request.match_spec);
  doc["calls"] = nlohmann::json::array();
  for (const auto& f : snap.capture.functions) doc["calls"].push_back(FunctionJson(f));
  doc["lost"] = LostJson(snap.capture.lost);
  doc["lost"]["unpaired_returns"] = snap.unpaired;
  doc["target_exited"] = ended_early;
  return doc;
}

}  // namespace

int RunTracerCapture(const TracerCaptureRequest& request) {
  probes::InstallLibbpfLogger(request.verbose);
  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return ReportError("capture", env);
  auto cookie = dist::ReadCookieFile(request.cookie_file, /*require_root_owned=*/false);
  if (!cookie.ok()) return ReportError("capture", cookie.status());

  const auto limit = request.duration
                         ? std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::duration<double>(*request.duration) + kWatchdogGrace)
                         : std::chrono::duration_cast<std::chrono::milliseconds>(kUntilInterrupted);
  // Before the node is touched: a Ctrl-C from now on ends the capture through the clean-up.
  InstallStopSignals();
  auto capture = probes::TracerCapture::Start({.node = request.node,
                                               .cookie = *cookie,
                                               .patterns = request.patterns,
                                               .match_spec = request.match_spec,
                                               .time_limit = limit});
  if (!capture.ok()) return ReportError("capture", capture.status());

  std::string what;
  for (const auto& p : request.patterns) what += " " + p.ToString();
  spdlog::info("tracer mode on {} (OS pid {}): capturing{}{} {}", request.node,
               (*capture)->beam_pid(), what,
               request.match_spec.empty() ? "" : " where " + request.match_spec,
               request.duration ? fmt::format("for {:g} s", *request.duration) : "until Ctrl-C");

  const bool live = !request.json && isatty(STDOUT_FILENO);
  const auto start = Clock::now();
  auto next_check = start + kCheckEvery;
  auto next_refresh = start + std::chrono::duration<double>(request.interval);
  std::optional<probes::TracerSnapshot> previous;
  bool ended_early = false;
  while (!StopRequested()) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (request.duration && elapsed >= *request.duration) break;
    if (now >= next_check) {
      auto alive = (*capture)->Alive();
      if (!alive.ok() || !*alive) {
        spdlog::warn("the capture ended on {}: {}", request.node,
                     alive.ok() ? "its watchdog stopped it" : alive.status().message());
        ended_early = true;
        break;
      }
      next_check = now + kCheckEvery;
    }
    if (live && now >= next_refresh) {
      auto snap = (*capture)->Read();
      if (!snap.ok()) return ReportError("capture", snap.status());
      std::printf(
          "\x1b[H\x1b[2Jorion capture --mode tracer  %s  %.0f s\n\n%s%s", request.node.c_str(),
          elapsed,
          RenderTable(snap->capture, previous ? &previous->capture : nullptr, request.interval)
              .c_str(),
          RenderLost(snap->capture.lost).c_str());
      std::fflush(stdout);
      previous = std::move(*snap);
      next_refresh += std::chrono::duration<double>(request.interval);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const Status stopped = (*capture)->Stop();
  if (!stopped.ok())
    spdlog::warn("clearing the capture on {}: {}", request.node, stopped.message());
  auto snap = (*capture)->Read();
  if (!snap.ok()) return ReportError("capture", snap.status());

  if (request.json) {
    std::printf("%s\n", Document(request, **capture, *snap, elapsed, ended_early).dump(2).c_str());
  } else {
    if (live) std::printf("\x1b[H\x1b[2J");
    std::printf("orion capture --mode tracer: %s, %.1f s, %llu matched calls\n\n",
                request.node.c_str(), elapsed, static_cast<unsigned long long>(snap->calls));
    std::printf("%s%s", RenderTable(snap->capture, nullptr, elapsed).c_str(),
                RenderLost(snap->capture.lost).c_str());
    if (snap->unpaired) {
      std::printf("unpaired returns (calls made before the capture): %llu\n",
                  static_cast<unsigned long long>(snap->unpaired));
    }
  }
  std::fflush(stdout);
  return stopped.ok() ? kExitOk : kExitFailure;
}

}  // namespace orion::cli
