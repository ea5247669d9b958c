#include "userspace/ui/daemon_link.h"

#include <unistd.h>

#include <future>

#include <spdlog/spdlog.h>

#include "userspace/erlang/gen_call.h"
#include "userspace/protocol/protocol.h"

namespace orion::ui {

using erlang::Term;
using erlang::TermKind;
using nlohmann::json;

namespace {

constexpr size_t kMaxStreamMessageBytes = 16u << 20;
constexpr int kConnectTimeoutMs = 3000;
constexpr int kSendTimeoutMs = 5000;
constexpr size_t kMaxPeersAsked = 64;

erlang::DecodeLimits StreamDecodeLimits() {
  erlang::DecodeLimits limits;
  limits.max_bytes = kMaxStreamMessageBytes;
  limits.max_binary_bytes = kMaxStreamMessageBytes;
  limits.max_terms = 1u << 22;
  return limits;
}

erlang::ErlangPid ToTermPid(const erlang_pid& pid) {
  return erlang::ErlangPid{pid.node, pid.num, pid.serial, pid.creation};
}

std::string HostOf(const std::string& node) {
  const size_t at = node.find('@');
  return at == std::string::npos ? "" : node.substr(at + 1);
}

StatusOr<erlang::NodeName> OwnNodeName(const std::string& daemon, std::string_view suffix) {
  // Long names when the daemon's host is qualified, as the daemon itself uses them.
  const bool longnames = HostOf(daemon).find('.') != std::string::npos;
  return erlang::ParseNodeName("orion_ui_" + std::to_string(::getpid()) + std::string(suffix),
                               longnames);
}

}  // namespace

struct DaemonLink::Call {
  Term request;
  Term tag;
  std::function<void(const Term&)> on_reply;
  std::promise<StatusOr<Term>> done;
  std::chrono::steady_clock::time_point deadline;
};

DaemonLink::DaemonLink(DaemonLinkOptions options, CaptureRegistry& registry)
    : options_(std::move(options)), registry_(registry) {}

StatusOr<std::unique_ptr<DaemonLink>> DaemonLink::Start(DaemonLinkOptions options,
                                                         CaptureRegistry& registry) {
  ASSIGN_OR_RETURN(const erlang::NodeName name, OwnNodeName(options.daemon, ""));
  std::unique_ptr<DaemonLink> link(new DaemonLink(std::move(options), registry));
  ASSIGN_OR_RETURN(link->node_, erlang::CNode::Create(name, link->options_.cookie));
  link->Connect();
  link->thread_ = std::thread([raw = link.get()] { raw->Run(); });
  return link;
}

DaemonLink::~DaemonLink() {
  stop_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DaemonLink::Connect() {
  auto connection = node_->Connect(options_.daemon, kConnectTimeoutMs);
  std::lock_guard lock(mu_);
  if (!connection.ok()) {
    if (last_error_ != connection.status().message()) {
      spdlog::warn("cannot reach the daemon {}: {} (retrying every second)", options_.daemon,
                   connection.status().message());
    }
    last_error_ = connection.status().message();
    connected_ = false;
    return;
  }
  spdlog::info("connected to the daemon {}", options_.daemon);
  connection_ = std::move(*connection);
  connected_ = true;
  last_error_.clear();
}

void DaemonLink::Disconnected(const orion::Status& why) {
  connection_.reset();
  std::vector<std::pair<Term, std::string>> streams;
  std::vector<std::shared_ptr<Call>> calls;
  {
    std::lock_guard lock(mu_);
    connected_ = false;
    last_error_ = "lost the connection to " + options_.daemon + ": " + why.message();
    streams.swap(streams_);
    calls.swap(sent_);
    for (auto& call : queued_) calls.push_back(call);
    queued_.clear();
  }
  spdlog::warn("{}", last_error_);
  for (const auto& [stream, capture] : streams) {
    registry_.SetState(capture, "error",
                       "orion ui lost its daemon " + options_.daemon + " (" + why.message() +
                           "): Restart when it is back");
  }
  for (auto& call : calls) call->done.set_value(Unavailable(options_.daemon, ": ", why.message()));
}

void DaemonLink::Run() {
  while (!stop_) {
    if (!connection_) {
      std::vector<std::shared_ptr<Call>> calls;
      {
        std::unique_lock lock(mu_);
        wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
        for (auto& call : queued_) calls.push_back(call);
        queued_.clear();
      }
      for (auto& call : calls) {
        call->done.set_value(Unavailable("orion ui cannot reach its daemon ", options_.daemon,
                                         ": ", last_error_));
      }
      if (!stop_) Connect();
      continue;
    }
    SendQueued();
    if (!connection_) continue;
    auto message = connection_->Receive(50, kMaxStreamMessageBytes);
    if (!message.ok()) {
      Disconnected(message.status());
      continue;
    }
    if (message->has_value()) Dispatch(**message);
    ExpireCalls();
  }
  connection_.reset();
}

void DaemonLink::SendQueued() {
  std::deque<std::shared_ptr<Call>> calls;
  {
    std::lock_guard lock(mu_);
    calls.swap(queued_);
  }
  const erlang::ErlangPid self = ToTermPid(node_->self());
  for (auto& call : calls) {
    call->tag = erlang::RefTerm(node_->MakeRef());
    const Status sent = connection_->SendToRegistered(
        *node_, "orion", protocol::EncodeGenCall(self, call->tag, call->request), kSendTimeoutMs);
    if (!sent.ok()) {
      call->done.set_value(sent);
      Disconnected(sent);
      return;
    }
    std::lock_guard lock(mu_);
    sent_.push_back(call);
  }
}

void DaemonLink::Dispatch(const erlang::Message& message) {
  if (message.to_registered) return;
  auto term = erlang::DecodeTerm(message.payload, StreamDecodeLimits());
  if (!term.ok()) {
    spdlog::warn("{} sent a malformed term: {}", options_.daemon, term.status().message());
    return;
  }
  const auto parts = term->elements();
  if (term->kind() == TermKind::kTuple && parts.size() == 3 && parts[0].is_atom("orion_stream")) {
    auto stream = protocol::DecodeStreamMessage(*term);
    if (!stream.ok()) {
      spdlog::warn("{} sent a stream message orion ui cannot read: {}", options_.daemon,
                   stream.status().message());
      return;
    }
    std::string capture;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, c] : streams_) {
        if (id == stream->id) capture = c;
      }
    }
    if (capture.empty()) return;  // a stream stopped or deleted meanwhile
    if (const auto* interval = std::get_if<protocol::IntervalEvent>(&stream->event)) {
      registry_.AddInterval(capture, *interval);
    } else if (const auto* down = std::get_if<protocol::NodeDownEvent>(&stream->event)) {
      registry_.NodeDown(capture, down->node, down->reason);
    } else if (const auto* stopped = std::get_if<protocol::StoppedEvent>(&stream->event)) {
      {
        std::lock_guard lock(mu_);
        std::erase_if(streams_, [&](const auto& s) { return s.first == stream->id; });
      }
      switch (stopped->reason) {
        case protocol::StopReason::kDone:
          registry_.SetState(capture, "done", "the duration ended");
          break;
        case protocol::StopReason::kStopped:
          registry_.SetState(capture, "stopped", "stopped");
          break;
        case protocol::StopReason::kOverload:
          registry_.SetState(capture, "overloaded",
                             "the overload guard stopped it at " + std::to_string(stopped->rate) +
                                 " events/s (over max_rate)");
          break;
        case protocol::StopReason::kError:
          registry_.SetState(capture, "error", stopped->error);
          break;
      }
    }
    return;
  }
  auto reply = protocol::ParseGenReply(*term);
  if (!reply.ok()) return;
  std::shared_ptr<Call> call;
  {
    std::lock_guard lock(mu_);
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
      if ((*it)->tag == reply->tag) {
        call = *it;
        sent_.erase(it);
        break;
      }
    }
  }
  if (!call) return;  // answered after its caller gave up
  if (call->on_reply) call->on_reply(reply->reply);
  call->done.set_value(reply->reply);
}

void DaemonLink::ExpireCalls() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Call>> expired;
  {
    std::lock_guard lock(mu_);
    std::erase_if(sent_, [&](const auto& call) {
      if (call->deadline > now) return false;
      expired.push_back(call);
      return true;
    });
  }
  for (auto& call : expired) {
    call->done.set_value(DeadlineExceeded(options_.daemon, " did not answer in time"));
  }
}

StatusOr<Term> DaemonLink::CallDaemon(Term request, std::function<void(const Term&)> on_reply) {
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->on_reply = std::move(on_reply);
  call->deadline = std::chrono::steady_clock::now() + options_.call_timeout;
  std::future<StatusOr<Term>> answer = call->done.get_future();
  {
    std::lock_guard lock(mu_);
    if (!connected_) {
      return Unavailable("orion ui cannot reach its daemon ", options_.daemon, ": ", last_error_);
    }
    queued_.push_back(call);
  }
  wake_.notify_all();
  if (answer.wait_for(options_.call_timeout + std::chrono::seconds(2)) !=
      std::future_status::ready) {
    return DeadlineExceeded(options_.daemon, " did not answer in time");
  }
  return answer.get();
}

Status DaemonLink::StartCapture(const std::string& id, const CaptureOptions& options) {
  ASSIGN_OR_RETURN(const Term reply,
                   CallDaemon(protocol::EncodeRequest(ToStreamRequest(options)),
                              [this, id](const Term& reply) {
                                auto stream = protocol::DecodeStreamReply(reply);
                                if (!stream.ok()) return;
                                std::lock_guard lock(mu_);
                                streams_.emplace_back(*stream, id);
                              }));
  return protocol::DecodeStreamReply(reply).status();
}

Status DaemonLink::StopCapture(const std::string& id) {
  std::vector<Term> streams;
  {
    std::lock_guard lock(mu_);
    std::erase_if(streams_, [&](const auto& s) {
      if (s.second != id) return false;
      streams.push_back(s.first);
      return true;
    });
  }
  for (const Term& stream : streams) {
    ASSIGN_OR_RETURN(const Term reply,
                     CallDaemon(protocol::EncodeRequest(protocol::StreamStopRequest{stream})));
    const auto parts = reply.elements();
    if (reply.kind() == TermKind::kTuple && parts.size() == 2 && parts[0].is_atom("error")) {
      // A stream that ended meanwhile is not an error for the page: it is stopped either way.
      spdlog::info("stopping capture {}: {}", id, erlang::FormatTerm(reply));
    }
  }
  return OkStatus();
}

StatusOr<json> DaemonLink::Functions(const std::string& prefix) {
  ASSIGN_OR_RETURN(const Term reply,
                   CallDaemon(protocol::EncodeRequest(protocol::FunctionsRequest{prefix})));
  ASSIGN_OR_RETURN(const protocol::FunctionsResult functions,
                   protocol::DecodeFunctionsReply(reply));
  return json{{"functions", functions.functions}, {"truncated", functions.truncated}};
}

StatusOr<json> DaemonLink::Nodes() {
  const Term request = protocol::EncodeRequest(protocol::TargetsRequest{});
  ASSIGN_OR_RETURN(const Term reply, CallDaemon(request));
  ASSIGN_OR_RETURN(const protocol::TargetsResult local, protocol::DecodeTargetsReply(reply));
  json nodes = json::array();
  json daemons = json::array();
  const auto add = [&](const protocol::TargetsResult& targets) {
    for (const protocol::BeamTarget& beam : targets.beams) {
      nodes.push_back({{"node", beam.node.value_or("nonode@nohost")},
                       {"host", HostOf(targets.node)},
                       {"daemon", targets.node},
                       {"os_pid", beam.os_pid}});
    }
    daemons.push_back({{"daemon", targets.node}, {"status", "ok"}, {"error", ""}});
  };
  add(local);
  // The peers' BEAMs, each asked on a connection of its own (from a C node of its own, so the
  // link's connection stays with its thread).
  if (!local.peers.empty()) {
    auto name = OwnNodeName(options_.daemon, "_" + std::to_string(++peer_calls_));
    auto peers_node = name.ok() ? erlang::CNode::Create(*name, options_.cookie)
                                : StatusOr<std::unique_ptr<erlang::CNode>>(name.status());
    for (size_t i = 0; i < local.peers.size() && i < kMaxPeersAsked; ++i) {
      const std::string& peer = local.peers[i];
      StatusOr<protocol::TargetsResult> targets = peers_node.status();
      if (peers_node.ok()) {
        auto answer = erlang::GenServerCall(**peers_node, peer, "orion", request,
                                            std::chrono::steady_clock::now() + options_.peer_timeout);
        targets = answer.ok() ? protocol::DecodeTargetsReply(*answer)
                              : StatusOr<protocol::TargetsResult>(answer.status());
      }
      if (targets.ok()) {
        add(*targets);
      } else {
        daemons.push_back(
            {{"daemon", peer}, {"status", "down"}, {"error", targets.status().message()}});
      }
    }
  }
  return json{{"nodes", std::move(nodes)}, {"daemons", std::move(daemons)}};
}

json DaemonLink::DaemonStatus() {
  std::lock_guard lock(mu_);
  return {{"daemon", options_.daemon}, {"connected", connected_}, {"error", last_error_}};
}

}  // namespace orion::ui
