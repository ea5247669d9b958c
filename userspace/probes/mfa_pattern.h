// The functions a capture targets: "mod:fun/arity", "mod:fun/_" (or "mod:fun"), "mod:_/_"
// (or "mod"), and the Elixir forms "Mod.fun/arity", "Mod.fun", "Mod", ":erlang_mod.fun/1".
//
// A pattern keeps its atoms as the BEAM prints them in probe arguments (erts' %T: quoted
// unless the atom starts with a lowercase latin-1 letter and has only alphanumerics and
// '_'), so that its hashes equal the hashes BPF computes from the probe's MFA string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace orion::probes {

struct MfaPattern {
  std::string module;                   // printed atom: "lists", "'Elixir.Foo'"
  std::string module_name;              // the atom's name: "lists", "Elixir.Foo"
  std::optional<std::string> function;  // printed atom; empty = any function
  std::string function_name;            // the function atom's name, when `function` is set
  std::optional<int> arity;             // empty = any arity

  // "lists:sort/1", "lists:sort/_", "lists:_/_"
  std::string ToString() const;
  // True if `mfa`, as printed by the BEAM ("lists:sort/1"), is one this pattern targets.
  bool Matches(std::string_view mfa) const;
};

// Parses a user's pattern; an InvalidArgument says what is wrong and where.
StatusOr<MfaPattern> ParseMfaPattern(std::string_view text);

// An atom as the BEAM's %T prints it: "lists", "'Elixir.Foo'", "'a b'", "'it''s'"->"'it\'s'".
std::string PrintedAtom(std::string_view name);

// FNV-1a 64 of a string: the hash BPF computes (bpf/capture.h).
uint64_t Fnv1a(std::string_view bytes);

// The parts of an MFA string as the BEAM prints it: the module up to the first ':' outside
// quotes, the function up to the last '/' outside quotes, the arity after it. Nullopt if the
// string is not of that shape.
struct PrintedMfa {
  std::string_view module, function, arity;
};
std::optional<PrintedMfa> SplitPrintedMfa(std::string_view mfa);

// The name of an atom as the BEAM prints it: "'Elixir.Foo'" -> "Elixir.Foo", "lists" -> "lists".
std::string AtomName(std::string_view printed);

// How a function is shown to people: Elixir's form for a function of an Elixir module
// ("'Elixir.Bar.Repo':get/1" -> "Bar.Repo.get/1"), the BEAM's printed MFA otherwise.
// ParseMfaPattern reads both forms back to the same function.
std::string DisplayMfa(std::string_view mfa);

}  // namespace orion::probes
