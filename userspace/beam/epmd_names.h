// What epmd, the Erlang port mapper daemon, knows: every node name registered on a host (its
// network namespace) and the port each node's distribution listens on. A node named at run
// time (net_kernel:start, as RabbitMQ names itself) is there even though no -sname/-name is on
// its command line.
//
// One NAMES request (ERTS "Distribution Protocol", EPMD_NAMES_REQ): two length bytes, 'n'.
// epmd answers its own port (4 bytes, big-endian), then one line per registered node,
// "name <alive> at port <port>\n", and closes the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace orion::beam {

inline constexpr uint16_t kDefaultEpmdPort = 4369;

struct EpmdName {
  std::string alive;  // the part of the node name before '@': "rabbit" for rabbit@host
  uint16_t port = 0;  // the node's distribution listen port
  bool operator==(const EpmdName&) const = default;
};

// Parses a whole NAMES reply. InvalidArgument, quoting the offending line, if it is not what
// epmd sends (a short header, a line of another shape, a port out of range, a cut-off line).
StatusOr<std::vector<EpmdName>> ParseEpmdNamesReply(std::string_view reply);

// Asks the epmd listening on 127.0.0.1:`port` of the calling thread's network namespace.
// Unavailable if none listens there (no distributed node has started one), DeadlineExceeded
// if it does not answer within `timeout`, ResourceExhausted if the reply exceeds 256 KiB.
StatusOr<std::vector<EpmdName>> QueryEpmdNames(uint16_t port, std::chrono::milliseconds timeout);

}  // namespace orion::beam
