#include "userspace/daemon/host_capture.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/rate_guard.h"
#include "userspace/probes/tracer_capture.h"

namespace orion::daemon {
namespace {

ino_t NetnsInode(const std::string& proc_dir) {
  struct stat st {};
  if (::stat((proc_dir + "/ns/net").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace

std::vector<beam::BeamProcess> HostBeams(const std::string& node, bool only_netns,
                                         bool usdt_only) {
  const ino_t own_netns = only_netns ? NetnsInode("/proc/self") : 0;
  std::vector<beam::BeamProcess> out;
  for (beam::BeamProcess& b : usdt_only ? beam::FindUsdtBeams() : beam::FindAllBeams()) {
    if (!node.empty() && b.node_name != node) continue;
    if (only_netns && NetnsInode("/proc/" + std::to_string(b.pid)) != own_netns) continue;
    out.push_back(std::move(b));
  }
  return out;
}

StatusOr<HostCaptureResult> RunHostCapture(const HostCaptureSpec& spec,
                                           const std::atomic<bool>& stop) {
  probes::CaptureOptions options;
  options.max_functions = spec.max_functions;
  for (const std::string& text : spec.patterns) {
    ASSIGN_OR_RETURN(probes::MfaPattern pattern, probes::ParseMfaPattern(text));
    options.patterns.push_back(pattern);
  }
  if (spec.mode == protocol::CaptureMode::kProbes && !spec.match_spec.empty()) {
    return InvalidArgument("a match spec needs tracer mode (function probes cannot test arguments)");
  }
  HostCaptureResult result;
  const bool usdt_only = spec.mode == protocol::CaptureMode::kProbes;
  std::vector<beam::BeamProcess> candidates = HostBeams(spec.node, spec.only_netns, usdt_only);
  if (candidates.empty()) {
    const std::string what = usdt_only ? "USDT-enabled BEAM" : "BEAM";
    return NotFound(spec.node.empty() ? "no " + what + " runs on this host"
                                      : "no " + what + " named " + spec.node + " runs on this host");
  }
  // Which BEAM in which mode: probes where function probes fire (unless a match spec or the
  // request asks for tracer mode), tracer mode on distributed nodes otherwise.
  std::vector<beam::BeamProcess> tracer_beams;
  Status last_refusal;
  for (beam::BeamProcess& b : candidates) {
    const bool probes_ok = beam::WhyNoFunctionProbes(b).empty();
    const bool want_tracer =
        spec.mode == protocol::CaptureMode::kTracer ||
        (spec.mode == protocol::CaptureMode::kAuto && (!probes_ok || !spec.match_spec.empty()));
    if (!want_tracer && probes_ok) {
      result.beams.push_back(std::move(b));
    } else if (want_tracer && !b.node_name.empty()) {
      tracer_beams.push_back(std::move(b));
    } else {
      last_refusal = want_tracer
                         ? FailedPrecondition("pid ", b.pid, " is not a distributed node (no "
                                              "-sname/-name): tracer mode cannot reach it")
                         : beam::CheckFunctionProbes(b);
      result.warnings.push_back(std::string(last_refusal.message()));
    }
  }
  if (result.beams.empty() && tracer_beams.empty()) return last_refusal;

  std::unique_ptr<probes::Capture> capture;
  if (!result.beams.empty()) {
    ASSIGN_OR_RETURN(capture, probes::Capture::Start(result.beams, options));
  }
  std::vector<std::unique_ptr<probes::TracerCapture>> tracers;
  for (beam::BeamProcess& b : tracer_beams) {
    auto tracer = probes::TracerCapture::Start(
        {.node = b.node_name,
         .cookie = spec.cookie,
         .patterns = options.patterns,
         .match_spec = spec.match_spec,
         .time_limit = std::chrono::milliseconds(spec.duration_ms) + std::chrono::seconds(60)});
    if (!tracer.ok()) {
      // A bad match spec or pattern is the request's fault: the same on every node.
      if (tracer.status().code() == StatusCode::kInvalidArgument) return tracer.status();
      last_refusal = tracer.status().WithContext("tracer mode on " + b.node_name);
      result.warnings.push_back(std::string(last_refusal.message()));
      continue;
    }
    result.tracer_nodes.push_back(b.node_name);
    tracers.push_back(std::move(*tracer));
    result.beams.push_back(std::move(b));
  }
  if (!capture && tracers.empty()) return last_refusal;

  std::string targets;
  for (const beam::BeamProcess& b : result.beams) {
    targets += " " + (b.node_name.empty() ? "pid " + std::to_string(b.pid) : b.node_name);
  }
  spdlog::info("capture attached to{} for {} ms{}", targets, spec.duration_ms,
               tracers.empty() ? "" : " (" + std::to_string(tracers.size()) + " in tracer mode)");
  // Probe hits so far, over both kinds (a tracer's: a call and a return per matched call).
  auto hits = [&]() -> StatusOr<uint64_t> {
    uint64_t total = 0;
    if (capture) {
      ASSIGN_OR_RETURN(total, capture->Events());
    }
    for (const auto& t : tracers) {
      ASSIGN_OR_RETURN(const uint64_t n, t->Hits());
      total += n;
    }
    return total;
  };
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(spec.duration_ms);
  probes::RateGuard guard(spec.max_rate, std::chrono::steady_clock::now());  // as --max-rate
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (!guard.Due(now)) continue;
    ASSIGN_OR_RETURN(const uint64_t events, hits());
    if (const auto rate = guard.Over(now, events)) {
      result.stopped_at_rate = static_cast<uint64_t>(*rate);
      spdlog::warn("capture stopped early: the BEAMs delivered {:.0f} events a second, over max_rate {}",
                   *rate, spec.max_rate);
      break;
    }
  }
  // Every source's functions, merged by MFA as the daemons merge hosts.
  std::vector<protocol::CaptureResult> parts;
  if (capture) {
    capture->Detach();
    ASSIGN_OR_RETURN(probes::CaptureSnapshot snapshot, capture->Read());
    parts.push_back({.functions = std::move(snapshot.functions), .lost = snapshot.lost});
  }
  for (size_t i = 0; i < tracers.size(); ++i) {
    if (Status stopped = tracers[i]->Stop(); !stopped.ok()) {
      result.warnings.push_back("clearing tracer mode on " + result.tracer_nodes[i] + ": " +
                                std::string(stopped.message()));
    }
    ASSIGN_OR_RETURN(probes::TracerSnapshot snapshot, tracers[i]->Read());
    parts.push_back({.functions = std::move(snapshot.capture.functions),
                     .lost = snapshot.capture.lost});
  }
  ASSIGN_OR_RETURN(protocol::CaptureResult merged, protocol::MergeCaptureResults(std::move(parts)));
  result.functions = std::move(merged.functions);
  result.lost = merged.lost;
  for (const beam::BeamProcess& b : result.beams) {
    if (::kill(b.pid, 0) != 0) {
      result.warnings.push_back("BEAM " + std::to_string(b.pid) +
                                (b.node_name.empty() ? "" : " (" + b.node_name + ")") +
                                " exited during the capture; its calls until then are counted");
    }
  }
  return result;
}

}  // namespace orion::daemon
