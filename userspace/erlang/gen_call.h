// gen_server:call from C: how the CLI asks a daemon, and a daemon asks its peers.
//
//   ASSIGN_OR_RETURN(Term reply, GenServerCall(node, "orion@host2", "orion", request, deadline));
//
// Opens a connection to `node`, sends {'$gen_call', {Self, Ref}, Request} to the registered
// name, and waits for {Ref, Reply} until `deadline`. Never waits past the deadline: an
// unreachable or silent node is Unavailable or DeadlineExceeded with a message that names it.
// `cancel`, when set, ends the wait early (Unavailable).
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/status.h"
#include "userspace/erlang/c_node.h"
#include "userspace/erlang/term.h"

namespace orion::erlang {

StatusOr<Term> GenServerCall(CNode& self, const std::string& node,
                             const std::string& registered_name, const Term& request,
                             std::chrono::steady_clock::time_point deadline,
                             const DecodeLimits& limits = DecodeLimits{},
                             const std::atomic<bool>* cancel = nullptr);

// ei's pid/ref as Terms and back.
Term PidTerm(const erlang_pid& pid);
Term RefTerm(const erlang_ref& ref);
StatusOr<erlang_pid> ToErlangPid(const ErlangPid& pid);

}  // namespace orion::erlang
