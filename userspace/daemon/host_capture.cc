#include "userspace/daemon/host_capture.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/beam/node_names.h"
#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/rate_guard.h"
#include "userspace/probes/tracer_capture.h"

namespace orion::daemon {
namespace {

std::string BeamName(const beam::BeamProcess& b) {
  return b.node_name.empty() ? "pid " + std::to_string(b.pid) : b.node_name;
}

protocol::BeamStatus StatusOf(const beam::BeamProcess& b) {
  protocol::BeamStatus status;
  status.os_pid = b.pid;
  if (!b.node_name.empty()) status.node = b.node_name;
  status.flavor =
      b.flavor == beam::Flavor::kEmu ? protocol::BeamFlavor::kEmu : protocol::BeamFlavor::kJit;
  return status;
}

// A BEAM not captured by rule (a mode it cannot run, another capture holding it, a limit) is
// refused; one that an error stopped failed.
protocol::BeamOutcome OutcomeOf(const Status& why) {
  return why.code() == StatusCode::kFailedPrecondition ||
                 why.code() == StatusCode::kResourceExhausted
             ? protocol::BeamOutcome::kRefused
             : protocol::BeamOutcome::kFailed;
}

std::string Joined(const std::vector<std::string>& texts) {
  std::string out;
  for (const std::string& t : texts) out += (out.empty() ? "" : "; ") + t;
  return out;
}

// One BEAM being captured: in probes mode (a BPF object of its own) or in tracer mode, with
// its own overload guard.
struct Source {
  beam::BeamProcess beam;
  size_t status = 0;                    // its entry in HostCaptureResult::beam_statuses
  std::optional<uint64_t> breakpoints;  // probes mode, pairing in the BEAM: Capture::Breakpoints
  std::unique_ptr<probes::Capture> capture;
  std::unique_ptr<probes::TracerCapture> tracer;
  probes::RateGuard guard{0, {}};
  bool stopped = false;  // detached early by its overload guard
};

// Events so far (a tracer's: a call and a return per matched call).
StatusOr<uint64_t> Hits(const Source& source) {
  return source.capture ? source.capture->Events() : source.tracer->Hits();
}

// Detaches (probes) or clears the node's tracing (tracer); what was counted stays readable.
void Detach(Source& source, std::vector<std::string>& warnings) {
  if (source.capture) {
    source.capture->Detach();
  } else if (Status stopped = source.tracer->Stop(); !stopped.ok()) {
    warnings.push_back("clearing tracer mode on " + source.beam.node_name + ": " +
                       std::string(stopped.message()));
  }
}

// One BEAM's cumulative totals.
StatusOr<BeamRead> ReadSource(const Source& source) {
  BeamRead read{.beam = source.beam, .tracer_mode = source.tracer != nullptr};
  if (source.capture) {
    ASSIGN_OR_RETURN(probes::CaptureSnapshot snapshot, source.capture->Read());
    read.functions = std::move(snapshot.functions);
    read.lost = snapshot.lost;
  } else {
    ASSIGN_OR_RETURN(probes::TracerSnapshot snapshot, source.tracer->Read());
    read.functions = std::move(snapshot.capture.functions);
    read.lost = snapshot.capture.lost;
  }
  return read;
}

// Each source's cumulative totals (interval reads); a source whose read fails is left out.
std::vector<BeamRead> ReadSources(const std::vector<Source>& sources) {
  std::vector<BeamRead> reads;
  reads.reserve(sources.size());
  for (const Source& source : sources) {
    auto read = ReadSource(source);
    if (read.ok()) reads.push_back(*std::move(read));
  }
  return reads;
}

StatusOr<probes::CaptureOptions> OptionsOf(const HostCaptureSpec& spec) {
  probes::CaptureOptions options;
  options.max_functions = spec.max_functions;
  for (const std::string& text : spec.patterns) {
    ASSIGN_OR_RETURN(probes::MfaPattern pattern, probes::ParseMfaPattern(text));
    options.patterns.push_back(pattern);
  }
  return options;
}

}  // namespace

std::vector<beam::BeamProcess> HostBeams(const std::string& node, bool only_netns,
                                         bool usdt_only) {
  std::vector<beam::BeamProcess> out =
      usdt_only ? beam::FindUsdtBeams(only_netns) : beam::FindAllBeams(only_netns);
  if (!node.empty()) {
    std::erase_if(out, [&](const beam::BeamProcess& b) {
      return !beam::NodeNameMatches(b.node_name, node);
    });
  }
  return out;
}

Status NoBeamFound(const std::string& node, bool only_netns, bool usdt_only) {
  const std::string what = usdt_only ? "USDT-enabled BEAM" : "BEAM";
  if (node.empty()) return NotFound("no ", what, " runs on this host");
  constexpr size_t kMaxListed = 8;
  const std::vector<beam::BeamProcess> here = HostBeams("", only_netns, usdt_only);
  std::string list;
  for (size_t i = 0; i < here.size() && i < kMaxListed; ++i) {
    const beam::BeamProcess& b = here[i];
    list += (i ? ", " : "") + (b.node_name.empty()
                                   ? "pid " + std::to_string(b.pid) + " (no node name)"
                                   : b.node_name + " (" +
                                         std::string(beam::NameSourceName(b.node_source)) + ")");
  }
  if (here.size() > kMaxListed) list += ", ...";
  return NotFound("no ", what, " named ", node, " runs on this host",
                  list.empty() ? "" : " (its " + what + "s: " + list + ")");
}

bool ProbesCanCapture(const beam::BeamProcess& beam, const HostCaptureSpec& spec) {
  auto options = OptionsOf(spec);
  return options.ok() && probes::WhyNotCapturable(beam, *options).empty();
}

StatusOr<HostCaptureResult> RunHostCapture(const HostCaptureSpec& spec,
                                           const std::atomic<bool>& stop) {
  ASSIGN_OR_RETURN(probes::CaptureOptions options, OptionsOf(spec));
  if (spec.mode == protocol::CaptureMode::kProbes && !spec.match_spec.empty()) {
    return InvalidArgument("a match spec needs tracer mode (function probes cannot test arguments)");
  }
  // Every BEAM, also those the mode cannot take: they are reported as refused.
  std::vector<beam::BeamProcess> candidates =
      HostBeams(spec.node, spec.only_netns, /*usdt_only=*/false);
  if (spec.pid != 0) {
    std::erase_if(candidates, [&](const beam::BeamProcess& b) { return b.pid != spec.pid; });
  }
  if (candidates.empty()) {
    if (spec.pid == 0) return NoBeamFound(spec.node, spec.only_netns, /*usdt_only=*/false);
    return NotFound("no BEAM with pid ", spec.pid, spec.node.empty() ? "" : " named " + spec.node,
                    " runs on this host");
  }
  HostCaptureResult result;
  std::vector<Source> sources;
  bool lacking = false;  // some BEAM lacks every module of the patterns
  Status last_problem;
  // Which BEAM in which mode: probes where function probes fire or the emulator pairs the
  // calls itself (a JIT of Orion's patched build), unless a match spec or the request asks
  // for tracer mode; tracer mode on distributed nodes otherwise.
  for (beam::BeamProcess& b : candidates) {
    protocol::BeamStatus status = StatusOf(b);
    const bool probes_ok = probes::WhyNotCapturable(b, options).empty();
    const bool want_tracer =
        spec.mode == protocol::CaptureMode::kTracer ||
        (spec.mode == protocol::CaptureMode::kAuto && (!probes_ok || !spec.match_spec.empty()));
    Status problem;
    if (!want_tracer && probes_ok) {
      status.mode = protocol::CaptureMode::kProbes;
      auto capture = probes::Capture::Start({b}, options);
      if (capture.ok()) {
        sources.push_back({.beam = b,
                           .status = result.beam_statuses.size(),
                           .breakpoints = (*capture)->Breakpoints(),
                           .capture = std::move(*capture)});
      } else if (capture.status().code() == StatusCode::kInvalidArgument) {
        return capture.status();  // the request's: the same on every BEAM
      } else {
        problem = capture.status();
      }
    } else if (want_tracer && !b.node_name.empty()) {
      status.mode = protocol::CaptureMode::kTracer;
      auto started = probes::TracerCapture::StartSkippingMissing(
          {.node = b.node_name,
           .cookie = spec.cookie,
           .patterns = options.patterns,
           .match_spec = spec.match_spec,
           .time_limit = std::chrono::milliseconds(spec.duration_ms) + std::chrono::seconds(60)});
      if (!started.ok()) {
        // A bad match spec is the request's fault: the same on every node.
        if (started.status().code() == StatusCode::kInvalidArgument) return started.status();
        problem = started.status().WithContext("tracer mode on " + b.node_name);
      } else if (!started->capture) {
        status.status = protocol::BeamOutcome::kModuleNotLoaded;
        status.reason = Joined(started->missing);
        lacking = true;
      } else {
        if (!started->missing.empty()) {
          status.reason = "left out, not on this node: " + Joined(started->missing);
        }
        sources.push_back({.beam = b,
                           .status = result.beam_statuses.size(),
                           .tracer = std::move(started->capture)});
      }
    } else {
      problem = want_tracer ? FailedPrecondition("pid ", b.pid,
                                                 " is not a distributed node (epmd knows no "
                                                 "name for it, and its command line gives no "
                                                 "-sname/-name): tracer mode cannot reach it")
                            : probes::CheckCapturable(b, options);
    }
    if (!problem.ok()) {
      status.status = OutcomeOf(problem);
      status.reason = problem.message();
      result.warnings.push_back(BeamName(b) + ": " + status.reason);
      last_problem = std::move(problem);
    }
    result.beam_statuses.push_back(std::move(status));
  }
  for (const Source& source : sources) {
    result.beams.push_back(source.beam);
    if (source.tracer) result.tracer_nodes.push_back(source.beam.node_name);
  }
  if (sources.empty()) {
    if (!lacking) result.status = last_problem;
    return result;
  }

  std::string targets;
  for (const beam::BeamProcess& b : result.beams) targets += " " + BeamName(b);
  spdlog::info("capture attached to{} for {} ms{}", targets, spec.duration_ms,
               result.tracer_nodes.empty()
                   ? ""
                   : " (" + std::to_string(result.tracer_nodes.size()) + " in tracer mode)");
  if (spec.on_attached) spec.on_attached(result.beams);
  const bool intervals = spec.interval_ms > 0 && spec.on_interval;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(spec.duration_ms);
  auto next_interval = start + std::chrono::milliseconds(spec.interval_ms);
  for (Source& source : sources) source.guard = probes::RateGuard(spec.max_rate, start);
  size_t running = sources.size();
  while (!stop.load() && running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(intervals ? 20 : 50));
    const auto now = std::chrono::steady_clock::now();
    if (intervals && now >= next_interval && now < deadline) {
      spec.on_interval(ReadSources(sources), false);
      next_interval += std::chrono::milliseconds(spec.interval_ms);
      if (next_interval <= now) next_interval = now + std::chrono::milliseconds(spec.interval_ms);
    }
    for (Source& source : sources) {
      if (source.stopped || !source.guard.Due(now)) continue;
      auto hits = Hits(source);
      if (!hits.ok()) continue;  // a BEAM that exited: its final read says what it counted
      const auto rate = source.guard.Over(now, *hits);
      if (!rate) continue;
      // This BEAM's guard (as --max-rate): it alone stops, the others go on.
      Detach(source, result.warnings);
      source.stopped = true;
      --running;
      protocol::BeamStatus& status = result.beam_statuses[source.status];
      status.status = protocol::BeamOutcome::kRefused;
      status.reason = fmt::format(
          "stopped after {:.1f} s by the overload guard: {:.0f} events a second, over max_rate "
          "{} (its calls until then are counted)",
          std::chrono::duration<double>(now - start).count(), *rate, spec.max_rate);
      result.stopped_at_rate =
          std::max(result.stopped_at_rate.value_or(0), static_cast<uint64_t>(*rate));
      spdlog::warn("capture of {} stopped early: {:.0f} events a second, over max_rate {}",
                   BeamName(source.beam), *rate, spec.max_rate);
    }
  }
  // Detach everything, then read: each BEAM's final totals, merged by MFA as the daemons
  // merge hosts.
  for (Source& source : sources) {
    if (!source.stopped) Detach(source, result.warnings);
  }
  std::vector<BeamRead> reads;
  for (const Source& source : sources) {
    protocol::BeamStatus& status = result.beam_statuses[source.status];
    auto read = ReadSource(source);
    if (!read.ok()) {
      status.status = protocol::BeamOutcome::kFailed;
      status.reason = "reading its counts: " + std::string(read.status().message());
      result.warnings.push_back(BeamName(source.beam) + ": " + status.reason);
      continue;
    }
    for (const probes::FunctionStats& f : read->functions) status.calls += f.wall.count();
    if (status.calls == 0 && source.breakpoints == 0) {
      status.status = protocol::BeamOutcome::kModuleNotLoaded;
      status.reason = "none of the patterns names a function of its loaded code";
    }
    if (::kill(source.beam.pid, 0) != 0) {
      const std::string exited = "exited during the capture; its calls until then are counted";
      result.warnings.push_back(
          "BEAM " + std::to_string(source.beam.pid) +
          (source.beam.node_name.empty() ? "" : " (" + source.beam.node_name + ")") + " " +
          exited);
      status.reason += (status.reason.empty() ? "" : "; ") + exited;
    }
    reads.push_back(*std::move(read));
  }
  if (intervals) spec.on_interval(reads, true);
  std::vector<protocol::CaptureResult> parts;
  for (BeamRead& read : reads) {
    parts.push_back({.functions = std::move(read.functions), .lost = read.lost});
  }
  ASSIGN_OR_RETURN(protocol::CaptureResult merged, protocol::MergeCaptureResults(std::move(parts)));
  result.functions = std::move(merged.functions);
  result.lost = merged.lost;
  return result;
}

}  // namespace orion::daemon
