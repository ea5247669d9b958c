// The daemon's accepting side of Erlang distribution: accepts on the C node's listening socket
// and runs each handshake off the serving path, so that connections that stall (idle, dripping,
// never finishing the challenge) cannot keep legitimate peers and shells out.
//
// One event-loop thread accepts (non-blocking) and reads each connection's first handshake
// packet, the peer's name, into the socket's prefix, with no thread per connection. A
// connection whose name is complete is handed to one of a few workers, which run the rest of
// ei's handshake (status, challenge, digest: a legitimate peer answers in milliseconds) with
// the socket's deadline and an abort eventfd bounding every wait. Which connections are kept,
// evicted and run next is HandshakeAdmission's policy (handshake_admission.h). Authenticated
// connections go to `on_connection`, on a worker's thread.
//
//   DistAcceptor acceptor(node, {.limits = {...}, .workers = 4},
//                         [&](std::unique_ptr<erlang::Connection> c) { serve(std::move(c)); });
//   acceptor.Run(stop);   // until `stop` is set
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "userspace/daemon/handshake_admission.h"
#include "userspace/erlang/c_node.h"

namespace orion::daemon {

struct AcceptorOptions {
  HandshakeLimits limits;
  uint32_t workers = 4;  // handshakes past the first packet running at once
};

class DistAcceptor {
 public:
  using OnConnection = std::function<void(std::unique_ptr<erlang::Connection>)>;

  DistAcceptor(erlang::CNode& node, AcceptorOptions options, OnConnection on_connection);
  ~DistAcceptor();
  DistAcceptor(const DistAcceptor&) = delete;
  DistAcceptor& operator=(const DistAcceptor&) = delete;

  // Accepts and handshakes until `stop` is set; returns after the workers ended and every
  // pending connection was closed.
  void Run(const std::atomic<bool>& stop);

  // What became of the connections accepted so far.
  struct Counters {
    uint64_t completed = 0;    // authenticated, handed to on_connection
    uint64_t refused = 0;      // the handshake failed: a wrong cookie, bad bytes, a hang-up
    uint64_t evicted = 0;      // closed to make room (HandshakeAdmission)
    uint64_t turned_away = 0;  // closed at accept: the source's others got further
    uint64_t expired = 0;      // past the deadline
  };
  Counters counters() const;

 private:
  // A pending connection: its first packet being read (event loop) or complete (for a worker).
  struct Reading {
    std::unique_ptr<erlang::DistSocket> socket;
    std::string source;
  };
  enum class ReadResult { kWaiting, kComplete, kClosed };
  // Reads what is there of the peer's first handshake packet (2-byte length, then the body)
  // into the socket's prefix, never past it: the rest of the handshake is ei's to read.
  static ReadResult ReadFirstPacket(erlang::DistSocket& socket);

  void Worker(size_t index);
  // Accepts what is queued (a batch); false when out of file descriptors.
  bool AcceptAll(HandshakeAdmission::Clock::time_point now);
  void ReadFirstPackets(const std::vector<HandshakeAdmission::Id>& readable);
  // Before the admission picks a connection to evict: whether one is needed, and what every
  // pending connection has sent by now.
  bool AtPendingLimit(const std::string& source) const;
  void RefreshProgress();
  void Progress(HandshakeAdmission::Id id, ReadResult result);
  // Closes a pending handshake wherever it is (reading, ready, running). Holds mu_.
  void CloseLocked(HandshakeAdmission::Id id);
  void LogSummaryIfDue(HandshakeAdmission::Clock::time_point now);

  erlang::CNode& node_;
  AcceptorOptions options_;
  OnConnection on_connection_;
  std::map<HandshakeAdmission::Id, Reading> reading_;  // the event loop's only

  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  bool stopping_ = false;
  HandshakeAdmission admission_;
  std::map<HandshakeAdmission::Id, Reading> ready_;  // first packet complete, for a worker
  std::vector<std::optional<HandshakeAdmission::Id>> running_;  // per worker
  std::vector<int> abort_fds_;                                  // per worker (eventfd)
  Counters counters_;
  Counters logged_;  // counters_ at the last summary
  HandshakeAdmission::Clock::time_point next_summary_{};
  std::vector<std::thread> workers_;
};

}  // namespace orion::daemon
