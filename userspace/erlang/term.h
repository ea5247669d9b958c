// Erlang terms in the external term format, decoded with strict bounds: the daemon's codec for
// everything it receives from the network and everything it sends.
//
//   ASSIGN_OR_RETURN(Term message, DecodeTerm(payload, DecodeLimits{}));  // payload starts 131
//   if (message.kind() == TermKind::kTuple && message.elements()[0].is_atom("ping")) ...
//   std::vector<uint8_t> bytes = EncodeTerm(Term::Tuple({Term::Atom("ok"), Term::Atom("pong")}));
//
// Why not erl_interface's decoder: ei_decode_* take no buffer length; they trust the lengths
// and arities inside the term, so a truncated or hostile message makes them read past the end of
// the buffer, and they put no bound on nesting or on how much a message makes the reader
// allocate.  The daemon is root and on the network (docs/protocol.md), so every received byte
// goes through DecodeTerm, which checks each length against the bytes left, bounds nesting,
// container sizes, term counts, binary and atom sizes (DecodeLimits) before it allocates or
// recurses, and says what is wrong and at which byte offset ("byte 17: nesting deeper than 32").
//
// A Term is an immutable value; copies share their contents.  A decoded term remembers the bytes
// it was decoded from (encoded()), so a sub-term can be echoed back byte for byte: a gen_server
// call's Tag is kept that way as a Raw term (protocol.h), which EncodeTerm splices in verbatim.
//
// Supported: integers from -2^63 to 2^64 - 1 (so that u64 counters round-trip), floats, atoms
// (UTF-8; latin-1 ATOM_EXT/SMALL_ATOM_EXT are decoded too), binaries, strings (STRING_EXT), proper
// and improper lists, tuples, maps, pids, references, ports (decoded only).  Rejected with an
// error: funs, external funs, compressed terms, bitstrings, atom cache references, old float,
// reference and LOCAL_EXT formats, integers out of that range, non-finite floats, invalid UTF-8
// atoms and maps with duplicate keys (the last three as binary_to_term rejects them).
//
// EncodeTerm writes what erlang:term_to_binary(T, [{minor_version, 2}]) writes (OTP 25), byte for
// byte, with map entries in the order given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace orion::erlang {

// The order is that of Term's internal variant.
enum class TermKind : uint8_t {
  kInteger,
  kFloat,
  kAtom,
  kBinary,
  kString,  // an Erlang string (a list of bytes) held compactly; [] is a kList
  kList,    // [] too
  kTuple,
  kMap,
  kPid,
  kReference,
  kPort,
  kRaw,  // already-encoded bytes, spliced in by EncodeTerm
};

// The fields of ei's erlang_pid, erlang_ref and erlang_port (node names are UTF-8 atoms).
struct ErlangPid {
  std::string node;
  uint32_t id = 0;
  uint32_t serial = 0;
  uint32_t creation = 0;
  bool operator==(const ErlangPid&) const = default;
};
struct ErlangRef {
  std::string node;
  uint32_t creation = 0;
  std::vector<uint32_t> ids;  // 1 to 5 words
  bool operator==(const ErlangRef&) const = default;
};
struct ErlangPort {
  std::string node;
  uint64_t id = 0;
  uint32_t creation = 0;
  bool operator==(const ErlangPort&) const = default;
};

class Term {
 public:
  // The empty list [].
  Term();

  static Term Integer(int64_t value);
  static Term Unsigned(uint64_t value);
  // Must be finite: Erlang has no NaN or infinities (DecodeTerm rejects them).
  static Term Float(double value);
  // A UTF-8 name of at most 255 characters (Erlang's limit).
  static Term Atom(std::string_view name);
  static Term Binary(std::string_view bytes);
  static Term Binary(std::span<const uint8_t> bytes);
  // The Erlang string of these bytes (a list of integers 0..255); "" is [].
  static Term String(std::string_view bytes);
  static Term List(std::vector<Term> elements);
  // [E1, ..., En | Tail].  A list tail is flattened into the elements, so the result is proper
  // when `tail` is a proper list.
  static Term ImproperList(std::vector<Term> elements, Term tail);
  static Term Tuple(std::vector<Term> elements);
  // Keys must be distinct; they are encoded in this order.
  static Term Map(std::vector<std::pair<Term, Term>> entries);
  static Term Pid(ErlangPid pid);
  static Term Reference(ErlangRef ref);
  // A term already encoded (external format without the 131 version byte); not checked.
  static Term Raw(std::vector<uint8_t> encoded);
  // This term as a Raw term: the bytes it was decoded from, or its encoding if it was built.
  Term AsRaw() const;

  TermKind kind() const;
  bool is_atom(std::string_view name) const;
  bool is_nil() const;  // []

  // Integers: nullopt when the value does not fit (or the term is not an integer).
  std::optional<int64_t> to_int64() const;
  std::optional<uint64_t> to_uint64() const;
  std::optional<double> to_double() const;  // floats only
  // Atom name (UTF-8), binary or string bytes; empty for other kinds.
  std::string_view text() const;
  // Binary, string or raw bytes; empty for other kinds.
  std::span<const uint8_t> bytes() const;
  // List elements (before an improper tail) or tuple elements; empty for other kinds.
  std::span<const Term> elements() const;
  // The tail of an improper list; nullptr for proper lists and other kinds.
  const Term* tail() const;
  std::span<const std::pair<Term, Term>> map_entries() const;
  // The value under the atom key `name` in a map; nullptr if absent or not a map.
  const Term* map_find(std::string_view name) const;
  const ErlangPid* pid() const;  // nullptr unless a pid
  const ErlangRef* reference() const;
  const ErlangPort* port() const;

  // The bytes this term was decoded from (without the version byte); empty for built terms.
  std::span<const uint8_t> encoded() const;

  // Exact equality (Erlang's =:=): a kString equals the list of its bytes, map entries compare
  // in any order.  Raw terms compare by their bytes.  encoded() is not compared.
  bool operator==(const Term& other) const;

 private:
  struct Node;
  friend class TermDecoder;
  explicit Term(std::shared_ptr<const Node> node) : node_(std::move(node)) {}
  // The value if it is a T, else nullptr (term.cc).
  template <typename T>
  const T* Get() const;

  std::shared_ptr<const Node> node_;
};

struct DecodeLimits {
  uint32_t max_bytes = 1 << 20;         // the whole input, version byte included
  uint32_t max_depth = 32;              // lists, tuples and maps nested in one another
  uint32_t max_elements = 4096;         // elements of one list or tuple, entries of one map
  uint32_t max_terms = 65536;           // terms in the whole input
  uint32_t max_binary_bytes = 1 << 20;  // bytes of one binary or string
  uint32_t max_atom_length = 255;       // characters of one atom (Erlang's own limit)
};

// Decodes a whole input that starts with the version byte 131 (what erlang:term_to_binary and
// the distribution deliver).  Errors are InvalidArgument, "byte N: what".
StatusOr<Term> DecodeTerm(std::span<const uint8_t> bytes, const DecodeLimits& limits);
// The same for an input without the version byte (ei_rpc's argument and result buffers).
StatusOr<Term> DecodeTermBody(std::span<const uint8_t> bytes, const DecodeLimits& limits);

// term_to_binary(T, [{minor_version, 2}]): with the version byte 131.
std::vector<uint8_t> EncodeTerm(const Term& term);
// The same without the version byte.
std::vector<uint8_t> EncodeTermBody(const Term& term);

// The term in Erlang syntax, for logs: "{capture,#{duration_ms => 5000,...}}".  Output longer
// than max_length characters is cut and ends with "...".
std::string FormatTerm(const Term& term, size_t max_length = 512);

}  // namespace orion::erlang
