#include "userspace/cli/tracer_capture_command.h"

#include <spdlog/fmt/fmt.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <chrono>
#include <cstdio>
#include <thread>

#include "userspace/cli/cli_support.h"
#include "userspace/cli/latency_report.h"
#include "userspace/cli/signals.h"
#include "userspace/erlang/cookie.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/rate_guard.h"
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

// The value of NAME in /proc/PID/environ, "" if unset or unreadable.
std::string EnvironOf(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = name + "=";
  for (size_t start = 0; start < all.size();) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    if (all.compare(start, key.size(), key) == 0) {
      return all.substr(start + key.size(), end - start - key.size());
    }
    start = end + 1;
  }
  return "";
}

}  // namespace

StatusOr<std::string> NodeCookie(const beam::BeamProcess& beam) {
  for (size_t i = 0; i + 1 < beam.argv.size(); ++i) {
    if (beam.argv[i] == "-setcookie") return beam.argv[i + 1];
  }
  const std::string home = EnvironOf(beam.pid, "HOME");
  if (home.empty() || home[0] != '/') {
    return NotFound("cannot tell the cookie of pid ", beam.pid,
                    " (no -setcookie, no HOME in its environment): pass --cookie-file PATH");
  }
  const std::string proc = "/proc/" + std::to_string(beam.pid);
  const std::string path = proc + "/root" + home + "/.erlang.cookie";
  struct stat owner {};
  if (stat(proc.c_str(), &owner) != 0) return NotFound("no process with pid ", beam.pid);
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return NotFound("cannot read the cookie of pid ", beam.pid, " (", home,
                    "/.erlang.cookie: ", std::strerror(errno), "): pass --cookie-file PATH");
  }
  struct stat st {};
  std::string cookie(256, '\0');
  const bool safe = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == owner.st_uid &&
                    (st.st_mode & 077) == 0;
  const ssize_t n = safe ? read(fd, cookie.data(), cookie.size()) : -1;
  close(fd);
  if (!safe) {
    return PermissionDenied(home, "/.erlang.cookie of pid ", beam.pid,
                            " is not a private file of the node's user: refused; pass "
                            "--cookie-file PATH");
  }
  cookie.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!cookie.empty() && std::isspace(static_cast<unsigned char>(cookie.back()))) {
    cookie.pop_back();
  }
  if (cookie.empty() || cookie.size() == 256) {
    return InvalidArgument(home, "/.erlang.cookie of pid ", beam.pid, " holds no usable cookie");
  }
  return cookie;
}

namespace {

nlohmann::json Document(const TracerCaptureRequest& request, const probes::TracerCapture& capture,
                        const probes::TracerSnapshot& snap, double elapsed, bool ended_early,
                        std::optional<double> over_rate) {
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
  doc["lost"]["threads_over_limit"] = snap.threads_over_limit;
  doc["target_exited"] = ended_early;
  if (over_rate) {
    doc["stopped"] = {{"reason", "max_rate"},
                      {"rate", static_cast<uint64_t>(*over_rate)},
                      {"max_rate", request.max_rate}};
  } else {
    doc["stopped"] = nullptr;
  }
  return doc;
}

}  // namespace

int RunTracerCapture(const TracerCaptureRequest& request) {
  if (::geteuid() != 0) {
    return ReportError("capture",
                       PermissionDenied("tracer mode needs root: it installs its NIF in a "
                                        "root-owned directory and reads the node's memory; run "
                                        "orion with sudo"));
  }
  StatusOr<std::string> cookie = request.cookie;
  if (request.cookie.empty()) {
    cookie = erlang::ReadCookieFile(request.cookie_file, /*require_root_owned=*/false);
    if (!cookie.ok()) return ReportError("capture", cookie.status());
  }

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
  probes::RateGuard guard(request.max_rate, start);  // --max-rate, on the NIF's events
  std::optional<double> over_rate;
  while (!StopRequested()) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (request.duration && elapsed >= *request.duration) break;
    if (guard.Due(now)) {
      auto hits = (*capture)->Hits();
      if (!hits.ok()) return ReportError("capture", hits.status());
      if ((over_rate = guard.Over(now, *hits))) break;
    }
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
    std::printf("%s\n",
                Document(request, **capture, *snap, elapsed, ended_early, over_rate).dump(2).c_str());
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
  if (over_rate) {
    spdlog::warn("stopped early: the traced events came {:.0f} times a second on {}, over "
                 "--max-rate {}; the trace patterns are cleared and the results above are what "
                 "was captured until then. Narrow the patterns or the match spec, or raise "
                 "--max-rate (0: no limit)",
                 *over_rate, request.node, request.max_rate);
  }
  return stopped.ok() ? kExitOk : kExitFailure;
}

}  // namespace orion::cli
