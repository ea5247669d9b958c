#include "userspace/daemon/stream_queue.h"

#include <algorithm>
#include <utility>

namespace orion::daemon {
namespace {

size_t SketchBytes(const sketch::CountSketch& s) {
  const auto& bins = s.positive_store();
  return bins.empty() ? 0 : (static_cast<size_t>(bins.max_index() - bins.min_index()) + 1) * 8;
}

}  // namespace

size_t ApproxEventBytes(const protocol::StreamEvent& event) {
  const auto* interval = std::get_if<protocol::IntervalEvent>(&event);
  if (!interval) return 256;
  size_t bytes = sizeof(protocol::IntervalEvent);
  for (const protocol::NodeInterval& node : interval->nodes) {
    bytes += sizeof(node) + node.node.size() + node.host.size();
    for (const probes::FunctionStats& f : node.functions) {
      bytes += sizeof(f) + f.mfa.size() + SketchBytes(f.wall) + SketchBytes(f.cpu);
    }
  }
  return bytes;
}

void StreamQueue::Push(protocol::StreamEvent event) {
  const bool interval = std::holds_alternative<protocol::IntervalEvent>(event);
  if (std::holds_alternative<protocol::StoppedEvent>(event)) stopped_queued_ = true;
  const size_t bytes = ApproxEventBytes(event);
  events_.push_back({std::move(event), bytes});
  bytes_ += bytes;
  // Make room by dropping the oldest intervals, never the one just queued.
  while ((events_.size() > limits_.max_events || bytes_ > limits_.max_bytes)) {
    const auto oldest = std::find_if(events_.begin(), events_.end() - 1, [](const Queued& q) {
      return std::holds_alternative<protocol::IntervalEvent>(q.event);
    });
    if (oldest == events_.end() - 1) {
      // Only the new event is an interval: drop it if it alone is over the bounds.
      if (interval && events_.size() > 1) {
        bytes_ -= events_.back().bytes;
        events_.pop_back();
        ++dropped_;
      }
      break;
    }
    bytes_ -= oldest->bytes;
    events_.erase(oldest);
    ++dropped_;
  }
}

size_t StreamQueue::Drain(const protocol::Term& id,
                          const std::function<bool(std::vector<uint8_t>)>& send) {
  size_t delivered = 0;
  while (!events_.empty()) {
    Queued& front = events_.front();
    if (auto* interval = std::get_if<protocol::IntervalEvent>(&front.event)) {
      interval->dropped = dropped_;
    }
    if (!send(protocol::EncodeStreamMessage(id, front.event))) break;
    bytes_ -= front.bytes;
    events_.pop_front();
    ++delivered;
  }
  return delivered;
}

Status StreamTable::Add(const std::string& id, const std::string& caller) {
  // Two streams under one id: the caller could not tell their events apart.
  if (owner_.count(id) > 0) return Internal("a running stream already has this stream id");
  if (owner_.size() >= limits_.max_streams) {
    return ResourceExhausted(owner_.size(),
                             " streams are running on this daemon (max_streams); stop one "
                             "({stream_stop, Id}) or try again when one ends");
  }
  const size_t owned = static_cast<size_t>(
      std::count_if(owner_.begin(), owner_.end(), [&](const auto& e) { return e.second == caller; }));
  if (owned >= limits_.max_per_caller) {
    return ResourceExhausted("this process already runs ", owned, " streams (at most ",
                             limits_.max_per_caller, " per caller); stop one first");
  }
  owner_.emplace(id, caller);
  return OkStatus();
}

bool StreamTable::Remove(const std::string& id) {
  return owner_.erase(id) > 0;
}

std::vector<std::string> StreamTable::OwnedBy(const std::string& caller) const {
  std::vector<std::string> ids;
  for (const auto& [id, owner] : owner_) {
    if (owner == caller) ids.push_back(id);
  }
  return ids;
}

}  // namespace orion::daemon
