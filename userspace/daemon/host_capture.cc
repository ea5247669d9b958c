#include "userspace/daemon/host_capture.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

ino_t NetnsInode(const std::string& proc_dir) {
  struct stat st {};
  if (::stat((proc_dir + "/ns/net").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace

std::vector<beam::BeamProcess> HostBeams(const std::string& node, bool only_netns) {
  const ino_t own_netns = only_netns ? NetnsInode("/proc/self") : 0;
  std::vector<beam::BeamProcess> out;
  for (beam::BeamProcess& b : beam::FindUsdtBeams()) {
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
  HostCaptureResult result;
  std::vector<beam::BeamProcess> candidates = HostBeams(spec.node, spec.only_netns);
  if (candidates.empty()) {
    return NotFound(spec.node.empty() ? std::string("no USDT-enabled BEAM runs on this host")
                                      : "no USDT-enabled BEAM named " + spec.node +
                                            " runs on this host");
  }
  Status last_refusal;
  for (beam::BeamProcess& b : candidates) {
    const Status usable = beam::CheckFunctionProbes(b);
    if (usable.ok()) {
      result.beams.push_back(std::move(b));
    } else {
      last_refusal = usable;
      result.warnings.push_back(usable.message());
    }
  }
  if (result.beams.empty()) return last_refusal;

  ASSIGN_OR_RETURN(std::unique_ptr<probes::Capture> capture,
                   probes::Capture::Start(result.beams, options));
  std::string targets;
  for (const beam::BeamProcess& b : result.beams) {
    targets += " " + (b.node_name.empty() ? "pid " + std::to_string(b.pid) : b.node_name);
  }
  spdlog::info("capture attached to{} for {} ms", targets, spec.duration_ms);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(spec.duration_ms);
  // The overload guard, as in `orion capture --max-rate`: probe hits over each second.
  auto window_start = std::chrono::steady_clock::now();
  uint64_t window_events = 0;
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (spec.max_rate == 0 || now - window_start < std::chrono::seconds(1)) continue;
    ASSIGN_OR_RETURN(const uint64_t events, capture->Events());
    const double rate = static_cast<double>(events - window_events) /
                        std::chrono::duration<double>(now - window_start).count();
    if (rate > static_cast<double>(spec.max_rate)) {
      result.stopped_at_rate = static_cast<uint64_t>(rate);
      spdlog::warn("capture stopped early: the probes fired {:.0f} times a second, over max_rate {}",
                   rate, spec.max_rate);
      break;
    }
    window_start = now;
    window_events = events;
  }
  capture->Detach();
  ASSIGN_OR_RETURN(probes::CaptureSnapshot snapshot, capture->Read());
  result.functions = std::move(snapshot.functions);
  result.lost = snapshot.lost;
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
