#include "userspace/ui/capture_registry.h"

#include <algorithm>
#include <deque>
#include <map>

#include "userspace/cli/latency_report.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::ui {

using nlohmann::json;

namespace {

// The protocol's own bounds, so a request the daemon would refuse is refused here first.
const protocol::ProtocolLimits kLimits;
const size_t kMaxPatterns = kLimits.max_patterns;
const size_t kMaxPatternBytes = kLimits.max_pattern_length;
const size_t kMaxMatchSpecBytes = kLimits.max_match_spec_length;
constexpr size_t kMaxNodeBytes = 255;

StatusOr<uint64_t> UnsignedField(const json& body, const char* key, uint64_t low, uint64_t high) {
  const json& value = body[key];
  if (!value.is_number_integer() || value.get<int64_t>() < 0) {
    return InvalidArgument("\"", key, "\" must be a whole number from ", low, " to ", high);
  }
  const uint64_t n = value.get<uint64_t>();
  if (n < low || n > high) {
    return InvalidArgument("\"", key, "\" must be from ", low, " to ", high, ", not ", n);
  }
  return n;
}

StatusOr<std::string> StringField(const json& body, const char* key, size_t max_bytes) {
  const json& value = body[key];
  if (value.is_null()) return std::string();
  if (!value.is_string()) return InvalidArgument("\"", key, "\" must be a string");
  std::string text = value.get<std::string>();
  if (text.size() > max_bytes) {
    return InvalidArgument("\"", key, "\" is longer than ", max_bytes, " bytes");
  }
  return text;
}

}  // namespace

StatusOr<CaptureOptions> ParseCaptureOptions(const json& body) {
  if (!body.is_object()) {
    return InvalidArgument("the body must be a JSON object such as {\"patterns\": [\"lists:sort/1\"]}");
  }
  static const char* const kKnown[] = {"patterns", "match_spec", "duration_s", "node",
                                       "interval_ms", "max_rate"};
  for (const auto& [key, value] : body.items()) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return key == k; }) == std::end(kKnown)) {
      return InvalidArgument("unknown field \"", key,
                             "\" (fields: patterns, match_spec, duration_s, node, interval_ms, "
                             "max_rate)");
    }
  }
  CaptureOptions out;
  const json& patterns = body.contains("patterns") ? body["patterns"] : json();
  if (!patterns.is_array() || patterns.empty()) {
    return InvalidArgument("\"patterns\" must be a non-empty list such as [\"lists:sort/1\"]");
  }
  if (patterns.size() > kMaxPatterns) {
    return InvalidArgument("at most ", kMaxPatterns, " patterns, not ", patterns.size());
  }
  for (const json& p : patterns) {
    if (!p.is_string() || p.get<std::string>().empty() ||
        p.get<std::string>().size() > kMaxPatternBytes) {
      return InvalidArgument("each pattern must be a non-empty string of at most ",
                             kMaxPatternBytes, " bytes (mod:fun/arity, Mod.fun/arity)");
    }
    out.patterns.push_back(p.get<std::string>());
  }
  if (body.contains("match_spec")) {
    ASSIGN_OR_RETURN(out.match_spec, StringField(body, "match_spec", kMaxMatchSpecBytes));
  }
  if (body.contains("node")) {
    ASSIGN_OR_RETURN(out.node, StringField(body, "node", kMaxNodeBytes));
  }
  if (body.contains("duration_s")) {
    ASSIGN_OR_RETURN(const uint64_t d, UnsignedField(body, "duration_s", 1, kMaxDurationS));
    out.duration_s = static_cast<uint32_t>(d);
  }
  if (body.contains("interval_ms")) {
    ASSIGN_OR_RETURN(const uint64_t i, UnsignedField(body, "interval_ms", kLimits.min_interval_ms,
                                                      kLimits.max_interval_ms));
    out.interval_ms = static_cast<uint32_t>(i);
  }
  if (body.contains("max_rate")) {
    ASSIGN_OR_RETURN(out.max_rate, UnsignedField(body, "max_rate", 0, uint64_t{1} << 40));
  }
  return out;
}

protocol::StreamRequest ToStreamRequest(const CaptureOptions& options) {
  protocol::StreamRequest request;
  request.patterns = options.patterns;
  request.duration_ms = uint64_t{options.duration_s} * 1000;
  request.interval_ms = options.interval_ms;
  if (!options.node.empty()) request.node = options.node;
  request.scope = protocol::Scope::kCluster;
  request.max_rate = options.max_rate;
  if (!options.match_spec.empty()) request.match_spec = options.match_spec;
  return request;
}

json SketchBinsJson(const sketch::CountSketch& sketch) {
  json bins = json::array();
  sketch.positive_store().for_each(
      [&](int index, uint64_t count) { bins.push_back(json::array({index, count})); });
  return {{"zero", sketch.zero_count()}, {"bins", std::move(bins)}};
}

json IntervalJson(const protocol::IntervalEvent& interval) {
  json nodes = json::array();
  for (const protocol::NodeInterval& node : interval.nodes) {
    json functions = json::array();
    for (const probes::FunctionStats& f : node.functions) {
      functions.push_back({{"name", probes::DisplayMfa(f.mfa)},
                           {"mfa", f.mfa},
                           {"calls", f.wall.count()},
                           {"exceptions", f.exceptions},
                           {"wall", SketchBinsJson(f.wall)},
                           {"cpu", SketchBinsJson(f.cpu)}});
    }
    nodes.push_back({{"node", node.node},
                     {"host", node.host},
                     {"os_pid", node.os_pid},
                     {"lost", node.lost},
                     {"functions", std::move(functions)}});
  }
  return {{"seq", interval.seq},
          {"end_ms", interval.end_ms},
          {"interval_ms", interval.interval_ms},
          {"dropped", interval.dropped},
          {"nodes", std::move(nodes)}};
}

std::string FormatEvent(const Event& event) {
  return "id: " + std::to_string(event.id) + "\nevent: " + event.type + "\ndata: " + event.data +
         "\n\n";
}

Cursor ResumeCursor(std::optional<uint64_t> last_event_id) {
  if (!last_event_id.has_value()) return Cursor{};
  return Cursor{.after = *last_event_id, .live = true};
}

struct CaptureRegistry::Capture {
  std::string id;
  CaptureOptions options;
  uint64_t started_ms = 0;
  std::string state = "running";
  std::string reason;
  // The kept window: intervals, node and state events, oldest first (ids increasing). Shared
  // with the event streams sending them, never copied.
  std::deque<std::shared_ptr<const Event>> events;
  size_t event_bytes = 0;
  size_t kept_intervals = 0;
  uint64_t newest_end_ms = 0;  // of the kept intervals
  uint64_t last_event_id = 0;
  bool closed = false;  // deleted: its last event is in `events`
  // The summary since the start: every interval merged.
  std::map<std::string, probes::FunctionStats> functions;
  struct Node {
    std::string host;
    uint64_t os_pid = 0;
    bool down = false;
    std::string error;
    uint64_t calls = 0;
    uint64_t lost = 0;
  };
  std::map<std::string, Node> nodes;
  uint64_t lost = 0;
  uint64_t intervals = 0;
  uint64_t dropped = 0;
  uint64_t last_seq = 0;     // the seq of the last interval event (the capture's numbering)
  uint64_t last_end_ms = 0;
  std::string merge_error;  // a sketch that could not be merged (should not happen)
};

CaptureRegistry::CaptureRegistry(RegistryLimits limits) : limits_(limits) {}

CaptureRegistry::~CaptureRegistry() { Shutdown(); }

StatusOr<std::string> CaptureRegistry::Add(CaptureOptions options, uint64_t now_ms) {
  std::lock_guard lock(mu_);
  if (captures_.size() >= limits_.max_captures) {
    return ResourceExhausted("orion ui holds ", limits_.max_captures,
                             " captures already: delete one first");
  }
  auto capture = std::make_shared<Capture>();
  capture->id = "c" + std::to_string(next_id_++);
  capture->options = std::move(options);
  capture->started_ms = now_ms;
  captures_.push_back(capture);
  return capture->id;
}

CaptureRegistry::Capture* CaptureRegistry::FindLocked(const std::string& id) const {
  for (const auto& c : captures_) {
    if (c->id == id) return c.get();
  }
  return nullptr;
}

bool CaptureRegistry::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(captures_.begin(), captures_.end(),
                         [&](const auto& c) { return c->id == id; });
  if (it == captures_.end()) return false;
  Capture& capture = **it;
  capture.state = "deleted";
  Append(capture, "state", json{{"state", "deleted"}}.dump(), 0);
  capture.closed = true;
  // Freed once the last event stream that holds it has sent what it had not sent yet.
  capture.functions.clear();
  capture.nodes.clear();
  captures_.erase(it);
  changed_.notify_all();
  return true;
}

std::shared_ptr<CaptureRegistry::Capture> CaptureRegistry::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& c : captures_) {
    if (c->id == id) return c;
  }
  return nullptr;
}

std::optional<CaptureOptions> CaptureRegistry::Options(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Capture* capture = FindLocked(id);
  if (capture == nullptr) return std::nullopt;
  return capture->options;
}

std::vector<std::string> CaptureRegistry::Ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& c : captures_) ids.push_back(c->id);
  return ids;
}

void CaptureRegistry::Append(Capture& capture, std::string type, std::string data,
                             uint64_t end_ms) {
  // Exactly its size: dump() leaves up to twice that in capacity, kept as long as the window.
  data.shrink_to_fit();
  auto event = std::make_shared<const Event>(
      Event{++capture.last_event_id, std::move(type), std::move(data), end_ms});
  capture.event_bytes += event->data.size();
  if (event->type == "interval") {
    ++capture.kept_intervals;
    capture.newest_end_ms = std::max(capture.newest_end_ms, event->end_ms);
  }
  capture.events.push_back(std::move(event));
  Trim(capture);
}

void CaptureRegistry::Trim(Capture& capture) {
  // At least window_ms of intervals (one more than fits, so the window is never short).
  const size_t max_intervals =
      limits_.window_ms / std::max<uint32_t>(capture.options.interval_ms, 1) + 2;
  while (capture.events.size() > 1) {
    const Event& oldest = *capture.events.front();
    const bool too_old =
        oldest.type == "interval" &&
        oldest.end_ms + limits_.window_ms + capture.options.interval_ms < capture.newest_end_ms;
    const bool too_many = capture.kept_intervals > max_intervals;
    const bool too_big = capture.event_bytes > limits_.max_window_bytes;
    const bool before_intervals = oldest.type != "interval" && capture.kept_intervals > 0 &&
                                  (too_many || too_big);
    if (!too_old && !too_many && !too_big && !before_intervals) break;
    if (oldest.type == "interval") --capture.kept_intervals;
    capture.event_bytes -= oldest.data.size();
    capture.events.pop_front();
  }
}

KeptWindow CaptureRegistry::KeptLocked(const Capture& capture) {
  return KeptWindow{.intervals = capture.kept_intervals,
                    .events = capture.events.size(),
                    .bytes = capture.event_bytes};
}

KeptWindow CaptureRegistry::Kept() const {
  std::lock_guard lock(mu_);
  KeptWindow total;
  for (const auto& c : captures_) {
    const KeptWindow kept = KeptLocked(*c);
    total.intervals += kept.intervals;
    total.events += kept.events;
    total.bytes += kept.bytes;
  }
  return total;
}

void CaptureRegistry::AddInterval(const std::string& id, const protocol::IntervalEvent& interval) {
  json event = IntervalJson(interval);
  std::lock_guard lock(mu_);
  Capture* capture = FindLocked(id);
  if (capture == nullptr) return;
  // The capture's own numbering, one per interval of time since its first: a restarted stream
  // (whose seq starts at 1 again) goes on after the old one, and a pause shows as a gap.
  const uint64_t step =
      capture->last_seq == 0 || interval.end_ms <= capture->last_end_ms
          ? 1
          : std::max<uint64_t>(1, (interval.end_ms - capture->last_end_ms +
                                   capture->options.interval_ms / 2) /
                                      std::max<uint32_t>(capture->options.interval_ms, 1));
  capture->last_seq += step;
  capture->last_end_ms = std::max(capture->last_end_ms, interval.end_ms);
  event["seq"] = capture->last_seq;
  event["stream_seq"] = interval.seq;
  std::string data = event.dump();
  ++capture->intervals;
  capture->dropped = std::max(capture->dropped, interval.dropped);
  for (const protocol::NodeInterval& node : interval.nodes) {
    Capture::Node& n = capture->nodes[node.node];
    n.host = node.host;
    n.os_pid = node.os_pid;
    n.down = false;
    n.error.clear();
    n.lost += node.lost;
    capture->lost += node.lost;
    for (const probes::FunctionStats& f : node.functions) {
      n.calls += f.wall.count();
      auto [it, inserted] = capture->functions.try_emplace(f.mfa, f);
      if (!inserted) {
        const Status merged = probes::MergeFunctionStats(it->second, f);
        if (!merged.ok()) capture->merge_error = merged.message();
      }
    }
  }
  Append(*capture, "interval", std::move(data), interval.end_ms);
  changed_.notify_all();
}

void CaptureRegistry::NodeDown(const std::string& id, const std::string& node,
                               const std::string& reason) {
  std::lock_guard lock(mu_);
  Capture* capture = FindLocked(id);
  if (capture == nullptr) return;
  // A BEAM node by its name; a lost daemon ("orion@host") marks its host's nodes.
  const size_t at = node.find('@');
  const std::string host = at == std::string::npos ? "" : node.substr(at + 1);
  bool known = false;
  for (auto& [name, n] : capture->nodes) {
    if (name == node || (!host.empty() && n.host == host)) {
      n.down = true;
      n.error = reason;
      known = true;
    }
  }
  if (!known) {
    Capture::Node& n = capture->nodes[node];
    n.host = host;
    n.down = true;
    n.error = reason;
  }
  Append(*capture, "node", json{{"node", node}, {"status", "down"}, {"reason", reason}}.dump(), 0);
  changed_.notify_all();
}

void CaptureRegistry::SetState(const std::string& id, const std::string& state,
                               const std::string& reason) {
  std::lock_guard lock(mu_);
  Capture* capture = FindLocked(id);
  if (capture == nullptr || (capture->state == state && capture->reason == reason)) return;
  capture->state = state;
  capture->reason = reason;
  Append(*capture, "state", json{{"state", state}, {"reason", reason}}.dump(), 0);
  changed_.notify_all();
}

std::optional<std::string> CaptureRegistry::State(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Capture* capture = FindLocked(id);
  if (capture == nullptr) return std::nullopt;
  return capture->state;
}

json CaptureRegistry::List() const {
  std::lock_guard lock(mu_);
  json captures = json::array();
  for (const auto& c : captures_) {
    captures.push_back({{"id", c->id},
                        {"patterns", c->options.patterns},
                        {"node", c->options.node},
                        {"match_spec", c->options.match_spec},
                        {"state", c->state},
                        {"started_ms", c->started_ms},
                        {"duration_s", c->options.duration_s}});
  }
  return {{"captures", std::move(captures)}};
}

std::optional<json> CaptureRegistry::Summary(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Capture* c = FindLocked(id);
  if (c == nullptr) return std::nullopt;
  json calls = json::array();
  for (const auto& [mfa, f] : c->functions) {
    json entry = cli::FunctionJson(f);
    entry["name"] = probes::DisplayMfa(mfa);
    calls.push_back(std::move(entry));
  }
  json nodes = json::array();
  for (const auto& [name, n] : c->nodes) {
    nodes.push_back({{"node", name},
                     {"host", n.host},
                     {"os_pid", n.os_pid},
                     {"status", n.down ? "down" : "ok"},
                     {"calls", n.calls},
                     {"lost", n.lost},
                     {"error", n.error}});
  }
  json doc = {{"id", c->id},
              {"state", c->state},
              {"reason", c->reason},
              {"mode", "daemon"},
              {"scope", "cluster"},
              {"node", c->options.node},
              {"patterns", c->options.patterns},
              {"match_spec", c->options.match_spec},
              {"started_ms", c->started_ms},
              {"duration_s", c->options.duration_s},
              {"interval_ms", c->options.interval_ms},
              {"intervals", c->intervals},
              {"dropped", c->dropped},
              {"kept", {{"intervals", KeptLocked(*c).intervals},
                        {"events", KeptLocked(*c).events},
                        {"bytes", KeptLocked(*c).bytes}}},
              {"calls", std::move(calls)},
              {"lost", {{"total", c->lost}}},
              {"nodes", std::move(nodes)}};
  if (!c->merge_error.empty()) doc["error"] = c->merge_error;
  return doc;
}

CaptureRegistry::Batch CaptureRegistry::Next(Capture& capture, Cursor& cursor,
                                             std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  Batch batch;
  // An id this capture never gave (a page that outlived an earlier orion ui): replay it all.
  if (cursor.live && cursor.after > capture.last_event_id) cursor = Cursor{};
  if (cursor.live && !shutdown_ &&
      (capture.events.empty() || capture.events.back()->id <= cursor.after)) {
    changed_.wait_for(lock, wait, [&] {
      return shutdown_ || (!capture.events.empty() && capture.events.back()->id > cursor.after);
    });
  }
  // The kept events after the cursor, at most max_batch_bytes of them (at least one).
  auto it = std::upper_bound(capture.events.begin(), capture.events.end(), cursor.after,
                             [](uint64_t after, const auto& e) { return after < e->id; });
  size_t bytes = 0;
  for (; it != capture.events.end(); ++it) {
    const auto& event = *it;
    if (!batch.events.empty() && bytes + event->data.size() > limits_.max_batch_bytes) break;
    cursor.after = event->id;
    // The replay leaves out the old states: where the capture stands now comes after it.
    if (!cursor.live && event->type == "state") continue;
    bytes += event->data.size();
    batch.events.push_back(event);
  }
  const bool caught_up = it == capture.events.end();
  if (!cursor.live && caught_up) {
    batch.events.push_back(std::make_shared<const Event>(
        Event{capture.last_event_id, "state",
              json{{"state", capture.state}, {"reason", capture.reason}}.dump(), 0}));
    cursor = Cursor{.after = capture.last_event_id, .live = true};
  }
  batch.closed = shutdown_ || (capture.closed && caught_up && cursor.live);
  return batch;
}

void CaptureRegistry::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  changed_.notify_all();
}

}  // namespace orion::ui
