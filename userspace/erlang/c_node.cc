#include "userspace/erlang/c_node.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "userspace/erlang/ei_init.h"

namespace orion::erlang {
namespace {

bool ValidAlive(const std::string& alive) {
  if (alive.empty() || alive.size() > 64) return false;
  for (char c : alive) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string ErrnoText(int err) {
  return err == 0 ? "unknown error" : std::strerror(err);
}

}  // namespace

StatusOr<NodeName> ParseNodeName(const std::string& name, bool longnames) {
  NodeName out;
  const size_t at = name.find('@');
  out.alive = name.substr(0, at);
  if (!ValidAlive(out.alive)) {
    return InvalidArgument("bad node name '", name, "': the part before '@' must be letters, ",
                           "digits, '_' or '-'");
  }
  if (at != std::string::npos) {
    out.host = name.substr(at + 1);
    if (out.host.empty() || out.host.size() > EI_MAXHOSTNAMELEN) {
      return InvalidArgument("bad node name '", name, "': empty or too long host");
    }
    return out;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) {
    return Internal("gethostname: ", ErrnoText(errno));
  }
  out.host = host;
  if (!longnames) out.host = out.host.substr(0, out.host.find('.'));
  return out;
}

Connection::~Connection() {
  if (fd_ >= 0) ei_close_connection(fd_);
  if (buf_.buff != nullptr) ei_x_free(&buf_);
}

StatusOr<std::optional<Message>> Connection::Receive(int timeout_ms, size_t max_bytes) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return std::optional<Message>();
    return Unavailable("poll: ", ErrnoText(errno));
  }
  if (ready == 0) return std::optional<Message>();
  // Check the 4-byte length prefix before ei reads (and allocates for) the body.
  uint8_t header[4];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const ssize_t n = ::recv(fd_, header, sizeof(header), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return Unavailable("connection from ", peer_, " closed");
    if (n == sizeof(header)) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Unavailable("connection from ", peer_, ": ", ErrnoText(errno));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable("connection from ", peer_, " stalled inside a message header");
    }
    pollfd again{fd_, POLLIN, 0};
    ::poll(&again, 1, 50);
  }
  const uint32_t length = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                          (uint32_t{header[2]} << 8) | header[3];
  // The distribution header (control tuple, pids) comes on top of the payload.
  if (length > max_bytes + 4096) {
    return ResourceExhausted("message of ", length, " bytes from ", peer_, " is over the limit of ",
                             max_bytes, " bytes: connection dropped");
  }
  if (buf_.buff == nullptr && ei_x_new(&buf_) != 0) return Internal("ei_x_new failed");
  erlang_msg msg{};
  const int r = ei_xreceive_msg_tmo(fd_, &msg, &buf_, 5000);
  if (r == ERL_TICK) return std::optional<Message>();
  if (r == ERL_ERROR || r == ERL_TIMEOUT) {
    if (r == ERL_ERROR && erl_errno == EIO && msg.msgtype != 0) {
      return std::optional<Message>();  // a control message ei does not handle (a monitor)
    }
    return Unavailable(
        "connection from ", peer_, " broken (",
        r == ERL_TIMEOUT || erl_errno == ETIMEDOUT ? "stalled mid-message" : ErrnoText(erl_errno),
        ")");
  }
  if (msg.msgtype != ERL_SEND && msg.msgtype != ERL_REG_SEND) return std::optional<Message>();
  Message out;
  out.to_registered = msg.msgtype == ERL_REG_SEND;
  out.to_name = out.to_registered ? msg.toname : "";
  out.from = msg.from;
  const auto* data = reinterpret_cast<const uint8_t*>(buf_.buff);
  out.payload.assign(data, data + buf_.index);
  // Do not keep a large buffer around after a large message.
  if (buf_.buffsz > 64 * 1024) {
    ei_x_free(&buf_);
    buf_ = {};
  }
  return std::optional<Message>(std::move(out));
}

Status Connection::Send(const erlang_pid& to, std::span<const uint8_t> bytes, int timeout_ms) {
  erlang_pid dest = to;
  if (ei_send_tmo(fd_, &dest, reinterpret_cast<char*>(const_cast<uint8_t*>(bytes.data())),
                  static_cast<int>(bytes.size()), static_cast<unsigned>(timeout_ms)) < 0) {
    return Unavailable("send to ", peer_, " failed: ", ErrnoText(erl_errno));
  }
  return OkStatus();
}

Status Connection::SendToRegistered(CNode& self, const std::string& name,
                                    std::span<const uint8_t> bytes, int timeout_ms) {
  if (ei_reg_send_tmo(self.raw(), fd_, const_cast<char*>(name.c_str()),
                      reinterpret_cast<char*>(const_cast<uint8_t*>(bytes.data())),
                      static_cast<int>(bytes.size()), static_cast<unsigned>(timeout_ms)) < 0) {
    return Unavailable("send to ", name, " on ", peer_, " failed: ", ErrnoText(erl_errno));
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<CNode>> CNode::Create(const NodeName& name, const std::string& cookie) {
  InitErlInterface();
  std::unique_ptr<CNode> node(new CNode());
  node->name_ = name.full();
  in_addr any{};
  // A creation that changes between restarts, so pids of an old incarnation are not confused
  // with the new one's; 1..0xfffffffe as ei wants it non-zero.
  const auto creation = static_cast<unsigned>(std::time(nullptr) % 0xfffffff0u) + 1;
  if (ei_connect_xinit_ussi(&node->ec_, name.host.c_str(), name.alive.c_str(),
                            node->name_.c_str(), &any, cookie.c_str(), creation,
                            DistSocketCallbacks(), sizeof(ei_socket_callbacks), nullptr) < 0) {
    return Internal("ei_connect_xinit_ussi(", node->name_, ") failed: ", ErrnoText(erl_errno));
  }
  return node;
}

CNode::~CNode() {
  if (publish_fd_ >= 0) ::close(publish_fd_);
  if (listen_fd_ >= 0) ei_close_connection(listen_fd_);  // the socket is the callbacks'
}

Status CNode::ListenAndPublish(const in_addr& address, int port) {
  in_addr bind_to = address;
  // The kernel's largest backlog (net.core.somaxconn): the daemon drains the queue in its event
  // loop and handshakes elsewhere, so a burst of connections waits there instead of dropping a
  // peer's SYN (which costs that peer a one-second retransmission).
  listen_fd_ = ei_xlisten(&ec_, &bind_to, &port, SOMAXCONN);
  if (listen_fd_ < 0) {
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &address, text, sizeof(text));
    return Unavailable("cannot listen on ", text, ":", port, " (", ErrnoText(erl_errno), ")");
  }
  port_ = port;
  publish_fd_ = ei_publish(&ec_, port);
  if (publish_fd_ < 0) {
    return Unavailable("cannot register ", name_, " with epmd on this host (", ErrnoText(erl_errno),
                       "): is epmd running ('epmd -daemon', or any Erlang node starts it), and "
                       "is no other node registered as '",
                       ei_thisalivename(&ec_), "'?");
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<Connection>> CNode::AcceptHandshake(std::unique_ptr<DistSocket> socket) {
  const auto deadline = socket->deadline;
  AcceptHandoff handoff(std::move(socket));
  unsigned timeout_ms = 0;  // 0: no limit but the socket's deadline
  if (deadline != DistSocket::Clock::time_point::max()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - DistSocket::Clock::now());
    if (left.count() <= 0) return DeadlineExceeded("handshake deadline passed");
    timeout_ms = static_cast<unsigned>(left.count());
  }
  ErlConnect con{};
  const int fd = ei_accept_tmo(&ec_, listen_fd_, &con, timeout_ms);
  if (fd < 0) {
    const int err = erl_errno;
    if (err == ETIMEDOUT) return DeadlineExceeded("handshake not done in time");
    if (err == ECONNABORTED) return Unavailable("handshake aborted");
    return PermissionDenied("refused a connection (", ErrnoText(err),
                            "): a wrong cookie or a failed handshake");
  }
  return std::make_unique<Connection>(fd, con.nodename);
}

StatusOr<std::unique_ptr<Connection>> CNode::Connect(const std::string& node, int timeout_ms) {
  std::string target = node;
  const int fd = ei_connect_tmo(&ec_, target.data(), static_cast<unsigned>(timeout_ms));
  if (fd < 0) {
    const int err = erl_errno;
    if (err == ETIMEDOUT) return DeadlineExceeded("cannot reach ", node, ": timed out");
    return Unavailable("cannot connect to ", node, " (", ErrnoText(err),
                       "): is it running, reachable, and using the same cookie?");
  }
  return std::make_unique<Connection>(fd, node);
}

erlang_pid CNode::self() {
  std::lock_guard<std::mutex> hold(mu_);
  return *ei_self(&ec_);
}

erlang_ref CNode::MakeRef() {
  std::lock_guard<std::mutex> hold(mu_);
  erlang_ref ref{};
  ei_make_ref(&ec_, &ref);
  return ref;
}

}  // namespace orion::erlang
