#include "userspace/erlang/dist_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace orion::erlang {
namespace {

using Clock = DistSocket::Clock;

// The socket AcceptHandoff gives to the next accept callback on this thread.
thread_local DistSocket* t_handoff = nullptr;

DistSocket* As(void* ctx) { return static_cast<DistSocket*>(ctx); }

// Waits until the socket is ready for `events` (or reports an error or hang-up, which the next
// call returns). 0, or ETIMEDOUT past `tmo_ms` or the socket's deadline, ECONNABORTED when its
// abort fd fires, or poll's errno.
int Wait(DistSocket* s, short events, unsigned tmo_ms) {
  Clock::time_point until = s->deadline;
  if (tmo_ms != EI_SCLBK_INF_TMO) {
    until = std::min(until, Clock::now() + std::chrono::milliseconds(tmo_ms));
  }
  for (;;) {
    int timeout_ms = -1;
    if (until != Clock::time_point::max()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return ETIMEDOUT;
      timeout_ms = static_cast<int>(std::min<int64_t>(left, INT_MAX));
    }
    pollfd fds[2] = {{s->fd, events, 0}, {s->abort_fd, POLLIN, 0}};
    const int ready = ::poll(fds, s->abort_fd >= 0 ? 2 : 1, timeout_ms);
    if (ready < 0 && errno != EINTR) return errno;
    if (ready <= 0) continue;  // interrupted, or the time is up (checked above)
    if (s->abort_fd >= 0 && fds[1].revents != 0) return ECONNABORTED;
    if (fds[0].revents != 0) return 0;
  }
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

int Socket(void** ctx, void* /*setup_ctx*/) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  *ctx = new DistSocket(fd);
  return 0;
}

int Close(void* ctx) {
  delete As(ctx);
  return 0;
}

int Listen(void* ctx, void* addr, int* len, int backlog) {
  const int fd = As(ctx)->fd;
  const int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) return errno;
  if (::bind(fd, static_cast<sockaddr*>(addr), static_cast<socklen_t>(*len)) != 0) return errno;
  auto size = static_cast<socklen_t>(*len);
  if (::getsockname(fd, static_cast<sockaddr*>(addr), &size) != 0) return errno;
  *len = static_cast<int>(size);
  if (::listen(fd, backlog) != 0) return errno;
  return 0;
}

// Connections are accepted by the caller's event loop, never inside ei: ei_accept_tmo only
// runs the handshake on the socket an AcceptHandoff gave this thread.
int Accept(void** ctx, void* addr, int* len, unsigned /*tmo_ms*/) {
  DistSocket* socket = t_handoff;
  if (socket == nullptr) return EINVAL;
  t_handoff = nullptr;
  auto size = static_cast<socklen_t>(*len);
  if (::getpeername(socket->fd, static_cast<sockaddr*>(addr), &size) != 0) {
    const int err = errno;
    delete socket;
    return err;
  }
  *len = static_cast<int>(size);
  *ctx = socket;
  return 0;
}

// The whole connecting handshake, not each of its reads, is held to `tmo_ms`.
int Connect(void* ctx, void* addr, int len, unsigned tmo_ms) {
  DistSocket* s = As(ctx);
  if (tmo_ms != EI_SCLBK_INF_TMO) {
    s->deadline = Clock::now() + std::chrono::milliseconds(tmo_ms);
  }
  if (::connect(s->fd, static_cast<sockaddr*>(addr), static_cast<socklen_t>(len)) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  if (const int err = Wait(s, POLLOUT, tmo_ms); err != 0) return err;
  int err = 0;
  socklen_t size = sizeof(err);
  if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &size) != 0) return errno;
  return err;
}

int Read(void* ctx, char* buf, ssize_t* len, unsigned tmo_ms) {
  DistSocket* s = As(ctx);
  if (s->prefix_read < s->prefix.size()) {
    const size_t n = std::min(static_cast<size_t>(*len), s->prefix.size() - s->prefix_read);
    std::memcpy(buf, s->prefix.data() + s->prefix_read, n);
    s->prefix_read += n;
    *len = static_cast<ssize_t>(n);
    return 0;
  }
  for (;;) {
    const ssize_t n = ::recv(s->fd, buf, static_cast<size_t>(*len), 0);
    if (n >= 0) {
      *len = n;
      return 0;
    }
    if (errno == EINTR) continue;
    if (!WouldBlock(errno)) return errno;
    if (const int err = Wait(s, POLLIN, tmo_ms); err != 0) return err;
  }
}

int Write(void* ctx, const char* buf, ssize_t* len, unsigned tmo_ms) {
  DistSocket* s = As(ctx);
  for (;;) {
    const ssize_t n = ::send(s->fd, buf, static_cast<size_t>(*len), MSG_NOSIGNAL);
    if (n >= 0) {
      *len = n;
      return 0;
    }
    if (errno == EINTR) continue;
    if (!WouldBlock(errno)) return errno;
    if (const int err = Wait(s, POLLOUT, tmo_ms); err != 0) return err;
  }
}

int Writev(void* ctx, const void* iov, int iovcnt, ssize_t* len, unsigned tmo_ms) {
  DistSocket* s = As(ctx);
  msghdr msg{};
  msg.msg_iov = static_cast<iovec*>(const_cast<void*>(iov));
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  for (;;) {
    const ssize_t n = ::sendmsg(s->fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      *len = n;
      return 0;
    }
    if (errno == EINTR) continue;
    if (!WouldBlock(errno)) return errno;
    if (const int err = Wait(s, POLLOUT, tmo_ms); err != 0) return err;
  }
}

int HandshakePacketHeaderSize(void* /*ctx*/, int* size) {
  *size = static_cast<int>(kHandshakeLengthBytes);
  return 0;
}

// From here on the connection is an authenticated peer's: its waits are bounded by each call's
// timeout only.
int HandshakeComplete(void* ctx) {
  DistSocket* s = As(ctx);
  s->deadline = Clock::time_point::max();
  s->abort_fd = -1;
  s->prefix.clear();
  s->prefix.shrink_to_fit();
  const int on = 1;
  if (::setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) return errno;
  if (::setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0) return errno;
  return 0;
}

int GetFd(void* ctx, int* fd) {
  *fd = As(ctx)->fd;
  return 0;
}

ei_socket_callbacks g_callbacks = {
    EI_SCLBK_FLG_FULL_IMPL,
    Socket,
    Close,
    Listen,
    Accept,
    Connect,
    Writev,
    Write,
    Read,
    HandshakePacketHeaderSize,
    HandshakeComplete,
    HandshakeComplete,
    GetFd,
};

}  // namespace

DistSocket::~DistSocket() {
  if (fd >= 0) ::close(fd);
}

ei_socket_callbacks* DistSocketCallbacks() { return &g_callbacks; }

AcceptHandoff::AcceptHandoff(std::unique_ptr<DistSocket> socket) {
  delete t_handoff;
  t_handoff = socket.release();
}

AcceptHandoff::~AcceptHandoff() {
  delete t_handoff;
  t_handoff = nullptr;
}

}  // namespace orion::erlang
