// Completion of function names: what the daemon answers to {functions, Prefix}
// (docs/protocol.md, "Function names"), for the console's query box and for shells.
//
// A BEAM is asked two fixed things through the distribution (rpc, as tracer mode reaches
// nodes): erlang:loaded/0 (the loaded modules' names; nothing is loaded), then, only when the
// prefix names a whole module followed by its separator, erlang:get_module_info(M, exports)
// for at most kMaxModulesListed of the modules erlang:loaded/0 listed (so no atom of the
// request is ever created on the node, and no module's code runs). Names come in the forms a
// pattern may take (probes/mfa_pattern.h), whichever starts with the prefix:
//
//   "lis"      -> "lists:"               (module names, with the separator that follows them)
//   "lists:so" -> "lists:sort/1", "lists:sort/2"
//   "Enu"      -> "Enum."                ('Elixir.Enum')
//   "Enum.ma"  -> "Enum.map/2", "Enum.map_every/3", ...
//   ":lists.so" -> ":lists.sort/1"       (Elixir's way of naming an Erlang module)
//
//   auto here = CompleteOnBeam("app@host", cookie, "lists:so", deadline);  // one BEAM
//   FunctionsResult all = protocol::MergeFunctions({*here, ...});          // sorted, bounded
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "userspace/protocol/protocol.h"

namespace orion::daemon {

// Modules whose exports one prefix may read on one BEAM (a prefix names one module, but in a
// few forms, e.g. "Foo." is also the start of "Foo.Bar.").
inline constexpr size_t kMaxModulesListed = 4;

// An exported function: its atom's name and arity.
struct ExportedFunction {
  std::string name;
  int arity = 0;
};

// What to answer `prefix` with on a BEAM that has `loaded` (module atom names, e.g. "lists",
// "Elixir.Enum"): the module names that start with it ("lists:", "Enum."; not the prefix
// itself), and the modules whose exports complete it (atom names, at most kMaxModulesListed).
struct CompletionPlan {
  std::vector<std::string> module_names;
  std::vector<std::string> modules_to_list;
};
CompletionPlan PlanCompletion(std::string_view prefix, std::span<const std::string> loaded);

// The names of `module`'s `exports` (module an atom name) that start with `prefix`, in every
// form that does.
std::vector<std::string> FunctionNames(std::string_view prefix, std::string_view module,
                                       std::span<const ExportedFunction> exports);

// One BEAM's answer to `prefix`: the completions above, sorted, unique and within `limits`
// (truncated when cut). Unavailable/DeadlineExceeded when the node cannot be reached or does
// not answer before `deadline`.
StatusOr<protocol::FunctionsResult> CompleteOnBeam(const std::string& node,
                                                   const std::string& cookie,
                                                   std::string_view prefix,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   const protocol::ProtocolLimits& limits = {});

}  // namespace orion::daemon
