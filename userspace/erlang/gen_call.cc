#include "userspace/erlang/gen_call.h"

#include <algorithm>
#include <cstring>

namespace orion::erlang {
namespace {

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

Term PidTerm(const erlang_pid& pid) {
  return Term::Pid(ErlangPid{pid.node, pid.num, pid.serial, pid.creation});
}

Term RefTerm(const erlang_ref& ref) {
  ErlangRef out{ref.node, ref.creation, {}};
  for (int i = 0; i < ref.len && i < 5; ++i) out.ids.push_back(ref.n[i]);
  return Term::Reference(out);
}

StatusOr<erlang_pid> ToErlangPid(const ErlangPid& pid) {
  erlang_pid out{};
  if (pid.node.size() >= sizeof(out.node)) return InvalidArgument("pid node name too long");
  std::memcpy(out.node, pid.node.data(), pid.node.size());
  out.num = pid.id;
  out.serial = pid.serial;
  out.creation = pid.creation;
  return out;
}

StatusOr<Term> GenServerCall(CNode& self, const std::string& node,
                             const std::string& registered_name, const Term& request,
                             std::chrono::steady_clock::time_point deadline,
                             const DecodeLimits& limits, const std::atomic<bool>* cancel) {
  const int connect_ms = std::min(RemainingMs(deadline), 5000);
  if (connect_ms <= 0) return DeadlineExceeded(node, ": no time left to connect");
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, self.Connect(node, connect_ms));
  const erlang_pid me = self.self();
  const Term ref = RefTerm(self.MakeRef());
  const Term call =
      Term::Tuple({Term::Atom("$gen_call"), Term::Tuple({PidTerm(me), ref}), request});
  RETURN_IF_ERROR(
      conn->SendToRegistered(self, registered_name, EncodeTerm(call), RemainingMs(deadline)));
  for (;;) {
    const int left = RemainingMs(deadline);
    if (left <= 0) return DeadlineExceeded(node, " did not answer in time");
    if (cancel != nullptr && cancel->load()) return Unavailable("call to ", node, " cancelled");
    ASSIGN_OR_RETURN(std::optional<Message> message,
                     conn->Receive(std::min(left, 500), limits.max_bytes));
    if (!message.has_value() || message->to_registered) continue;
    auto term = DecodeTerm(message->payload, limits);
    if (!term.ok()) return term.status().WithContext(node + " answered a malformed term");
    const auto elements = term->elements();
    if (term->kind() != TermKind::kTuple || elements.size() != 2 || !(elements[0] == ref)) {
      continue;  // not the answer to this call
    }
    return elements[1];
  }
}

}  // namespace orion::erlang
