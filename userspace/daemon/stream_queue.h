// The bookkeeping of the daemon's streams (docs/protocol.md, "Streams"), apart from any I/O so
// that it can be tested alone:
//
//   StreamQueue: the events of one stream waiting to reach its caller, in order, bounded. An
//   interval that does not fit pushes the oldest queued interval out; the drops are counted and
//   the next interval delivered says how many (`dropped`). node_down and stopped are never
//   dropped (there are at most a few of them).
//
//   StreamTable: which caller owns which streams, with a bound per daemon and per caller.
//
//   StreamQueue queue({.max_events = 16, .max_bytes = 8 << 20});
//   queue.Push(interval);                       // from the capture's thread
//   queue.Drain(id, [&](std::vector<uint8_t> bytes) { return reply.Send(caller, bytes); });
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "userspace/protocol/protocol.h"

namespace orion::daemon {

struct StreamQueueLimits {
  size_t max_events = 16;           // events waiting (intervals beyond it push the oldest out)
  size_t max_bytes = size_t{8} << 20;  // their approximate size in memory
};

// Roughly the bytes an event holds (its sketches' bins and names): what the queue bounds.
size_t ApproxEventBytes(const protocol::StreamEvent& event);

class StreamQueue {
 public:
  explicit StreamQueue(StreamQueueLimits limits = {}) : limits_(limits) {}

  // Appends an event. Intervals that no longer fit are dropped, oldest first (never the one
  // just pushed, never a node_down or stopped event).
  void Push(protocol::StreamEvent event);

  // Offers the queued events to `send`, oldest first, each as {orion_stream, Id, Event} with
  // the version byte (an interval carries the drops counted so far); stops at the first one
  // `send` refuses, which stays queued. Returns how many were delivered.
  size_t Drain(const protocol::Term& id, const std::function<bool(std::vector<uint8_t>)>& send);

  bool empty() const { return events_.empty(); }
  size_t size() const { return events_.size(); }
  size_t bytes() const { return bytes_; }
  uint64_t dropped() const { return dropped_; }  // intervals dropped so far
  bool stopped_queued() const { return stopped_queued_; }  // the last event is in

 private:
  struct Queued {
    protocol::StreamEvent event;
    size_t bytes;
  };
  StreamQueueLimits limits_;
  std::deque<Queued> events_;
  size_t bytes_ = 0;
  uint64_t dropped_ = 0;
  bool stopped_queued_ = false;
};

struct StreamTableLimits {
  size_t max_streams = 8;      // running at once on this daemon (streams from peers included)
  size_t max_per_caller = 4;   // of one calling process
};

// Streams by id (an Erlang reference, as its encoded bytes) and caller (a pid, as text).
class StreamTable {
 public:
  explicit StreamTable(StreamTableLimits limits = {}) : limits_(limits) {}

  // Registers a stream; ResourceExhausted (the protocol's busy) past a bound, saying which;
  // Internal for an id a running stream has.
  Status Add(const std::string& id, const std::string& caller);
  // Forgets it; false if unknown.
  bool Remove(const std::string& id);
  bool Contains(const std::string& id) const { return owner_.count(id) > 0; }
  // The streams `caller` owns.
  std::vector<std::string> OwnedBy(const std::string& caller) const;
  size_t size() const { return owner_.size(); }

 private:
  StreamTableLimits limits_;
  std::map<std::string, std::string> owner_;  // id -> caller
};

}  // namespace orion::daemon
