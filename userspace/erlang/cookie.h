// The distribution cookie of the daemon and of the CLI's connections to it.
//
// The daemon is root and listens on the network, and the cookie is the only thing that keeps
// strangers out (Erlang distribution authenticates by challenge/response on it). So it is
// read from a file only (never from the command line, where `ps` shows it), and the file
// must be a regular file owned by root with mode 0600.
#pragma once

#include <string>

#include "base/status.h"

namespace orion::erlang {

inline constexpr const char* kDefaultCookieFile = "/etc/orion/cookie";

// Reads and validates the cookie file: regular file, owner uid 0, no group/other access,
// one line of 1..255 printable ASCII characters (a trailing newline is dropped).
// `require_root_owned` is false only for the CLI reading a user's own file (owner = caller).
StatusOr<std::string> ReadCookieFile(const std::string& path, bool require_root_owned = true);

}  // namespace orion::erlang
