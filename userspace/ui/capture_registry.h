// `orion ui`'s captures (docs/ui.md, "How it works"): what each capture asked for, its state, a
// kept window of its events for the pages that connect later or reconnect, and its summary so
// far. Thread-safe: the daemon link adds what the streams deliver, the HTTP threads read.
//
//   CaptureRegistry registry;
//   ASSIGN_OR_RETURN(std::string id, registry.Add(options, NowMs()));   // "c1"
//   registry.AddInterval(id, interval);               // from {orion_stream, Ref, {interval, ...}}
//   auto capture = registry.Find(id);                 // an SSE client holds it
//   Cursor cursor = ResumeCursor(last_event_id);      // nullopt: replay the kept window
//   while (!(batch = registry.Next(*capture, cursor, 1s)).closed) send(batch.events);
//
// Memory is bounded: at most max_captures captures, and each keeps window_ms of intervals (at
// least 10 minutes) within max_window_bytes of event text; the summary holds one merged entry
// per function and per node. An event is stored once and shared (never copied) with the event
// streams that send it; one Next hands out at most max_batch_bytes of it, so a replay or a slow
// client holds a batch beyond the window, not a second window.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "userspace/protocol/protocol.h"

namespace orion::ui {

// What POST /api/captures asks for (docs/ui.md, "HTTP API").
struct CaptureOptions {
  std::vector<std::string> patterns;
  std::string match_spec;  // "" = every call
  uint32_t duration_s = 600;
  std::string node;  // "" = every BEAM node
  uint32_t interval_ms = 1000;
  uint64_t max_rate = 2'000'000;  // each host's overload guard; 0: none
};

inline constexpr uint32_t kMaxDurationS = 600;

// The body of POST /api/captures, checked: InvalidArgument says which field is wrong and why.
StatusOr<CaptureOptions> ParseCaptureOptions(const nlohmann::json& body);

// The stream request that runs `options` (every host of the cluster).
protocol::StreamRequest ToStreamRequest(const CaptureOptions& options);

// An interval as the page reads it: per node and function, the counts and the sketches' bins
// ({"zero": Z, "bins": [[index, count], ...]}, the kernel mapping's own indices).
nlohmann::json IntervalJson(const protocol::IntervalEvent& interval);
nlohmann::json SketchBinsJson(const sketch::CountSketch& sketch);

// One server-sent event: `id:`, `event:` and `data:` lines.
struct Event {
  uint64_t id = 0;
  std::string type;  // "interval", "state", "node"
  std::string data;  // JSON, one line
  uint64_t end_ms = 0;  // intervals: when the interval ended
};
std::string FormatEvent(const Event& event);

struct RegistryLimits {
  size_t max_captures = 16;
  uint64_t window_ms = 600'000;            // intervals kept behind the newest one
  size_t max_window_bytes = 48u << 20;     // event text kept per capture
  size_t max_batch_bytes = 1u << 20;       // event text one Next hands out (at least one event)
};

// Where an event stream stands: first the kept window (the replay), then the capture's state,
// then live events.
struct Cursor {
  uint64_t after = 0;  // the last event id handed out
  bool live = false;   // the replay and its state were handed out
};
// A reconnecting stream's Last-Event-ID: live after it (replayed whole if the capture never gave
// that id); nullopt: a new stream, the replay first.
Cursor ResumeCursor(std::optional<uint64_t> last_event_id);

// What a capture holds in its kept window (GET /api/captures/ID "kept").
struct KeptWindow {
  size_t intervals = 0;
  size_t events = 0;
  size_t bytes = 0;  // event text (the data lines)
};

class CaptureRegistry {
 public:
  struct Capture;  // opaque: an SSE client holds one while it streams

  explicit CaptureRegistry(RegistryLimits limits = {});
  ~CaptureRegistry();

  // A new capture in state "running"; ResourceExhausted when max_captures are held.
  StatusOr<std::string> Add(CaptureOptions options, uint64_t now_ms);
  // Ends the capture's event streams with {"state": "deleted"} and forgets it; false if unknown.
  bool Remove(const std::string& id);
  std::shared_ptr<Capture> Find(const std::string& id) const;
  std::optional<CaptureOptions> Options(const std::string& id) const;
  std::vector<std::string> Ids() const;

  // What the capture's stream delivered. Unknown ids are ignored (a capture deleted meanwhile).
  void AddInterval(const std::string& id, const protocol::IntervalEvent& interval);
  void NodeDown(const std::string& id, const std::string& node, const std::string& reason);
  // "running", "done", "stopped", "overloaded", "error"; an event when it changes.
  void SetState(const std::string& id, const std::string& state, const std::string& reason);
  std::optional<std::string> State(const std::string& id) const;

  // GET /api/captures and GET /api/captures/ID.
  nlohmann::json List() const;
  std::optional<nlohmann::json> Summary(const std::string& id) const;

  // The next events for `cursor` (moved past them), at most max_batch_bytes of them: while
  // replaying, the kept window's intervals and node events, then the current state; then live
  // events, waiting up to `wait` when there are none yet. `closed` once the capture was deleted
  // (its last event handed out) or the registry shut down.
  struct Batch {
    std::vector<std::shared_ptr<const Event>> events;
    bool closed = false;
  };
  Batch Next(Capture& capture, Cursor& cursor, std::chrono::milliseconds wait);

  // What every capture's kept window holds, summed (GET /api/status "memory").
  KeptWindow Kept() const;

  // Wakes every waiting client; Next answers closed from then on.
  void Shutdown();

 private:
  Capture* FindLocked(const std::string& id) const;
  void Append(Capture& capture, std::string type, std::string data, uint64_t end_ms);
  static KeptWindow KeptLocked(const Capture& capture);
  void Trim(Capture& capture);

  const RegistryLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::shared_ptr<Capture>> captures_;  // in creation order
  uint64_t next_id_ = 1;
  bool shutdown_ = false;
};

}  // namespace orion::ui
