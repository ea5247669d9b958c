#include "userspace/daemon/daemon.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/daemon/function_names.h"
#include "userspace/daemon/host_capture.h"
#include "userspace/daemon/host_top.h"
#include "userspace/erlang/gen_call.h"
#include "userspace/erlang/node_client.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

using erlang::Term;
using protocol::CaptureRequest;
using protocol::CaptureResult;
using protocol::NodeStatus;

// The registered name every daemon answers to: gen_server:call({orion, Node}, ...).
constexpr const char* kRegisteredName = "orion";
// Peer replies carry sketches: allow more than a request may carry.
constexpr uint32_t kMaxPeerReplyBytes = 32u << 20;
// {functions, Prefix}: requests answered at once (each asks every BEAM of the host), the BEAMs
// asked per host, how long a BEAM may take (then it is left out), and a peer.
constexpr uint32_t kMaxLookups = 4;
constexpr size_t kMaxBeamsAsked = 32;
constexpr auto kBeamLookupTimeout = std::chrono::seconds(2);
constexpr auto kPeerLookupTimeout = std::chrono::seconds(3);

// Shells and peers reach orion@host at the address `host` resolves to: say so when the
// listener is not there.
void WarnIfUnreachableByName(const std::string& host, const DistAddress& listen) {
  if (listen.address.s_addr == htonl(INADDR_ANY)) return;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) {
    spdlog::warn("the node name's host '{}' does not resolve: shells and peers cannot reach the "
                 "daemon by its name",
                 host);
    return;
  }
  std::string resolved;
  bool listening_there = false;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const in_addr ip = reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    listening_there = listening_there || ip.s_addr == listen.address.s_addr;
    if (resolved.empty()) resolved = DistAddress{ip, 0}.text();
  }
  ::freeaddrinfo(found);
  if (!listening_there) {
    spdlog::warn("the daemon listens on {} but '{}' resolves to {}: shells and peers that reach "
                 "it by its node name cannot connect. For a cluster, listen on the host's "
                 "address: --listen {} (or listen = \"{}\" in orion.toml)",
                 listen.text(), host, resolved, resolved, resolved);
  }
}

std::string HostOf(const std::string& node) {
  const size_t at = node.find('@');
  return at == std::string::npos ? "" : node.substr(at + 1);
}

}  // namespace

StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonConfig config, std::string cookie,
                                                std::string version) {
  ASSIGN_OR_RETURN(erlang::NodeName name, erlang::ParseNodeName(config.name, config.longnames));
  DistAddress listen = DefaultDistAddress(name.host);
  if (!config.listen.empty()) {
    ASSIGN_OR_RETURN(listen, ParseDistAddress(config.listen));
  }
  std::unique_ptr<Daemon> daemon(new Daemon());
  ASSIGN_OR_RETURN(daemon->node_, erlang::CNode::Create(name, cookie));
  RETURN_IF_ERROR(daemon->node_->ListenAndPublish(listen.address, listen.port));
  WarnIfUnreachableByName(name.host, listen);
  daemon->listen_ = listen;
  daemon->listen_.port = static_cast<uint16_t>(daemon->node_->listen_port());
  daemon->config_ = std::move(config);
  daemon->cookie_ = std::move(cookie);
  daemon->version_ = std::move(version);
  RETURN_IF_ERROR(daemon->StartWatches());
  return daemon;
}

Status Daemon::StartWatches() {
  const DaemonConfig& config = config_;
  if (config.watches.empty() && config.metrics_listen.empty()) return OkStatus();
  std::optional<ListenAddress> address;
  std::string token;
  if (!config.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(address, ParseListenAddress(config.metrics_listen));
    if (config.metrics_token_file.empty()) {
      return InvalidArgument("metrics_listen needs metrics_token_file (or --metrics-token-file): "
                             "a scrape must send that token as a bearer token");
    }
    ASSIGN_OR_RETURN(token, ReadTokenFile(config.metrics_token_file));
  }
  watches_ = std::make_unique<WatchSet>(WatchOptions{.max_watches = config.max_watches,
                                                     .cookie = cookie_,
                                                     .only_netns = config.only_netns,
                                                     .host = HostOf(node_->name())});
  for (const WatchSpec& spec : config.watches) {
    RETURN_IF_ERROR(watches_->Add(spec, "config").status().WithContext("[[watch]] in the config"));
  }
  if (address) {
    ASSIGN_OR_RETURN(metrics_, MetricsServer::Start(*address, std::move(token),
                                                    [watches = watches_.get()](bool protobuf) {
                                                      return watches->Render(protobuf);
                                                    }));
  }
  return OkStatus();
}

Daemon::~Daemon() {
  metrics_.reset();  // before the watches it reads
  watches_.reset();
}

void Daemon::Run(std::atomic<bool>& stop) {
  stop_ = &stop;
  std::thread discovery;
  if (config_.discover) {
    discovery = std::thread([this, &stop] {
      while (!stop.load()) {
        DiscoverPeers();
        for (int i = 0; i < 300 && !stop.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
  ServerOptions options;
  options.max_connections = config_.max_connections;
  options.handshakes.limits.deadline = std::chrono::milliseconds(config_.handshake_timeout_ms);
  options.handshakes.limits.max_pending = config_.max_pending_handshakes;
  options.handshakes.limits.max_pending_per_source = config_.max_pending_handshakes_per_source;
  Server server(*node_, options,
                [this](const erlang::Message& m, const ReplyChannel& r) { OnMessage(m, r); });
  spdlog::info("{} serving (protocol {}, listening on {})", node_->name(),
               protocol::kProtocolVersion, listen_.text());
  server.Run(stop);
  if (discovery.joinable()) discovery.join();
  std::unique_lock<std::mutex> hold(mu_);
  captures_done_.wait(hold, [this] {
    return captures_running_ == 0 && lookups_running_ == 0 && streams_.empty();
  });
}

void Daemon::OnMessage(const erlang::Message& message, const ReplyChannel& reply) {
  if (!message.to_registered || message.to_name != kRegisteredName) {
    spdlog::debug("dropped a message not sent to '{}'", kRegisteredName);
    return;
  }
  protocol::ProtocolLimits limits;
  limits.max_duration_ms = std::min<uint64_t>(limits.max_duration_ms, config_.max_duration_ms);
  auto incoming = protocol::ParseIncomingCall(message.payload, limits);
  if (!incoming.ok()) {
    spdlog::warn("dropped a message that is not a gen_server call: {}",
                 incoming.status().message());
    return;
  }
  auto to = erlang::ToErlangPid(incoming->call.from);
  if (!to.ok()) return;
  const auto answer = [&](const Term& term) {
    reply.Send(*to, protocol::EncodeGenReply(incoming->call.tag, term));
  };
  if (!incoming->request.ok()) {
    spdlog::info("bad request: {}", incoming->request.status().message());
    answer(protocol::EncodeErrorStatus(incoming->request.status()));
    return;
  }
  const protocol::Request& request = *incoming->request;
  if (std::holds_alternative<protocol::PingRequest>(request)) {
    answer(protocol::EncodePingReply());
  } else if (std::holds_alternative<protocol::VersionRequest>(request)) {
    answer(protocol::EncodeVersionReply(version_));
  } else if (std::holds_alternative<protocol::TargetsRequest>(request)) {
    answer(protocol::EncodeTargetsReply(Targets()));
  } else if (const auto* capture = std::get_if<protocol::CaptureRequest>(&request)) {
    StartCapture(*capture, incoming->call, reply);
  } else if (const auto* top = std::get_if<protocol::TopRequest>(&request)) {
    StartTop(*top, incoming->call, reply);
  } else if (const auto* stream = std::get_if<protocol::StreamRequest>(&request)) {
    StartStream(*stream, incoming->call, reply);
  } else if (const auto* stop = std::get_if<protocol::StreamStopRequest>(&request)) {
    StopStream(*stop, incoming->call, reply);
  } else if (const auto* functions = std::get_if<protocol::FunctionsRequest>(&request)) {
    StartFunctions(*functions, incoming->call, reply);
  } else {
    answer(AnswerWatchRequest(request));
  }
}

Term Daemon::AnswerWatchRequest(const protocol::Request& request) {
  if (!watches_) {
    return protocol::EncodeErrorStatus(FailedPrecondition(
        "this daemon serves no /metrics (metrics_listen is not set in its config): a watch "
        "would have nowhere to go; docs/export.md"));
  }
  if (const auto* add = std::get_if<protocol::WatchAddRequest>(&request)) {
    WatchSpec spec{.patterns = add->patterns,
                   .node = add->node.value_or(""),
                   .mode = std::string(protocol::CaptureModeName(add->mode)),
                   .match_spec = add->match_spec.value_or("")};
    auto id = watches_->Add(std::move(spec), "protocol");
    return id.ok() ? protocol::EncodeWatchAddReply(*id) : protocol::EncodeErrorStatus(id.status());
  }
  if (const auto* remove = std::get_if<protocol::WatchRemoveRequest>(&request)) {
    const Status removed = watches_->Remove(remove->id);
    return removed.ok() ? protocol::EncodeOkReply() : protocol::EncodeErrorStatus(removed);
  }
  std::vector<protocol::WatchEntry> entries;
  for (const WatchInfo& info : watches_->List()) {
    protocol::WatchEntry e{.id = info.id, .patterns = info.spec.patterns, .origin = info.origin};
    if (!info.spec.node.empty()) e.node = info.spec.node;
    if (!info.spec.match_spec.empty()) e.match_spec = info.spec.match_spec;
    e.mode = info.spec.mode == "probes"   ? protocol::CaptureMode::kProbes
             : info.spec.mode == "tracer" ? protocol::CaptureMode::kTracer
                                          : protocol::CaptureMode::kAuto;
    for (const WatchInfo::Beam& b : info.beams) e.beams.push_back({b.pid, b.node, b.state});
    entries.push_back(std::move(e));
  }
  return protocol::EncodeWatchesReply(entries);
}

void Daemon::StartCapture(CaptureRequest request, protocol::GenCall call, ReplyChannel reply) {
  auto to = erlang::ToErlangPid(call.from);
  if (!to.ok()) return;
  // Bad patterns are the caller's mistake, answered before anything starts (and before the
  // request reaches the peers).
  for (const std::string& pattern : request.patterns) {
    if (auto parsed = probes::ParseMfaPattern(pattern); !parsed.ok()) {
      reply.Send(*to,
                 protocol::EncodeGenReply(call.tag, protocol::EncodeErrorStatus(parsed.status())));
      return;
    }
  }
  if (!AdmitMeasurement(call, *to, reply)) return;
  std::thread([this, request = std::move(request), tag = call.tag, to = *to, reply] {
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::future<CaptureResult>> parts;
    if (request.scope == protocol::Scope::kCluster) {
      for (const std::string& peer : Peers()) {
        parts.push_back(std::async(std::launch::async,
                                   [this, peer, &request] { return AskPeer(peer, request); }));
      }
    }
    std::vector<CaptureResult> results;
    results.push_back(CaptureHere(request));
    for (auto& part : parts) results.push_back(part.get());
    auto merged = protocol::MergeCaptureResults(std::move(results));
    Term answer = merged.ok() ? protocol::EncodeCaptureReply(*merged)
                              : protocol::EncodeErrorStatus(merged.status());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::info("capture of {} pattern(s) for {} ms ({}) answered after {} ms",
                 request.patterns.size(), request.duration_ms,
                 request.scope == protocol::Scope::kCluster ? "cluster" : "local", took.count());
    reply.Send(to, protocol::EncodeGenReply(tag, answer));
    MeasurementDone();
  }).detach();
}

bool Daemon::AdmitMeasurement(const protocol::GenCall& call, const erlang_pid& to,
                              const ReplyChannel& reply) {
  std::lock_guard<std::mutex> hold(mu_);
  if (captures_running_ < config_.max_captures) {
    ++captures_running_;
    return true;
  }
  reply.Send(to, protocol::EncodeGenReply(
                     call.tag, protocol::EncodeError(protocol::ErrorKind::kBusy,
                                                     std::to_string(captures_running_) +
                                                         " captures are running (max_captures); "
                                                         "try again when one ends")));
  return false;
}

void Daemon::MeasurementDone() {
  std::lock_guard<std::mutex> hold(mu_);
  --captures_running_;
  captures_done_.notify_all();
}

void Daemon::StartTop(protocol::TopRequest request, protocol::GenCall call, ReplyChannel reply) {
  auto to = erlang::ToErlangPid(call.from);
  if (!to.ok() || !AdmitMeasurement(call, *to, reply)) return;
  std::thread([this, request = std::move(request), tag = call.tag, to = *to, reply] {
    std::vector<std::future<protocol::TopReplyParts>> parts;
    if (request.scope == protocol::Scope::kCluster) {
      for (const std::string& peer : Peers()) {
        parts.push_back(std::async(std::launch::async,
                                   [this, peer, &request] { return AskPeerTop(peer, request); }));
      }
    }
    protocol::TopReplyParts all = TopHere(request);
    for (auto& part : parts) {
      protocol::TopReplyParts p = part.get();
      for (Term& beam : p.beams) all.beams.push_back(std::move(beam));
      for (NodeStatus& node : p.nodes) all.nodes.push_back(std::move(node));
    }
    reply.Send(
        to, protocol::EncodeGenReply(tag, protocol::EncodeTopReply(std::move(all.beams), all.nodes,
                                                                   request.duration_ms)));
    MeasurementDone();
  }).detach();
}

void Daemon::StartFunctions(protocol::FunctionsRequest request, protocol::GenCall call,
                            ReplyChannel reply) {
  auto to = erlang::ToErlangPid(call.from);
  if (!to.ok()) return;
  {
    std::lock_guard<std::mutex> hold(mu_);
    if (lookups_running_ == kMaxLookups) {
      reply.Send(*to, protocol::EncodeGenReply(
                          call.tag, protocol::EncodeError(protocol::ErrorKind::kBusy,
                                                          std::to_string(kMaxLookups) +
                                                              " {functions, Prefix} requests are "
                                                              "being answered; try again")));
      return;
    }
    ++lookups_running_;
  }
  std::thread([this, request = std::move(request), tag = call.tag, to = *to, reply] {
    std::vector<std::future<protocol::FunctionsResult>> parts;
    if (request.scope == protocol::Scope::kCluster) {
      for (const std::string& peer : Peers()) {
        parts.push_back(std::async(std::launch::async, [this, peer, &request] {
          return AskPeerFunctions(peer, request);
        }));
      }
    }
    std::vector<protocol::FunctionsResult> results;
    results.push_back(FunctionsHere(request));
    for (auto& part : parts) results.push_back(part.get());
    reply.Send(to, protocol::EncodeGenReply(tag, protocol::EncodeFunctionsReply(
                                                     protocol::MergeFunctions(std::move(results)))));
    std::lock_guard<std::mutex> hold(mu_);
    --lookups_running_;
    captures_done_.notify_all();
  }).detach();
}

protocol::FunctionsResult Daemon::FunctionsHere(const protocol::FunctionsRequest& request) {
  const auto deadline = std::chrono::steady_clock::now() + kBeamLookupTimeout;
  std::vector<std::pair<std::string, std::future<StatusOr<protocol::FunctionsResult>>>> asked;
  bool left_out = false;
  for (const beam::BeamProcess& b :
       HostBeams(request.node.value_or(""), config_.only_netns, /*usdt_only=*/false)) {
    if (b.node_name.empty()) continue;  // not distributed: nothing can ask it
    if (asked.size() == kMaxBeamsAsked) {
      left_out = true;
      break;
    }
    asked.emplace_back(b.node_name,
                       std::async(std::launch::async, [this, node = b.node_name, &request,
                                                       deadline] {
                         return CompleteOnBeam(node, cookie_, request.prefix, deadline);
                       }));
  }
  std::vector<protocol::FunctionsResult> results;
  for (auto& [node, part] : asked) {
    StatusOr<protocol::FunctionsResult> result = part.get();
    if (!result.ok()) {
      // A BEAM that cannot answer leaves its names out; the others' still come.
      spdlog::info("functions: {}: {}", node, result.status().message());
      continue;
    }
    results.push_back(*std::move(result));
  }
  protocol::FunctionsResult merged = protocol::MergeFunctions(std::move(results));
  merged.truncated = merged.truncated || left_out;
  return merged;
}

protocol::FunctionsResult Daemon::AskPeerFunctions(const std::string& peer,
                                                   const protocol::FunctionsRequest& request) {
  protocol::FunctionsRequest local = request;
  local.scope = protocol::Scope::kLocal;
  auto answer =
      erlang::GenServerCall(*node_, peer, kRegisteredName, protocol::EncodeRequest(local),
                            std::chrono::steady_clock::now() + kPeerLookupTimeout,
                            erlang::DecodeLimits{}, stop_);
  StatusOr<protocol::FunctionsResult> result =
      answer.ok() ? protocol::DecodeFunctionsReply(*answer)
                  : StatusOr<protocol::FunctionsResult>(answer.status());
  if (!result.ok()) {
    spdlog::info("functions: peer {}: {}", peer, result.status().message());
    return {};
  }
  return *std::move(result);
}

protocol::TopReplyParts Daemon::TopHere(const protocol::TopRequest& request) {
  HostTopSpec spec;
  spec.duration_ms = static_cast<uint32_t>(request.duration_ms);
  spec.node = request.node.value_or("");
  spec.sort = request.sort;
  spec.limit = request.limit;
  spec.only_netns = config_.only_netns;
  spec.host = node_->name();
  spec.cookie = cookie_;
  protocol::TopReplyParts out;
  auto beams = RunHostTop(spec, *stop_);
  if (!beams.ok()) {
    out.nodes.push_back(NodeStatus{node_->name(), beams.status(), std::nullopt});
    return out;
  }
  for (const protocol::TopBeamEntry& beam : *beams)
    out.beams.push_back(protocol::EncodeTopBeam(beam));
  out.nodes.push_back(NodeStatus{node_->name(), OkStatus(), std::nullopt});
  return out;
}

protocol::TopReplyParts Daemon::AskPeerTop(const std::string& peer,
                                           const protocol::TopRequest& request) {
  protocol::TopRequest local = request;
  local.scope = protocol::Scope::kLocal;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(request.duration_ms + config_.grace_ms);
  erlang::DecodeLimits limits;
  limits.max_bytes = kMaxPeerReplyBytes;
  limits.max_binary_bytes = kMaxPeerReplyBytes;
  limits.max_terms = 1u << 20;
  auto answer = erlang::GenServerCall(*node_, peer, kRegisteredName, protocol::EncodeRequest(local),
                                      deadline, limits, stop_);
  StatusOr<protocol::TopReplyParts> parts =
      answer.ok() ? protocol::ReadTopReply(*answer)
                  : StatusOr<protocol::TopReplyParts>(answer.status());
  if (!parts.ok()) {
    spdlog::warn("peer {}: {}", peer, parts.status().message());
    protocol::TopReplyParts failed;
    failed.nodes.push_back(NodeStatus{peer, parts.status(), std::nullopt});
    return failed;
  }
  return *std::move(parts);
}

CaptureResult Daemon::CaptureHere(const CaptureRequest& request) {
  HostCaptureSpec spec = HostSpecFor(request);
  CaptureResult result;
  result.duration_ms = request.duration_ms;
  auto captured = RunHostCapture(spec, *stop_);
  if (!captured.ok()) {
    // A node-targeted capture is answered by every daemon; the ones that do not host the node
    // say so with not_found, and the caller shows them as such, not as failures.
    result.nodes.push_back(NodeStatus{node_->name(), captured.status(), std::nullopt});
    return result;
  }
  for (const std::string& warning : captured->warnings) spdlog::warn("{}", warning);
  NodeStatus node{node_->name(), captured->status, std::nullopt};
  node.beams = std::move(captured->beam_statuses);
  if (captured->status.ok()) {
    result.functions = std::move(captured->functions);
    result.lost = captured->lost;
    if (request.per_node) node.functions = result.functions;
    node.stopped_at_rate = captured->stopped_at_rate;
  }
  result.nodes.push_back(std::move(node));
  return result;
}

CaptureResult Daemon::AskPeer(const std::string& peer, const CaptureRequest& request) {
  CaptureRequest local = request;
  local.scope = protocol::Scope::kLocal;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(request.duration_ms + config_.grace_ms);
  erlang::DecodeLimits limits;
  limits.max_bytes = kMaxPeerReplyBytes;
  limits.max_binary_bytes = kMaxPeerReplyBytes;
  limits.max_terms = 1u << 20;  // about 50 terms per function
  auto answer = erlang::GenServerCall(*node_, peer, kRegisteredName, protocol::EncodeRequest(local),
                                      deadline, limits, stop_);
  StatusOr<CaptureResult> result = answer.ok() ? protocol::DecodeCaptureReply(*answer)
                                               : StatusOr<CaptureResult>(answer.status());
  if (!result.ok()) {
    spdlog::warn("peer {}: {}", peer, result.status().message());
    CaptureResult failed;
    failed.duration_ms = request.duration_ms;
    failed.nodes.push_back(NodeStatus{peer, result.status(), std::nullopt});
    return failed;
  }
  return *std::move(result);
}

protocol::TargetsResult Daemon::Targets() {
  protocol::TargetsResult out;
  out.node = node_->name();
  for (const beam::BeamProcess& b : HostBeams("", config_.only_netns, /*usdt_only=*/false)) {
    protocol::BeamTarget t;
    t.os_pid = b.pid;
    if (!b.node_name.empty()) t.node = b.node_name;
    t.node_source = b.node_source == beam::NameSource::kEpmd      ? protocol::NodeSource::kEpmd
                    : b.node_source == beam::NameSource::kCmdline ? protocol::NodeSource::kCmdline
                                                                  : protocol::NodeSource::kNone;
    t.flavor =
        b.flavor == beam::Flavor::kEmu ? protocol::BeamFlavor::kEmu : protocol::BeamFlavor::kJit;
    t.function_probes = b.function_probes;
    out.beams.push_back(std::move(t));
  }
  out.peers = Peers();
  return out;
}

std::vector<std::string> Daemon::Peers() {
  std::set<std::string> peers(config_.peers.begin(), config_.peers.end());
  {
    std::lock_guard<std::mutex> hold(mu_);
    peers.insert(discovered_peers_.begin(), discovered_peers_.end());
  }
  peers.erase(node_->name());
  std::vector<std::string> out(peers.begin(), peers.end());
  if (out.size() > protocol::ProtocolLimits{}.max_peers)
    out.resize(protocol::ProtocolLimits{}.max_peers);
  return out;
}

// Asks each distributed BEAM of this host for nodes() and expects a daemon with our alive
// name on each of their hosts.
void Daemon::DiscoverPeers() {
  const std::string alive = node_->name().substr(0, node_->name().find('@'));
  std::set<std::string> found;
  for (const beam::BeamProcess& b : HostBeams("", config_.only_netns, /*usdt_only=*/false)) {
    if (b.node_name.empty()) continue;
    auto client = erlang::NodeClient::Connect(b.node_name, cookie_, std::chrono::seconds(2));
    if (!client.ok()) {
      spdlog::debug("discovery: {}: {}", b.node_name, client.status().message());
      continue;
    }
    auto reply = (*client)->Rpc("erlang", "nodes", std::string_view("\x6a", 1),
                                std::chrono::seconds(2));
    if (!reply.ok()) continue;
    const auto* data = reinterpret_cast<const uint8_t*>(reply->data());
    auto nodes = erlang::DecodeTermBody({data, reply->size()}, erlang::DecodeLimits{});
    if (!nodes.ok() || nodes->kind() != erlang::TermKind::kList) continue;
    for (const Term& n : nodes->elements()) {
      if (n.kind() != erlang::TermKind::kAtom) continue;
      const std::string host = HostOf(std::string(n.text()));
      if (!host.empty()) found.insert(alive + "@" + host);
    }
  }
  std::lock_guard<std::mutex> hold(mu_);
  for (const std::string& peer : found) {
    if (discovered_peers_.insert(peer).second) spdlog::info("discovered peer {}", peer);
  }
  if (discovered_peers_.size() > protocol::ProtocolLimits{}.max_peers) {
    discovered_peers_.erase(
        std::next(discovered_peers_.begin(), protocol::ProtocolLimits{}.max_peers),
        discovered_peers_.end());
  }
}

}  // namespace orion::daemon
