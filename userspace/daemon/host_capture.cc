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

std::string BeamName(const beam::BeamProcess& b) {
  return b.node_name.empty() ? "pid " + std::to_string(b.pid) : b.node_name;
}

// One BEAM being captured: in probes mode (its own BPF object) or in tracer mode.
struct Source {
  beam::BeamProcess beam;
  std::unique_ptr<probes::Capture> capture;
  std::unique_ptr<probes::TracerCapture> tracer;
};

// Each source's cumulative totals; a source whose read fails is left out (and said in
// `errors` when given).
std::vector<BeamRead> ReadSources(const std::vector<Source>& sources,
                                  std::vector<std::string>* errors) {
  std::vector<BeamRead> reads;
  reads.reserve(sources.size());
  for (const Source& source : sources) {
    BeamRead read{.beam = source.beam, .tracer_mode = source.tracer != nullptr};
    if (source.capture) {
      auto snapshot = source.capture->Read();
      if (!snapshot.ok()) {
        if (errors) errors->push_back("reading " + BeamName(source.beam) + ": " +
                                      std::string(snapshot.status().message()));
        continue;
      }
      read.functions = std::move(snapshot->functions);
      read.lost = snapshot->lost;
    } else {
      auto snapshot = source.tracer->Read();
      if (!snapshot.ok()) {
        if (errors) errors->push_back("reading " + BeamName(source.beam) + ": " +
                                      std::string(snapshot.status().message()));
        continue;
      }
      read.functions = std::move(snapshot->capture.functions);
      read.lost = snapshot->capture.lost;
    }
    reads.push_back(std::move(read));
  }
  return reads;
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
  if (spec.pid != 0) {
    std::erase_if(candidates, [&](const beam::BeamProcess& b) { return b.pid != spec.pid; });
  }
  if (candidates.empty()) {
    const std::string what = usdt_only ? "USDT-enabled BEAM" : "BEAM";
    if (spec.pid != 0) {
      return NotFound("no " + what + " with pid " + std::to_string(spec.pid) +
                      (spec.node.empty() ? "" : " named " + spec.node) + " runs on this host");
    }
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

  // One source per BEAM, so that each BEAM's calls can be told apart (streams and watches
  // report per node) and one BEAM that cannot be attached does not sink the others.
  std::vector<Source> sources;
  std::vector<beam::BeamProcess> probe_beams = std::move(result.beams);
  result.beams.clear();
  for (beam::BeamProcess& b : probe_beams) {
    auto capture = probes::Capture::Start({b}, options);
    if (!capture.ok()) {
      if (capture.status().code() == StatusCode::kInvalidArgument) return capture.status();
      last_refusal = capture.status().WithContext(BeamName(b));
      result.warnings.push_back(std::string(last_refusal.message()));
      continue;
    }
    result.beams.push_back(b);
    sources.push_back({.beam = std::move(b), .capture = std::move(*capture)});
  }
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
    result.beams.push_back(b);
    sources.push_back({.beam = std::move(b), .tracer = std::move(*tracer)});
  }
  if (sources.empty()) return last_refusal;

  std::string targets;
  for (const beam::BeamProcess& b : result.beams) targets += " " + BeamName(b);
  spdlog::info("capture attached to{} for {} ms{}", targets, spec.duration_ms,
               result.tracer_nodes.empty()
                   ? ""
                   : " (" + std::to_string(result.tracer_nodes.size()) + " in tracer mode)");
  if (spec.on_attached) spec.on_attached(result.beams);
  // Probe hits so far, over both kinds (a tracer's: a call and a return per matched call).
  auto hits = [&]() -> StatusOr<uint64_t> {
    uint64_t total = 0;
    for (const Source& source : sources) {
      if (source.capture) {
        ASSIGN_OR_RETURN(const uint64_t n, source.capture->Events());
        total += n;
      } else {
        ASSIGN_OR_RETURN(const uint64_t n, source.tracer->Hits());
        total += n;
      }
    }
    return total;
  };
  const bool intervals = spec.interval_ms > 0 && spec.on_interval;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(spec.duration_ms);
  auto next_interval = start + std::chrono::milliseconds(spec.interval_ms);
  probes::RateGuard guard(spec.max_rate, start);  // as --max-rate
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(intervals ? 20 : 50));
    const auto now = std::chrono::steady_clock::now();
    if (intervals && now >= next_interval && now < deadline) {
      spec.on_interval(ReadSources(sources, nullptr), false);
      next_interval += std::chrono::milliseconds(spec.interval_ms);
      if (next_interval <= now) next_interval = now + std::chrono::milliseconds(spec.interval_ms);
    }
    if (!guard.Due(now)) continue;
    ASSIGN_OR_RETURN(const uint64_t events, hits());
    if (const auto rate = guard.Over(now, events)) {
      result.stopped_at_rate = static_cast<uint64_t>(*rate);
      spdlog::warn("capture stopped early: the BEAMs delivered {:.0f} events a second, over max_rate {}",
                   *rate, spec.max_rate);
      break;
    }
  }
  // Detach everything, then read: each BEAM's final totals, merged by MFA as the daemons
  // merge hosts.
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].capture) {
      sources[i].capture->Detach();
    } else if (Status stopped = sources[i].tracer->Stop(); !stopped.ok()) {
      result.warnings.push_back("clearing tracer mode on " + sources[i].beam.node_name + ": " +
                                std::string(stopped.message()));
    }
  }
  std::vector<std::string> read_errors;
  std::vector<BeamRead> reads = ReadSources(sources, &read_errors);
  for (std::string& e : read_errors) result.warnings.push_back(std::move(e));
  if (intervals) spec.on_interval(reads, true);
  std::vector<protocol::CaptureResult> parts;
  for (BeamRead& read : reads) {
    parts.push_back({.functions = std::move(read.functions), .lost = read.lost});
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
