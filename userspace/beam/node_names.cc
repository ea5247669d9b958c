#include "userspace/beam/node_names.h"

#include <map>
#include <set>
#include <tuple>

#include "userspace/beam/epmd_names.h"
#include "userspace/beam/namespaces.h"
#include "userspace/beam/proc_sockets.h"

namespace orion::beam {
namespace {

constexpr std::chrono::milliseconds kEpmdTimeout{1000};

std::string_view AliveOf(std::string_view name) {
  return name.substr(0, name.find('@'));
}

std::string_view HostOf(std::string_view name) {
  const size_t at = name.find('@');
  return at == std::string_view::npos ? std::string_view() : name.substr(at + 1);
}

// `shorter` is `host` up to its first dot, and a name rather than the start of an address.
bool IsShortFormOf(std::string_view shorter, std::string_view host) {
  if (shorter.empty() || shorter.find('.') != std::string_view::npos) return false;
  if (shorter.find_first_not_of("0123456789") == std::string_view::npos) return false;
  return host.size() > shorter.size() && host.substr(0, shorter.size()) == shorter &&
         host[shorter.size()] == '.';
}

}  // namespace

NodeNameChoice ChooseNodeName(const std::string& cmdline_name,
                              const std::optional<std::string>& epmd_alive,
                              const std::string& short_host) {
  if (epmd_alive) {
    if (!cmdline_name.empty() && AliveOf(cmdline_name) == *epmd_alive) {
      return {cmdline_name, NameSource::kEpmd};
    }
    return {*epmd_alive + "@" + short_host, NameSource::kEpmd};
  }
  if (!cmdline_name.empty()) return {cmdline_name, NameSource::kCmdline};
  return {};
}

uint16_t EpmdPortFromArgs(const std::vector<std::string>& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] != "-epmd_port") continue;
    char* end = nullptr;
    const long port = std::strtol(args[i + 1].c_str(), &end, 10);
    if (*end == '\0' && port > 0 && port <= 65535) return static_cast<uint16_t>(port);
  }
  return kDefaultEpmdPort;
}

void ResolveNodeNames(std::vector<BeamProcess>& beams) {
  // BEAMs that see the same epmd and the same host name: one query for all of them.
  using GroupKey = std::tuple<ino_t, ino_t, uint16_t>;
  std::map<GroupKey, std::vector<BeamProcess*>> groups;
  for (BeamProcess& b : beams) {
    groups[{NamespaceInode(b.pid, "net"), NamespaceInode(b.pid, "uts"), EpmdPortFromArgs(b.argv)}]
        .push_back(&b);
  }
  for (auto& [key, members] : groups) {
    const uint16_t epmd_port = std::get<2>(key);
    std::vector<EpmdName> names;
    std::string host = ShortHostname();
    // Any member leads into the namespaces; the first one may have exited, so try each.
    for (const BeamProcess* m : members) {
      Status joined = RunInNamespacesOf(m->pid, [&] {
        host = ShortHostname();
        if (auto found = QueryEpmdNames(epmd_port, kEpmdTimeout); found.ok()) {
          names = std::move(*found);
        }
      });
      if (joined.ok()) break;
    }
    // Listening socket inode -> the alive name epmd gives for its port.
    std::map<uint64_t, std::string> alive_of_inode;
    if (!names.empty()) {
      for (const TcpSocket& s : ListeningTcpSockets(members.front()->pid)) {
        for (const EpmdName& n : names) {
          if (n.port == s.local_port) alive_of_inode[s.inode] = n.alive;
        }
      }
    }
    std::set<uint64_t> inodes;
    for (const auto& [inode, alive] : alive_of_inode) inodes.insert(inode);
    for (BeamProcess* b : members) {
      std::optional<std::string> alive;
      if (auto inode = FirstHeldSocket(b->pid, inodes)) alive = alive_of_inode[*inode];
      NodeNameChoice choice = ChooseNodeName(NodeNameFromArgs(b->argv, host), alive, host);
      b->node_name = std::move(choice.name);
      b->node_source = choice.source;
    }
  }
}

bool NodeNameMatches(std::string_view name, std::string_view requested) {
  if (name.empty() || requested.empty()) return false;
  if (name == requested) return true;
  if (AliveOf(name) != AliveOf(requested)) return false;
  const std::string_view a = HostOf(name), b = HostOf(requested);
  return IsShortFormOf(a, b) || IsShortFormOf(b, a);
}

}  // namespace orion::beam
