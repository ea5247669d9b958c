#include "userspace/daemon/watches.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "userspace/daemon/host_capture.h"
#include "userspace/metrics/prometheus.h"
#include "userspace/probes/capture_values.h"
#include "userspace/probes/mfa_pattern.h"

namespace orion::daemon {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kFirstBackoff = std::chrono::minutes(1);
constexpr auto kLastBackoff = std::chrono::minutes(15);
constexpr auto kForgetAfter = std::chrono::hours(1);
constexpr char kSep = '\x1f';

// The BEAM's start time (clock ticks after boot, /proc/PID/stat field 22): with the pid, what
// tells a restarted BEAM from the one before it. 0 when it is gone.
uint64_t StartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

StatusOr<protocol::CaptureMode> ParseMode(const std::string& mode) {
  if (mode == "auto" || mode.empty()) return protocol::CaptureMode::kAuto;
  if (mode == "probes") return protocol::CaptureMode::kProbes;
  if (mode == "tracer") return protocol::CaptureMode::kTracer;
  return InvalidArgument("unknown watch mode '", mode, "': auto, probes or tracer");
}

std::string NodeLabel(const beam::BeamProcess& b) {
  return b.node_name.empty() ? "pid:" + std::to_string(b.pid) : b.node_name;
}

// Elixir's modules print as Elixir writes them: 'Elixir.Bar.Repo':get/1 -> Bar.Repo.get/1.
std::string FunctionLabel(const std::string& mfa) {
  constexpr std::string_view kElixir = "'Elixir.";
  if (mfa.rfind(kElixir, 0) != 0) return mfa;
  const size_t close = mfa.find("':", kElixir.size());
  if (close == std::string::npos) return mfa;
  return mfa.substr(kElixir.size(), close - kElixir.size()) + "." + mfa.substr(close + 2);
}

std::string Seconds(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

// Which watches share a session on a BEAM: those of one mode, node filter and match spec.
struct WatchSet::Group {
  std::string mode;
  std::string node;
  std::string match_spec;
  std::string Key() const { return mode + kSep + node + kSep + match_spec; }
};

struct WatchSet::Session {
  Group group;
  std::vector<std::string> patterns;  // the union of the group's watches' patterns
  // The MFAs of its exact patterns (m:f/a): their series exist from the first read, at zero, so
  // that Prometheus sees every call after it, the first ones included.
  std::vector<std::string> exact_mfas;
  beam::BeamProcess beam;
  uint64_t start_time = 0;
  std::string node;  // its series' node label
  std::atomic<bool> stop{false};
  std::thread thread;
  bool running = false;  // its thread has not ended yet
  bool live = false;     // attached and read at least once
  std::string state;     // what List() shows
  uint32_t failures = 0;
  Clock::time_point retry_at{};
  probes::LostCounters lost;  // this session's, cumulative
};

struct WatchSet::SeriesState {
  std::string function;  // label value
  std::string node;
  std::string match_spec;
  probes::FunctionStats base;     // what earlier sessions counted
  probes::FunctionStats current;  // the live session's cumulative totals
  bool live = false;
  Clock::time_point last_seen{};
};

WatchSet::WatchSet(WatchOptions options) : options_(std::move(options)) {
  supervisor_ = std::thread([this] { Supervise(); });
}

WatchSet::~WatchSet() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& s : sessions_) s->stop = true;
  }
  wake_.notify_all();
  supervisor_.join();
  for (auto& s : sessions_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

StatusOr<uint32_t> WatchSet::Add(WatchSpec spec, std::string origin) {
  if (spec.patterns.empty()) return InvalidArgument("a watch needs at least one pattern");
  for (const std::string& p : spec.patterns) {
    RETURN_IF_ERROR(probes::ParseMfaPattern(p).status().WithContext("watch pattern '" + p + "'"));
  }
  ASSIGN_OR_RETURN(const protocol::CaptureMode mode, ParseMode(spec.mode));
  if (mode == protocol::CaptureMode::kProbes && !spec.match_spec.empty()) {
    return InvalidArgument("a watch with a match spec needs mode auto or tracer");
  }
  spec.mode = std::string(protocol::CaptureModeName(mode));
  std::lock_guard lock(mu_);
  if (watches_.size() >= options_.max_watches) {
    return ResourceExhausted("the daemon keeps at most ", options_.max_watches,
                             " watches (max_watches): remove one first");
  }
  const uint32_t id = next_id_++;
  spdlog::info("watch {} ({}): {}{}", id, origin, fmt::join(spec.patterns, " "),
               spec.node.empty() ? "" : " on " + spec.node);
  watches_.push_back({id, std::move(spec), std::move(origin)});
  wake_.notify_all();
  return id;
}

Status WatchSet::Remove(uint32_t id) {
  std::lock_guard lock(mu_);
  const auto it = std::find_if(watches_.begin(), watches_.end(),
                               [&](const Watch& w) { return w.id == id; });
  if (it == watches_.end()) return NotFound("no watch ", id);
  watches_.erase(it);
  wake_.notify_all();
  return OkStatus();
}

std::vector<WatchInfo> WatchSet::List() const {
  std::lock_guard lock(mu_);
  std::vector<WatchInfo> out;
  for (const Watch& w : watches_) {
    WatchInfo info{.id = w.id, .spec = w.spec, .origin = w.origin};
    const Group g{w.spec.mode, w.spec.node, w.spec.match_spec};
    for (const auto& s : sessions_) {
      if (s->group.Key() == g.Key()) info.beams.push_back({s->beam.pid, s->node, s->state});
    }
    out.push_back(std::move(info));
  }
  return out;
}

void WatchSet::Supervise() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Rescan();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(options_.rescan_ms),
                   [&] { return stopping_; });
  }
}

void WatchSet::Rescan() {
  // The groups the watches make now, with their patterns' union.
  std::map<std::string, std::pair<Group, std::vector<std::string>>> groups;
  {
    std::lock_guard lock(mu_);
    for (const Watch& w : watches_) {
      Group g{w.spec.mode, w.spec.node, w.spec.match_spec};
      auto& [group, patterns] = groups[g.Key()];
      group = g;
      for (const std::string& p : w.spec.patterns) {
        if (std::find(patterns.begin(), patterns.end(), p) == patterns.end()) patterns.push_back(p);
      }
    }
  }
  // The BEAMs each group matches (outside the lock: this reads /proc).
  std::map<std::string, std::vector<beam::BeamProcess>> beams_of;
  for (const auto& [key, gp] : groups) {
    // Only the BEAMs the watch's mode can capture: from the kernel (function probes, or a JIT
    // whose emulator pairs the calls), or distributed (tracer mode). Others (erlc, escripts, a
    // shell without a name) come and go without a session.
    HostCaptureSpec probe_spec;
    probe_spec.patterns = gp.second;
    std::vector<beam::BeamProcess> beams;
    for (beam::BeamProcess& b : HostBeams(gp.first.node, options_.only_netns,
                                          /*usdt_only=*/gp.first.mode == "probes")) {
      const bool probes = ProbesCanCapture(b, probe_spec);
      const bool tracer = !b.node_name.empty();
      const bool fits = gp.first.mode == "probes"   ? probes
                        : gp.first.mode == "tracer" ? tracer
                                                    : probes || tracer;
      if (fits) beams.push_back(std::move(b));
    }
    beams_of[key] = std::move(beams);
  }
  std::vector<std::unique_ptr<Session>> ended;
  std::vector<Session*> to_start;
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    // Stop the sessions whose BEAM is gone or restarted, whose group is gone or changed.
    for (auto& s : sessions_) {
      const auto g = groups.find(s->group.Key());
      const bool beam_gone = ::kill(s->beam.pid, 0) != 0 || StartTime(s->beam.pid) != s->start_time;
      if (beam_gone || g == groups.end() || g->second.second != s->patterns) s->stop = true;
    }
    // Collect the ended sessions: dropped (to be replaced) unless they wait out a backoff on a
    // BEAM that still runs with the same patterns.
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& s = **it;
      const bool keep_for_backoff = !s.running && !s.stop && now < s.retry_at;
      if (!s.running && !keep_for_backoff) {
        ended.push_back(std::move(*it));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    // New sessions for (group, BEAM) pairs that have none.
    for (const auto& [key, gp] : groups) {
      for (const beam::BeamProcess& b : beams_of[key]) {
        const bool has = std::any_of(sessions_.begin(), sessions_.end(), [&](const auto& s) {
          return s->group.Key() == key && s->beam.pid == b.pid;
        });
        if (has || stopping_) continue;
        const uint64_t start_time = StartTime(b.pid);
        if (start_time == 0) continue;
        auto previous = std::find_if(ended.begin(), ended.end(), [&](const auto& s) {
          return s->group.Key() == key && s->beam.pid == b.pid && s->start_time == start_time;
        });
        auto session = std::make_unique<Session>();
        session->group = gp.first;
        session->patterns = gp.second;
        for (const std::string& text : gp.second) {
          auto pattern = probes::ParseMfaPattern(text);
          if (pattern.ok() && pattern->function && pattern->arity) {
            session->exact_mfas.push_back(pattern->ToString());
          }
        }
        session->beam = b;
        session->start_time = start_time;
        session->node = NodeLabel(b);
        session->state = "attaching";
        if (previous != ended.end()) session->failures = (*previous)->failures;
        to_start.push_back(session.get());
        sessions_.push_back(std::move(session));
      }
    }
  }
  for (auto& s : ended) {
    if (s->thread.joinable()) s->thread.join();
  }
  for (Session* s : to_start) {
    s->running = true;
    s->thread = std::thread([this, s] {
      HostCaptureSpec spec;
      spec.patterns = s->patterns;
      spec.duration_ms = UINT32_MAX;  // until stopped: the BEAM exits, the watch changes
      spec.node = s->group.node;
      spec.pid = s->beam.pid;
      spec.only_netns = options_.only_netns;
      spec.max_rate = options_.max_rate;
      spec.mode = *ParseMode(s->group.mode);
      spec.match_spec = s->group.match_spec;
      spec.cookie = options_.cookie;
      spec.interval_ms = options_.interval_ms;
      spec.on_interval = [this, s](const std::vector<BeamRead>& reads, bool final) {
        for (const BeamRead& read : reads) OnRead(*s, read.functions, read.lost, final);
        if (reads.empty() && final) OnRead(*s, {}, {}, true);
      };
      auto result = RunHostCapture(spec, s->stop);
      std::lock_guard lock(mu_);
      s->running = false;
      s->live = false;
      std::string why;
      if (!result.ok()) {
        why = std::string(result.status().message());
      } else if (result->stopped_at_rate) {
        why = "overloaded at " + std::to_string(*result->stopped_at_rate) +
              " probe hits/s (max_rate " + std::to_string(options_.max_rate) + ")";
      } else if (!result->status.ok()) {
        why = std::string(result->status.message());
      } else if (!result->beam_statuses.empty() &&
                 result->beam_statuses[0].status == protocol::BeamOutcome::kModuleNotLoaded &&
                 !s->stop) {
        // Tried again after the backoff: the module may be loaded by then.
        why = "module not loaded: " + result->beam_statuses[0].reason;
      }
      if (why.empty() || s->stop) {
        s->state = "stopped";
        spdlog::info("watch session on {} ended{}", s->node, why.empty() ? "" : ": " + why);
        return;
      }
      const auto backoff = std::min<Clock::duration>(kFirstBackoff * (1u << std::min(s->failures, 4u)),
                                                     kLastBackoff);
      ++s->failures;
      s->retry_at = Clock::now() + backoff;
      s->state = why + "; retrying in " + Seconds(backoff);
      spdlog::warn("watch on {}: {}", s->node, s->state);
    });
  }
  // Forget series of nodes not seen for a long time.
  std::lock_guard lock(mu_);
  std::erase_if(series_, [&](const auto& kv) {
    return !kv.second.live && now - kv.second.last_seen > kForgetAfter;
  });
}

void WatchSet::OnRead(Session& session, const std::vector<probes::FunctionStats>& functions,
                      const probes::LostCounters& lost, bool final) {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  const std::string prefix = session.group.match_spec + kSep + session.node + kSep;
  std::vector<probes::FunctionStats> zeros;
  if (!final) {
    for (const std::string& mfa : session.exact_mfas) {
      const bool read = std::any_of(functions.begin(), functions.end(),
                                    [&](const probes::FunctionStats& f) { return f.mfa == mfa; });
      if (!read) zeros.push_back(probes::FunctionStats{.mfa = mfa});
    }
  }
  const std::vector<probes::FunctionStats>* lists[] = {&functions, &zeros};
  for (const std::vector<probes::FunctionStats>* list : lists) {
  for (const probes::FunctionStats& f : *list) {
    const std::string key = prefix + f.mfa;
    auto it = series_.find(key);
    if (it == series_.end()) {
      if (series_.size() >= options_.max_series) {
        ++series_dropped_;
        continue;
      }
      SeriesState state;
      state.function = FunctionLabel(f.mfa);
      state.node = session.node;
      state.match_spec = session.group.match_spec;
      state.base.mfa = state.current.mfa = f.mfa;
      it = series_.emplace(key, std::move(state)).first;
    }
    if (list == &functions || !it->second.live) it->second.current = f;
    it->second.live = true;
    it->second.last_seen = now;
  }
  }
  session.lost = lost;
  if (!final) {
    if (!session.live) {
      session.live = true;
      session.failures = 0;
      session.state = "live";
    }
    return;
  }
  // The session ends: what it counted becomes the base its successor adds to.
  for (auto it = series_.lower_bound(prefix);
       it != series_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    SeriesState& s = it->second;
    if (!s.live) continue;
    if (Status merged = probes::MergeFunctionStats(s.base, s.current); !merged.ok()) {
      spdlog::warn("watch series {}: {}", s.function, merged.message());
    }
    s.current = probes::FunctionStats{.mfa = s.base.mfa};
    s.live = false;
    ++gaps_;
  }
}

std::string WatchSet::Render(bool protobuf) const {
  std::lock_guard lock(mu_);
  using metrics::Family;
  using metrics::MetricKind;
  Family wall{"orion_function_duration_nanoseconds",
              "Wall time of each call of a watched function, entry to return (nanoseconds).",
              MetricKind::kHistogram, {}};
  Family cpu{"orion_function_cpu_nanoseconds",
             "On-CPU time of each call of a watched function (nanoseconds).",
             MetricKind::kHistogram, {}};
  Family exceptions{"orion_function_exceptions_total",
                    "Calls of a watched function that ended by an exception.",
                    MetricKind::kCounter, {}};
  Family up{"orion_watch_up", "1 while a watch's session on the node is attached and read.",
            MetricKind::kGauge, {}};
  Family lost{"orion_watch_lost_total",
              "Calls the node's live watch session could not measure (docs/capture.md, lost).",
              MetricKind::kCounter, {}};
  Family gaps{"orion_watch_gaps_total",
              "Times a watched series stopped being fed (its BEAM exited, or its session ended).",
              MetricKind::kCounter, {}};
  Family dropped{"orion_watch_series_dropped_total",
                 "Series not kept because the daemon keeps at most max_series.",
                 MetricKind::kCounter, {}};
  // The merged totals must outlive the families that point at them.
  std::vector<std::unique_ptr<probes::FunctionStats>> totals;
  for (const auto& [key, s] : series_) {
    if (!s.live) continue;  // a gap: no sample, so Prometheus marks the series stale
    auto total = std::make_unique<probes::FunctionStats>(s.base);
    if (!probes::MergeFunctionStats(*total, s.current).ok()) continue;
    std::vector<metrics::Label> labels{{"function", s.function}, {"node", s.node},
                                       {"host", options_.host}};
    if (!s.match_spec.empty()) labels.push_back({"match_spec", s.match_spec});
    wall.series.push_back({labels, 0, &total->wall});
    cpu.series.push_back({labels, 0, &total->cpu});
    exceptions.series.push_back({labels, static_cast<double>(total->exceptions), nullptr});
    totals.push_back(std::move(total));
  }
  // Per node: up if any of its sessions is live; lost summed over its live sessions.
  std::map<std::string, std::pair<bool, uint64_t>> nodes;
  for (const auto& s : sessions_) {
    auto& [is_up, lost_calls] = nodes[s->node];
    is_up = is_up || s->live;
    if (s->live) lost_calls += probes::LostTotal(s->lost);
  }
  for (const auto& [node, state] : nodes) {
    up.series.push_back({{{"node", node}, {"host", options_.host}}, state.first ? 1.0 : 0.0,
                         nullptr});
    if (state.first) {
      lost.series.push_back({{{"node", node}, {"host", options_.host}},
                             static_cast<double>(state.second), nullptr});
    }
  }
  gaps.series.push_back({{{"host", options_.host}}, static_cast<double>(gaps_), nullptr});
  dropped.series.push_back({{{"host", options_.host}}, static_cast<double>(series_dropped_), nullptr});
  const std::vector<Family> families{wall, cpu, exceptions, up, lost, gaps, dropped};
  return protobuf ? metrics::EncodeProtobuf(families) : metrics::EncodeText(families);
}

}  // namespace orion::daemon
