// `orion ui`'s way into the cluster: a hidden C node with one distribution connection to a
// daemon (docs/ui.md, "How it works"). Captures are protocol v2 streams on that connection:
// {stream, ...} answered {ok, Ref}, then {orion_stream, Ref, Event} messages, which go into the
// CaptureRegistry. One thread owns the connection (ei's rule: one thread per fd); the HTTP
// threads hand it calls and wait for the answers. A lost connection ends the running captures
// with an error (the daemon stops a closed connection's streams) and is retried every second.
//
//   ASSIGN_OR_RETURN(auto link, DaemonLink::Start({.daemon = "orion@host", .cookie = c}, registry));
//   UiServer::Start(options, registry, *link);
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "userspace/erlang/c_node.h"
#include "userspace/erlang/term.h"
#include "userspace/ui/capture_registry.h"
#include "userspace/ui/ui_backend.h"

namespace orion::ui {

struct DaemonLinkOptions {
  std::string daemon;  // "orion@host"
  std::string cookie;
  std::chrono::milliseconds call_timeout{10'000};  // a request's answer
  std::chrono::milliseconds peer_timeout{2'000};   // each peer daemon's {targets}
};

class DaemonLink : public UiBackend {
 public:
  // Creates the C node and starts the thread; the first connection is tried before returning
  // (its error is logged, and retried).
  static StatusOr<std::unique_ptr<DaemonLink>> Start(DaemonLinkOptions options,
                                                     CaptureRegistry& registry);
  ~DaemonLink() override;  // closes the connection: the daemon stops our streams

  Status StartCapture(const std::string& id, const CaptureOptions& options) override;
  Status StopCapture(const std::string& id) override;
  StatusOr<nlohmann::json> Functions(const std::string& prefix) override;
  StatusOr<nlohmann::json> Nodes() override;
  nlohmann::json DaemonStatus() override;

 private:
  struct Call;
  DaemonLink(DaemonLinkOptions options, CaptureRegistry& registry);
  void Run();
  void Connect();
  void Disconnected(const orion::Status& why);
  void SendQueued();
  void Dispatch(const erlang::Message& message);
  void ExpireCalls();
  // Sends `request` to the daemon's `orion` process and waits for the reply. `on_reply` runs
  // on the link's thread before the next message is read (a stream's id is registered there,
  // before its first event can arrive).
  StatusOr<erlang::Term> CallDaemon(erlang::Term request,
                                    std::function<void(const erlang::Term&)> on_reply = {});

  const DaemonLinkOptions options_;
  CaptureRegistry& registry_;
  std::unique_ptr<erlang::CNode> node_;
  std::unique_ptr<erlang::Connection> connection_;  // the link thread's only
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> peer_calls_{0};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Call>> queued_;   // to send
  std::vector<std::shared_ptr<Call>> sent_;    // waiting for their reply
  std::vector<std::pair<erlang::Term, std::string>> streams_;  // stream id -> capture id
  bool connected_ = false;
  std::string last_error_;
};

}  // namespace orion::ui
