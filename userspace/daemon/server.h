// The daemon's network side: serves the authenticated distribution connections DistAcceptor
// hands it (dist_acceptor.h: accepting and handshakes, off this path), each on its own thread.
// All I/O of a connection happens on its thread (ei answers ticks inside its receive call, so
// writes from other threads could interleave with them); replies produced by other threads (a
// capture that runs for seconds) go through an outbox the connection thread drains, woken by an
// eventfd.
//
//   Server server(node, {.max_connections = 64}, [&](const erlang::Message& m, ReplyChannel r) {
//     r.Send(pid, bytes_for(m));    // now, or later from any thread; dropped if the peer left
//   });
//   server.Run(stop);               // until `stop` is set
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "userspace/daemon/dist_acceptor.h"
#include "userspace/erlang/c_node.h"

namespace orion::daemon {

struct ConnectionState;

// The way back on the connection a request came on. Copyable and usable from any thread;
// Send is a no-op once the connection is gone.
class ReplyChannel {
 public:
  explicit ReplyChannel(std::weak_ptr<ConnectionState> conn) : conn_(std::move(conn)) {}
  // `bytes`: an encoded term with the version byte, for the process `to` (a pid of the node
  // at the other end). False if the connection is gone or its outbox is full.
  bool Send(const erlang_pid& to, std::vector<uint8_t> bytes) const;
  // False once the connection is gone.
  bool Open() const;

 private:
  std::weak_ptr<ConnectionState> conn_;
};

struct ServerOptions {
  uint32_t max_connections = 64;
  size_t max_message_bytes = erlang::kMaxMessageBytes;
  AcceptorOptions handshakes;
};

using MessageHandler = std::function<void(const erlang::Message&, const ReplyChannel&)>;

class Server {
 public:
  Server(erlang::CNode& node, ServerOptions options, MessageHandler handler)
      : node_(node), options_(options), handler_(std::move(handler)) {}
  ~Server();

  // Accepts and serves until `stop` is set; returns after every connection thread ended.
  void Run(const std::atomic<bool>& stop);

  uint64_t connections_refused() const { return refused_.load(); }

 private:
  struct ServeThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  // Serves an authenticated connection on a thread of its own, or closes it at max_connections.
  void Adopt(std::unique_ptr<erlang::Connection> connection, const std::atomic<bool>& stop);
  void Serve(std::shared_ptr<ConnectionState> state, const std::atomic<bool>& stop);

  erlang::CNode& node_;
  ServerOptions options_;
  MessageHandler handler_;
  std::atomic<uint32_t> active_{0};
  std::atomic<uint64_t> refused_{0};
  std::mutex threads_mu_;
  std::vector<ServeThread> threads_;  // finished ones are joined at the next Adopt
};

}  // namespace orion::daemon
