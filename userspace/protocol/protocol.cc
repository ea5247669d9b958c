#include "userspace/protocol/protocol.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "sketch/bucket_index.h"
#include "sketch/encoding/ddsketch_encoding.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::protocol {
namespace {

constexpr std::string_view kRequestExample =
    "{capture, #{patterns => [<<\"lists:sort/1\">>], duration_ms => 5000}}";
constexpr size_t kShown = 120;  // characters of a term quoted in an error message

// The counters of LostCounters under their protocol names (also `orion capture --json`'s).
constexpr std::pair<std::string_view, uint64_t probes::LostCounters::*> kLostFields[] = {
    {"frames_evicted", &probes::LostCounters::frames_evicted},
    {"depth_overflow", &probes::LostCounters::depth_overflow},
    {"functions_over_limit", &probes::LostCounters::functions_over_limit},
    {"mfa_truncated", &probes::LostCounters::mfa_truncated},
    {"read_errors", &probes::LostCounters::read_errors},
    {"recursion_misses", &probes::LostCounters::recursion_misses},
    {"hash_collisions", &probes::LostCounters::hash_collisions},
};

constexpr std::pair<std::string_view, double> kQuantiles[] = {
    {"p50_ns", 0.50}, {"p90_ns", 0.90}, {"p99_ns", 0.99}, {"p999_ns", 0.999}};

std::string Show(const Term& term) {
  return FormatTerm(term, kShown);
}

Term Ok(Term value) {
  return Term::Tuple({Term::Atom("ok"), std::move(value)});
}

// A map with atom keys, written in Erlang's term order (atoms sort by name) as erts writes a
// small map, so that every reply is byte for byte what term_to_binary would make of it.
Term AtomMap(std::vector<std::pair<std::string_view, Term>> fields) {
  std::sort(fields.begin(), fields.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<Term, Term>> entries;
  entries.reserve(fields.size());
  for (auto& [key, value] : fields) entries.emplace_back(Term::Atom(key), std::move(value));
  return Term::Map(std::move(entries));
}

std::string_view ScopeName(Scope scope) {
  return scope == Scope::kLocal ? "local" : "cluster";
}

// At most `max` bytes of `text`, cut at a UTF-8 character boundary, marked with "...".
std::string Truncated(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

// Nanoseconds as a u64 term: a sketch's values are doubles, rounded and clamped here.
uint64_t Nanoseconds(double value) {
  if (!(value > 0)) return 0;
  if (value >= 18446744073709551615.0) return UINT64_MAX;
  return static_cast<uint64_t>(std::round(value));
}

// ---------------------------------------------------------------------------------------------
// Reading fields.

constexpr std::string_view kCaptureKeys[] = {"patterns", "duration_ms",   "node",
                                             "scope",    "max_functions", "per_node",
                                             "max_rate", "mode",          "match_spec"};
constexpr std::string_view kTopKeys[] = {"duration_ms", "node", "scope", "sort", "limit"};
constexpr std::string_view kStreamKeys[] = {"patterns",      "duration_ms", "interval_ms",
                                            "node",          "scope",       "max_functions",
                                            "max_rate",      "mode",        "match_spec"};
constexpr std::string_view kFunctionsKeys[] = {"node", "scope"};

// A request's options: a map whose keys are all atoms of `known`.
Status CheckRequestKeys(const Term& map, std::string_view request,
                        std::span<const std::string_view> known) {
  if (map.kind() != TermKind::kMap) {
    return InvalidArgument(request, " takes a map of options, e.g. ", kRequestExample, "; got ",
                           Show(map));
  }
  for (const auto& [key, value] : map.map_entries()) {
    if (key.kind() != TermKind::kAtom ||
        std::find(known.begin(), known.end(), key.text()) == known.end()) {
      std::string names;
      for (std::string_view name : known) names += (names.empty() ? "" : ", ") + std::string(name);
      return InvalidArgument(request, ": unknown key ", Show(key), " (known: ", names, ")");
    }
  }
  return OkStatus();
}

StatusOr<const Term*> Required(const Term& map, std::string_view what, std::string_view key) {
  const Term* value = map.map_find(key);
  if (!value) return InvalidArgument(what, ": missing key ", key);
  return value;
}

StatusOr<uint64_t> ReadUnsigned(const Term& term, std::string_view what) {
  const auto value = term.to_uint64();
  if (!value) return InvalidArgument(what, " must be a non-negative integer, not ", Show(term));
  return *value;
}

StatusOr<uint64_t> ReadInRange(const Term& term, std::string_view what, uint64_t low,
                               uint64_t high) {
  const auto value = term.to_uint64();
  if (!value || *value < low || *value > high) {
    return InvalidArgument(what, " must be an integer from ", low, " to ", high, ", not ",
                           Show(term));
  }
  return *value;
}

void AppendUtf8(uint32_t code, std::string& out) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | code >> 6));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | code >> 12));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | code >> 18));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

// A binary (Elixir's strings: UTF-8 already), or an Erlang string (a list of character codes,
// which a STRING_EXT holds as bytes when they are all below 256), as UTF-8.
StatusOr<std::string> ReadText(const Term& term, std::string_view what) {
  if (term.kind() == TermKind::kBinary) return std::string(term.text());
  std::string text;
  if (term.kind() == TermKind::kString) {
    for (uint8_t code : term.bytes()) AppendUtf8(code, text);
    return text;
  }
  const auto not_text = [&] {
    return InvalidArgument(what, " must be a binary or a string, not ", Show(term));
  };
  if (term.kind() != TermKind::kList || term.tail()) return not_text();
  for (const Term& element : term.elements()) {
    const auto code = element.to_uint64();
    if (!code || *code > 0x10FFFF || (*code >= 0xD800 && *code <= 0xDFFF)) return not_text();
    AppendUtf8(static_cast<uint32_t>(*code), text);
  }
  return text;
}

StatusOr<std::string> ReadPattern(const Term& term, std::string_view request, size_t index,
                                  const ProtocolLimits& limits) {
  const std::string what = std::string(request) + ": patterns[" + std::to_string(index) + "]";
  ASSIGN_OR_RETURN(std::string pattern, ReadText(term, what));
  if (pattern.empty()) return InvalidArgument(what, " is empty");
  if (pattern.size() > limits.max_pattern_length) {
    return InvalidArgument(what, " is ", pattern.size(), " bytes long (at most ",
                           limits.max_pattern_length, ")");
  }
  if (std::any_of(pattern.begin(), pattern.end(),
                  [](char c) { return static_cast<uint8_t>(c) < 0x20 || c == 0x7F; })) {
    return InvalidArgument(what, " holds a control character: ", Show(term));
  }
  return pattern;
}

StatusOr<std::vector<std::string>> ReadPatterns(const Term& term, std::string_view request,
                                                const ProtocolLimits& limits) {
  if (term.kind() != TermKind::kList || term.tail() || term.is_nil()) {
    return InvalidArgument(request, ": patterns must be a non-empty list such as ",
                           "[<<\"lists:sort/1\">>, <<\"ets:_/_\">>], not ", Show(term));
  }
  const auto elements = term.elements();
  if (elements.size() > limits.max_patterns) {
    return InvalidArgument(request, ": ", elements.size(), " patterns (at most ",
                           limits.max_patterns, ")");
  }
  std::vector<std::string> patterns;
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(std::string pattern, ReadPattern(elements[i], request, i, limits));
    patterns.push_back(std::move(pattern));
  }
  return patterns;
}

// An atom such as 'app@host'.
StatusOr<std::string> ReadNodeName(const Term& term, std::string_view what) {
  const std::string_view name = term.text();
  const size_t at = name.find('@');
  if (term.kind() != TermKind::kAtom || at == 0 || at == std::string_view::npos ||
      at + 1 == name.size()) {
    return InvalidArgument(what, " must be a node name such as 'app@host', not ", Show(term));
  }
  return std::string(name);
}

StatusOr<Scope> ReadScope(const Term& term, std::string_view what) {
  if (term.is_atom("cluster")) return Scope::kCluster;
  if (term.is_atom("local")) return Scope::kLocal;
  return InvalidArgument(what, ": scope must be cluster or local, not ", Show(term));
}

// duration_ms, node and scope, shared by capture and top.
template <typename R>
Status ReadWindow(const Term& map, std::string_view what, const ProtocolLimits& limits, R& out) {
  ASSIGN_OR_RETURN(const Term* duration, Required(map, what, "duration_ms"));
  ASSIGN_OR_RETURN(out.duration_ms, ReadInRange(*duration, std::string(what) + ": duration_ms", 1,
                                                limits.max_duration_ms));
  if (const Term* node = map.map_find("node")) {
    ASSIGN_OR_RETURN(out.node, ReadNodeName(*node, std::string(what) + ": node"));
  }
  if (const Term* scope = map.map_find("scope")) {
    ASSIGN_OR_RETURN(out.scope, ReadScope(*scope, what));
  }
  return OkStatus();
}

StatusOr<CaptureMode> ReadCaptureMode(const Term& mode, std::string_view what) {
  if (mode.is_atom("auto")) return CaptureMode::kAuto;
  if (mode.is_atom("probes")) return CaptureMode::kProbes;
  if (mode.is_atom("tracer")) return CaptureMode::kTracer;
  return InvalidArgument(what, ": mode must be auto, probes or tracer, not ", Show(mode));
}

// Only the text travels: each daemon hands it to its nodes' orion_tracer, which parses it with
// erl_parse and checks it with match_spec_test before anything changes (never evaluated; bodies
// refused). Here only its size and kind are checked, and that the mode can use it.
StatusOr<std::string> ReadMatchSpec(const Term& spec, CaptureMode mode, std::string_view what,
                                    const ProtocolLimits& limits) {
  if (spec.kind() != TermKind::kBinary || spec.text().empty() ||
      spec.text().size() > limits.max_match_spec_length) {
    return InvalidArgument(what, ": match_spec must be a binary of 1 to ",
                           limits.max_match_spec_length,
                           " bytes in Erlang term syntax, such as <<\"[{['_', nadia], [], []}]\">>");
  }
  if (mode == CaptureMode::kProbes) {
    return InvalidArgument(what, ": a match_spec needs mode tracer or auto (function probes "
                                 "cannot test arguments)");
  }
  return std::string(spec.text());
}

// What a capture and a stream share: patterns, duration_ms, node, scope, max_functions,
// max_rate, mode and match_spec (the request's own keys are checked by the caller).
template <typename R>
Status ReadCaptureFields(const Term& map, std::string_view what, const ProtocolLimits& limits,
                         R& out) {
  const std::string prefix = std::string(what) + ": ";
  ASSIGN_OR_RETURN(const Term* patterns, Required(map, what, "patterns"));
  ASSIGN_OR_RETURN(out.patterns, ReadPatterns(*patterns, what, limits));
  RETURN_IF_ERROR(ReadWindow(map, what, limits, out));
  if (const Term* max_functions = map.map_find("max_functions")) {
    ASSIGN_OR_RETURN(const uint64_t n, ReadInRange(*max_functions, prefix + "max_functions", 1,
                                                   limits.max_functions));
    out.max_functions = static_cast<uint32_t>(n);
  }
  if (const Term* max_rate = map.map_find("max_rate")) {
    ASSIGN_OR_RETURN(out.max_rate,
                     ReadInRange(*max_rate, prefix + "max_rate", 0, 1'000'000'000'000ull));
  }
  if (const Term* mode = map.map_find("mode")) {
    ASSIGN_OR_RETURN(out.mode, ReadCaptureMode(*mode, what));
  }
  if (const Term* spec = map.map_find("match_spec")) {
    ASSIGN_OR_RETURN(out.match_spec, ReadMatchSpec(*spec, out.mode, what, limits));
  }
  return OkStatus();
}

StatusOr<Request> ParseCapture(const Term& map, const ProtocolLimits& limits) {
  RETURN_IF_ERROR(CheckRequestKeys(map, "capture", kCaptureKeys));
  CaptureRequest capture;
  RETURN_IF_ERROR(ReadCaptureFields(map, "capture", limits, capture));
  if (const Term* per_node = map.map_find("per_node")) {
    if (!per_node->is_atom("true") && !per_node->is_atom("false")) {
      return InvalidArgument("capture: per_node must be true or false, not ", Show(*per_node));
    }
    capture.per_node = per_node->is_atom("true");
  }
  return Request(std::move(capture));
}

constexpr std::string_view kWatchKeys[] = {"patterns", "node", "mode", "match_spec"};

StatusOr<Request> ParseWatchAdd(const Term& map, const ProtocolLimits& limits) {
  RETURN_IF_ERROR(CheckRequestKeys(map, "watch_add", kWatchKeys));
  WatchAddRequest watch;
  ASSIGN_OR_RETURN(const Term* patterns, Required(map, "watch_add", "patterns"));
  ASSIGN_OR_RETURN(watch.patterns, ReadPatterns(*patterns, "watch_add", limits));
  if (const Term* node = map.map_find("node")) {
    ASSIGN_OR_RETURN(watch.node, ReadNodeName(*node, "watch_add: node"));
  }
  if (const Term* mode = map.map_find("mode")) {
    ASSIGN_OR_RETURN(watch.mode, ReadCaptureMode(*mode, "watch_add"));
  }
  if (const Term* spec = map.map_find("match_spec")) {
    ASSIGN_OR_RETURN(watch.match_spec, ReadMatchSpec(*spec, watch.mode, "watch_add", limits));
  }
  return Request(std::move(watch));
}

StatusOr<Request> ParseStream(const Term& map, const ProtocolLimits& limits) {
  RETURN_IF_ERROR(CheckRequestKeys(map, "stream", kStreamKeys));
  StreamRequest stream;
  RETURN_IF_ERROR(ReadCaptureFields(map, "stream", limits, stream));
  if (const Term* interval = map.map_find("interval_ms")) {
    ASSIGN_OR_RETURN(const uint64_t ms,
                     ReadInRange(*interval, "stream: interval_ms", limits.min_interval_ms,
                                 limits.max_interval_ms));
    stream.interval_ms = static_cast<uint32_t>(ms);
  }
  return Request(std::move(stream));
}

StatusOr<Request> ParseStreamStop(const Term& id) {
  if (id.kind() != TermKind::kReference) {
    return InvalidArgument("stream_stop takes the reference {stream, ...} answered, not ",
                           Show(id));
  }
  return Request(StreamStopRequest{.id = id});
}

// {functions, Prefix} or {functions, Prefix, #{node => N, scope => local}}.
StatusOr<Request> ParseFunctions(std::span<const Term> arguments, const ProtocolLimits& limits) {
  FunctionsRequest functions;
  ASSIGN_OR_RETURN(functions.prefix, ReadText(arguments[0], "functions: the prefix"));
  if (functions.prefix.size() > limits.max_pattern_length) {
    return InvalidArgument("functions: the prefix is ", functions.prefix.size(),
                           " bytes long (at most ", limits.max_pattern_length, ")");
  }
  if (std::any_of(functions.prefix.begin(), functions.prefix.end(),
                  [](char c) { return static_cast<uint8_t>(c) < 0x20 || c == 0x7F; })) {
    return InvalidArgument("functions: the prefix holds a control character");
  }
  if (arguments.size() == 2) {
    RETURN_IF_ERROR(CheckRequestKeys(arguments[1], "functions", kFunctionsKeys));
    if (const Term* node = arguments[1].map_find("node")) {
      ASSIGN_OR_RETURN(functions.node, ReadNodeName(*node, "functions: node"));
    }
    if (const Term* scope = arguments[1].map_find("scope")) {
      ASSIGN_OR_RETURN(functions.scope, ReadScope(*scope, "functions"));
    }
  }
  return Request(std::move(functions));
}

StatusOr<Request> ParseTop(const Term& map, const ProtocolLimits& limits) {
  RETURN_IF_ERROR(CheckRequestKeys(map, "top", kTopKeys));
  TopRequest top;
  RETURN_IF_ERROR(ReadWindow(map, "top", limits, top));
  if (const Term* sort = map.map_find("sort")) {
    if (sort->is_atom("cpu")) {
      top.sort = TopSort::kCpu;
    } else if (sort->is_atom("reds")) {
      top.sort = TopSort::kReds;
    } else if (sort->is_atom("queue")) {
      top.sort = TopSort::kQueue;
    } else if (sort->is_atom("gc")) {
      top.sort = TopSort::kGc;
    } else if (sort->is_atom("sends")) {
      top.sort = TopSort::kSends;
    } else {
      return InvalidArgument("top: sort must be cpu, reds, queue, gc or sends, not ", Show(*sort));
    }
  }
  if (const Term* limit = map.map_find("limit")) {
    ASSIGN_OR_RETURN(const uint64_t n, ReadInRange(*limit, "top: limit", 1, 200));
    top.limit = static_cast<uint32_t>(n);
  }
  return Request(std::move(top));
}

// ---------------------------------------------------------------------------------------------
// Capture replies.

// count, min_ns, max_ns, sum_ns and the quantiles of a sketch; min, max and quantiles are
// `undefined` when it is empty.
std::vector<std::pair<std::string_view, Term>> SummaryFields(const sketch::CountSketch& sketch) {
  const bool empty = sketch.empty();
  const auto ns_or_undefined = [empty](double value) {
    return empty ? Term::Atom("undefined") : Term::Unsigned(Nanoseconds(value));
  };
  std::vector<std::pair<std::string_view, Term>> fields = {
      {"count", Term::Unsigned(sketch.count())},
      {"min_ns", ns_or_undefined(sketch.min())},
      {"max_ns", ns_or_undefined(sketch.max())},
      {"sum_ns", Term::Unsigned(Nanoseconds(sketch.sum()))},
  };
  for (const auto& [name, q] : kQuantiles) {
    const auto value = sketch.quantile(q);
    fields.emplace_back(name,
                        value.ok() ? Term::Unsigned(Nanoseconds(*value)) : Term::Atom("undefined"));
  }
  return fields;
}

Term CallMap(const probes::FunctionStats& function) {
  std::vector<std::pair<std::string_view, Term>> fields = SummaryFields(function.wall);
  const std::pair<std::string_view, Term> more[] = {
      {"mfa", Term::Binary(function.mfa)},
      {"cpu", AtomMap(SummaryFields(function.cpu))},
      {"sketch", Term::Binary(sketch::EncodeDDSketch(function.wall))},
      {"cpu_sketch", Term::Binary(sketch::EncodeDDSketch(function.cpu))},
      {"exceptions", Term::Unsigned(function.exceptions)},
      {"tail_calls", Term::Unsigned(function.tail_calls)},
      {"exits", Term::Unsigned(function.exits)},
  };
  fields.insert(fields.end(), std::begin(more), std::end(more));
  return AtomMap(std::move(fields));
}

constexpr std::pair<BeamOutcome, std::string_view> kBeamOutcomes[] = {
    {BeamOutcome::kCounted, "counted"},
    {BeamOutcome::kModuleNotLoaded, "module_not_loaded"},
    {BeamOutcome::kRefused, "refused"},
    {BeamOutcome::kFailed, "failed"},
};

Term FlavorAtom(BeamFlavor flavor) {
  return Term::Atom(flavor == BeamFlavor::kJit ? "jit" : "emu");
}

Term BeamMap(const BeamStatus& beam) {
  return AtomMap({{"os_pid", Term::Integer(beam.os_pid)},
                  {"node", Term::Atom(beam.node ? *beam.node : "undefined")},
                  {"flavor", FlavorAtom(beam.flavor)},
                  {"mode", Term::Atom(beam.mode ? CaptureModeName(*beam.mode) : "undefined")},
                  {"status", Term::Atom(BeamOutcomeName(beam.status))},
                  {"reason", Term::Binary(beam.reason)},
                  {"calls", Term::Unsigned(beam.calls)}});
}

// A node's entry; `with_beams` (capture replies): its `beams` list, also when empty, so that
// a shell can always match #{beams := Beams}.
Term NodeMap(const NodeStatus& node, bool with_beams) {
  std::optional<Term> beams;
  if (with_beams) {
    std::vector<Term> list;
    for (const BeamStatus& beam : node.beams) list.push_back(BeamMap(beam));
    beams = Term::List(std::move(list));
  }
  if (node.status.ok()) {
    std::vector<std::pair<std::string_view, Term>> fields = {{"node", Term::Atom(node.node)},
                                                             {"status", Term::Atom("ok")}};
    if (beams) fields.emplace_back("beams", std::move(*beams));
    if (node.functions) {
      std::vector<Term> calls;
      for (const auto& function : *node.functions) calls.push_back(CallMap(function));
      fields.emplace_back("calls", Term::List(std::move(calls)));
    }
    if (node.stopped_at_rate) {
      fields.emplace_back("stopped", AtomMap({{"reason", Term::Atom("max_rate")},
                                              {"rate", Term::Unsigned(*node.stopped_at_rate)}}));
    }
    return AtomMap(std::move(fields));
  }
  std::vector<std::pair<std::string_view, Term>> fields = {
      {"node", Term::Atom(node.node)},
      {"status", Term::Atom("error")},
      {"error", Term::Binary(node.status.message())}};
  if (beams) fields.emplace_back("beams", std::move(*beams));
  return AtomMap(std::move(fields));
}

// A sketch as a peer sends it: the kernel's mapping, bins within the kernel's slots, a summary
// that fits in u64 nanoseconds.
StatusOr<sketch::CountSketch> ReadSketch(const Term& term, std::string_view what) {
  if (term.kind() != TermKind::kBinary) {
    return InvalidArgument(what, " must be a binary (a DDSketch protobuf), not ", Show(term));
  }
  auto decoded = sketch::DecodeDDSketch<sketch::DenseStore<uint64_t>>(
      term.bytes(), {}, sketch::DecodeOptions{.max_bin_span = ORION_BUCKET_COUNT});
  if (!decoded.ok()) return decoded.status().WithContext(what);
  const sketch::CountSketch& s = *decoded;
  if (!s.mapping().is_kernel()) {
    return InvalidArgument(what, ": not the kernel's mapping but ", s.mapping().Describe());
  }
  if (!s.negative_store().empty()) return InvalidArgument(what, ": negative latencies");
  const auto& bins = s.positive_store();
  if (!bins.empty() && (bins.min_index() < 0 || bins.max_index() >= ORION_BUCKET_COUNT)) {
    return InvalidArgument(what, ": bins ", bins.min_index(), "..", bins.max_index(),
                           " outside the kernel's 0..", ORION_BUCKET_COUNT - 1);
  }
  if (!s.empty() && !(s.min() >= 0 && s.max() < 18446744073709551615.0 && s.sum() >= 0 &&
                      std::isfinite(s.sum()))) {
    return InvalidArgument(what, ": summary out of range (min ", s.min(), ", max ", s.max(),
                           ", sum ", s.sum(), ")");
  }
  return std::move(decoded).value();
}

uint64_t BinSpan(const sketch::CountSketch& s) {
  const auto& bins = s.positive_store();
  return bins.empty() ? 0 : static_cast<uint64_t>(int64_t{bins.max_index()} - bins.min_index() + 1);
}

// count, min_ns, max_ns and sum_ns beside a sketch say what the sketch says.
Status CheckSummary(const Term& map, std::string_view what, const sketch::CountSketch& s) {
  ASSIGN_OR_RETURN(const Term* count, Required(map, what, "count"));
  if (count->to_uint64() != s.count()) {
    return InvalidArgument(what, ": count ", Show(*count), " but its sketch holds ", s.count());
  }
  const std::pair<std::string_view, double> fields[] = {
      {"min_ns", s.min()}, {"max_ns", s.max()}, {"sum_ns", s.sum()}};
  for (const auto& [key, value] : fields) {
    ASSIGN_OR_RETURN(const Term* field, Required(map, what, key));
    const bool undefined_ok = s.empty() && key != "sum_ns";
    if (undefined_ok ? !field->is_atom("undefined") : field->to_uint64() != Nanoseconds(value)) {
      return InvalidArgument(what, ": ", key, " ", Show(*field), " disagrees with its sketch");
    }
  }
  return OkStatus();
}

StatusOr<probes::FunctionStats> ReadCall(const Term& call, size_t index,
                                         const ProtocolLimits& limits) {
  std::string what = "calls[" + std::to_string(index) + "]";
  if (call.kind() != TermKind::kMap) return InvalidArgument(what, " must be a map");
  probes::FunctionStats function;
  ASSIGN_OR_RETURN(const Term* mfa, Required(call, what, "mfa"));
  if (mfa->kind() != TermKind::kBinary || mfa->text().empty() ||
      mfa->text().size() > limits.max_pattern_length) {
    return InvalidArgument(what, ": mfa must be a binary of 1 to ", limits.max_pattern_length,
                           " bytes, not ", Show(*mfa));
  }
  function.mfa = std::string(mfa->text());
  what += " (" + function.mfa + ")";
  ASSIGN_OR_RETURN(const Term* wall, Required(call, what, "sketch"));
  ASSIGN_OR_RETURN(function.wall, ReadSketch(*wall, what + ": sketch"));
  RETURN_IF_ERROR(CheckSummary(call, what, function.wall));
  ASSIGN_OR_RETURN(const Term* cpu, Required(call, what, "cpu_sketch"));
  ASSIGN_OR_RETURN(function.cpu, ReadSketch(*cpu, what + ": cpu_sketch"));
  const std::pair<std::string_view, uint64_t*> counters[] = {{"exceptions", &function.exceptions},
                                                             {"tail_calls", &function.tail_calls},
                                                             {"exits", &function.exits}};
  for (const auto& [key, out] : counters) {
    ASSIGN_OR_RETURN(const Term* value, Required(call, what, key));
    ASSIGN_OR_RETURN(*out, ReadUnsigned(*value, what + ": " + std::string(key)));
  }
  return function;
}

StatusOr<std::vector<probes::FunctionStats>> ReadCalls(const Term& calls,
                                                       const ProtocolLimits& limits) {
  if (calls.kind() != TermKind::kList || calls.tail()) {
    return InvalidArgument("calls must be a list, not ", Show(calls));
  }
  const auto elements = calls.elements();
  if (elements.size() > limits.max_functions) {
    return InvalidArgument(elements.size(), " calls (at most ", limits.max_functions, ")");
  }
  std::vector<probes::FunctionStats> functions;
  functions.reserve(elements.size());
  uint64_t bins = 0;
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(probes::FunctionStats function, ReadCall(elements[i], i, limits));
    bins += BinSpan(function.wall) + BinSpan(function.cpu);
    if (bins > limits.max_reply_bins) {
      return InvalidArgument("calls: sketches of more than ", limits.max_reply_bins, " bins");
    }
    functions.push_back(std::move(function));
  }
  std::sort(functions.begin(), functions.end(),
            [](const auto& a, const auto& b) { return a.mfa < b.mfa; });
  const auto twice =
      std::adjacent_find(functions.begin(), functions.end(),
                         [](const auto& a, const auto& b) { return a.mfa == b.mfa; });
  if (twice != functions.end()) return InvalidArgument("calls: ", twice->mfa, " is listed twice");
  return functions;
}

// One of a fixed set of atoms, as the value it names.
template <typename T, size_t N>
StatusOr<T> ReadAtomOf(const Term& term, const std::pair<T, std::string_view> (&known)[N],
                       std::string_view what) {
  for (const auto& [value, name] : known) {
    if (term.is_atom(name)) return value;
  }
  std::string names;
  for (const auto& [value, name] : known) names += (names.empty() ? "" : ", ") + std::string(name);
  return InvalidArgument(what, " must be one of ", names, ", not ", Show(term));
}

constexpr std::pair<BeamFlavor, std::string_view> kFlavors[] = {{BeamFlavor::kEmu, "emu"},
                                                                {BeamFlavor::kJit, "jit"}};
constexpr std::pair<std::optional<CaptureMode>, std::string_view> kBeamModes[] = {
    {CaptureMode::kProbes, "probes"},
    {CaptureMode::kTracer, "tracer"},
    {std::nullopt, "undefined"}};

StatusOr<BeamStatus> ReadBeam(const Term& beam, const std::string& what,
                              const ProtocolLimits& limits) {
  if (beam.kind() != TermKind::kMap) return InvalidArgument(what, " must be a map");
  BeamStatus out;
  ASSIGN_OR_RETURN(const Term* os_pid, Required(beam, what, "os_pid"));
  ASSIGN_OR_RETURN(const uint64_t pid, ReadInRange(*os_pid, what + ": os_pid", 1, INT32_MAX));
  out.os_pid = static_cast<pid_t>(pid);
  ASSIGN_OR_RETURN(const Term* node, Required(beam, what, "node"));
  if (!node->is_atom("undefined")) {
    ASSIGN_OR_RETURN(out.node, ReadNodeName(*node, what + ": node"));
  }
  ASSIGN_OR_RETURN(const Term* flavor, Required(beam, what, "flavor"));
  ASSIGN_OR_RETURN(out.flavor, ReadAtomOf(*flavor, kFlavors, what + ": flavor"));
  ASSIGN_OR_RETURN(const Term* mode, Required(beam, what, "mode"));
  ASSIGN_OR_RETURN(out.mode, ReadAtomOf(*mode, kBeamModes, what + ": mode"));
  ASSIGN_OR_RETURN(const Term* status, Required(beam, what, "status"));
  ASSIGN_OR_RETURN(out.status, ReadAtomOf(*status, kBeamOutcomes, what + ": status"));
  ASSIGN_OR_RETURN(const Term* reason, Required(beam, what, "reason"));
  if (reason->kind() != TermKind::kBinary) {
    return InvalidArgument(what, ": reason must be a binary, not ", Show(*reason));
  }
  out.reason = Truncated(reason->text(), limits.max_error_length);
  ASSIGN_OR_RETURN(const Term* calls, Required(beam, what, "calls"));
  ASSIGN_OR_RETURN(out.calls, ReadUnsigned(*calls, what + ": calls"));
  return out;
}

// A node entry's `beams`, when it has one (a daemon before this key sends none).
Status ReadBeams(const Term& node, const std::string& what, const ProtocolLimits& limits,
                 NodeStatus& out) {
  const Term* beams = node.map_find("beams");
  if (!beams) return OkStatus();
  if (beams->kind() != TermKind::kList || beams->tail()) {
    return InvalidArgument(what, ": beams must be a list, not ", Show(*beams));
  }
  const auto elements = beams->elements();
  if (elements.size() > limits.max_beams) {
    return InvalidArgument(what, ": ", elements.size(), " beams (at most ", limits.max_beams, ")");
  }
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(BeamStatus beam,
                     ReadBeam(elements[i], what + ": beams[" + std::to_string(i) + "]", limits));
    out.beams.push_back(std::move(beam));
  }
  return OkStatus();
}

StatusOr<NodeStatus> ReadNode(const Term& node, size_t index, const ProtocolLimits& limits) {
  const std::string what = "nodes[" + std::to_string(index) + "]";
  if (node.kind() != TermKind::kMap) return InvalidArgument(what, " must be a map");
  NodeStatus out;
  ASSIGN_OR_RETURN(const Term* name, Required(node, what, "node"));
  ASSIGN_OR_RETURN(out.node, ReadNodeName(*name, what + ": node"));
  RETURN_IF_ERROR(ReadBeams(node, what, limits, out));
  ASSIGN_OR_RETURN(const Term* status, Required(node, what, "status"));
  if (status->is_atom("ok")) {
    if (const Term* calls = node.map_find("calls")) {
      auto functions = ReadCalls(*calls, limits);
      if (!functions.ok()) return functions.status().WithContext(what);
      out.functions = std::move(*functions);
    }
    if (const Term* stopped = node.map_find("stopped")) {
      const Term* rate = stopped->map_find("rate");
      if (stopped->kind() != TermKind::kMap || !rate) {
        return InvalidArgument(what, ": stopped must be #{reason => max_rate, rate => N}");
      }
      ASSIGN_OR_RETURN(out.stopped_at_rate, ReadUnsigned(*rate, what + ": stopped rate"));
    }
    return out;
  }
  if (!status->is_atom("error")) {
    return InvalidArgument(what, ": status must be ok or error, not ", Show(*status));
  }
  ASSIGN_OR_RETURN(const Term* error, Required(node, what, "error"));
  if (error->kind() != TermKind::kBinary) {
    return InvalidArgument(what, ": error must be a binary, not ", Show(*error));
  }
  out.status = Unavailable(Truncated(error->text(), limits.max_error_length));
  return out;
}

StatusOr<std::vector<NodeStatus>> ReadNodes(const Term& nodes, const ProtocolLimits& limits) {
  if (nodes.kind() != TermKind::kList || nodes.tail()) {
    return InvalidArgument("nodes must be a list, not ", Show(nodes));
  }
  const auto elements = nodes.elements();
  if (elements.size() > limits.max_peers + 1) {
    return InvalidArgument(elements.size(), " nodes (at most ", limits.max_peers + 1, ")");
  }
  std::vector<NodeStatus> out;
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(NodeStatus node, ReadNode(elements[i], i, limits));
    out.push_back(std::move(node));
  }
  return out;
}

StatusOr<probes::LostCounters> ReadLost(const Term& lost) {
  if (lost.kind() != TermKind::kMap) return InvalidArgument("lost must be a map, not ", Show(lost));
  probes::LostCounters out;
  for (const auto& [key, member] : kLostFields) {
    ASSIGN_OR_RETURN(const Term* value, Required(lost, "lost", key));
    ASSIGN_OR_RETURN(out.*member, ReadUnsigned(*value, "lost: " + std::string(key)));
  }
  return out;
}

constexpr std::pair<ErrorKind, StatusCode> kErrorCodes[] = {
    {ErrorKind::kBadRequest, StatusCode::kInvalidArgument},
    {ErrorKind::kBusy, StatusCode::kResourceExhausted},
    {ErrorKind::kNotFound, StatusCode::kNotFound},
    {ErrorKind::kUnavailable, StatusCode::kUnavailable},
    {ErrorKind::kInternal, StatusCode::kInternal},
    {ErrorKind::kTimeout, StatusCode::kDeadlineExceeded},
};

// {Kind, <<"message">>} as the Status it stands for (the code of its kind).
Status ReadErrorReason(const Term& reason, const ProtocolLimits& limits) {
  const auto elements = reason.elements();
  if (reason.kind() != TermKind::kTuple || elements.size() != 2 ||
      elements[0].kind() != TermKind::kAtom || elements[1].kind() != TermKind::kBinary) {
    return InvalidArgument("an error reply is {error, {Kind, <<\"message\">>}}, not ",
                           Show(reason));
  }
  const std::string message = Truncated(elements[1].text(), limits.max_error_length);
  for (const auto& [kind, code] : kErrorCodes) {
    if (elements[0].is_atom(ErrorKindName(kind))) return Status(code, message);
  }
  return Internal(elements[0].text(), ": ", message);  // a kind from a newer protocol
}

// The options a capture and a stream share.
template <typename R>
std::vector<std::pair<Term, Term>> CaptureOptionTerms(const R& capture) {
  std::vector<Term> patterns;
  for (const auto& pattern : capture.patterns) patterns.push_back(Term::Binary(pattern));
  std::vector<std::pair<Term, Term>> options = {
      {Term::Atom("patterns"), Term::List(std::move(patterns))},
      {Term::Atom("duration_ms"), Term::Unsigned(capture.duration_ms)},
      {Term::Atom("scope"), Term::Atom(ScopeName(capture.scope))}};
  if (capture.node) options.emplace_back(Term::Atom("node"), Term::Atom(*capture.node));
  if (capture.max_functions) {
    options.emplace_back(Term::Atom("max_functions"), Term::Unsigned(*capture.max_functions));
  }
  if (capture.max_rate) {
    options.emplace_back(Term::Atom("max_rate"), Term::Unsigned(*capture.max_rate));
  }
  if (capture.mode != CaptureMode::kAuto) {
    options.emplace_back(Term::Atom("mode"), Term::Atom(CaptureModeName(capture.mode)));
  }
  if (capture.match_spec) {
    options.emplace_back(Term::Atom("match_spec"), Term::Binary(*capture.match_spec));
  }
  return options;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The gen_server envelope.

StatusOr<GenCall> ParseGenCall(const Term& message) {
  const auto parts = message.elements();
  const auto from_tag = parts.size() == 3 ? parts[1].elements() : std::span<const Term>();
  if (message.kind() != TermKind::kTuple || parts.size() != 3 || !parts[0].is_atom("$gen_call") ||
      parts[1].kind() != TermKind::kTuple || from_tag.size() != 2 ||
      from_tag[0].kind() != TermKind::kPid) {
    return InvalidArgument("not a gen_server call {'$gen_call', {From, Tag}, Request}: ",
                           Show(message));
  }
  return GenCall{.from = *from_tag[0].pid(), .tag = from_tag[1].AsRaw(), .request = parts[2]};
}

std::vector<uint8_t> EncodeGenReply(const Term& tag, const Term& reply) {
  return EncodeTerm(Term::Tuple({tag, reply}));
}

std::vector<uint8_t> EncodeGenCall(const ErlangPid& from, const Term& tag, const Term& request) {
  return EncodeTerm(
      Term::Tuple({Term::Atom("$gen_call"), Term::Tuple({Term::Pid(from), tag}), request}));
}

StatusOr<GenReply> ParseGenReply(const Term& message) {
  const auto parts = message.elements();
  if (message.kind() != TermKind::kTuple || parts.size() != 2) {
    return InvalidArgument("not a gen_server reply {Tag, Reply}: ", Show(message));
  }
  return GenReply{.tag = parts[0], .reply = parts[1]};
}

// ---------------------------------------------------------------------------------------------
// Requests.

StatusOr<Request> ParseRequest(const Term& request, const ProtocolLimits& limits) {
  const auto parts = request.elements();
  if (request.kind() != TermKind::kTuple || parts.empty() || parts[0].kind() != TermKind::kAtom) {
    return InvalidArgument("a request is a tuple such as {ping} or ", kRequestExample, ", not ",
                           Show(request));
  }
  const std::string_view name = parts[0].text();
  const size_t arguments = parts.size() - 1;
  if (name == "ping" || name == "version" || name == "targets") {
    if (arguments != 0) return InvalidArgument("{", name, "} takes no arguments");
    if (name == "ping") return Request(PingRequest{});
    if (name == "version") return Request(VersionRequest{});
    return Request(TargetsRequest{});
  }
  if (name == "capture" || name == "top" || name == "stream") {
    if (arguments != 1) {
      return InvalidArgument(name, " takes one map of options, e.g. ", kRequestExample);
    }
    if (name == "stream") return ParseStream(parts[1], limits);
    return name == "capture" ? ParseCapture(parts[1], limits) : ParseTop(parts[1], limits);
  }
  if (name == "watch_add") {
    if (arguments != 1) {
      return InvalidArgument("watch_add takes one map, e.g. {watch_add, #{patterns => "
                             "[<<\"lists:sort/1\">>]}}");
    }
    return ParseWatchAdd(parts[1], limits);
  }
  if (name == "watches") {
    if (arguments != 0) return InvalidArgument("{watches} takes no arguments");
    return Request(WatchesRequest{});
  }
  if (name == "watch_remove") {
    if (arguments != 1) return InvalidArgument("watch_remove takes the watch's id: {watch_remove, 1}");
    ASSIGN_OR_RETURN(const uint64_t id, ReadInRange(parts[1], "watch_remove: id", 1, UINT32_MAX));
    return Request(WatchRemoveRequest{.id = static_cast<uint32_t>(id)});
  }
  if (name == "stream_stop") {
    if (arguments != 1) return InvalidArgument("stream_stop takes one argument: {stream_stop, Id}");
    return ParseStreamStop(parts[1]);
  }
  if (name == "functions") {
    if (arguments != 1 && arguments != 2) {
      return InvalidArgument("functions takes a prefix: {functions, <<\"lists:so\">>}");
    }
    return ParseFunctions(parts.subspan(1), limits);
  }
  return InvalidArgument("unknown request ", Show(parts[0]),
                         " (known: ping, version, targets, capture, top, watch_add, watches, "
                         "watch_remove, stream, stream_stop, functions)");
}

Term EncodeRequest(const Request& request) {
  struct Visitor {
    Term operator()(const PingRequest&) const { return Term::Tuple({Term::Atom("ping")}); }
    Term operator()(const VersionRequest&) const { return Term::Tuple({Term::Atom("version")}); }
    Term operator()(const TargetsRequest&) const { return Term::Tuple({Term::Atom("targets")}); }
    Term operator()(const CaptureRequest& capture) const {
      std::vector<std::pair<Term, Term>> options = CaptureOptionTerms(capture);
      if (capture.per_node) options.emplace_back(Term::Atom("per_node"), Term::Atom("true"));
      return Term::Tuple({Term::Atom("capture"), Term::Map(std::move(options))});
    }
    Term operator()(const StreamRequest& stream) const {
      std::vector<std::pair<Term, Term>> options = CaptureOptionTerms(stream);
      options.emplace_back(Term::Atom("interval_ms"), Term::Unsigned(stream.interval_ms));
      return Term::Tuple({Term::Atom("stream"), Term::Map(std::move(options))});
    }
    Term operator()(const StreamStopRequest& stop) const {
      return Term::Tuple({Term::Atom("stream_stop"), stop.id});
    }
    Term operator()(const FunctionsRequest& functions) const {
      std::vector<std::pair<Term, Term>> options = {
          {Term::Atom("scope"), Term::Atom(ScopeName(functions.scope))}};
      if (functions.node) options.emplace_back(Term::Atom("node"), Term::Atom(*functions.node));
      return Term::Tuple({Term::Atom("functions"), Term::Binary(functions.prefix),
                          Term::Map(std::move(options))});
    }
    Term operator()(const TopRequest& top) const {
      std::vector<std::pair<Term, Term>> options = {
          {Term::Atom("duration_ms"), Term::Unsigned(top.duration_ms)},
          {Term::Atom("scope"), Term::Atom(ScopeName(top.scope))}};
      if (top.node) options.emplace_back(Term::Atom("node"), Term::Atom(*top.node));
      options.emplace_back(Term::Atom("sort"), Term::Atom(TopSortName(top.sort)));
      options.emplace_back(Term::Atom("limit"), Term::Unsigned(top.limit));
      return Term::Tuple({Term::Atom("top"), Term::Map(std::move(options))});
    }
    Term operator()(const WatchAddRequest& watch) const {
      std::vector<Term> patterns;
      for (const auto& pattern : watch.patterns) patterns.push_back(Term::Binary(pattern));
      std::vector<std::pair<Term, Term>> options = {
          {Term::Atom("patterns"), Term::List(std::move(patterns))}};
      if (watch.node) options.emplace_back(Term::Atom("node"), Term::Atom(*watch.node));
      if (watch.mode != CaptureMode::kAuto) {
        options.emplace_back(Term::Atom("mode"), Term::Atom(CaptureModeName(watch.mode)));
      }
      if (watch.match_spec) {
        options.emplace_back(Term::Atom("match_spec"), Term::Binary(*watch.match_spec));
      }
      return Term::Tuple({Term::Atom("watch_add"), Term::Map(std::move(options))});
    }
    Term operator()(const WatchesRequest&) const { return Term::Tuple({Term::Atom("watches")}); }
    Term operator()(const WatchRemoveRequest& remove) const {
      return Term::Tuple({Term::Atom("watch_remove"), Term::Unsigned(remove.id)});
    }
  };
  return std::visit(Visitor{}, request);
}

StatusOr<IncomingCall> ParseIncomingCall(std::span<const uint8_t> message,
                                         const ProtocolLimits& limits) {
  ASSIGN_OR_RETURN(Term term, DecodeTerm(message, limits.decode));
  ASSIGN_OR_RETURN(GenCall call, ParseGenCall(term));
  StatusOr<Request> request = ParseRequest(call.request, limits);
  return IncomingCall{.call = std::move(call), .request = std::move(request)};
}

// ---------------------------------------------------------------------------------------------
// Watches.

Term EncodeWatchAddReply(uint32_t id) { return Ok(Term::Unsigned(id)); }

Term EncodeWatchesReply(const std::vector<WatchEntry>& watches) {
  std::vector<Term> list;
  for (const WatchEntry& w : watches) {
    std::vector<Term> patterns;
    for (const std::string& p : w.patterns) patterns.push_back(Term::Binary(p));
    std::vector<Term> beams;
    for (const WatchEntry::Beam& b : w.beams) {
      beams.push_back(AtomMap({{"os_pid", Term::Unsigned(static_cast<uint64_t>(b.os_pid))},
                               {"node", Term::Binary(b.node)},
                               {"state", Term::Binary(b.state)}}));
    }
    std::vector<std::pair<std::string_view, Term>> fields = {
        {"id", Term::Unsigned(w.id)},
        {"patterns", Term::List(std::move(patterns))},
        {"mode", Term::Atom(CaptureModeName(w.mode))},
        {"origin", Term::Atom(w.origin)},
        {"beams", Term::List(std::move(beams))}};
    if (w.node) fields.emplace_back("node", Term::Atom(*w.node));
    if (w.match_spec) fields.emplace_back("match_spec", Term::Binary(*w.match_spec));
    list.push_back(AtomMap(std::move(fields)));
  }
  return Ok(Term::List(std::move(list)));
}

Term EncodeOkReply() { return Term::Atom("ok"); }

// ---------------------------------------------------------------------------------------------
// Errors.

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadRequest:
      return "bad_request";
    case ErrorKind::kBusy:
      return "busy";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kInternal:
      return "internal";
    case ErrorKind::kTimeout:
      return "timeout";
  }
  return "internal";
}

Term EncodeError(ErrorKind kind, std::string_view message) {
  return Term::Tuple(
      {Term::Atom("error"), Term::Tuple({Term::Atom(ErrorKindName(kind)), Term::Binary(message)})});
}

ErrorKind ErrorKindOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied:
      return ErrorKind::kUnavailable;
    default:
      break;
  }
  for (const auto& [kind, code] : kErrorCodes) {
    if (code == status.code()) return kind;
  }
  return ErrorKind::kInternal;
}

Term EncodeErrorStatus(const Status& status) {
  return EncodeError(ErrorKindOf(status), status.message());
}

// ---------------------------------------------------------------------------------------------
// Replies.

Term EncodePingReply() {
  return Ok(Term::Atom("pong"));
}

Term EncodeVersionReply(std::string_view orion_version) {
  std::vector<Term> versions;
  for (int version : kProtocolVersions) versions.push_back(Term::Integer(version));
  return Ok(AtomMap({{"protocol", Term::Integer(kProtocolVersion)},
                     {"versions", Term::List(std::move(versions))},
                     {"orion", Term::Binary(orion_version)}}));
}

std::string_view NodeSourceName(NodeSource source) {
  switch (source) {
    case NodeSource::kEpmd: return "epmd";
    case NodeSource::kCmdline: return "cmdline";
    case NodeSource::kNone: break;
  }
  return "none";
}

Term EncodeTargetsReply(const TargetsResult& targets) {
  std::vector<Term> beams;
  for (const BeamTarget& beam : targets.beams) {
    beams.push_back(
        AtomMap({{"os_pid", Term::Integer(beam.os_pid)},
                 {"node", Term::Atom(beam.node ? *beam.node : "undefined")},
                 {"node_source", Term::Atom(NodeSourceName(beam.node_source))},
                 {"flavor", FlavorAtom(beam.flavor)},
                 {"function_probes", Term::Atom(beam.function_probes ? "true" : "false")}}));
  }
  std::vector<Term> peers;
  for (const std::string& peer : targets.peers)
    peers.push_back(AtomMap({{"node", Term::Atom(peer)}}));
  return Ok(AtomMap({{"node", Term::Atom(targets.node)},
                     {"beams", Term::List(std::move(beams))},
                     {"peers", Term::List(std::move(peers))}}));
}

StatusOr<TargetsResult> DecodeTargetsReply(const Term& reply, const ProtocolLimits& limits) {
  const auto parts = reply.elements();
  const bool pair = reply.kind() == TermKind::kTuple && parts.size() == 2;
  if (pair && parts[0].is_atom("error")) return ReadErrorReason(parts[1], limits);
  if (!pair || !parts[0].is_atom("ok") || parts[1].kind() != TermKind::kMap) {
    return InvalidArgument("a targets reply is {ok, #{node => ..., beams => [...]}}, not ",
                           Show(reply));
  }
  const Term& map = parts[1];
  TargetsResult out;
  ASSIGN_OR_RETURN(const Term* node, Required(map, "targets", "node"));
  if (node->kind() != TermKind::kAtom) return InvalidArgument("targets: node must be an atom");
  out.node = std::string(node->text());
  ASSIGN_OR_RETURN(const Term* beams, Required(map, "targets", "beams"));
  if (beams->kind() != TermKind::kList && !beams->is_nil()) {
    return InvalidArgument("targets: beams must be a list");
  }
  if (beams->elements().size() > limits.max_stream_nodes) {
    return InvalidArgument("targets: more than ", limits.max_stream_nodes, " beams");
  }
  for (const Term& beam : beams->elements()) {
    if (beam.kind() != TermKind::kMap) return InvalidArgument("targets: a beam must be a map");
    BeamTarget target;
    ASSIGN_OR_RETURN(const Term* os_pid, Required(beam, "targets: beam", "os_pid"));
    target.os_pid = static_cast<pid_t>(os_pid->to_int64().value_or(0));
    if (const Term* name = beam.map_find("node");
        name != nullptr && name->kind() == TermKind::kAtom && !name->is_atom("undefined")) {
      target.node = std::string(name->text());
    }
    if (const Term* source = beam.map_find("node_source")) {
      target.node_source = source->is_atom("epmd")      ? NodeSource::kEpmd
                           : source->is_atom("cmdline") ? NodeSource::kCmdline
                                                        : NodeSource::kNone;
    }
    if (const Term* flavor = beam.map_find("flavor")) {
      target.flavor = flavor->is_atom("jit") ? BeamFlavor::kJit : BeamFlavor::kEmu;
    }
    if (const Term* probes = beam.map_find("function_probes")) {
      target.function_probes = probes->is_atom("true");
    }
    out.beams.push_back(std::move(target));
  }
  if (const Term* peers = map.map_find("peers")) {
    if (peers->elements().size() > limits.max_peers) {
      return InvalidArgument("targets: more than ", limits.max_peers, " peers");
    }
    for (const Term& peer : peers->elements()) {
      const Term* name = peer.kind() == TermKind::kMap ? peer.map_find("node") : nullptr;
      if (name == nullptr || name->kind() != TermKind::kAtom) {
        return InvalidArgument("targets: a peer must be #{node => Node}");
      }
      out.peers.emplace_back(name->text());
    }
  }
  return out;
}

Term EncodeCaptureReply(const CaptureResult& result) {
  std::vector<Term> calls;
  calls.reserve(result.functions.size());
  for (const auto& function : result.functions) calls.push_back(CallMap(function));
  std::vector<Term> nodes;
  for (const auto& node : result.nodes) nodes.push_back(NodeMap(node, /*with_beams=*/true));
  std::vector<std::pair<std::string_view, Term>> lost;
  for (const auto& [key, member] : kLostFields) {
    lost.emplace_back(key, Term::Unsigned(result.lost.*member));
  }
  return Ok(AtomMap({{"calls", Term::List(std::move(calls))},
                     {"nodes", Term::List(std::move(nodes))},
                     {"lost", AtomMap(std::move(lost))},
                     {"duration_ms", Term::Unsigned(result.duration_ms)}}));
}

StatusOr<CaptureResult> DecodeCaptureReply(const Term& reply, const ProtocolLimits& limits) {
  const auto parts = reply.elements();
  const bool pair = reply.kind() == TermKind::kTuple && parts.size() == 2;
  if (pair && parts[0].is_atom("error")) return ReadErrorReason(parts[1], limits);
  if (!pair || !parts[0].is_atom("ok") || parts[1].kind() != TermKind::kMap) {
    return InvalidArgument("a capture reply is {ok, #{calls => ...}} or {error, {Kind, Message}}",
                           ", not ", Show(reply));
  }
  const Term& map = parts[1];
  CaptureResult result;
  ASSIGN_OR_RETURN(const Term* calls, Required(map, "capture reply", "calls"));
  ASSIGN_OR_RETURN(result.functions, ReadCalls(*calls, limits));
  ASSIGN_OR_RETURN(const Term* nodes, Required(map, "capture reply", "nodes"));
  ASSIGN_OR_RETURN(result.nodes, ReadNodes(*nodes, limits));
  ASSIGN_OR_RETURN(const Term* lost, Required(map, "capture reply", "lost"));
  ASSIGN_OR_RETURN(result.lost, ReadLost(*lost));
  ASSIGN_OR_RETURN(const Term* duration, Required(map, "capture reply", "duration_ms"));
  ASSIGN_OR_RETURN(result.duration_ms, ReadUnsigned(*duration, "duration_ms"));
  return result;
}

StatusOr<CaptureResult> MergeCaptureResults(std::vector<CaptureResult> results) {
  CaptureResult merged;
  std::map<std::string, probes::FunctionStats> by_mfa;
  for (CaptureResult& result : results) {
    for (probes::FunctionStats& function : result.functions) {
      const auto it = by_mfa.find(function.mfa);
      if (it == by_mfa.end()) {
        std::string mfa = function.mfa;
        by_mfa.emplace(std::move(mfa), std::move(function));
        continue;
      }
      RETURN_IF_ERROR(probes::MergeFunctionStats(it->second, function));
    }
    for (NodeStatus& node : result.nodes) merged.nodes.push_back(std::move(node));
    for (const auto& [key, member] : kLostFields) merged.lost.*member += result.lost.*member;
    merged.duration_ms = std::max(merged.duration_ms, result.duration_ms);
  }
  merged.functions.reserve(by_mfa.size());
  for (auto& [mfa, function] : by_mfa) merged.functions.push_back(std::move(function));
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Top replies.

std::string_view CaptureModeName(CaptureMode mode) {
  switch (mode) {
    case CaptureMode::kAuto:
      return "auto";
    case CaptureMode::kProbes:
      return "probes";
    case CaptureMode::kTracer:
      return "tracer";
  }
  return "auto";
}

std::string_view BeamOutcomeName(BeamOutcome outcome) {
  for (const auto& [value, name] : kBeamOutcomes) {
    if (value == outcome) return name;
  }
  return "failed";
}

std::string_view TopSortName(TopSort sort) {
  switch (sort) {
    case TopSort::kCpu:
      return "cpu";
    case TopSort::kReds:
      return "reds";
    case TopSort::kQueue:
      return "queue";
    case TopSort::kGc:
      return "gc";
    case TopSort::kSends:
      return "sends";
  }
  return "cpu";
}

Term EncodeTopBeam(const TopBeamEntry& beam) {
  std::vector<Term> processes;
  for (const TopProcessEntry& p : beam.processes) {
    processes.push_back(AtomMap({
        {"pid", Term::Binary(p.pid)},
        {"name", p.name ? Term::Binary(*p.name) : Term::Atom("undefined")},
        {"cpu_ns", Term::Unsigned(p.cpu_ns)},
        {"sched_count", Term::Unsigned(p.sched_count)},
        {"queue_len", Term::Unsigned(p.queue_len)},
        {"queue_len_max", Term::Unsigned(p.queue_len_max)},
        {"msgs_in", Term::Unsigned(p.msgs_in)},
        {"msgs_out", Term::Unsigned(p.msgs_out)},
        {"gc_count", Term::Unsigned(p.gc_count)},
        {"gc_p99_ns", p.gc_p99_ns ? Term::Unsigned(*p.gc_p99_ns) : Term::Atom("undefined")},
        {"reds", Term::Unsigned(p.reds)},
        {"memory", p.memory ? Term::Unsigned(*p.memory) : Term::Atom("undefined")},
        {"current_function",
         p.current_function ? Term::Binary(*p.current_function) : Term::Atom("undefined")},
    }));
  }
  std::vector<Term> ports;
  for (const TopPortEntry& p : beam.ports) {
    ports.push_back(AtomMap({{"port", Term::Binary(p.port)},
                             {"name", Term::Binary(p.name)},
                             {"bytes_out", Term::Unsigned(p.bytes_out)},
                             {"commands", Term::Unsigned(p.commands)}}));
  }
  std::vector<Term> schedulers;
  for (const TopSchedulerEntry& s : beam.schedulers) {
    schedulers.push_back(AtomMap({{"tid", Term::Unsigned(s.tid)},
                                  {"kind", Term::Atom(s.kind)},
                                  {"busy_ns", Term::Unsigned(s.busy_ns)},
                                  {"idle_ns", Term::Unsigned(s.idle_ns)},
                                  {"offcpu_ns", Term::Unsigned(s.offcpu_ns)}}));
  }
  Term ets = Term::Atom("undefined");
  if (beam.ets) {
    std::vector<Term> tables;
    for (const TopEtsTable& t : beam.ets->by_memory) {
      tables.push_back(AtomMap({{"id", Term::Binary(t.id)},
                                {"name", Term::Binary(t.name)},
                                {"owner", Term::Binary(t.owner)},
                                {"size", Term::Unsigned(t.size)},
                                {"memory", Term::Unsigned(t.memory)},
                                {"type", Term::Binary(t.type)}}));
    }
    ets = AtomMap({{"tables", Term::Unsigned(beam.ets->tables)},
                   {"described", Term::Unsigned(beam.ets->described)},
                   {"memory", Term::Unsigned(beam.ets->memory)},
                   {"by_memory", Term::List(std::move(tables))}});
  }
  return AtomMap({{"host", Term::Atom(beam.host)},
                  {"os_pid", Term::Unsigned(static_cast<uint64_t>(beam.os_pid))},
                  {"node", beam.node ? Term::Atom(*beam.node) : Term::Atom("undefined")},
                  {"flavor", FlavorAtom(beam.flavor)},
                  {"processes", Term::List(std::move(processes))},
                  {"ports", Term::List(std::move(ports))},
                  {"schedulers", Term::List(std::move(schedulers))},
                  {"queue_source", Term::Atom(beam.queue_source)},
                  {"ets", std::move(ets)}});
}

Term EncodeTopReply(std::vector<Term> beams, const std::vector<NodeStatus>& nodes,
                    uint64_t duration_ms) {
  std::vector<Term> node_maps;
  for (const auto& node : nodes) node_maps.push_back(NodeMap(node, /*with_beams=*/false));
  return Ok(AtomMap({{"beams", Term::List(std::move(beams))},
                     {"nodes", Term::List(std::move(node_maps))},
                     {"duration_ms", Term::Unsigned(duration_ms)}}));
}

StatusOr<TopReplyParts> ReadTopReply(const Term& reply, const ProtocolLimits& limits) {
  const auto parts = reply.elements();
  const bool pair = reply.kind() == TermKind::kTuple && parts.size() == 2;
  if (pair && parts[0].is_atom("error")) return ReadErrorReason(parts[1], limits);
  if (!pair || !parts[0].is_atom("ok") || parts[1].kind() != TermKind::kMap) {
    return InvalidArgument("a top reply is {ok, #{beams => ...}} or {error, {Kind, Message}}",
                           ", not ", Show(reply));
  }
  TopReplyParts out;
  ASSIGN_OR_RETURN(const Term* beams, Required(parts[1], "top reply", "beams"));
  if (beams->kind() != TermKind::kList || beams->tail() || beams->elements().size() > 64) {
    return InvalidArgument("top reply: beams must be a list of at most 64 maps");
  }
  for (const Term& beam : beams->elements()) {
    if (beam.kind() != TermKind::kMap || !beam.map_find("processes")) {
      return InvalidArgument("top reply: a beam must be a map with processes, not ", Show(beam));
    }
    out.beams.push_back(beam);
  }
  ASSIGN_OR_RETURN(const Term* nodes, Required(parts[1], "top reply", "nodes"));
  ASSIGN_OR_RETURN(out.nodes, ReadNodes(*nodes, limits));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Streams.

namespace {

Term IntervalFunctionMap(const probes::FunctionStats& function) {
  return AtomMap({{"name", Term::Binary(probes::DisplayMfa(function.mfa))},
                  {"mfa", Term::Binary(function.mfa)},
                  {"calls", Term::Unsigned(function.wall.count())},
                  {"exceptions", Term::Unsigned(function.exceptions)},
                  {"wall", Term::Binary(sketch::EncodeDDSketch(function.wall))},
                  {"cpu", Term::Binary(sketch::EncodeDDSketch(function.cpu))}});
}

Term NodeIntervalMap(const NodeInterval& node) {
  std::vector<Term> functions;
  functions.reserve(node.functions.size());
  for (const auto& function : node.functions) functions.push_back(IntervalFunctionMap(function));
  return AtomMap({{"node", Term::Atom(node.node)},
                  {"host", Term::Binary(node.host)},
                  {"os_pid", Term::Unsigned(node.os_pid)},
                  {"functions", Term::List(std::move(functions))},
                  {"lost", Term::Unsigned(node.lost)}});
}

Term StreamEventTerm(const StreamEvent& event) {
  struct Visitor {
    Term operator()(const IntervalEvent& interval) const {
      std::vector<Term> nodes;
      nodes.reserve(interval.nodes.size());
      for (const auto& node : interval.nodes) nodes.push_back(NodeIntervalMap(node));
      return Term::Tuple({Term::Atom("interval"),
                          AtomMap({{"seq", Term::Unsigned(interval.seq)},
                                   {"end_ms", Term::Unsigned(interval.end_ms)},
                                   {"interval_ms", Term::Unsigned(interval.interval_ms)},
                                   {"nodes", Term::List(std::move(nodes))},
                                   {"dropped", Term::Unsigned(interval.dropped)}})});
    }
    Term operator()(const NodeDownEvent& down) const {
      return Term::Tuple(
          {Term::Atom("node_down"), Term::Atom(down.node), Term::Binary(down.reason)});
    }
    Term operator()(const StoppedEvent& stopped) const {
      Term reason = Term::Atom(StopReasonName(stopped.reason));
      if (stopped.reason == StopReason::kOverload) {
        reason = Term::Tuple({reason, Term::Unsigned(stopped.rate)});
      } else if (stopped.reason == StopReason::kError) {
        reason = Term::Tuple({reason, Term::Binary(stopped.error)});
      }
      return Term::Tuple({Term::Atom("stopped"), std::move(reason)});
    }
  };
  return std::visit(Visitor{}, event);
}

StatusOr<probes::FunctionStats> ReadIntervalFunction(const Term& map, const std::string& what,
                                                     const ProtocolLimits& limits) {
  if (map.kind() != TermKind::kMap) return InvalidArgument(what, " must be a map");
  probes::FunctionStats function;
  ASSIGN_OR_RETURN(const Term* mfa, Required(map, what, "mfa"));
  if (mfa->kind() != TermKind::kBinary || mfa->text().empty() ||
      mfa->text().size() > limits.max_pattern_length) {
    return InvalidArgument(what, ": mfa must be a binary of 1 to ", limits.max_pattern_length,
                           " bytes, not ", Show(*mfa));
  }
  function.mfa = std::string(mfa->text());
  const std::string where = what + " (" + function.mfa + ")";
  ASSIGN_OR_RETURN(const Term* wall, Required(map, where, "wall"));
  ASSIGN_OR_RETURN(function.wall, ReadSketch(*wall, where + ": wall"));
  ASSIGN_OR_RETURN(const Term* cpu, Required(map, where, "cpu"));
  ASSIGN_OR_RETURN(function.cpu, ReadSketch(*cpu, where + ": cpu"));
  ASSIGN_OR_RETURN(const Term* calls, Required(map, where, "calls"));
  if (calls->to_uint64() != function.wall.count()) {
    return InvalidArgument(where, ": calls ", Show(*calls), " but its sketch holds ",
                           function.wall.count());
  }
  ASSIGN_OR_RETURN(const Term* exceptions, Required(map, where, "exceptions"));
  ASSIGN_OR_RETURN(function.exceptions, ReadUnsigned(*exceptions, where + ": exceptions"));
  return function;
}

StatusOr<NodeInterval> ReadNodeInterval(const Term& map, size_t index, const ProtocolLimits& limits,
                                        uint64_t& bins) {
  const std::string what = "interval: nodes[" + std::to_string(index) + "]";
  if (map.kind() != TermKind::kMap) return InvalidArgument(what, " must be a map");
  NodeInterval node;
  ASSIGN_OR_RETURN(const Term* name, Required(map, what, "node"));
  ASSIGN_OR_RETURN(node.node, ReadNodeName(*name, what + ": node"));
  ASSIGN_OR_RETURN(const Term* host, Required(map, what, "host"));
  if (host->kind() != TermKind::kBinary || host->text().size() > limits.max_pattern_length) {
    return InvalidArgument(what, ": host must be a binary of at most ", limits.max_pattern_length,
                           " bytes, not ", Show(*host));
  }
  node.host = std::string(host->text());
  ASSIGN_OR_RETURN(const Term* os_pid, Required(map, what, "os_pid"));
  ASSIGN_OR_RETURN(node.os_pid, ReadUnsigned(*os_pid, what + ": os_pid"));
  ASSIGN_OR_RETURN(const Term* lost, Required(map, what, "lost"));
  ASSIGN_OR_RETURN(node.lost, ReadUnsigned(*lost, what + ": lost"));
  ASSIGN_OR_RETURN(const Term* functions, Required(map, what, "functions"));
  if (functions->kind() != TermKind::kList || functions->tail() ||
      functions->elements().size() > limits.max_functions) {
    return InvalidArgument(what, ": functions must be a list of at most ", limits.max_functions,
                           " maps");
  }
  const auto elements = functions->elements();
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(probes::FunctionStats function,
                     ReadIntervalFunction(elements[i],
                                          what + ": functions[" + std::to_string(i) + "]", limits));
    bins += BinSpan(function.wall) + BinSpan(function.cpu);
    if (bins > limits.max_reply_bins) {
      return InvalidArgument("interval: sketches of more than ", limits.max_reply_bins, " bins");
    }
    node.functions.push_back(std::move(function));
  }
  std::sort(node.functions.begin(), node.functions.end(),
            [](const auto& a, const auto& b) { return a.mfa < b.mfa; });
  const auto twice =
      std::adjacent_find(node.functions.begin(), node.functions.end(),
                         [](const auto& a, const auto& b) { return a.mfa == b.mfa; });
  if (twice != node.functions.end()) {
    return InvalidArgument(what, ": ", twice->mfa, " is listed twice");
  }
  return node;
}

StatusOr<IntervalEvent> ReadInterval(const Term& map, const ProtocolLimits& limits) {
  if (map.kind() != TermKind::kMap) return InvalidArgument("interval: must be a map");
  IntervalEvent interval;
  ASSIGN_OR_RETURN(const Term* seq, Required(map, "interval", "seq"));
  ASSIGN_OR_RETURN(interval.seq, ReadUnsigned(*seq, "interval: seq"));
  ASSIGN_OR_RETURN(const Term* end_ms, Required(map, "interval", "end_ms"));
  ASSIGN_OR_RETURN(interval.end_ms, ReadUnsigned(*end_ms, "interval: end_ms"));
  ASSIGN_OR_RETURN(const Term* interval_ms, Required(map, "interval", "interval_ms"));
  ASSIGN_OR_RETURN(const uint64_t ms,
                   ReadInRange(*interval_ms, "interval: interval_ms", 1, limits.max_interval_ms));
  interval.interval_ms = static_cast<uint32_t>(ms);
  if (const Term* dropped = map.map_find("dropped")) {
    ASSIGN_OR_RETURN(interval.dropped, ReadUnsigned(*dropped, "interval: dropped"));
  }
  ASSIGN_OR_RETURN(const Term* nodes, Required(map, "interval", "nodes"));
  if (nodes->kind() != TermKind::kList || nodes->tail() ||
      nodes->elements().size() > limits.max_stream_nodes) {
    return InvalidArgument("interval: nodes must be a list of at most ", limits.max_stream_nodes,
                           " maps");
  }
  uint64_t bins = 0;
  const auto elements = nodes->elements();
  for (size_t i = 0; i < elements.size(); ++i) {
    ASSIGN_OR_RETURN(NodeInterval node, ReadNodeInterval(elements[i], i, limits, bins));
    interval.nodes.push_back(std::move(node));
  }
  return interval;
}

StatusOr<StoppedEvent> ReadStopped(const Term& reason, const ProtocolLimits& limits) {
  StoppedEvent stopped;
  if (reason.is_atom("done")) return stopped;
  if (reason.is_atom("stopped")) {
    stopped.reason = StopReason::kStopped;
    return stopped;
  }
  const auto parts = reason.elements();
  if (reason.kind() == TermKind::kTuple && parts.size() == 2) {
    if (parts[0].is_atom("overload")) {
      stopped.reason = StopReason::kOverload;
      ASSIGN_OR_RETURN(stopped.rate, ReadUnsigned(parts[1], "stopped: overload rate"));
      return stopped;
    }
    if (parts[0].is_atom("error") && parts[1].kind() == TermKind::kBinary) {
      stopped.reason = StopReason::kError;
      stopped.error = Truncated(parts[1].text(), limits.max_error_length);
      return stopped;
    }
  }
  return InvalidArgument(
      "stopped: the reason must be done, stopped, {overload, Rate} or {error, Message}, not ",
      Show(reason));
}

}  // namespace

std::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kDone:
      return "done";
    case StopReason::kStopped:
      return "stopped";
    case StopReason::kOverload:
      return "overload";
    case StopReason::kError:
      return "error";
  }
  return "error";
}

Term StreamMessageTerm(const Term& id, const StreamEvent& event) {
  return Term::Tuple({Term::Atom("orion_stream"), id, StreamEventTerm(event)});
}

std::vector<uint8_t> EncodeStreamMessage(const Term& id, const StreamEvent& event) {
  return EncodeTerm(StreamMessageTerm(id, event));
}

StatusOr<StreamMessage> DecodeStreamMessage(const Term& message, const ProtocolLimits& limits) {
  const auto parts = message.elements();
  if (message.kind() != TermKind::kTuple || parts.size() != 3 ||
      !parts[0].is_atom("orion_stream") || parts[2].kind() != TermKind::kTuple ||
      parts[2].elements().empty()) {
    return InvalidArgument("not a stream message {orion_stream, Id, Event}: ", Show(message));
  }
  const auto event = parts[2].elements();
  if (event[0].is_atom("interval") && event.size() == 2) {
    ASSIGN_OR_RETURN(IntervalEvent interval, ReadInterval(event[1], limits));
    return StreamMessage{.id = parts[1], .event = std::move(interval)};
  }
  if (event[0].is_atom("node_down") && event.size() == 3) {
    NodeDownEvent down;
    ASSIGN_OR_RETURN(down.node, ReadNodeName(event[1], "node_down: node"));
    if (event[2].kind() != TermKind::kBinary) {
      return InvalidArgument("node_down: the reason must be a binary, not ", Show(event[2]));
    }
    down.reason = Truncated(event[2].text(), limits.max_error_length);
    return StreamMessage{.id = parts[1], .event = std::move(down)};
  }
  if (event[0].is_atom("stopped") && event.size() == 2) {
    ASSIGN_OR_RETURN(StoppedEvent stopped, ReadStopped(event[1], limits));
    return StreamMessage{.id = parts[1], .event = std::move(stopped)};
  }
  return InvalidArgument("unknown stream event ", Show(parts[2]),
                         " (known: interval, node_down, stopped)");
}

Term EncodeStreamReply(const Term& id) {
  return Ok(id);
}

StatusOr<Term> DecodeStreamReply(const Term& reply, const ProtocolLimits& limits) {
  const auto parts = reply.elements();
  const bool pair = reply.kind() == TermKind::kTuple && parts.size() == 2;
  if (pair && parts[0].is_atom("error")) return ReadErrorReason(parts[1], limits);
  if (!pair || !parts[0].is_atom("ok") || parts[1].kind() != TermKind::kReference) {
    return InvalidArgument("a stream reply is {ok, Ref} or {error, {Kind, Message}}, not ",
                           Show(reply));
  }
  return parts[1];
}

// ---------------------------------------------------------------------------------------------
// Function names.

Term EncodeFunctionsReply(const FunctionsResult& result) {
  std::vector<Term> names;
  names.reserve(result.functions.size());
  for (const std::string& name : result.functions) names.push_back(Term::Binary(name));
  return Ok(AtomMap({{"functions", Term::List(std::move(names))},
                     {"truncated", Term::Atom(result.truncated ? "true" : "false")}}));
}

StatusOr<FunctionsResult> DecodeFunctionsReply(const Term& reply, const ProtocolLimits& limits) {
  const auto parts = reply.elements();
  const bool pair = reply.kind() == TermKind::kTuple && parts.size() == 2;
  if (pair && parts[0].is_atom("error")) return ReadErrorReason(parts[1], limits);
  if (!pair || !parts[0].is_atom("ok") || parts[1].kind() != TermKind::kMap) {
    return InvalidArgument("a functions reply is {ok, #{functions => [...]}} or {error, ...}, not ",
                           Show(reply));
  }
  ASSIGN_OR_RETURN(const Term* names, Required(parts[1], "functions reply", "functions"));
  ASSIGN_OR_RETURN(const Term* truncated, Required(parts[1], "functions reply", "truncated"));
  if (names->kind() != TermKind::kList || names->tail() ||
      names->elements().size() > limits.max_function_names ||
      (!truncated->is_atom("true") && !truncated->is_atom("false"))) {
    return InvalidArgument("functions reply: functions must be a list of at most ",
                           limits.max_function_names, " binaries, truncated true or false");
  }
  FunctionsResult result;
  result.truncated = truncated->is_atom("true");
  size_t bytes = 0;
  for (const Term& name : names->elements()) {
    if (name.kind() != TermKind::kBinary || name.text().empty() ||
        name.text().size() > limits.max_pattern_length) {
      return InvalidArgument("functions reply: a name must be a binary of 1 to ",
                             limits.max_pattern_length, " bytes, not ", Show(name));
    }
    bytes += name.text().size();
    if (bytes > limits.max_function_bytes) {
      return InvalidArgument("functions reply: more than ", limits.max_function_bytes,
                             " bytes of names");
    }
    result.functions.emplace_back(name.text());
  }
  return result;
}

FunctionsResult MergeFunctions(std::vector<FunctionsResult> parts, const ProtocolLimits& limits) {
  FunctionsResult merged;
  std::vector<std::string> all;
  for (FunctionsResult& part : parts) {
    merged.truncated = merged.truncated || part.truncated;
    for (std::string& name : part.functions) all.push_back(std::move(name));
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  size_t bytes = 0;
  for (std::string& name : all) {
    if (merged.functions.size() == limits.max_function_names ||
        bytes + name.size() > limits.max_function_bytes) {
      merged.truncated = true;
      break;
    }
    bytes += name.size();
    merged.functions.push_back(std::move(name));
  }
  return merged;
}

}  // namespace orion::protocol
