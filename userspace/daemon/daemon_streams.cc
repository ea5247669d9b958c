// The daemon's streams (protocol version 2, docs/protocol.md "Streams"): {stream, ...} runs a
// host capture with interval reads here and, with scope => cluster, the same stream with
// scope => local on every peer, relayed through this daemon to the caller.
//
// Why relay instead of peers sending to the caller directly: the caller may be a process that
// no peer can reach (a hidden node such as `orion ui`'s C node, which publishes no port, or a
// shell behind the asked daemon's network); one connection carries the whole stream, so the
// caller's death or disconnect is seen in one place and stops everything, and a peer that dies
// is seen as its relay connection breaking (node_down). The cost, one more hop for peers'
// intervals, is a few KiB a second.
//
// Threads of one stream: the ticker (RunStream: every interval_ms it turns what arrived into
// one interval event, and delivers the queue), the local capture (StreamHere) and one relay per
// peer (RelayPeerStream). They meet in Stream::mu.
#include <chrono>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "userspace/daemon/daemon.h"
#include "userspace/daemon/host_capture.h"
#include "userspace/daemon/stream_queue.h"
#include "userspace/erlang/gen_call.h"
#include "userspace/erlang/node_client.h"
#include "userspace/probes/capture_values.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

using erlang::Term;
using protocol::NodeInterval;
using protocol::StreamEvent;

constexpr const char* kRegisteredName = "orion";
constexpr uint32_t kMaxPeerMessageBytes = 32u << 20;
// How long a stopping stream waits for its peers' last messages, and for its last events to
// reach the caller.
constexpr auto kStopGrace = std::chrono::seconds(5);
// How long a stream holds its first interval for parts still attaching (a peer that is slow to
// connect or to attach): past that, it ticks without them and their intervals join when they come.
constexpr auto kAttachWait = std::chrono::seconds(10);
// How often a stream asks a lost peer again (RelayPeerStream).
constexpr auto kPeerRetry = std::chrono::seconds(1);

std::string PidKey(const erlang_pid& pid) {
  return std::string(pid.node) + "." + std::to_string(pid.num) + "." +
         std::to_string(pid.serial) + "." + std::to_string(pid.creation);
}

std::string TermKey(const Term& term) {
  const std::vector<uint8_t> bytes = erlang::EncodeTerm(term);
  return std::string(bytes.begin(), bytes.end());
}

uint64_t UnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string HostPart(const std::string& node) {
  const size_t at = node.find('@');
  return at == std::string::npos ? node : node.substr(at + 1);
}

}  // namespace

struct Daemon::Stream {
  Term id;  // the reference {stream, ...} answered
  std::string key;
  erlang_pid caller{};
  std::string caller_key;
  ReplyChannel reply;
  protocol::StreamRequest request;
  std::atomic<bool> stop{false};  // stream_stop, the caller gone, the daemon stopping
  std::atomic<bool> parts_done{false};
  // Parts (the capture here, each peer's relay) still attaching: no interval is sent before
  // every part has attached or ended (or kAttachWait passed), so the first interval event tells
  // the caller that the calls made from then on are counted on every host.
  std::atomic<int> attaching{0};

  std::mutex mu;  // everything below
  // Node intervals that arrived since the last tick, by (node, host, os_pid).
  std::map<std::tuple<std::string, std::string, uint64_t>, NodeInterval> pending;
  StreamQueue queue;
  uint64_t seq = 0;
  protocol::StopReason reason = protocol::StopReason::kDone;
  uint64_t overload_rate = 0;
  std::vector<std::string> errors;  // parts that failed (the reason when nothing ran)
  bool any_part_ran = false;

  explicit Stream(ReplyChannel r) : reply(std::move(r)) {}

  // Adds a node's interval to what the next tick sends (merged with an earlier one of the same
  // BEAM that the tick has not sent yet).
  void Add(NodeInterval node) {
    std::lock_guard<std::mutex> hold(mu);
    any_part_ran = true;
    auto key = std::make_tuple(node.node, node.host, node.os_pid);
    auto it = pending.find(key);
    if (it == pending.end()) {
      pending.emplace(std::move(key), std::move(node));
      return;
    }
    protocol::CaptureResult a, b;
    a.functions = std::move(it->second.functions);
    b.functions = std::move(node.functions);
    auto merged = protocol::MergeCaptureResults({std::move(a), std::move(b)});
    if (merged.ok()) it->second.functions = std::move(merged->functions);
    it->second.lost += node.lost;
  }
  void Event(StreamEvent event) {
    std::lock_guard<std::mutex> hold(mu);
    queue.Push(std::move(event));
  }
  void Overloaded(uint64_t rate) {
    std::lock_guard<std::mutex> hold(mu);
    reason = protocol::StopReason::kOverload;
    overload_rate = std::max(overload_rate, rate);
    stop.store(true);
  }
  // One interval event from what arrived; pushed even when nothing did (the cadence tells the
  // caller the stream is alive).
  void Tick() {
    std::lock_guard<std::mutex> hold(mu);
    protocol::IntervalEvent interval{.seq = ++seq, .end_ms = UnixMs(),
                                     .interval_ms = request.interval_ms};
    for (auto& [key, node] : pending) interval.nodes.push_back(std::move(node));
    pending.clear();
    queue.Push(std::move(interval));
  }
  // Offers the queue to the caller; false when the caller's connection is gone.
  bool Deliver() {
    std::lock_guard<std::mutex> hold(mu);
    queue.Drain(id, [&](std::vector<uint8_t> bytes) { return reply.Send(caller, std::move(bytes)); });
    return reply.Open();
  }
};

void Daemon::StartStream(protocol::StreamRequest request, protocol::GenCall call,
                         ReplyChannel reply) {
  auto to = erlang::ToErlangPid(call.from);
  if (!to.ok()) return;
  const auto answer = [&](const Term& term) {
    reply.Send(*to, protocol::EncodeGenReply(call.tag, term));
  };
  for (const std::string& pattern : request.patterns) {
    if (auto parsed = probes::ParseMfaPattern(pattern); !parsed.ok()) {
      answer(protocol::EncodeErrorStatus(parsed.status()));
      return;
    }
  }
  if (request.mode == protocol::CaptureMode::kProbes && request.match_spec) {
    answer(protocol::EncodeErrorStatus(InvalidArgument(
        "stream: a match spec needs tracer mode (function probes cannot test arguments)")));
    return;
  }
  auto stream = std::make_shared<Stream>(reply);
  stream->id = erlang::RefTerm(node_->MakeRef());
  stream->key = TermKey(stream->id);
  stream->caller = *to;
  stream->caller_key = PidKey(*to);
  stream->request = std::move(request);
  {
    std::lock_guard<std::mutex> hold(mu_);
    if (Status added = stream_table_.Add(stream->key, stream->caller_key); !added.ok()) {
      answer(protocol::EncodeErrorStatus(added));
      return;
    }
    streams_.emplace(stream->key, stream);
  }
  answer(protocol::EncodeStreamReply(stream->id));
  std::thread([this, stream] { RunStream(stream); }).detach();
}

void Daemon::StopStream(const protocol::StreamStopRequest& request, const protocol::GenCall& call,
                        const ReplyChannel& reply) {
  auto to = erlang::ToErlangPid(call.from);
  if (!to.ok()) return;
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard<std::mutex> hold(mu_);
    auto it = streams_.find(TermKey(request.id));
    if (it != streams_.end()) stream = it->second;
  }
  Term answer = protocol::EncodeOkReply();
  if (stream) {
    stream->stop.store(true);
  } else {
    answer = protocol::EncodeError(protocol::ErrorKind::kNotFound,
                                   "no running stream has this id (it ended, or another daemon "
                                   "runs it)");
  }
  reply.Send(*to, protocol::EncodeGenReply(call.tag, answer));
}

// The caller's node is asked, once a second, whether the caller is alive (erlang's
// is_process_alive/1 through rpc, the way tracer mode reaches nodes). erl_interface cannot
// monitor: it does not announce DFLAG_DIST_MONITOR_NAME, and for such a connection erts reduces
// a monitor to the connection's supervision (dist.c, erts_dsig_send_monitor). A link would kill
// the caller when the daemon goes. A caller on a node without rex (a C node such as `orion ui`)
// is watched by its connection alone: it ends with it.
void Daemon::WatchCaller(Stream& stream) {
  // A daemon relaying to its own caller (scope => local from a peer) is watched by the
  // relay's connection.
  const std::string alive = node_->name().substr(0, node_->name().find('@') + 1);
  if (stream.request.scope == protocol::Scope::kLocal &&
      std::string_view(stream.caller.node).starts_with(alive)) {
    return;
  }
  std::unique_ptr<erlang::NodeClient> client;
  const std::vector<uint8_t> args = erlang::EncodeTerm(Term::List({erlang::PidTerm(stream.caller)}));
  const std::string_view body(reinterpret_cast<const char*>(args.data()) + 1, args.size() - 1);
  int failures = 0;
  while (!stream.stop.load() && !stream.parts_done.load() && failures < 3) {
    for (int i = 0; i < 50 && !stream.stop.load() && !stream.parts_done.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stream.stop.load() || stream.parts_done.load()) return;
    if (!client) {
      auto connected =
          erlang::NodeClient::Connect(stream.caller.node, cookie_, std::chrono::seconds(2));
      if (!connected.ok()) {
        ++failures;
        continue;
      }
      client = *std::move(connected);
    }
    auto alive = client->Rpc("erlang", "is_process_alive", body, std::chrono::seconds(2));
    if (!alive.ok()) {
      ++failures;
      client.reset();
      continue;
    }
    failures = 0;
    const auto* data = reinterpret_cast<const uint8_t*>(alive->data());
    auto answer = erlang::DecodeTermBody({data, alive->size()}, erlang::DecodeLimits{});
    if (answer.ok() && answer->is_atom("false")) {
      spdlog::info("stream for {} stopped: its caller ended", stream.caller_key);
      stream.stop.store(true);
      return;
    }
  }
}

void Daemon::RunStream(std::shared_ptr<Stream> stream) {
  const protocol::StreamRequest& request = stream->request;
  spdlog::info("stream of {} pattern(s) for {} ms every {} ms ({}) for {}",
               request.patterns.size(), request.duration_ms, request.interval_ms,
               request.scope == protocol::Scope::kCluster ? "cluster" : "local",
               stream->caller_key);
  std::vector<std::thread> parts;
  std::atomic<size_t> parts_running{0};
  const auto run_part = [&](auto body) {
    parts_running.fetch_add(1);
    stream->attaching.fetch_add(1);
    parts.emplace_back([&, body] {
      bool attached = false;
      const std::function<void()> on_attached = [&] {
        if (!std::exchange(attached, true)) stream->attaching.fetch_sub(1);
      };
      body(on_attached);
      on_attached();  // a part that ended (failed, nothing to capture) holds nothing back
      parts_running.fetch_sub(1);
    });
  };
  run_part([this, stream](const std::function<void()>& attached) { StreamHere(*stream, attached); });
  if (request.scope == protocol::Scope::kCluster) {
    for (const std::string& peer : Peers()) {
      run_part([this, stream, peer](const std::function<void()>& attached) {
        RelayPeerStream(*stream, peer, attached);
      });
    }
  }
  std::thread watcher([this, stream] { WatchCaller(*stream); });
  bool caller_stopped = false;  // stream_stop, the caller's death or disconnect
  const auto started = std::chrono::steady_clock::now();
  auto next_tick = started + std::chrono::milliseconds(request.interval_ms);
  while (parts_running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (stop_->load()) stream->stop.store(true);
    if (stream->stop.load()) caller_stopped = true;
    const auto now = std::chrono::steady_clock::now();
    const bool attached = stream->attaching.load() == 0 || now >= started + kAttachWait;
    if (now >= next_tick && attached) {
      stream->Tick();
      next_tick += std::chrono::milliseconds(request.interval_ms);
      if (next_tick <= now) next_tick = now + std::chrono::milliseconds(request.interval_ms);
    }
    if (!stream->Deliver()) stream->stop.store(true);  // the caller's connection is gone
  }
  for (std::thread& part : parts) part.join();
  stream->parts_done.store(true);
  watcher.join();
  bool pending;
  {
    std::lock_guard<std::mutex> hold(stream->mu);
    pending = !stream->pending.empty();
  }
  if (pending) stream->Tick();  // what arrived since the last tick, then the end
  {
    std::lock_guard<std::mutex> hold(stream->mu);
    protocol::StoppedEvent stopped{.reason = stream->reason};
    if (stream->reason == protocol::StopReason::kOverload) {
      stopped.rate = stream->overload_rate;
    } else if (caller_stopped) {
      stopped.reason = protocol::StopReason::kStopped;
    } else if (!stream->any_part_ran && !stream->errors.empty()) {
      stopped.reason = protocol::StopReason::kError;
      for (const std::string& e : stream->errors) {
        stopped.error += (stopped.error.empty() ? "" : "; ") + e;
      }
    }
    stream->queue.Push(std::move(stopped));
  }
  const auto give_up = std::chrono::steady_clock::now() + kStopGrace;
  while (stream->Deliver() && !stream->queue.empty() &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  spdlog::info("stream for {} ended ({} intervals, {} dropped)", stream->caller_key, stream->seq,
               stream->queue.dropped());
  std::lock_guard<std::mutex> hold(mu_);
  stream_table_.Remove(stream->key);
  streams_.erase(stream->key);
  captures_done_.notify_all();
}

void Daemon::StreamHere(Stream& stream, const std::function<void()>& attached) {
  const protocol::StreamRequest& request = stream.request;
  const std::string host = HostPart(node_->name());
  HostCaptureSpec spec = HostSpecFor(request);
  spec.interval_ms = request.interval_ms;
  // Each BEAM's previous cumulative read: an interval is the difference.
  std::map<pid_t, BeamRead> previous;
  spec.on_interval = [&](const std::vector<BeamRead>& reads, bool /*final*/) {
    for (const BeamRead& read : reads) {
      const BeamRead& prev = previous[read.beam.pid];
      auto functions = probes::FunctionsDelta(prev.functions, read.functions);
      if (!functions.ok()) {
        spdlog::warn("stream: {}", functions.status().message());
        continue;
      }
      stream.Add(NodeInterval{
          .node = read.beam.node_name.empty() ? "nonode@nohost" : read.beam.node_name,
          .host = host,
          .os_pid = static_cast<uint64_t>(read.beam.pid),
          .functions = *std::move(functions),
          .lost = probes::LostTotal(probes::LostDelta(prev.lost, read.lost))});
      previous[read.beam.pid] = read;
    }
  };
  spec.on_attached = [&](const std::vector<beam::BeamProcess>&) { attached(); };
  auto result = RunHostCapture(spec, stream.stop);
  Status failed = result.ok() ? result->status : result.status();
  if (result.ok() && result->stopped_at_rate) stream.Overloaded(*result->stopped_at_rate);
  if (failed.ok()) return;
  // A node-targeted stream asks every daemon; the ones that do not host it say nothing (a
  // daemon asked alone says why it has nothing).
  if (failed.code() == StatusCode::kNotFound &&
      (request.scope == protocol::Scope::kLocal || !Peers().empty())) {
    return;
  }
  spdlog::info("stream on this host: {}", failed.message());
  std::lock_guard<std::mutex> hold(stream.mu);
  stream.errors.push_back(node_->name() + ": " + std::string(failed.message()));
  if (request.scope == protocol::Scope::kCluster) {
    stream.queue.Push(protocol::NodeDownEvent{node_->name(), std::string(failed.message())});
  }
}

// A peer whose connection breaks (killed, restarted, cut off) is a node_down; it is asked again
// every kPeerRetry until the stream ends, and a peer that answers again streams the rest of the
// duration: its nodes are back in the intervals (a console shows the node back). A peer that
// fails otherwise (an error, silence, a malformed message) is a node_down for good.
void Daemon::RelayPeerStream(Stream& stream, const std::string& peer,
                             const std::function<void()>& attached) {
  using std::chrono::steady_clock;
  const auto end = steady_clock::now() + std::chrono::milliseconds(stream.request.duration_ms);
  bool down = false;  // a node_down sent since the peer last streamed
  for (;;) {
    bool streamed = false;
    std::string lost;
    const int64_t left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - steady_clock::now()).count();
    if (!RelayPeerStreamOnce(stream, peer, attached, std::max<int64_t>(left, 1), &streamed,
                             &lost)) {
      return;
    }
    if (streamed) down = false;
    if (!down) {
      spdlog::warn("stream: peer {}: {} (asked again every second)", peer, lost);
      stream.Event(protocol::NodeDownEvent{peer, lost});
      down = true;
    }
    attached();  // the stream does not wait for a lost peer
    for (auto next = steady_clock::now() + kPeerRetry; steady_clock::now() < next;) {
      if (stream.stop.load() || stop_->load() || steady_clock::now() + kPeerRetry >= end) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

// One relay of a peer's stream for `duration_ms`. The peer's first interval event says it
// attached (it holds its intervals until then too). False when it ended (done, stopped, or a
// node_down already sent); true when its connection broke (`lost` says why; `streamed`: it had
// sent an interval).
bool Daemon::RelayPeerStreamOnce(Stream& stream, const std::string& peer,
                                 const std::function<void()>& attached, int64_t duration_ms,
                                 bool* streamed, std::string* lost) {
  const auto node_down = [&](std::string_view why) {
    spdlog::warn("stream: peer {}: {}", peer, why);
    stream.Event(protocol::NodeDownEvent{peer, std::string(why)});
    return false;
  };
  const auto connection_lost = [&](std::string_view why) {
    *lost = std::string(why);
    return true;
  };
  auto conn = node_->Connect(peer, 5000);
  if (!conn.ok()) return connection_lost(conn.status().message());
  protocol::StreamRequest local = stream.request;
  local.scope = protocol::Scope::kLocal;
  local.duration_ms = static_cast<uint64_t>(duration_ms);
  const erlang_pid me = node_->self();
  const Term tag = erlang::RefTerm(node_->MakeRef());
  const auto call = [&](const protocol::Request& request) {
    return (*conn)->SendToRegistered(
        *node_, kRegisteredName,
        erlang::EncodeTerm(Term::Tuple({Term::Atom("$gen_call"),
                                        Term::Tuple({erlang::PidTerm(me), tag}),
                                        protocol::EncodeRequest(request)})),
        5000);
  };
  if (Status sent = call(local); !sent.ok()) return connection_lost(sent.message());
  erlang::DecodeLimits limits;
  limits.max_bytes = kMaxPeerMessageBytes;
  limits.max_binary_bytes = kMaxPeerMessageBytes;
  limits.max_terms = 1u << 20;
  std::optional<Term> peer_id;
  bool stop_sent = false;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(duration_ms + config_.grace_ms);
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      return node_down(stop_sent ? "did not end its stream in time" : "went silent");
    }
    if (stream.stop.load() && peer_id && !stop_sent) {
      if (!call(protocol::StreamStopRequest{*peer_id}).ok()) return node_down("stream_stop not sent");
      stop_sent = true;
      deadline = std::min(deadline, std::chrono::steady_clock::now() + kStopGrace);
    }
    auto message = (*conn)->Receive(100, limits.max_bytes);
    if (!message.ok()) return connection_lost(message.status().message());
    if (!message->has_value() || (*message)->to_registered) continue;
    auto term = erlang::DecodeTerm((*message)->payload, limits);
    if (!term.ok()) return node_down("sent a malformed term: " + std::string(term.status().message()));
    if (!peer_id) {
      // The answer to {stream, ...}: {Tag, {ok, Id}} or {Tag, {error, ...}}.
      auto reply = protocol::ParseGenReply(*term);
      if (!reply.ok() || !(reply->tag == tag)) continue;
      auto id = protocol::DecodeStreamReply(reply->reply);
      if (!id.ok()) {
        if (id.status().code() == StatusCode::kNotFound) return false;  // does not host the node
        return node_down(id.status().message());
      }
      peer_id = *id;
      continue;
    }
    auto event = protocol::DecodeStreamMessage(*term);
    if (!event.ok()) continue;  // e.g. the answer to stream_stop
    if (!(event->id == *peer_id)) continue;
    if (auto* interval = std::get_if<protocol::IntervalEvent>(&event->event)) {
      for (NodeInterval& node : interval->nodes) stream.Add(std::move(node));
      *streamed = true;
      attached();
    } else if (auto* down = std::get_if<protocol::NodeDownEvent>(&event->event)) {
      stream.Event(std::move(*down));
    } else {
      const auto& stopped = std::get<protocol::StoppedEvent>(event->event);
      if (stopped.reason == protocol::StopReason::kOverload) stream.Overloaded(stopped.rate);
      if (stopped.reason == protocol::StopReason::kError) {
        {
          std::lock_guard<std::mutex> hold(stream.mu);
          stream.errors.push_back(peer + ": " + stopped.error);
        }
        return node_down(stopped.error);
      }
      return false;
    }
  }
}

}  // namespace orion::daemon
