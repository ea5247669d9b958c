#include "userspace/daemon/function_names.h"

#include <algorithm>
#include <cctype>

#include "userspace/erlang/node_client.h"
#include "userspace/erlang/term.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

using erlang::Term;
using erlang::TermKind;

constexpr std::string_view kElixirPrefix = "Elixir.";

// One way a pattern may name a module: its text and the separator before a function.
struct Spelling {
  std::string text;  // "lists", "'Elixir.Enum'", "Enum", ":lists"
  char separator;    // ':' or '.'
  bool elixir_module = false;  // "Enum": what follows the '.' may be a submodule
};

std::vector<Spelling> SpellingsOf(std::string_view module) {
  std::vector<Spelling> out;
  const std::string printed = probes::PrintedAtom(module);
  out.push_back({printed, ':'});
  if (module.size() > kElixirPrefix.size() && module.starts_with(kElixirPrefix)) {
    out.push_back({std::string(module.substr(kElixirPrefix.size())), '.', true});
  } else if (printed == module) {
    out.push_back({":" + printed, '.'});
  }
  return out;
}

// The name of `function`/`arity` after `spelling`, in the form of that spelling.
std::string FunctionName(const Spelling& spelling, std::string_view function, int arity) {
  const std::string name =
      spelling.elixir_module ? std::string(function) : probes::PrintedAtom(function);
  return spelling.text + spelling.separator + name + "/" + std::to_string(arity);
}

std::chrono::milliseconds Left(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

// A BEAM's reply, which may be large (erlang:loaded/0 on a big release: thousands of atoms).
StatusOr<Term> DecodeRpcReply(const std::string& reply, const std::string& what) {
  erlang::DecodeLimits limits;
  limits.max_bytes = 16u << 20;
  limits.max_elements = 1u << 17;
  limits.max_terms = 1u << 19;
  const auto* data = reinterpret_cast<const uint8_t*>(reply.data());
  auto term = erlang::DecodeTermBody({data, reply.size()}, limits);
  if (!term.ok()) return term.status().WithContext(what);
  if (term->kind() == TermKind::kTuple && !term->elements().empty() &&
      term->elements()[0].is_atom("badrpc")) {
    return Unavailable(what, ": ", erlang::FormatTerm(*term));
  }
  return term;
}

std::string ArgumentsBody(std::vector<Term> arguments) {
  const std::vector<uint8_t> body = erlang::EncodeTermBody(Term::List(std::move(arguments)));
  return std::string(body.begin(), body.end());
}

}  // namespace

CompletionPlan PlanCompletion(std::string_view prefix, std::span<const std::string> loaded) {
  CompletionPlan plan;
  // Modules whose exports the prefix reaches into, by the length of the spelling it starts
  // with: the longest first (the most specific module).
  std::vector<std::pair<size_t, std::string>> reached;
  for (const std::string& module : loaded) {
    for (const Spelling& spelling : SpellingsOf(module)) {
      const std::string whole = spelling.text + spelling.separator;
      if (whole.size() > prefix.size()) {
        if (whole.starts_with(prefix)) plan.module_names.push_back(whole);
        continue;
      }
      if (!prefix.starts_with(whole)) continue;
      const std::string_view rest = prefix.substr(whole.size());
      // "Foo.Bar" goes on into a submodule of Foo, not into Foo's functions.
      if (spelling.elixir_module && !rest.empty() &&
          std::isupper(static_cast<unsigned char>(rest[0]))) {
        continue;
      }
      reached.emplace_back(whole.size(), module);
    }
  }
  std::sort(reached.begin(), reached.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (auto& [length, module] : reached) {
    if (plan.modules_to_list.size() == kMaxModulesListed) break;
    if (std::find(plan.modules_to_list.begin(), plan.modules_to_list.end(), module) ==
        plan.modules_to_list.end()) {
      plan.modules_to_list.push_back(std::move(module));
    }
  }
  return plan;
}

std::vector<std::string> FunctionNames(std::string_view prefix, std::string_view module,
                                       std::span<const ExportedFunction> exports) {
  std::vector<std::string> out;
  for (const Spelling& spelling : SpellingsOf(module)) {
    const std::string whole = spelling.text + spelling.separator;
    if (!prefix.starts_with(whole) && !whole.starts_with(prefix)) continue;
    for (const ExportedFunction& function : exports) {
      std::string name = FunctionName(spelling, function.name, function.arity);
      // Only names a capture accepts back (e.g. not Elixir's "MACRO-def/3" in Elixir form).
      if (name.starts_with(prefix) && probes::ParseMfaPattern(name).ok()) {
        out.push_back(std::move(name));
      }
    }
  }
  return out;
}

StatusOr<protocol::FunctionsResult> CompleteOnBeam(const std::string& node,
                                                   const std::string& cookie,
                                                   std::string_view prefix,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   const protocol::ProtocolLimits& limits) {
  ASSIGN_OR_RETURN(auto client, erlang::NodeClient::Connect(node, cookie, Left(deadline)));
  ASSIGN_OR_RETURN(const std::string loaded_reply,
                   client->Rpc("erlang", "loaded", ArgumentsBody({}), Left(deadline)));
  ASSIGN_OR_RETURN(const Term loaded_term, DecodeRpcReply(loaded_reply, "erlang:loaded()"));
  if (loaded_term.kind() != TermKind::kList) {
    return Internal(node, ": erlang:loaded() answered ", erlang::FormatTerm(loaded_term));
  }
  std::vector<std::string> loaded;
  loaded.reserve(loaded_term.elements().size());
  for (const Term& module : loaded_term.elements()) {
    if (module.kind() == TermKind::kAtom) loaded.emplace_back(module.text());
  }
  const CompletionPlan plan = PlanCompletion(prefix, loaded);
  protocol::FunctionsResult result;
  result.functions = plan.module_names;
  for (const std::string& module : plan.modules_to_list) {
    // The module's atom came from the node itself: nothing of the request becomes an atom there.
    ASSIGN_OR_RETURN(const std::string reply,
                     client->Rpc("erlang", "get_module_info",
                                 ArgumentsBody({Term::Atom(module), Term::Atom("exports")}),
                                 Left(deadline)));
    auto exports_term = DecodeRpcReply(reply, "erlang:get_module_info(" + module + ", exports)");
    if (!exports_term.ok() || exports_term->kind() != TermKind::kList) continue;  // purged since
    std::vector<ExportedFunction> exports;
    for (const Term& e : exports_term->elements()) {
      const auto fa = e.elements();
      if (e.kind() != TermKind::kTuple || fa.size() != 2 || fa[0].kind() != TermKind::kAtom) {
        continue;
      }
      const auto arity = fa[1].to_int64();
      if (arity && *arity >= 0 && *arity <= 255) {
        exports.push_back({std::string(fa[0].text()), static_cast<int>(*arity)});
      }
    }
    for (std::string& name : FunctionNames(prefix, module, exports)) {
      result.functions.push_back(std::move(name));
    }
  }
  // Names a peer could not pass on are not answered either.
  std::erase_if(result.functions,
                [&](const std::string& name) { return name.size() > limits.max_pattern_length; });
  return protocol::MergeFunctions({std::move(result)}, limits);
}

}  // namespace orion::daemon
