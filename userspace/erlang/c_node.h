// An Erlang C node (erl_interface): the daemon's and the CLI's door to the cluster.
//
// C nodes are hidden nodes: they do not show in nodes() and are not part of the global
// mesh. A CNode owns the ei_cnode (name, cookie, creation); each Connection owns one
// authenticated distribution connection (one fd) and does all of its I/O on the thread that
// calls it, because ei answers ticks by writing inside its receive functions: a second
// thread writing on the same fd could interleave with that write.
//
// Its sockets are Orion's (dist_socket.h): the node listens on the address it is given, the
// caller accepts on listen_fd() and hands each connection to AcceptHandshake, on any thread.
//
//   ASSIGN_OR_RETURN(auto node, CNode::Create(*ParseNodeName("orion", false), cookie));
//   RETURN_IF_ERROR(node->ListenAndPublish(loopback, 0));  // registered with the local epmd
//   ... accept4(node->listen_fd()) and read the first packet (daemon/dist_acceptor.h) ...
//   ASSIGN_OR_RETURN(auto conn, node->AcceptHandshake(std::move(socket)));
//   ASSIGN_OR_RETURN(auto msg, conn->Receive(1000, kMaxMessageBytes));
#pragma once

#include <ei.h>
#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/erlang/dist_socket.h"

namespace orion::erlang {

// Largest distribution message a connection accepts (the length prefix is checked before ei
// reads the body, so a hostile length cannot make us allocate).
inline constexpr size_t kMaxMessageBytes = 1 << 20;

struct NodeName {
  std::string alive;  // "orion"
  std::string host;   // "myhost" (short names) or "myhost.example.com" / "10.0.0.1"
  std::string full() const { return alive + "@" + host; }
};

// "orion" (host from gethostname: the part before the first dot, or the whole name with
// longnames) or "orion@host". The alive part is [A-Za-z0-9_-]+.
StatusOr<NodeName> ParseNodeName(const std::string& name, bool longnames);

// One message received on a connection (a send to a pid or to a registered name).
struct Message {
  bool to_registered = false;  // ERL_REG_SEND: `to_name` is the registered name
  std::string to_name;
  erlang_pid from{};             // the sender (ERL_REG_SEND only)
  std::vector<uint8_t> payload;  // the term, with the 131 version byte
};

class Connection {
 public:
  Connection(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  const std::string& peer() const { return peer_; }  // the other node's name

  // Waits up to `timeout_ms` for data; returns nullopt on timeout, on a tick (answered) and on
  // control messages we do not handle (monitors, links). Unavailable when the connection is
  // closed or broken; ResourceExhausted (and the connection should be dropped) when the
  // message is longer than `max_bytes`.
  StatusOr<std::optional<Message>> Receive(int timeout_ms, size_t max_bytes = kMaxMessageBytes);

  // `bytes` is an encoded term with the version byte.
  Status Send(const erlang_pid& to, std::span<const uint8_t> bytes, int timeout_ms);
  Status SendToRegistered(class CNode& self, const std::string& name,
                          std::span<const uint8_t> bytes, int timeout_ms);

 private:
  int fd_;
  std::string peer_;
  ei_x_buff buf_{};
};

class CNode {
 public:
  static StatusOr<std::unique_ptr<CNode>> Create(const NodeName& name, const std::string& cookie);
  ~CNode();
  CNode(const CNode&) = delete;
  CNode& operator=(const CNode&) = delete;

  // Listens on `address`:`port` (port 0: any free port) and registers the name and the port
  // with the local epmd. The registration lasts as long as this CNode (the epmd connection is
  // kept open). The listening socket is non-blocking: accept on listen_fd() when it is readable.
  Status ListenAndPublish(const in_addr& address, int port);
  // The rest of the accepting handshake (status, challenge, digest) on `socket`, a connection
  // accepted on listen_fd() whose first packet may already be in its prefix. Bounded by the
  // socket's deadline and abort fd. PermissionDenied for a wrong cookie or a failed handshake,
  // DeadlineExceeded past the deadline, Unavailable when aborted.
  StatusOr<std::unique_ptr<Connection>> AcceptHandshake(std::unique_ptr<DistSocket> socket);
  // Connects to `node` ("orion@host"), resolving it through that host's epmd.
  StatusOr<std::unique_ptr<Connection>> Connect(const std::string& node, int timeout_ms);

  const std::string& name() const { return name_; }
  int listen_fd() const { return listen_fd_; }
  int listen_port() const { return port_; }
  erlang_pid self();
  erlang_ref MakeRef();
  ei_cnode* raw() { return &ec_; }  // for ei calls that need it; serialise with lock()
  std::mutex& lock() { return mu_; }

 private:
  CNode() = default;
  ei_cnode ec_{};
  std::string name_;
  int listen_fd_ = -1;
  int publish_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;  // ei_make_ref and friends mutate ec_
};

}  // namespace orion::erlang
