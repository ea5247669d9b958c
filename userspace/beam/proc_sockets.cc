#include "userspace/beam/proc_sockets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>

namespace orion::beam {
namespace {

// The next whitespace-separated field of `text`, removed from it; "" at the end.
std::string_view NextField(std::string_view& text) {
  const size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  const size_t end = std::min(text.find_first_of(" \t"), text.size());
  std::string_view field = text.substr(0, end);
  text.remove_prefix(end);
  return field;
}

template <typename T>
bool ParseHex(std::string_view text, T* out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, 16);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "0100007F" (IPv4) or four such words (IPv6): the kernel prints each 32-bit word of the
// address as it sits in memory, read as a native integer; so the word's bytes in this host's
// order are the address's bytes in network order.
std::optional<std::string> ParseAddress(std::string_view hex) {
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  unsigned char bytes[16];
  for (size_t w = 0; w < hex.size() / 8; ++w) {
    uint32_t word = 0;
    if (!ParseHex(hex.substr(w * 8, 8), &word)) return std::nullopt;
    std::memcpy(bytes + w * 4, &word, 4);
  }
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(hex.size() == 8 ? AF_INET : AF_INET6, bytes, text, sizeof(text))) {
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace

std::optional<TcpSocket> ParseProcNetTcpLine(std::string_view line) {
  // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
  std::string_view rest = line;
  const std::string_view slot = NextField(rest);
  if (slot.empty() || slot.back() != ':') return std::nullopt;
  const std::string_view local = NextField(rest);
  NextField(rest);  // rem_address
  const std::string_view state = NextField(rest);
  for (int i = 0; i < 5; ++i) NextField(rest);  // queues, timer, retransmits, uid, timeout
  const std::string_view inode = NextField(rest);

  const size_t colon = local.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  TcpSocket socket;
  const auto address = ParseAddress(local.substr(0, colon));
  if (!address || !ParseHex(local.substr(colon + 1), &socket.local_port) ||
      !ParseHex(state, &socket.state)) {
    return std::nullopt;
  }
  socket.local_address = *address;
  const auto [ptr, ec] = std::from_chars(inode.data(), inode.data() + inode.size(), socket.inode);
  if (inode.empty() || ec != std::errc() || ptr != inode.data() + inode.size()) {
    return std::nullopt;
  }
  return socket;
}

std::vector<TcpSocket> ListeningTcpSockets(pid_t pid) {
  std::vector<TcpSocket> out;
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + table);
    std::string line;
    while (std::getline(in, line)) {
      auto socket = ParseProcNetTcpLine(line);
      if (socket && socket->state == kTcpListen) out.push_back(std::move(*socket));
    }
  }
  return out;
}

std::optional<uint64_t> FirstHeldSocket(pid_t pid, const std::set<uint64_t>& inodes) {
  if (inodes.empty()) return std::nullopt;
  constexpr std::string_view kPrefix = "socket:[";
  DIR* fds = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!fds) return std::nullopt;
  std::optional<uint64_t> found;
  char target[64];
  while (dirent* entry = readdir(fds)) {
    if (entry->d_name[0] == '.') continue;
    const ssize_t n = readlinkat(dirfd(fds), entry->d_name, target, sizeof(target) - 1);
    const std::string_view link(target, n > 0 ? static_cast<size_t>(n) : 0);
    if (link.substr(0, kPrefix.size()) != kPrefix || link.back() != ']') continue;
    uint64_t inode = 0;
    const std::string_view digits = link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1);
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
    if (ec == std::errc() && ptr == digits.data() + digits.size() && inodes.count(inode)) {
      found = inode;
      break;
    }
  }
  closedir(fds);
  return found;
}

}  // namespace orion::beam
