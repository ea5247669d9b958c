// Another process's Linux namespaces, as far as finding node names needs them: epmd listens
// on the loopback of the BEAM's network namespace, and a short node name takes the host name
// of its UTS namespace, neither of which need be the daemon's.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "base/status.h"

namespace orion::beam {

// The inode of `pid`'s namespace of `kind` ("net", "uts"), which identifies it; 0 if it cannot
// be read. pid 0: the calling process's.
ino_t NamespaceInode(pid_t pid, const char* kind);

// Runs `fn` on a thread that has joined `pid`'s network and UTS namespaces, or on the calling
// thread when they are the caller's already. Sockets `fn` opens belong to that network
// namespace. PermissionDenied if joining needs a privilege we lack (CAP_SYS_ADMIN).
Status RunInNamespacesOf(pid_t pid, const std::function<void()>& fn);

// The host part a short node name (-sname, net_kernel shortnames) takes: the host name up to
// its first dot, in the caller's UTS namespace.
std::string ShortHostname();

}  // namespace orion::beam
