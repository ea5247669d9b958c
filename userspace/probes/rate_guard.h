// The overload guard of a capture (`--max-rate`, the protocol's max_rate): events per second
// (probe hits; pairing in the BEAM, the ended calls its batches carry),
// measured over windows of at least a second, against a ceiling. Shared by `orion capture`
// (probes and tracer mode) and the daemon's host captures.
//
//   RateGuard guard(max_rate, Clock::now());
//   if (guard.Due(now)) {
//     ASSIGN_OR_RETURN(uint64_t hits, capture->Events());
//     if (auto rate = guard.Over(now, hits)) { ... stop, report *rate ... }
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace orion::probes {

class RateGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // max_rate 0: no ceiling (Due is never true).
  RateGuard(uint64_t max_rate, Clock::time_point start) : max_rate_(max_rate), start_(start) {}

  // A window of at least a second has passed: time to count the hits.
  bool Due(Clock::time_point now) const {
    return max_rate_ > 0 && now - start_ >= std::chrono::seconds(1);
  }

  // With the hits counted since the capture started: the window's rate if it is over the
  // ceiling; otherwise nullopt, and a new window starts.
  std::optional<double> Over(Clock::time_point now, uint64_t hits) {
    const double rate = static_cast<double>(hits - hits_) /
                        std::chrono::duration<double>(now - start_).count();
    if (rate > static_cast<double>(max_rate_)) return rate;
    start_ = now;
    hits_ = hits;
    return std::nullopt;
  }

  uint64_t max_rate() const { return max_rate_; }

 private:
  uint64_t max_rate_;
  Clock::time_point start_;
  uint64_t hits_ = 0;
};

}  // namespace orion::probes
