#include "userspace/erlang/term.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

namespace orion::erlang {
namespace {

// Tags of the external term format (erts/emulator/beam/external.h).
enum Tag : uint8_t {
  kVersion = 131,
  kNewFloatExt = 70,
  kBitBinaryExt = 77,
  kCompressedExt = 80,
  kAtomCacheRef = 82,
  kNewPidExt = 88,
  kNewPortExt = 89,
  kNewerReferenceExt = 90,
  kSmallIntegerExt = 97,
  kIntegerExt = 98,
  kFloatExt = 99,
  kAtomExt = 100,
  kReferenceExt = 101,
  kPortExt = 102,
  kPidExt = 103,
  kSmallTupleExt = 104,
  kLargeTupleExt = 105,
  kNilExt = 106,
  kStringExt = 107,
  kListExt = 108,
  kBinaryExt = 109,
  kSmallBigExt = 110,
  kLargeBigExt = 111,
  kNewFunExt = 112,
  kExportExt = 113,
  kNewReferenceExt = 114,
  kSmallAtomExt = 115,
  kMapExt = 116,
  kFunExt = 117,
  kAtomUtf8Ext = 118,
  kSmallAtomUtf8Ext = 119,
  kV4PortExt = 120,
  kLocalExt = 121,
};

constexpr uint32_t kMaxRefWords = 5;  // ERTS_MAX_REF_NUMBERS

// Values from -2^63 to 2^64 - 1.
struct IntegerValue {
  bool negative = false;  // never with magnitude 0
  uint64_t magnitude = 0;
};
struct AtomValue {
  std::string name;
};
struct BinaryValue {
  std::string bytes;
};
struct StringValue {
  std::string bytes;
};
struct ListValue {
  std::vector<Term> elements;
  std::optional<Term> tail;  // set only for improper lists, never a list
};
struct TupleValue {
  std::vector<Term> elements;
};
struct MapValue {
  std::vector<std::pair<Term, Term>> entries;
};
struct RawValue {
  std::string bytes;
};

// Alternatives in the order of TermKind.
using Value = std::variant<IntegerValue, double, AtomValue, BinaryValue, StringValue, ListValue,
                           TupleValue, MapValue, ErlangPid, ErlangRef, ErlangPort, RawValue>;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Number of characters of valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF),
// or nullopt.
std::optional<size_t> Utf8Length(std::string_view s) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++chars) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return std::nullopt;
    }
    if (s.size() - i - 1 < n) return std::nullopt;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    i += n + 1;
  }
  return chars;
}

std::string Latin1ToUtf8(std::span<const uint8_t> latin1) {
  std::string out;
  out.reserve(latin1.size());
  for (uint8_t c : latin1) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::string_view UnsupportedTag(uint8_t tag) {
  switch (tag) {
    case kNewFunExt:
    case kFunExt:
    case kExportExt:
      return "funs are not accepted (the daemon runs no code it is sent)";
    case kCompressedExt:
      return "compressed terms are not accepted";
    case kBitBinaryExt:
      return "bitstrings are not accepted";
    case kAtomCacheRef:
      return "atom cache references are not accepted";
    case kFloatExt:
      return "old-format floats (FLOAT_EXT) are not accepted";
    case kReferenceExt:
      return "old-format references (REFERENCE_EXT) are not accepted";
    case kLocalExt:
      return "node-local terms (LOCAL_EXT) are not accepted";
    case kVersion:
      return "a version byte inside a term";
    default:
      return "unknown term tag";
  }
}

}  // namespace

struct Term::Node {
  Value value;
  // The input this term was decoded from, shared by all its terms; null for built terms.
  std::shared_ptr<const std::vector<uint8_t>> source;
  uint32_t offset = 0;
  uint32_t size = 0;
};

template <typename T>
const T* Term::Get() const {
  return std::get_if<T>(&node_->value);
}

// ---------------------------------------------------------------------------------------------
// Building and reading terms.

Term::Term() {
  static const std::shared_ptr<const Node> nil =
      std::make_shared<const Node>(Node{.value = ListValue{}});
  node_ = nil;
}

Term Term::Integer(int64_t value) {
  const bool negative = value < 0;
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  return Term(std::make_shared<const Node>(Node{.value = IntegerValue{negative, magnitude}}));
}

Term Term::Unsigned(uint64_t value) {
  return Term(std::make_shared<const Node>(Node{.value = IntegerValue{false, value}}));
}

Term Term::Float(double value) {
  return Term(std::make_shared<const Node>(Node{.value = value}));
}

Term Term::Atom(std::string_view name) {
  return Term(std::make_shared<const Node>(Node{.value = AtomValue{std::string(name)}}));
}

Term Term::Binary(std::string_view bytes) {
  return Term(std::make_shared<const Node>(Node{.value = BinaryValue{std::string(bytes)}}));
}

Term Term::Binary(std::span<const uint8_t> bytes) {
  return Binary(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Term Term::String(std::string_view bytes) {
  if (bytes.empty()) return Term();
  return Term(std::make_shared<const Node>(Node{.value = StringValue{std::string(bytes)}}));
}

Term Term::List(std::vector<Term> elements) {
  if (elements.empty()) return Term();
  return Term(std::make_shared<const Node>(Node{.value = ListValue{std::move(elements), {}}}));
}

Term Term::ImproperList(std::vector<Term> elements, Term tail) {
  std::optional<Term> rest;
  if (tail.kind() == TermKind::kString) {
    for (uint8_t c : tail.bytes()) elements.push_back(Unsigned(c));
  } else if (tail.kind() == TermKind::kList) {
    const auto more = tail.elements();
    elements.insert(elements.end(), more.begin(), more.end());
    if (tail.tail()) rest = *tail.tail();
  } else {
    rest = std::move(tail);
  }
  if (elements.empty()) return rest ? *rest : Term();
  return Term(
      std::make_shared<const Node>(Node{.value = ListValue{std::move(elements), std::move(rest)}}));
}

Term Term::Tuple(std::vector<Term> elements) {
  return Term(std::make_shared<const Node>(Node{.value = TupleValue{std::move(elements)}}));
}

Term Term::Map(std::vector<std::pair<Term, Term>> entries) {
  return Term(std::make_shared<const Node>(Node{.value = MapValue{std::move(entries)}}));
}

Term Term::Pid(ErlangPid pid) {
  return Term(std::make_shared<const Node>(Node{.value = std::move(pid)}));
}

Term Term::Reference(ErlangRef ref) {
  return Term(std::make_shared<const Node>(Node{.value = std::move(ref)}));
}

Term Term::Raw(std::vector<uint8_t> encoded) {
  return Term(std::make_shared<const Node>(
      Node{.value = RawValue{std::string(encoded.begin(), encoded.end())}}));
}

Term Term::AsRaw() const {
  if (kind() == TermKind::kRaw) return *this;
  const auto source = encoded();
  if (!source.empty()) return Raw(std::vector<uint8_t>(source.begin(), source.end()));
  return Raw(EncodeTermBody(*this));
}

TermKind Term::kind() const {
  return static_cast<TermKind>(node_->value.index());
}

bool Term::is_atom(std::string_view name) const {
  const auto* atom = Get<AtomValue>();
  return atom && atom->name == name;
}

bool Term::is_nil() const {
  const auto* list = Get<ListValue>();
  return list && list->elements.empty();
}

std::optional<int64_t> Term::to_int64() const {
  const auto* integer = Get<IntegerValue>();
  if (!integer) return std::nullopt;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!integer->negative) {
    if (integer->magnitude > kMax) return std::nullopt;
    return static_cast<int64_t>(integer->magnitude);
  }
  if (integer->magnitude > kMax + 1) return std::nullopt;
  return static_cast<int64_t>(uint64_t{0} - integer->magnitude);
}

std::optional<uint64_t> Term::to_uint64() const {
  const auto* integer = Get<IntegerValue>();
  if (!integer || integer->negative) return std::nullopt;
  return integer->magnitude;
}

std::optional<double> Term::to_double() const {
  const auto* value = Get<double>();
  if (!value) return std::nullopt;
  return *value;
}

std::string_view Term::text() const {
  if (const auto* atom = Get<AtomValue>()) return atom->name;
  if (const auto* binary = Get<BinaryValue>()) return binary->bytes;
  if (const auto* string = Get<StringValue>()) return string->bytes;
  return {};
}

std::span<const uint8_t> Term::bytes() const {
  if (const auto* binary = Get<BinaryValue>()) return AsBytes(binary->bytes);
  if (const auto* string = Get<StringValue>()) return AsBytes(string->bytes);
  if (const auto* raw = Get<RawValue>()) return AsBytes(raw->bytes);
  return {};
}

std::span<const Term> Term::elements() const {
  if (const auto* list = Get<ListValue>()) return list->elements;
  if (const auto* tuple = Get<TupleValue>()) return tuple->elements;
  return {};
}

const Term* Term::tail() const {
  const auto* list = Get<ListValue>();
  return list && list->tail ? &*list->tail : nullptr;
}

std::span<const std::pair<Term, Term>> Term::map_entries() const {
  if (const auto* map = Get<MapValue>()) return map->entries;
  return {};
}

const Term* Term::map_find(std::string_view name) const {
  for (const auto& [key, value] : map_entries()) {
    if (key.is_atom(name)) return &value;
  }
  return nullptr;
}

const ErlangPid* Term::pid() const {
  return Get<ErlangPid>();
}
const ErlangRef* Term::reference() const {
  return Get<ErlangRef>();
}
const ErlangPort* Term::port() const {
  return Get<ErlangPort>();
}

std::span<const uint8_t> Term::encoded() const {
  if (!node_->source) return {};
  return std::span<const uint8_t>(*node_->source).subspan(node_->offset, node_->size);
}

namespace {

// A kString against a kList: the list must be proper and hold exactly these bytes.
bool StringEqualsList(const Term& string, const Term& list) {
  const auto bytes = string.bytes();
  const auto elements = list.elements();
  if (list.tail() || bytes.size() != elements.size()) return false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (elements[i].to_uint64() != uint64_t{bytes[i]}) return false;
  }
  return true;
}

bool SameEntries(std::span<const std::pair<Term, Term>> a,
                 std::span<const std::pair<Term, Term>> b) {
  if (a.size() != b.size()) return false;
  if (std::equal(a.begin(), a.end(), b.begin())) return true;  // same order: the usual case
  return std::all_of(a.begin(), a.end(), [&b](const auto& entry) {
    return std::find(b.begin(), b.end(), entry) != b.end();
  });
}

}  // namespace

bool Term::operator==(const Term& other) const {
  if (node_ == other.node_) return true;
  const TermKind a = kind();
  const TermKind b = other.kind();
  if (a == TermKind::kString && b == TermKind::kList) return StringEqualsList(*this, other);
  if (a == TermKind::kList && b == TermKind::kString) return StringEqualsList(other, *this);
  if (a != b) return false;
  switch (a) {
    case TermKind::kInteger: {
      const auto& x = std::get<IntegerValue>(node_->value);
      const auto& y = std::get<IntegerValue>(other.node_->value);
      return x.negative == y.negative && x.magnitude == y.magnitude;
    }
    case TermKind::kFloat:
      return *to_double() == *other.to_double();
    case TermKind::kAtom:
    case TermKind::kBinary:
    case TermKind::kString:
      return text() == other.text();
    case TermKind::kRaw:
      return std::ranges::equal(bytes(), other.bytes());
    case TermKind::kList: {
      const Term* ta = tail();
      const Term* tb = other.tail();
      if ((ta == nullptr) != (tb == nullptr) || (ta && !(*ta == *tb))) return false;
      return std::ranges::equal(elements(), other.elements());
    }
    case TermKind::kTuple:
      return std::ranges::equal(elements(), other.elements());
    case TermKind::kMap:
      return SameEntries(map_entries(), other.map_entries());
    case TermKind::kPid:
      return *pid() == *other.pid();
    case TermKind::kReference:
      return *reference() == *other.reference();
    case TermKind::kPort:
      return *port() == *other.port();
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

namespace {

class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>& out) : out_(out) {}

  void Write(const Term& term) {
    switch (term.kind()) {
      case TermKind::kInteger:
        return WriteInteger(term);
      case TermKind::kFloat: {
        double value = *term.to_double();
        uint64_t bits;
        std::memcpy(&bits, &value, sizeof(bits));
        U8(kNewFloatExt);
        return U64(bits);
      }
      case TermKind::kAtom:
        return WriteAtom(term.text());
      case TermKind::kBinary:
        U8(kBinaryExt);
        U32(static_cast<uint32_t>(term.bytes().size()));
        return Append(term.bytes());
      case TermKind::kString:
        return WriteString(term.bytes());
      case TermKind::kList:
        return WriteList(term);
      case TermKind::kTuple: {
        const auto elements = term.elements();
        if (elements.size() <= 0xFF) {
          U8(kSmallTupleExt);
          U8(static_cast<uint8_t>(elements.size()));
        } else {
          U8(kLargeTupleExt);
          U32(static_cast<uint32_t>(elements.size()));
        }
        for (const Term& element : elements) Write(element);
        return;
      }
      case TermKind::kMap:
        U8(kMapExt);
        U32(static_cast<uint32_t>(term.map_entries().size()));
        for (const auto& [key, value] : term.map_entries()) {
          Write(key);
          Write(value);
        }
        return;
      case TermKind::kPid: {
        const ErlangPid& pid = *term.pid();
        U8(kNewPidExt);
        WriteAtom(pid.node);
        U32(pid.id);
        U32(pid.serial);
        return U32(pid.creation);
      }
      case TermKind::kReference: {
        const ErlangRef& ref = *term.reference();
        U8(kNewerReferenceExt);
        U16(static_cast<uint16_t>(ref.ids.size()));
        WriteAtom(ref.node);
        U32(ref.creation);
        for (uint32_t id : ref.ids) U32(id);
        return;
      }
      case TermKind::kPort: {
        const ErlangPort& port = *term.port();
        const bool small = port.id <= std::numeric_limits<uint32_t>::max();
        U8(small ? kNewPortExt : kV4PortExt);
        WriteAtom(port.node);
        if (small) {
          U32(static_cast<uint32_t>(port.id));
        } else {
          U64(port.id);
        }
        return U32(port.creation);
      }
      case TermKind::kRaw:
        return Append(term.bytes());
    }
  }

 private:
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    U32(static_cast<uint32_t>(v));
  }
  void Append(std::span<const uint8_t> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }

  // As erts does: SMALL_INTEGER_EXT for 0..255, INTEGER_EXT for 32-bit, else SMALL_BIG_EXT with
  // the fewest bytes.
  void WriteInteger(const Term& term) {
    const auto as_unsigned = term.to_uint64();
    const bool negative = !as_unsigned;
    const uint64_t magnitude =
        negative ? uint64_t{0} - static_cast<uint64_t>(*term.to_int64()) : *as_unsigned;
    if (!negative && magnitude <= 0xFF) {
      U8(kSmallIntegerExt);
      return U8(static_cast<uint8_t>(magnitude));
    }
    if (magnitude <= (negative ? uint64_t{1} << 31 : (uint64_t{1} << 31) - 1)) {
      U8(kIntegerExt);
      return U32(static_cast<uint32_t>(negative ? uint64_t{0} - magnitude : magnitude));
    }
    uint8_t n = 0;
    for (uint64_t m = magnitude; m != 0; m >>= 8) ++n;
    U8(kSmallBigExt);
    U8(n);
    U8(negative ? 1 : 0);
    for (uint8_t i = 0; i < n; ++i) U8(static_cast<uint8_t>(magnitude >> (8 * i)));
  }

  void WriteAtom(std::string_view name) {
    if (name.size() <= 0xFF) {
      U8(kSmallAtomUtf8Ext);
      U8(static_cast<uint8_t>(name.size()));
    } else {
      U8(kAtomUtf8Ext);
      U16(static_cast<uint16_t>(name.size()));
    }
    Append({reinterpret_cast<const uint8_t*>(name.data()), name.size()});
  }

  void WriteString(std::span<const uint8_t> bytes) {
    if (bytes.size() <= 0xFFFF) {
      U8(kStringExt);
      U16(static_cast<uint16_t>(bytes.size()));
      return Append(bytes);
    }
    U8(kListExt);
    U32(static_cast<uint32_t>(bytes.size()));
    for (uint8_t c : bytes) {
      U8(kSmallIntegerExt);
      U8(c);
    }
    U8(kNilExt);
  }

  // A proper list of 1..65535 integers 0..255 is a STRING_EXT, as erts writes it.
  void WriteList(const Term& term) {
    const auto elements = term.elements();
    if (elements.empty()) return U8(kNilExt);
    const bool bytes_only = !term.tail() && elements.size() <= 0xFFFF &&
                            std::all_of(elements.begin(), elements.end(), [](const Term& e) {
                              return e.to_uint64().value_or(256) <= 0xFF;
                            });
    if (bytes_only) {
      U8(kStringExt);
      U16(static_cast<uint16_t>(elements.size()));
      for (const Term& e : elements) U8(static_cast<uint8_t>(*e.to_uint64()));
      return;
    }
    U8(kListExt);
    U32(static_cast<uint32_t>(elements.size()));
    for (const Term& element : elements) Write(element);
    if (term.tail()) {
      Write(*term.tail());
    } else {
      U8(kNilExt);
    }
  }

  std::vector<uint8_t>& out_;
};

}  // namespace

std::vector<uint8_t> EncodeTermBody(const Term& term) {
  std::vector<uint8_t> out;
  Encoder(out).Write(term);
  return out;
}

std::vector<uint8_t> EncodeTerm(const Term& term) {
  std::vector<uint8_t> out{kVersion};
  Encoder(out).Write(term);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

class TermDecoder {
 public:
  TermDecoder(std::span<const uint8_t> input, const DecodeLimits& limits)
      : in_(input), limits_(limits) {}

  StatusOr<Term> DecodeWhole(bool with_version) {
    if (in_.size() > limits_.max_bytes) {
      return Error(0, "input of ", in_.size(), " bytes (at most ", limits_.max_bytes, ")");
    }
    // The terms share one copy of the input, for encoded().
    source_ = std::make_shared<const std::vector<uint8_t>>(in_.begin(), in_.end());
    in_ = *source_;
    if (with_version) {
      RETURN_IF_ERROR(Need(1, "the version byte"));
      if (in_[0] != kVersion) {
        return Error(0, "expected the version byte 131, not ", int{in_[0]});
      }
      pos_ = 1;
    }
    ASSIGN_OR_RETURN(Term term, Decode(0));
    if (pos_ != in_.size()) {
      return Error(pos_, in_.size() - pos_, " byte(s) after the end of the term");
    }
    return term;
  }

 private:
  template <typename... Args>
  Status Error(size_t at, Args&&... args) const {
    return InvalidArgument("byte ", at, ": ", std::forward<Args>(args)...);
  }

  size_t Left() const { return in_.size() - pos_; }

  Status Need(size_t n, std::string_view what) const {
    if (Left() >= n) return OkStatus();
    return Error(pos_, "input ends inside ", what, " (", n, " byte(s) needed, ", Left(), " left)");
  }

  // Readers: call Need first.
  uint8_t U8() { return in_[pos_++]; }
  uint16_t U16() {
    const uint16_t hi = U8();
    return static_cast<uint16_t>(hi << 8 | U8());
  }
  uint32_t U32() {
    const uint32_t hi = U16();
    return hi << 16 | U16();
  }
  uint64_t U64() {
    const uint64_t hi = U32();
    return hi << 32 | U32();
  }
  std::string Bytes(size_t n) {
    std::string out(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return out;
  }

  Term Make(Value value, size_t start) const {
    return Term(std::make_shared<const Term::Node>(
        Term::Node{.value = std::move(value),
                   .source = source_,
                   .offset = static_cast<uint32_t>(start),
                   .size = static_cast<uint32_t>(pos_ - start)}));
  }

  Status CountTerm(size_t start) {
    if (++terms_ > limits_.max_terms)
      return Error(start, "more than ", limits_.max_terms, " terms");
    return OkStatus();
  }

  // A container at `start` of `count` elements, nested in `depth` others: checked before anything
  // is allocated or decoded.
  Status EnterContainer(size_t start, uint32_t depth, uint64_t count, std::string_view what) const {
    if (depth + 1 > limits_.max_depth) {
      return Error(start, "nesting deeper than ", limits_.max_depth);
    }
    if (count > limits_.max_elements) {
      return Error(start, what, " of ", count, " elements (at most ", limits_.max_elements, ")");
    }
    return OkStatus();
  }

  // The bytes left can hold `count` elements of `min_bytes` each.
  Status RoomFor(size_t start, uint64_t count, uint64_t min_bytes, std::string_view what) const {
    if (count * min_bytes <= Left()) return OkStatus();
    return Error(start, "input ends inside a ", what, " of ", count, " elements (",
                 count * min_bytes, " bytes needed at least, ", Left(), " left)");
  }

  StatusOr<Term> Decode(uint32_t depth) {
    const size_t start = pos_;
    RETURN_IF_ERROR(CountTerm(start));
    RETURN_IF_ERROR(Need(1, "a term"));
    const uint8_t tag = U8();
    ASSIGN_OR_RETURN(Value value, DecodeValue(tag, start, depth));
    return Make(std::move(value), start);
  }

  StatusOr<Value> DecodeValue(uint8_t tag, size_t start, uint32_t depth) {
    switch (tag) {
      case kSmallIntegerExt:
        RETURN_IF_ERROR(Need(1, "SMALL_INTEGER_EXT"));
        return Value(IntegerValue{false, U8()});
      case kIntegerExt: {
        RETURN_IF_ERROR(Need(4, "INTEGER_EXT"));
        const auto v = static_cast<int32_t>(U32());
        return Value(IntegerValue{v < 0, v < 0 ? uint64_t{0} - static_cast<uint64_t>(int64_t{v})
                                               : static_cast<uint64_t>(v)});
      }
      case kSmallBigExt:
        RETURN_IF_ERROR(Need(1, "SMALL_BIG_EXT"));
        return DecodeBig(start, U8());
      case kLargeBigExt:
        RETURN_IF_ERROR(Need(4, "LARGE_BIG_EXT"));
        return DecodeBig(start, U32());
      case kNewFloatExt: {
        RETURN_IF_ERROR(Need(8, "NEW_FLOAT_EXT"));
        const uint64_t bits = U64();
        double value;
        std::memcpy(&value, &bits, sizeof(value));
        if (!std::isfinite(value)) return Error(start, "not a finite float");
        return Value(value);
      }
      case kAtomExt:
      case kSmallAtomExt:
      case kAtomUtf8Ext:
      case kSmallAtomUtf8Ext: {
        ASSIGN_OR_RETURN(std::string name, DecodeAtomBody(tag, start));
        return Value(AtomValue{std::move(name)});
      }
      case kBinaryExt: {
        RETURN_IF_ERROR(Need(4, "BINARY_EXT"));
        const uint32_t size = U32();
        RETURN_IF_ERROR(CheckBinarySize(start, size, "binary"));
        RETURN_IF_ERROR(Need(size, "a binary"));
        return Value(BinaryValue{Bytes(size)});
      }
      case kStringExt: {
        RETURN_IF_ERROR(Need(2, "STRING_EXT"));
        const uint16_t size = U16();
        RETURN_IF_ERROR(CheckBinarySize(start, size, "string"));
        RETURN_IF_ERROR(Need(size, "a string"));
        if (size == 0) return Value(ListValue{});
        return Value(StringValue{Bytes(size)});
      }
      case kNilExt:
        return Value(ListValue{});
      case kListExt:
        return DecodeList(start, depth);
      case kSmallTupleExt:
        RETURN_IF_ERROR(Need(1, "SMALL_TUPLE_EXT"));
        return DecodeTuple(start, depth, U8());
      case kLargeTupleExt:
        RETURN_IF_ERROR(Need(4, "LARGE_TUPLE_EXT"));
        return DecodeTuple(start, depth, U32());
      case kMapExt:
        return DecodeMap(start, depth);
      case kNewPidExt:
      case kPidExt:
        return DecodePid(tag);
      case kNewerReferenceExt:
      case kNewReferenceExt:
        return DecodeReference(tag, start);
      case kNewPortExt:
      case kV4PortExt:
      case kPortExt:
        return DecodePort(tag);
      default:
        return Error(start, UnsupportedTag(tag), " (tag ", int{tag}, ")");
    }
  }

  Status CheckBinarySize(size_t start, uint64_t size, std::string_view what) const {
    if (size <= limits_.max_binary_bytes) return OkStatus();
    return Error(start, what, " of ", size, " bytes (at most ", limits_.max_binary_bytes, ")");
  }

  // Sign byte, then `n` digit bytes, least significant first.  Leading zero digits are allowed
  // (binary_to_term allows them); the value must be in [-2^63, 2^64 - 1].
  StatusOr<Value> DecodeBig(size_t start, uint64_t n) {
    RETURN_IF_ERROR(Need(1 + n, "a big integer"));
    const bool negative = U8() != 0;
    uint64_t magnitude = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const uint8_t digit = U8();
      if (i >= 8 && digit != 0) return Error(start, "integer wider than 64 bits");
      if (i < 8) magnitude |= uint64_t{digit} << (8 * i);
    }
    if (negative && magnitude > uint64_t{1} << 63) return Error(start, "integer below -2^63");
    return Value(IntegerValue{negative && magnitude != 0, magnitude});
  }

  // The bytes after an atom tag, as UTF-8.
  StatusOr<std::string> DecodeAtomBody(uint8_t tag, size_t start) {
    const bool small = tag == kSmallAtomExt || tag == kSmallAtomUtf8Ext;
    RETURN_IF_ERROR(Need(small ? 1 : 2, "an atom length"));
    const size_t size = small ? U8() : U16();
    RETURN_IF_ERROR(Need(size, "an atom"));
    if (tag == kAtomExt || tag == kSmallAtomExt) {
      if (size > limits_.max_atom_length) {
        return Error(start, "atom of ", size, " characters (at most ", limits_.max_atom_length,
                     ")");
      }
      const size_t at = pos_;
      pos_ += size;
      return Latin1ToUtf8(in_.subspan(at, size));
    }
    std::string name = Bytes(size);
    const auto chars = Utf8Length(name);
    if (!chars) return Error(start, "atom is not valid UTF-8");
    if (*chars > limits_.max_atom_length) {
      return Error(start, "atom of ", *chars, " characters (at most ", limits_.max_atom_length,
                   ")");
    }
    return name;
  }

  // The node of a pid, reference or port.
  StatusOr<std::string> DecodeNodeAtom(std::string_view owner) {
    const size_t start = pos_;
    RETURN_IF_ERROR(Need(1, owner));
    const uint8_t tag = U8();
    if (tag != kAtomExt && tag != kSmallAtomExt && tag != kAtomUtf8Ext &&
        tag != kSmallAtomUtf8Ext) {
      return Error(start, "the node of a ", owner, " must be an atom (tag ", int{tag}, ")");
    }
    return DecodeAtomBody(tag, start);
  }

  StatusOr<Value> DecodeTuple(size_t start, uint32_t depth, uint32_t arity) {
    RETURN_IF_ERROR(EnterContainer(start, depth, arity, "tuple"));
    RETURN_IF_ERROR(RoomFor(start, arity, 1, "tuple"));
    TupleValue tuple;
    tuple.elements.reserve(arity);
    for (uint32_t i = 0; i < arity; ++i) {
      ASSIGN_OR_RETURN(Term element, Decode(depth + 1));
      tuple.elements.push_back(std::move(element));
    }
    return Value(std::move(tuple));
  }

  // LIST_EXT: a length, the elements, a tail.  A tail that is itself a list is flattened in
  // (iteratively: a chain of LIST_EXT tails does not recurse).
  StatusOr<Value> DecodeList(size_t start, uint32_t depth) {
    ListValue list;
    for (size_t header = start;;) {
      RETURN_IF_ERROR(Need(4, "LIST_EXT"));
      const uint32_t n = U32();
      RETURN_IF_ERROR(EnterContainer(header, depth, list.elements.size() + n, "list"));
      RETURN_IF_ERROR(RoomFor(header, uint64_t{n} + 1, 1, "list"));  // the elements and the tail
      if (list.elements.empty()) list.elements.reserve(n);  // a chain of cells grows amortised
      for (uint32_t i = 0; i < n; ++i) {
        ASSIGN_OR_RETURN(Term element, Decode(depth + 1));
        list.elements.push_back(std::move(element));
      }
      header = pos_;
      RETURN_IF_ERROR(Need(1, "a list tail"));
      const uint8_t tail_tag = in_[pos_];
      if (tail_tag == kNilExt) {
        ++pos_;
        return Value(std::move(list));
      }
      if (tail_tag == kListExt) {
        RETURN_IF_ERROR(CountTerm(header));
        ++pos_;
        continue;
      }
      if (tail_tag == kStringExt) return AppendStringTail(header, depth, std::move(list));
      if (list.elements.empty()) return Error(header, "a list with no elements before its tail");
      ASSIGN_OR_RETURN(Term tail, Decode(depth + 1));
      list.tail = std::move(tail);
      return Value(std::move(list));
    }
  }

  StatusOr<Value> AppendStringTail(size_t header, uint32_t depth, ListValue list) {
    RETURN_IF_ERROR(CountTerm(header));
    ++pos_;
    RETURN_IF_ERROR(Need(2, "STRING_EXT"));
    const uint16_t size = U16();
    RETURN_IF_ERROR(EnterContainer(header, depth, list.elements.size() + size, "list"));
    RETURN_IF_ERROR(Need(size, "a string"));
    for (uint16_t i = 0; i < size; ++i) {
      RETURN_IF_ERROR(CountTerm(pos_));
      const size_t at = pos_;
      list.elements.push_back(Make(IntegerValue{false, U8()}, at));
    }
    return Value(std::move(list));
  }

  // Duplicate keys are found by comparing their canonical encodings, so that 'a' written as
  // ATOM_EXT and as SMALL_ATOM_UTF8_EXT are the same key, as binary_to_term sees it.
  StatusOr<Value> DecodeMap(size_t start, uint32_t depth) {
    RETURN_IF_ERROR(Need(4, "MAP_EXT"));
    const uint32_t arity = U32();
    RETURN_IF_ERROR(EnterContainer(start, depth, arity, "map"));
    RETURN_IF_ERROR(RoomFor(start, arity, 2, "map"));
    MapValue map;
    map.entries.reserve(arity);
    for (uint32_t i = 0; i < arity; ++i) {
      ASSIGN_OR_RETURN(Term key, Decode(depth + 1));
      ASSIGN_OR_RETURN(Term value, Decode(depth + 1));
      map.entries.emplace_back(std::move(key), std::move(value));
    }
    std::vector<std::pair<std::vector<uint8_t>, size_t>> keys;
    keys.reserve(arity);
    for (size_t i = 0; i < map.entries.size(); ++i) {
      keys.emplace_back(EncodeTermBody(map.entries[i].first), i);
    }
    std::sort(keys.begin(), keys.end());
    const auto duplicate = std::adjacent_find(
        keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first == b.first; });
    if (duplicate != keys.end()) {
      return Error(start, "map has the key ", FormatTerm(map.entries[duplicate->second].first, 64),
                   " twice");
    }
    return Value(std::move(map));
  }

  StatusOr<Value> DecodePid(uint8_t tag) {
    ErlangPid pid;
    ASSIGN_OR_RETURN(pid.node, DecodeNodeAtom("pid"));
    const bool newer = tag == kNewPidExt;
    RETURN_IF_ERROR(Need(newer ? 12 : 9, "a pid"));
    pid.id = U32();
    pid.serial = U32();
    pid.creation = newer ? U32() : U8();
    return Value(std::move(pid));
  }

  StatusOr<Value> DecodeReference(uint8_t tag, size_t start) {
    RETURN_IF_ERROR(Need(2, "a reference"));
    const uint16_t words = U16();
    if (words == 0 || words > kMaxRefWords) {
      return Error(start, "reference of ", words, " words (1 to ", kMaxRefWords, ")");
    }
    ErlangRef ref;
    ASSIGN_OR_RETURN(ref.node, DecodeNodeAtom("reference"));
    const bool newer = tag == kNewerReferenceExt;
    RETURN_IF_ERROR(Need((newer ? 4 : 1) + 4 * size_t{words}, "a reference"));
    ref.creation = newer ? U32() : U8();
    for (uint16_t i = 0; i < words; ++i) ref.ids.push_back(U32());
    return Value(std::move(ref));
  }

  StatusOr<Value> DecodePort(uint8_t tag) {
    ErlangPort port;
    ASSIGN_OR_RETURN(port.node, DecodeNodeAtom("port"));
    if (tag == kV4PortExt) {
      RETURN_IF_ERROR(Need(12, "a port"));
      port.id = U64();
      port.creation = U32();
    } else {
      const bool newer = tag == kNewPortExt;
      RETURN_IF_ERROR(Need(newer ? 8 : 5, "a port"));
      port.id = U32();
      port.creation = newer ? U32() : U8();
    }
    return Value(std::move(port));
  }

  std::shared_ptr<const std::vector<uint8_t>> source_;
  std::span<const uint8_t> in_;
  const DecodeLimits& limits_;
  size_t pos_ = 0;
  uint64_t terms_ = 0;
};

StatusOr<Term> DecodeTerm(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  return TermDecoder(bytes, limits).DecodeWhole(true);
}

StatusOr<Term> DecodeTermBody(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  return TermDecoder(bytes, limits).DecodeWhole(false);
}

// ---------------------------------------------------------------------------------------------
// Printing.

namespace {

bool IsReservedWord(std::string_view name) {
  static constexpr std::string_view kWords[] = {
      "after", "and",    "andalso", "band", "begin", "bnot", "bor", "bsl",   "bsr", "bxor",
      "case",  "catch",  "cond",    "div",  "end",   "fun",  "if",  "let",   "not", "of",
      "or",    "orelse", "receive", "rem",  "try",   "when", "xor", "maybe", "else"};
  return std::find(std::begin(kWords), std::end(kWords), name) != std::end(kWords);
}

bool IsPrintable(std::span<const uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [](uint8_t c) { return (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t'; });
}

class Printer {
 public:
  explicit Printer(size_t max_length) : max_length_(max_length) {}

  std::string Finish(const Term& term) && {
    Print(term);
    if (out_.size() > max_length_) {
      size_t cut = max_length_ > 3 ? max_length_ - 3 : 0;
      while (cut > 0 && (static_cast<uint8_t>(out_[cut]) & 0xC0) == 0x80) --cut;
      out_.resize(cut);
      out_ += "...";
    }
    return std::move(out_);
  }

 private:
  bool Full() const { return out_.size() > max_length_; }

  void Print(const Term& term) {
    if (Full()) return;
    switch (term.kind()) {
      case TermKind::kInteger:
        out_ +=
            term.to_uint64() ? std::to_string(*term.to_uint64()) : std::to_string(*term.to_int64());
        return;
      case TermKind::kFloat:
        return PrintFloat(*term.to_double());
      case TermKind::kAtom:
        return PrintAtom(term.text());
      case TermKind::kBinary:
        out_ += "<<";
        if (IsPrintable(term.bytes())) {
          PrintQuoted(term.text(), '"');
        } else {
          PrintBytes(term.bytes());
        }
        out_ += ">>";
        return;
      case TermKind::kString:
        if (IsPrintable(term.bytes())) return PrintQuoted(term.text(), '"');
        out_ += '[';
        PrintBytes(term.bytes());
        out_ += ']';
        return;
      case TermKind::kList:
        out_ += '[';
        PrintSequence(term.elements());
        if (term.tail()) {
          out_ += '|';
          Print(*term.tail());
        }
        out_ += ']';
        return;
      case TermKind::kTuple:
        out_ += '{';
        PrintSequence(term.elements());
        out_ += '}';
        return;
      case TermKind::kMap: {
        out_ += "#{";
        bool first = true;
        for (const auto& [key, value] : term.map_entries()) {
          if (Full()) return;
          if (!first) out_ += ',';
          first = false;
          Print(key);
          out_ += " => ";
          Print(value);
        }
        out_ += '}';
        return;
      }
      case TermKind::kPid: {
        const ErlangPid& pid = *term.pid();
        out_ += "#Pid<" + pid.node + "." + std::to_string(pid.id) + "." +
                std::to_string(pid.serial) + ">";
        return;
      }
      case TermKind::kReference: {
        const ErlangRef& ref = *term.reference();
        out_ += "#Ref<" + ref.node;
        for (auto id = ref.ids.rbegin(); id != ref.ids.rend(); ++id) {
          out_ += "." + std::to_string(*id);
        }
        out_ += '>';
        return;
      }
      case TermKind::kPort:
        out_ += "#Port<" + term.port()->node + "." + std::to_string(term.port()->id) + ">";
        return;
      case TermKind::kRaw: {
        const auto decoded = DecodeTermBody(term.bytes(), DecodeLimits{});
        if (decoded.ok()) return Print(*decoded);
        out_ += "#Raw<" + std::to_string(term.bytes().size()) + " bytes>";
        return;
      }
    }
  }

  void PrintSequence(std::span<const Term> elements) {
    for (size_t i = 0; i < elements.size() && !Full(); ++i) {
      if (i > 0) out_ += ',';
      Print(elements[i]);
    }
  }

  void PrintBytes(std::span<const uint8_t> bytes) {
    for (size_t i = 0; i < bytes.size() && !Full(); ++i) {
      if (i > 0) out_ += ',';
      out_ += std::to_string(bytes[i]);
    }
  }

  void PrintQuoted(std::string_view text, char quote) {
    out_ += quote;
    for (size_t i = 0; i < text.size() && !Full(); ++i) {
      const auto c = static_cast<uint8_t>(text[i]);
      if (c == static_cast<uint8_t>(quote) || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
      } else if (c == '\n') {
        out_ += "\\n";
      } else if (c == '\t') {
        out_ += "\\t";
      } else if (c < 0x20 || c == 0x7F) {
        out_ += "\\x{" + std::to_string(c) + "}";
      } else {
        out_ += static_cast<char>(c);
      }
    }
    out_ += quote;
  }

  // Unquoted if it starts with a lowercase letter, continues with letters, digits, _ and @, and
  // is no reserved word, as Erlang prints atoms.
  void PrintAtom(std::string_view name) {
    const bool plain = !name.empty() && name[0] >= 'a' && name[0] <= 'z' && !IsReservedWord(name) &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<uint8_t>(c)) || c == '_' || c == '@';
                       });
    if (plain) {
      out_ += name;
    } else {
      PrintQuoted(name, '\'');
    }
  }

  // Shortest round-trip digits, in Erlang's form: 1.0, 0.5, 1.0e10.
  void PrintFloat(double value) {
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof(buf), value);
    std::string text(buf, result.ptr);
    const size_t e = text.find('e');
    std::string mantissa = text.substr(0, e);
    if (mantissa.find('.') == std::string::npos) mantissa += ".0";
    out_ += mantissa;
    if (e != std::string::npos) {
      std::string exponent = text.substr(e + 1);
      const bool negative = exponent[0] == '-';
      if (exponent[0] == '+' || negative) exponent.erase(0, 1);
      exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
      out_ += (negative ? "e-" : "e") + exponent;
    }
  }

  size_t max_length_;
  std::string out_;
};

}  // namespace

std::string FormatTerm(const Term& term, size_t max_length) {
  return Printer(max_length).Finish(term);
}

}  // namespace orion::erlang
