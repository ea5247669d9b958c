#include "userspace/probes/mfa_pattern.h"

#include <algorithm>
#include <cctype>

#include "bpf/capture.h"

namespace orion::probes {
namespace {

bool IsLatin1Lower(unsigned char c) { return (c >= 'a' && c <= 'z'); }
bool IsAtomChar(unsigned char c) { return std::isalnum(c) || c == '_' || c == '@'; }

// Reads one atom at `pos`: a quoted atom ('...' with \-escapes) or an unquoted one
// (lowercase letter, then letters, digits, '_' and '@'). Returns its name (unescaped).
StatusOr<std::string> ReadAtom(std::string_view text, size_t& pos, std::string_view what) {
  if (pos >= text.size()) {
    return InvalidArgument("bad pattern '", text, "': missing ", what, " at column ", pos + 1);
  }
  std::string name;
  if (text[pos] == '\'') {
    size_t i = pos + 1;
    while (i < text.size() && text[i] != '\'') {
      if (text[i] == '\\' && i + 1 < text.size()) ++i;
      name += text[i++];
    }
    if (i >= text.size()) {
      return InvalidArgument("bad pattern '", text, "': unterminated quoted ", what,
                             " starting at column ", pos + 1);
    }
    pos = i + 1;
    return name;
  }
  if (!IsLatin1Lower(static_cast<unsigned char>(text[pos]))) {
    return InvalidArgument("bad pattern '", text, "': the ", what, " at column ", pos + 1,
                           " must start with a lowercase letter or be quoted ('...')");
  }
  size_t start = pos;
  while (pos < text.size() && IsAtomChar(static_cast<unsigned char>(text[pos]))) ++pos;
  return std::string(text.substr(start, pos - start));
}

StatusOr<std::optional<int>> ReadArity(std::string_view text, size_t pos) {
  std::string_view rest = text.substr(pos);
  if (rest == "_") return std::optional<int>();
  if (rest.empty() || rest.size() > 3 ||
      !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("bad pattern '", text, "': the arity at column ", pos + 1,
                           " must be a number 0..255 or _");
  }
  int arity = std::stoi(std::string(rest));
  if (arity > 255) {
    return InvalidArgument("bad pattern '", text, "': arity ", arity, " is over 255");
  }
  return std::optional<int>(arity);
}

// "mod:fun/arity" and its shorter forms, atoms in Erlang syntax.
StatusOr<MfaPattern> ParseErlang(std::string_view text) {
  MfaPattern p;
  size_t pos = 0;
  ASSIGN_OR_RETURN(std::string module, ReadAtom(text, pos, "module"));
  p.module = PrintedAtom(module);
  p.module_name = module;
  if (pos == text.size()) return p;  // "mod"
  if (text[pos] != ':') {
    return InvalidArgument("bad pattern '", text, "': expected ':' after the module at column ",
                           pos + 1);
  }
  ++pos;
  if (text.substr(pos) == "_" || text.substr(pos) == "_/_") return p;  // "mod:_", "mod:_/_"
  ASSIGN_OR_RETURN(std::string function, ReadAtom(text, pos, "function"));
  p.function = PrintedAtom(function);
  p.function_name = function;
  if (pos == text.size()) return p;  // "mod:fun"
  if (text[pos] != '/') {
    return InvalidArgument("bad pattern '", text, "': expected '/' after the function at column ",
                           pos + 1);
  }
  ASSIGN_OR_RETURN(p.arity, ReadArity(text, pos + 1));
  return p;
}

// "Mod.Sub.fun/arity", "Mod.fun", "Mod.Sub": an Elixir module is the atom 'Elixir.Mod.Sub'.
StatusOr<MfaPattern> ParseElixir(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view path = text.substr(0, slash);
  MfaPattern p;
  size_t last_dot = path.rfind('.');
  std::string_view module = path, function;
  if (last_dot != std::string_view::npos && last_dot + 1 < path.size() &&
      !std::isupper(static_cast<unsigned char>(path[last_dot + 1]))) {
    module = path.substr(0, last_dot);
    function = path.substr(last_dot + 1);
  }
  for (size_t i = 0; i < module.size(); ++i) {
    unsigned char c = module[i];
    bool segment_start = i == 0 || module[i - 1] == '.';
    if (segment_start ? !std::isupper(c) : !(std::isalnum(c) || c == '_' || c == '.')) {
      return InvalidArgument("bad pattern '", text, "': an Elixir module (", module,
                             ") is dot-separated names that start with an uppercase letter; "
                             "column ", i + 1);
    }
  }
  p.module_name = "Elixir." + std::string(module);
  p.module = PrintedAtom(p.module_name);
  if (!function.empty()) {
    for (unsigned char c : function) {
      if (!(std::isalnum(c) || c == '_' || c == '?' || c == '!')) {
        return InvalidArgument("bad pattern '", text, "': '", function,
                               "' is not an Elixir function name");
      }
    }
    p.function = PrintedAtom(function);
    p.function_name = std::string(function);
  }
  if (slash != std::string_view::npos) {
    if (function.empty()) {
      return InvalidArgument("bad pattern '", text, "': an arity needs a function before it");
    }
    ASSIGN_OR_RETURN(p.arity, ReadArity(text, slash + 1));
  }
  return p;
}

// ":erlang_mod.fun/1": Elixir's way of naming an Erlang module.
StatusOr<MfaPattern> ParseElixirErlangModule(std::string_view text) {
  std::string_view rest = text.substr(1);
  size_t slash = rest.find('/');
  size_t dot = rest.substr(0, slash).rfind('.');
  std::string erlang(rest);
  if (dot != std::string_view::npos) erlang[dot] = ':';
  auto p = ParseErlang(erlang);
  if (!p.ok()) return InvalidArgument("bad pattern '", text, "': ", p.status().message());
  return p;
}

}  // namespace

std::string PrintedAtom(std::string_view name) {
  bool quote = name.empty() || !IsLatin1Lower(static_cast<unsigned char>(name[0]));
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '_')) quote = true;
  }
  if (!quote) return std::string(name);
  std::string out = "'";
  for (char c : name) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string MfaPattern::ToString() const {
  return module + ":" + (function ? *function : "_") + "/" +
         (arity ? std::to_string(*arity) : "_");
}

std::optional<PrintedMfa> SplitPrintedMfa(std::string_view mfa) {
  bool quoted = false, escaped = false;
  size_t colon = std::string_view::npos, slash = std::string_view::npos;
  for (size_t i = 0; i < mfa.size(); ++i) {
    char c = mfa[i];
    if (escaped) {
      escaped = false;
    } else if (quoted && c == '\\') {
      escaped = true;
    } else if (c == '\'') {
      quoted = !quoted;
    } else if (!quoted && c == ':' && colon == std::string_view::npos) {
      colon = i;
    } else if (!quoted && c == '/' && colon != std::string_view::npos) {
      slash = i;
    }
  }
  if (colon == std::string_view::npos || slash == std::string_view::npos) return std::nullopt;
  return PrintedMfa{mfa.substr(0, colon), mfa.substr(colon + 1, slash - colon - 1),
                    mfa.substr(slash + 1)};
}

bool MfaPattern::Matches(std::string_view mfa) const {
  auto parts = SplitPrintedMfa(mfa);
  if (!parts || parts->module != module) return false;
  if (function && parts->function != *function) return false;
  return !arity || parts->arity == std::to_string(*arity);
}

StatusOr<MfaPattern> ParseMfaPattern(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty pattern: give mod:fun/arity, mod:fun or mod");
  if (text.size() > CAPTURE_MFA_LEN - 1) {
    return InvalidArgument("pattern '", text, "' is longer than ", CAPTURE_MFA_LEN - 1,
                           " bytes, the longest MFA the probes read");
  }
  if (text[0] == ':') return ParseElixirErlangModule(text);
  if (std::isupper(static_cast<unsigned char>(text[0]))) return ParseElixir(text);
  return ParseErlang(text);
}

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = ORION_FNV_OFFSET;
  for (unsigned char c : bytes) h = orion_fnv1a_step(h, c);
  return h;
}

std::string AtomName(std::string_view printed) {
  if (printed.size() < 2 || printed.front() != '\'' || printed.back() != '\'') {
    return std::string(printed);
  }
  std::string name;
  for (size_t i = 1; i + 1 < printed.size(); ++i) {
    if (printed[i] == '\\' && i + 2 < printed.size()) ++i;
    name += printed[i];
  }
  return name;
}

std::string DisplayMfa(std::string_view mfa) {
  constexpr std::string_view kElixir = "Elixir.";
  const auto parts = SplitPrintedMfa(mfa);
  if (!parts) return std::string(mfa);
  const std::string module = AtomName(parts->module);
  if (module.size() <= kElixir.size() || module.compare(0, kElixir.size(), kElixir) != 0) {
    return std::string(mfa);
  }
  return module.substr(kElixir.size()) + "." + AtomName(parts->function) + "/" +
         std::string(parts->arity);
}

}  // namespace orion::probes
