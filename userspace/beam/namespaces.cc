#include "userspace/beam/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "base/unique_fd.h"

namespace orion::beam {
namespace {

std::string NamespacePath(pid_t pid, const char* kind) {
  return (pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid)) + "/ns/" + kind;
}

}  // namespace

ino_t NamespaceInode(pid_t pid, const char* kind) {
  struct stat st {};
  if (::stat(NamespacePath(pid, kind).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

Status RunInNamespacesOf(pid_t pid, const std::function<void()>& fn) {
  struct Join {
    const char* kind;
    int flag;
    UniqueFd fd;
  };
  Join joins[] = {{"net", CLONE_NEWNET, UniqueFd()}, {"uts", CLONE_NEWUTS, UniqueFd()}};
  bool foreign = false;
  for (Join& j : joins) {
    const ino_t theirs = NamespaceInode(pid, j.kind);
    if (theirs == 0 || theirs == NamespaceInode(0, j.kind)) continue;
    j.fd = UniqueFd(::open(NamespacePath(pid, j.kind).c_str(), O_RDONLY | O_CLOEXEC));
    if (j.fd.get() < 0) {
      return PermissionDenied("cannot open ", NamespacePath(pid, j.kind), ": ",
                              std::strerror(errno));
    }
    foreign = true;
  }
  if (!foreign) {
    fn();
    return OkStatus();
  }
  // setns changes only the calling thread's network and UTS namespaces; this thread ends
  // with them.
  Status status;
  std::thread worker([&] {
    for (const Join& j : joins) {
      if (j.fd.get() >= 0 && ::setns(j.fd.get(), j.flag) != 0) {
        status = PermissionDenied("cannot join the ", j.kind, " namespace of pid ", pid, ": ",
                                  std::strerror(errno));
        return;
      }
    }
    fn();
  });
  worker.join();
  return status;
}

std::string ShortHostname() {
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string h(host);
  return h.substr(0, h.find('.'));
}

}  // namespace orion::beam
