// Standing captures (docs/export.md): the daemon's watches, from [[watch]] tables of its config
// file and from the protocol, exported on /metrics as cumulative histograms.
//
// A watch names patterns (and optionally a node, a mode, a match spec). The WatchSet keeps one
// session per BEAM of the host that a watch matches: a host capture (host_capture.h) of that
// BEAM alone, read every second. Plain watches (no match spec) of one mode share a session per
// BEAM, with the union of their patterns; a watch with a match spec has sessions of its own.
//
// Series: one per (function, node) and per match spec. A series is cumulative across the
// sessions that fed it: when its BEAM restarts, the next session's counts add to what the
// earlier ones counted, so counters only grow. While no session feeds a series (the BEAM is
// down, or its session stopped), the series is left out of the exposition: Prometheus marks
// it stale and the graph shows a gap; orion_watch_gaps_total counts them.
//
// Sessions that fail or that the overload guard stops are retried after a backoff (1 minute,
// doubling to 15). Series of a node not seen for an hour are forgotten. The series count is
// bounded (max_series); what is over it is counted, not kept.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "userspace/daemon/config.h"
#include "userspace/probes/capture_types.h"

namespace orion::daemon {

struct WatchOptions {
  uint32_t max_watches = 16;
  uint32_t max_series = 4096;
  std::string cookie;             // tracer mode's
  bool only_netns = false;
  uint64_t max_rate = 2'000'000;  // the overload guard, per session
  std::string host;               // the `host` label: this host's name
  uint32_t interval_ms = 1000;    // how often sessions are read
  uint32_t rescan_ms = 2000;      // how often BEAMs are looked for
};

// What `{watches}` and the log show of one watch.
struct WatchInfo {
  uint32_t id = 0;
  WatchSpec spec;
  std::string origin;  // "config" or "protocol"
  struct Beam {
    int pid = 0;
    std::string node;
    std::string state;  // "live", "retrying in N s: why", "overloaded at N/s, retrying in ..."
  };
  std::vector<Beam> beams;
};

class WatchSet {
 public:
  explicit WatchSet(WatchOptions options);
  ~WatchSet();  // stops every session (their captures detach) and joins
  WatchSet(const WatchSet&) = delete;
  WatchSet& operator=(const WatchSet&) = delete;

  // Validates (patterns parse, mode known, bounds) and starts watching. Returns the id.
  StatusOr<uint32_t> Add(WatchSpec spec, std::string origin);
  Status Remove(uint32_t id);
  std::vector<WatchInfo> List() const;

  // The exposition of every live series (metrics/prometheus.h): protobuf or text.
  std::string Render(bool protobuf) const;

 private:
  struct Group;
  struct Session;
  struct SeriesState;
  void Supervise();
  void Rescan();
  void OnRead(Session& session, const std::vector<probes::FunctionStats>& functions,
              const probes::LostCounters& lost, bool final);

  WatchOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint32_t next_id_ = 1;
  struct Watch {
    uint32_t id;
    WatchSpec spec;
    std::string origin;
  };
  std::vector<Watch> watches_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::map<std::string, SeriesState> series_;  // key: match spec \x1f node \x1f mfa
  uint64_t series_dropped_ = 0;
  uint64_t gaps_ = 0;
  std::thread supervisor_;
};

}  // namespace orion::daemon
