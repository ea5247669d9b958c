// Which process holds which TCP socket, from /proc: /proc/<pid>/net/tcp and tcp6 list the
// sockets of that process's network namespace with their inodes, and /proc/<pid>/fd links
// name the inodes a process holds ("socket:[12345]"). Together they lead from a listening port
// (say, the distribution port epmd gives for a node name) to the BEAM that listens on it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace orion::beam {

inline constexpr uint8_t kTcpListen = 0x0A;  // the kernel's TCP_LISTEN, column `st`

struct TcpSocket {
  std::string local_address;  // "127.0.0.1", "::", "::ffff:10.0.0.1"
  uint16_t local_port = 0;
  uint8_t state = 0;  // kTcpListen, ...
  uint64_t inode = 0;
  bool operator==(const TcpSocket&) const = default;
};

// One line of /proc/net/tcp or /proc/net/tcp6 ("  0: 0100007F:1111 00000000:0000 0A ... 23456
// ..."); nullopt for the header line or anything else that is not a socket line. Addresses are
// the kernel's words in this host's byte order, 8 hex digits for IPv4, 32 for IPv6.
std::optional<TcpSocket> ParseProcNetTcpLine(std::string_view line);

// The listening TCP sockets (IPv4 and IPv6) of the network namespace `pid` is in.
std::vector<TcpSocket> ListeningTcpSockets(pid_t pid);

// The first of `inodes` that `pid` holds a file descriptor on, in the order of its fds (a BEAM
// opens its distribution listener early, so the scan ends early); nullopt if none.
std::optional<uint64_t> FirstHeldSocket(pid_t pid, const std::set<uint64_t>& inodes);

}  // namespace orion::beam
