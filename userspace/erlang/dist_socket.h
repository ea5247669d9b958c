// The sockets under Orion's C nodes: erl_interface's socket callbacks (ei_socket_callbacks), so
// that Orion, not ei, owns the listening socket, accepts connections, and bounds every wait.
//
// ei's own TCP callbacks time out each read separately (a peer that drips a byte at a time never
// times out), wait with select() (undefined past fd 1023), and only accept from a listening
// socket inside ei_accept, one connection at a time. With these callbacks:
//  * every socket is non-blocking and every wait is a poll() bounded by the call's timeout, by
//    the socket's own deadline (a whole handshake's), and by an abort eventfd;
//  * the daemon accepts on the listening socket itself and reads the peer's first handshake
//    packet in its own event loop (DistSocket::prefix), then hands the socket to ei's
//    ei_accept_tmo for the rest of the handshake with an AcceptHandoff: the callbacks' accept
//    returns the handed-off socket instead of calling accept(2).
//
//   ei_connect_xinit_ussi(&ec, ..., DistSocketCallbacks(), sizeof(ei_socket_callbacks), nullptr);
//   int lfd = ei_xlisten(&ec, &address, &port, backlog);       // binds `address` only
//   ... accept4(lfd) in the caller's event loop, read the first packet into socket->prefix ...
//   AcceptHandoff handoff(std::move(socket));
//   int fd = ei_accept_tmo(&ec, lfd, &con, ms);                // the handshake on that socket
#pragma once

#include <ei.h>

#include <chrono>
#include <memory>
#include <string>

namespace orion::erlang {

// One connection's state, the callbacks' `ctx`. ei owns it once a handshake succeeded (it closes
// it through the callbacks in ei_close_connection) or failed (closed at once).
struct DistSocket {
  using Clock = std::chrono::steady_clock;

  explicit DistSocket(int fd) : fd(fd) {}
  ~DistSocket();
  DistSocket(const DistSocket&) = delete;
  DistSocket& operator=(const DistSocket&) = delete;

  int fd = -1;
  // Bytes already read from the peer (its first handshake packet), served before the socket's.
  std::string prefix;
  size_t prefix_read = 0;
  // Every wait ends by then while a handshake runs (Clock::time_point::max(): none). Cleared
  // when the handshake completes.
  Clock::time_point deadline = Clock::time_point::max();
  // An eventfd that, once readable, ends every wait with ECONNABORTED (-1: none). Cleared when
  // the handshake completes.
  int abort_fd = -1;
};

// The callbacks; pass to ei_connect_xinit_ussi. EI_SCLBK_FLG_FULL_IMPL: they do their own
// timeouts, so ei never calls select().
ei_socket_callbacks* DistSocketCallbacks();

// For as long as it lives, the callbacks' accept on this thread returns `socket` (once), so that
// ei_accept_tmo runs its handshake on a connection the caller accepted. If ei never took the
// socket, the destructor closes it.
class AcceptHandoff {
 public:
  explicit AcceptHandoff(std::unique_ptr<DistSocket> socket);
  ~AcceptHandoff();
  AcceptHandoff(const AcceptHandoff&) = delete;
  AcceptHandoff& operator=(const AcceptHandoff&) = delete;
};

// The handshake's packets carry a 2-byte length. The first one the accepting side reads is the
// peer's name: `N`, 8 bytes of flags, 4 of creation, 2 of name length and the name (at most 256
// bytes), so anything longer is not a handshake.
inline constexpr size_t kHandshakeLengthBytes = 2;
inline constexpr size_t kMaxFirstPacketBytes = 512;

}  // namespace orion::erlang
