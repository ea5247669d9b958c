#include "userspace/cli/remote_capture.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "userspace/cli/cli_support.h"
#include "userspace/cli/latency_report.h"
#include "userspace/cli/signals.h"
#include "userspace/erlang/c_node.h"
#include "userspace/erlang/cookie.h"
#include "userspace/erlang/gen_call.h"
#include "userspace/protocol/protocol.h"

namespace orion::cli {
namespace {

nlohmann::json BeamsJson(const std::vector<protocol::BeamStatus>& beams) {
  nlohmann::json out = nlohmann::json::array();
  for (const protocol::BeamStatus& b : beams) {
    out.push_back(
        {{"os_pid", b.os_pid},
         {"node", b.node ? nlohmann::json(*b.node) : nlohmann::json()},
         {"flavor", b.flavor == protocol::BeamFlavor::kEmu ? "emu" : "jit"},
         {"mode", b.mode ? nlohmann::json(protocol::CaptureModeName(*b.mode)) : nlohmann::json()},
         {"status", protocol::BeamOutcomeName(b.status)},
         {"reason", b.reason},
         {"calls", b.calls}});
  }
  return out;
}

// "    app@h1            pid 4242   emu  probes  counted: 1000 calls"
std::string BeamLine(const protocol::BeamStatus& b) {
  std::string outcome;
  switch (b.status) {
    case protocol::BeamOutcome::kCounted:
      outcome = "counted: " + std::to_string(b.calls) + (b.calls == 1 ? " call" : " calls");
      if (!b.reason.empty()) outcome += " (" + b.reason + ")";
      break;
    case protocol::BeamOutcome::kModuleNotLoaded:
      outcome = "module not loaded: " + b.reason;
      break;
    case protocol::BeamOutcome::kRefused:
      outcome = "refused: " + b.reason;
      if (b.calls > 0) outcome += " [" + std::to_string(b.calls) + " calls counted]";
      break;
    case protocol::BeamOutcome::kFailed:
      outcome = "failed: " + b.reason;
      break;
  }
  char line[160];
  std::snprintf(line, sizeof(line), "    %-28s pid %-8d %-4s %-7s ",
                b.node ? b.node->c_str() : "(not distributed)", static_cast<int>(b.os_pid),
                b.flavor == protocol::BeamFlavor::kEmu ? "emu" : "jit",
                b.mode ? std::string(protocol::CaptureModeName(*b.mode)).c_str() : "-");
  return line + outcome;
}

nlohmann::json NodesJson(const protocol::CaptureResult& result) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const protocol::NodeStatus& n : result.nodes) {
    nlohmann::json j;
    j["node"] = n.node;
    j["beams"] = BeamsJson(n.beams);
    if (n.status.ok()) {
      j["status"] = "ok";
      if (n.stopped_at_rate) {
        j["stopped"] = {{"reason", "max_rate"}, {"rate", *n.stopped_at_rate}};
      }
      if (n.functions) {
        j["calls"] = nlohmann::json::array();
        for (const auto& f : *n.functions) j["calls"].push_back(FunctionJson(f));
      }
    } else {
      j["status"] = "error";
      j["error"] = std::string(protocol::ErrorKindName(protocol::ErrorKindOf(n.status))) + ": " +
                   n.status.message();
    }
    nodes.push_back(j);
  }
  return nodes;
}

}  // namespace

int RunRemoteCapture(const RemoteCaptureOptions& options) {
  auto cookie = erlang::ReadCookieFile(options.cookie_file, /*require_root_owned=*/false);
  if (!cookie.ok()) return ReportError("capture", cookie.status());
  // Our own (unpublished) node name; long names when the daemon's host is qualified.
  const bool longnames = options.daemon.find('.') != std::string::npos;
  auto name = erlang::ParseNodeName("orion_cli_" + std::to_string(::getpid()), longnames);
  if (!name.ok()) return ReportError("capture", name.status());
  auto self = erlang::CNode::Create(*name, *cookie);
  if (!self.ok()) return ReportError("capture", self.status());

  protocol::CaptureRequest request;
  request.patterns = options.patterns;
  request.duration_ms = static_cast<uint64_t>(options.duration_s * 1000);
  if (!options.node.empty()) request.node = options.node;
  request.scope = options.cluster ? protocol::Scope::kCluster : protocol::Scope::kLocal;
  request.max_functions = options.max_functions;
  request.per_node = options.per_node;
  request.max_rate = options.max_rate;
  request.mode = options.mode == "tracer"   ? protocol::CaptureMode::kTracer
                 : options.mode == "probes" ? protocol::CaptureMode::kProbes
                                            : protocol::CaptureMode::kAuto;
  if (!options.match_spec.empty()) request.match_spec = options.match_spec;

  InstallStopSignals();
  spdlog::info("capturing through {}{} for {:g} s", options.daemon,
               options.cluster ? " on every host" : "", options.duration_s);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(request.duration_ms) +
                        std::chrono::milliseconds(static_cast<int>(kRemoteGraceSeconds * 1000));
  erlang::DecodeLimits limits;
  limits.max_bytes = 64u << 20;
  limits.max_binary_bytes = 64u << 20;
  limits.max_terms = 1u << 22;  // about 50 terms per function and node
  auto reply =
      erlang::GenServerCall(**self, options.daemon, "orion", protocol::EncodeRequest(request),
                            deadline, limits, &StopFlag());
  if (!reply.ok()) {
    if (StopRequested()) {
      std::fprintf(stderr, "orion capture: interrupted; the daemon finishes its capture alone\n");
      return kExitFailure;
    }
    return ReportError("capture", reply.status());
  }
  auto result = protocol::DecodeCaptureReply(*reply);
  if (!result.ok()) return ReportError("capture", result.status().WithContext(options.daemon));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  size_t ok_nodes = 0;
  for (const protocol::NodeStatus& n : result->nodes) ok_nodes += n.status.ok() ? 1 : 0;
  if (options.json) {
    nlohmann::json doc;
    doc["mode"] = "daemon";
    doc["daemon"] = options.daemon;
    doc["scope"] = options.cluster ? "cluster" : "local";
    if (!options.node.empty()) doc["node"] = options.node;
    doc["duration_s"] = elapsed;
    doc["patterns"] = options.patterns;
    doc["calls"] = nlohmann::json::array();
    for (const auto& f : result->functions) doc["calls"].push_back(FunctionJson(f));
    doc["lost"] = LostJson(result->lost);
    doc["nodes"] = NodesJson(*result);
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    probes::CaptureSnapshot snapshot;
    snapshot.functions = result->functions;
    snapshot.lost = result->lost;
    std::printf("orion capture through %s: %.1f s, %zu of %zu daemon(s) answered\n\n",
                options.daemon.c_str(), elapsed, ok_nodes, result->nodes.size());
    std::printf("%s%s\n", RenderTable(snapshot, nullptr, options.duration_s).c_str(),
                RenderLost(snapshot.lost).c_str());
    for (const protocol::NodeStatus& n : result->nodes) {
      std::string state = n.status.ok() ? "ok" : "error: " + n.status.message();
      if (n.stopped_at_rate) {
        state += " (stopped early: " + std::to_string(*n.stopped_at_rate) +
                 " probe hits/s, over --max-rate)";
      }
      std::printf("  %-32s %s\n", n.node.c_str(), state.c_str());
      for (const protocol::BeamStatus& b : n.beams) std::printf("%s\n", BeamLine(b).c_str());
    }
    for (const protocol::NodeStatus& n : result->nodes) {
      if (!n.functions) continue;
      probes::CaptureSnapshot part;
      part.functions = *n.functions;
      std::printf("\n%s:\n%s", n.node.c_str(),
                  RenderTable(part, nullptr, options.duration_s).c_str());
    }
  }
  std::fflush(stdout);
  if (ok_nodes == 0) {
    spdlog::error("no daemon could capture");
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace orion::cli
