#include "userspace/beam/epmd_names.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/unique_fd.h"

namespace orion::beam {
namespace {

constexpr size_t kMaxReplyBytes = 256 * 1024;
constexpr std::string_view kNamePrefix = "name ";
constexpr std::string_view kPortInfix = " at port ";

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline,
               uint16_t port) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return DeadlineExceeded("epmd on 127.0.0.1:", port, " did not answer NAMES in time");
    }
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return OkStatus();
    if (n < 0 && errno != EINTR) return Internal("poll: ", std::strerror(errno));
  }
}

}  // namespace

StatusOr<std::vector<EpmdName>> ParseEpmdNamesReply(std::string_view reply) {
  if (reply.size() < 4) {
    return InvalidArgument("epmd's NAMES reply is ", reply.size(),
                           " bytes, shorter than its 4-byte header");
  }
  std::string_view rest = reply.substr(4);
  std::vector<EpmdName> names;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    if (end == std::string_view::npos) {
      return InvalidArgument("epmd's NAMES reply ends in a cut-off line: '", rest, "'");
    }
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    const size_t at = line.rfind(kPortInfix);
    if (line.substr(0, kNamePrefix.size()) != kNamePrefix || at == std::string_view::npos ||
        at <= kNamePrefix.size()) {
      return InvalidArgument("epmd's NAMES reply has a line not of the form 'name N at port P': '",
                             line, "'");
    }
    const std::string_view digits = line.substr(at + kPortInfix.size());
    unsigned port = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || port == 0 || port > 65535) {
      return InvalidArgument("epmd's NAMES reply has a line with a bad port: '", line, "'");
    }
    names.push_back({std::string(line.substr(kNamePrefix.size(), at - kNamePrefix.size())),
                     static_cast<uint16_t>(port)});
  }
  return names;
}

StatusOr<std::vector<EpmdName>> QueryEpmdNames(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Internal("socket: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      return Unavailable("no epmd on 127.0.0.1:", port, " (", std::strerror(errno), ")");
    }
    RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline, port));
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Unavailable("no epmd on 127.0.0.1:", port, " (", std::strerror(err), ")");
  }
  constexpr char kRequest[] = {0, 1, 'n'};
  if (::send(fd.get(), kRequest, sizeof(kRequest), MSG_NOSIGNAL) != sizeof(kRequest)) {
    return Unavailable("sending NAMES to epmd on 127.0.0.1:", port, ": ", std::strerror(errno));
  }
  std::string reply;
  char buf[4096];
  for (;;) {
    RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, deadline, port));
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;  // epmd closes after the last line
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Unavailable("reading epmd's NAMES reply: ", std::strerror(errno));
    }
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > kMaxReplyBytes) {
      return ResourceExhausted("epmd on 127.0.0.1:", port, " sent more than ", kMaxReplyBytes,
                               " bytes for NAMES");
    }
  }
  return ParseEpmdNamesReply(reply);
}

}  // namespace orion::beam
