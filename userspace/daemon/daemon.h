// `orion daemon`: one per host, an erl_interface C node (a hidden node) named orion@<host>.
// It answers gen_server calls to {orion, 'orion@host'} from any Erlang/Elixir shell, from the
// orion CLI and from its peer daemons (docs/protocol.md), runs captures on the BEAMs of its
// host, and fans cluster captures out to its peers, merging their sketches exactly.
//
// Threads: the accept loop and a few handshake workers (DistAcceptor), one thread per
// authenticated connection (Server, at most max_connections); one thread per running
// capture (bounded by max_captures), and one per peer it asks; a discovery thread. Nothing it
// receives is executed: requests are decoded with limits (dist/term.h), validated against the
// protocol (dist/protocol.h) and mapped to a fixed set of actions.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/daemon/config.h"
#include "userspace/daemon/host_capture.h"
#include "userspace/daemon/metrics_server.h"
#include "userspace/daemon/stream_queue.h"
#include "userspace/daemon/watches.h"
#include "userspace/daemon/server.h"
#include "userspace/erlang/c_node.h"
#include "userspace/protocol/protocol.h"

namespace orion::daemon {

class Daemon {
 public:
  // Creates the C node and registers it with the local epmd.
  static StatusOr<std::unique_ptr<Daemon>> Start(DaemonConfig config, std::string cookie,
                                                 std::string version);
  ~Daemon();

  // Serves until `stop` is set, then waits for running captures to end (they stop early).
  void Run(std::atomic<bool>& stop);

  const std::string& node_name() const { return node_->name(); }

 private:
  Daemon() = default;
  Status StartWatches();
  void OnMessage(const erlang::Message& message, const ReplyChannel& reply);
  // {watch_add, ...}, {watches}, {watch_remove, Id}: this daemon's watches only.
  erlang::Term AnswerWatchRequest(const protocol::Request& request);
  void StartCapture(protocol::CaptureRequest request, protocol::GenCall call, ReplyChannel reply);
  void StartTop(protocol::TopRequest request, protocol::GenCall call, ReplyChannel reply);
  // {functions, Prefix}: this host's BEAMs and (scope cluster) the peers', on a thread of its
  // own, at most kMaxLookups at once.
  void StartFunctions(protocol::FunctionsRequest request, protocol::GenCall call,
                      ReplyChannel reply);
  protocol::FunctionsResult FunctionsHere(const protocol::FunctionsRequest& request);
  protocol::FunctionsResult AskPeerFunctions(const std::string& peer,
                                             const protocol::FunctionsRequest& request);
  // Counts a capture or top as running; false (and a busy answer sent) at max_captures.
  bool AdmitMeasurement(const protocol::GenCall& call, const erlang_pid& to,
                        const ReplyChannel& reply);
  void MeasurementDone();
  protocol::TopReplyParts TopHere(const protocol::TopRequest& request);
  protocol::TopReplyParts AskPeerTop(const std::string& peer, const protocol::TopRequest& request);
  // The host capture a capture or a stream request asks for, with the cluster's cookie (the
  // nodes of this host share it) and this daemon's namespace rule.
  template <typename Request>
  HostCaptureSpec HostSpecFor(const Request& request) const {
    HostCaptureSpec spec;
    spec.patterns = request.patterns;
    spec.duration_ms = static_cast<uint32_t>(request.duration_ms);
    spec.node = request.node.value_or("");
    if (request.max_functions) spec.max_functions = *request.max_functions;
    if (request.max_rate) spec.max_rate = *request.max_rate;
    spec.mode = request.mode;
    spec.match_spec = request.match_spec.value_or("");
    spec.cookie = cookie_;
    spec.only_netns = config_.only_netns;
    return spec;
  }
  protocol::CaptureResult CaptureHere(const protocol::CaptureRequest& request);
  protocol::CaptureResult AskPeer(const std::string& peer, const protocol::CaptureRequest& request);
  // Streams (daemon_streams.cc).
  struct Stream;
  void StartStream(protocol::StreamRequest request, protocol::GenCall call, ReplyChannel reply);
  void StopStream(const protocol::StreamStopRequest& request, const protocol::GenCall& call,
                  const ReplyChannel& reply);
  // Stops the stream when its caller is no longer alive (asked of the caller's node).
  void WatchCaller(Stream& stream);
  void RunStream(std::shared_ptr<Stream> stream);
  void StreamHere(Stream& stream, const std::function<void()>& attached);
  void RelayPeerStream(Stream& stream, const std::string& peer,
                       const std::function<void()>& attached);
  bool RelayPeerStreamOnce(Stream& stream, const std::string& peer,
                           const std::function<void()>& attached, int64_t duration_ms,
                           bool* streamed, std::string* lost);
  protocol::TargetsResult Targets();
  std::vector<std::string> Peers();
  void DiscoverPeers();

  DaemonConfig config_;
  std::string cookie_;
  std::string version_;
  std::unique_ptr<erlang::CNode> node_;
  DistAddress listen_;  // the distribution listener, with the port it got
  std::atomic<bool>* stop_ = nullptr;

  std::mutex mu_;
  std::condition_variable captures_done_;
  uint32_t captures_running_ = 0;
  uint32_t lookups_running_ = 0;  // {functions, Prefix} being answered
  std::set<std::string> discovered_peers_;
  StreamTable stream_table_;
  std::map<std::string, std::shared_ptr<Stream>> streams_;  // by id (its encoded reference)

  // Standing captures and their /metrics listener (docs/export.md); null when not configured.
  std::unique_ptr<WatchSet> watches_;
  std::unique_ptr<MetricsServer> metrics_;
};

}  // namespace orion::daemon
