// Which pending distribution handshakes the daemon keeps, and which it runs next: the policy of
// the accepting side (DistAcceptor), with no sockets in it, so that it can be tested alone.
//
// Anyone who reaches the daemon's port can open connections and send nothing, or drip bytes.
// The policy bounds what that costs and who pays for it:
//  * every handshake has one deadline from its accept (Limits::deadline), however it trickles;
//  * at most `max_pending` handshakes are pending in total and `max_pending_per_source` per
//    source address. When a new connection would pass a bound, one pending handshake is
//    evicted: the least-progressed, oldest one of its own source (per-source bound), or of the
//    sources holding the most (total bound). The new connection counts as a candidate too, so
//    when every other candidate got further than it, it is the one refused. An idle flood
//    therefore pushes out its own idle connections first, never another source's, and a peer
//    that sent its name already outranks every idle connection;
//  * handshakes whose first packet arrived run on a few workers, the next one taken from the
//    source running the fewest, and never more than `max_running_per_source` per source.
//
//   HandshakeAdmission admission(limits);
//   auto decision = admission.Admit("10.0.0.7", now);     // close decision.evicted; maybe refused
//   admission.Advance(*decision.admitted, HandshakeStage::kNameReceived);
//   if (auto next = admission.NextToRun()) { ... run it ...; admission.Remove(*next); }
//   for (auto id : admission.Expire(now)) { ... close it ... }
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace orion::daemon {

// How far a handshake got. Stages only move forward; a later stage is more progress.
enum class HandshakeStage : uint8_t {
  kConnected = 0,     // accepted, nothing received
  kPartialName = 1,   // part of the peer's first packet (its name) received
  kNameReceived = 2,  // the first packet is complete: ready to run
  kRunning = 3,       // a worker runs the rest of the handshake (challenge, digest)
};

struct HandshakeLimits {
  std::chrono::milliseconds deadline{2000};  // from accept to an authenticated connection
  uint32_t max_pending = 512;                // handshakes pending in total
  uint32_t max_pending_per_source = 256;     // ... from one source address
  uint32_t max_running_per_source = 2;       // ... on the workers at once
};

class HandshakeAdmission {
 public:
  using Id = uint64_t;
  using Clock = std::chrono::steady_clock;

  explicit HandshakeAdmission(HandshakeLimits limits) : limits_(limits) {}

  struct Decision {
    std::optional<Id> admitted;  // nullopt: the new connection is refused (close it)
    std::vector<Id> evicted;     // pending handshakes to close now (already forgotten here)
  };
  // A new connection from `source` at `now`, at `stage` (what it had sent when accepted).
  Decision Admit(const std::string& source, Clock::time_point now,
                 HandshakeStage stage = HandshakeStage::kConnected);

  // Records progress; an unknown id (evicted, expired) or an earlier stage is ignored.
  void Advance(Id id, HandshakeStage stage);
  // The handshake ended (connected, refused, closed by the peer). Unknown ids are ignored.
  void Remove(Id id);
  // Removes and returns the handshakes whose deadline is at or before `now`.
  std::vector<Id> Expire(Clock::time_point now);

  // A handshake at kNameReceived for a free worker, now kRunning: from the source with the
  // fewest running (then the oldest), within max_running_per_source. nullopt: none may run.
  std::optional<Id> NextToRun();

  // The earliest deadline of the pending handshakes (nullopt: none pending).
  std::optional<Clock::time_point> NextDeadline() const;
  Clock::time_point DeadlineOf(Id id) const;  // of a pending id
  bool Pending(Id id) const { return entries_.count(id) != 0; }
  size_t pending() const { return entries_.size(); }
  size_t PendingFrom(const std::string& source) const;
  const HandshakeLimits& limits() const { return limits_; }

 private:
  struct Entry {
    std::string source;
    Clock::time_point accepted;
    HandshakeStage stage = HandshakeStage::kConnected;
  };
  struct SourceCount {
    uint32_t pending = 0;
    uint32_t running = 0;
  };
  // The least-progressed, oldest pending handshake from `sources`; nullopt when the newcomer
  // (at `newcomer`, or not competing: nullopt) is itself the one to refuse.
  std::optional<Id> Victim(const std::vector<std::string>& sources,
                           std::optional<HandshakeStage> newcomer) const;
  void Erase(std::map<Id, Entry>::iterator it);

  HandshakeLimits limits_;
  Id next_id_ = 1;
  std::map<Id, Entry> entries_;  // ids grow with accept time: map order is age order
  std::map<std::string, SourceCount> sources_;
};

}  // namespace orion::daemon
