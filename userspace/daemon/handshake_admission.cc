#include "userspace/daemon/handshake_admission.h"

#include <algorithm>

namespace orion::daemon {

HandshakeAdmission::Decision HandshakeAdmission::Admit(const std::string& source,
                                                       Clock::time_point now,
                                                       HandshakeStage stage) {
  Decision decision;
  if (PendingFrom(source) >= limits_.max_pending_per_source) {
    const std::optional<Id> victim = Victim({source}, stage);
    if (!victim) return decision;
    decision.evicted.push_back(*victim);
    Erase(entries_.find(*victim));
  }
  if (entries_.size() >= limits_.max_pending) {
    // The sources holding the most, the newcomer counted with its own. A source that holds
    // more than the newcomer's loses its least-progressed handshake, however far it got.
    const auto holding = [&](const std::string& name) {
      return PendingFrom(name) + (name == source ? 1 : 0);
    };
    size_t most = holding(source);
    for (const auto& [name, count] : sources_) most = std::max(most, holding(name));
    std::vector<std::string> largest;
    for (const auto& [name, count] : sources_) {
      if (holding(name) == most) largest.push_back(name);
    }
    const bool newcomer_competes = holding(source) == most;
    if (newcomer_competes && PendingFrom(source) == 0) largest.push_back(source);
    const std::optional<Id> victim =
        Victim(largest, newcomer_competes ? std::optional(stage) : std::nullopt);
    if (!victim) return decision;
    decision.evicted.push_back(*victim);
    Erase(entries_.find(*victim));
  }
  const Id id = next_id_++;
  entries_.emplace(id, Entry{source, now, stage});
  ++sources_[source].pending;
  decision.admitted = id;
  return decision;
}

std::optional<HandshakeAdmission::Id> HandshakeAdmission::Victim(
    const std::vector<std::string>& sources, std::optional<HandshakeStage> newcomer) const {
  std::optional<Id> victim;
  HandshakeStage least = HandshakeStage::kRunning;
  for (const auto& [id, entry] : entries_) {  // oldest first
    if (std::find(sources.begin(), sources.end(), entry.source) == sources.end()) continue;
    if (!victim || entry.stage < least) {
      victim = id;
      least = entry.stage;
    }
  }
  // The newcomer came after all of them: it loses to an older one at its own stage, and is the
  // victim when every other got further.
  if (newcomer && (!victim || least > *newcomer)) return std::nullopt;
  return victim;
}

void HandshakeAdmission::Advance(Id id, HandshakeStage stage) {
  const auto it = entries_.find(id);
  if (it == entries_.end() || stage <= it->second.stage) return;
  if (stage == HandshakeStage::kRunning) ++sources_[it->second.source].running;
  it->second.stage = stage;
}

void HandshakeAdmission::Remove(Id id) {
  const auto it = entries_.find(id);
  if (it != entries_.end()) Erase(it);
}

void HandshakeAdmission::Erase(std::map<Id, Entry>::iterator it) {
  const auto source = sources_.find(it->second.source);
  --source->second.pending;
  if (it->second.stage == HandshakeStage::kRunning) --source->second.running;
  if (source->second.pending == 0) sources_.erase(source);
  entries_.erase(it);
}

std::vector<HandshakeAdmission::Id> HandshakeAdmission::Expire(Clock::time_point now) {
  std::vector<Id> expired;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto next = std::next(it);
    if (it->second.accepted + limits_.deadline <= now) {
      expired.push_back(it->first);
      Erase(it);
    }
    it = next;
  }
  return expired;
}

std::optional<HandshakeAdmission::Id> HandshakeAdmission::NextToRun() {
  std::optional<Id> next;
  uint32_t fewest = 0;
  for (const auto& [id, entry] : entries_) {  // oldest first
    if (entry.stage != HandshakeStage::kNameReceived) continue;
    const uint32_t running = sources_.at(entry.source).running;
    if (running >= limits_.max_running_per_source) continue;
    if (!next || running < fewest) {
      next = id;
      fewest = running;
    }
  }
  if (next) Advance(*next, HandshakeStage::kRunning);
  return next;
}

std::optional<HandshakeAdmission::Clock::time_point> HandshakeAdmission::NextDeadline() const {
  // Every entry has the same deadline from its accept, and ids grow with accept time.
  if (entries_.empty()) return std::nullopt;
  return entries_.begin()->second.accepted + limits_.deadline;
}

HandshakeAdmission::Clock::time_point HandshakeAdmission::DeadlineOf(Id id) const {
  return entries_.at(id).accepted + limits_.deadline;
}

size_t HandshakeAdmission::PendingFrom(const std::string& source) const {
  const auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.pending;
}

}  // namespace orion::daemon
