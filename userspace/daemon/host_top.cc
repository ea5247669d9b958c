#include "userspace/daemon/host_top.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/daemon/host_capture.h"
#include "userspace/erlang/node_client.h"
#include "userspace/probes/top.h"

namespace orion::daemon {
namespace {

uint64_t SortKey(const probes::ProcessStats& p, protocol::TopSort sort) {
  switch (sort) {
    case protocol::TopSort::kCpu:
      return p.total.cpu_ns;
    case protocol::TopSort::kReds:
      return p.total.reds;
    case protocol::TopSort::kQueue:
      return p.queue_len_max;
    case protocol::TopSort::kGc:
      return p.total.gc_ns;
    case protocol::TopSort::kSends:
      return p.total.msgs_out;
  }
  return 0;
}

std::string_view SchedulerKindText(probes::SchedulerKind kind) {
  return probes::SchedulerKindName(kind);
}

// The node's ETS tables, the largest `limit` by memory (then size).
protocol::TopEtsEntry EtsEntry(const erlang::EtsSummary& ets, uint32_t limit) {
  protocol::TopEtsEntry entry;
  entry.tables = ets.tables;
  entry.described = ets.described.size();
  for (const auto& t : ets.described) entry.memory += t.memory_bytes;
  for (const erlang::EtsTable* t : erlang::LargestEtsTables(ets, limit)) {
    entry.by_memory.push_back({t->id, t->name, t->owner, t->size, t->memory_bytes, t->type});
  }
  return entry;
}

protocol::TopBeamEntry Summarize(const beam::BeamProcess& beam, probes::TopSnapshot& snap,
                                 probes::QueueLengthSource queue_source, const HostTopSpec& spec,
                                 erlang::NodeClient* names) {
  protocol::TopBeamEntry entry;
  entry.host = spec.host;
  entry.os_pid = beam.pid;
  if (!beam.node_name.empty()) entry.node = beam.node_name;
  entry.flavor =
      beam.flavor == beam::Flavor::kEmu ? protocol::BeamFlavor::kEmu : protocol::BeamFlavor::kJit;
  entry.queue_source = std::string(probes::QueueLengthSourceName(queue_source));

  auto& procs = snap.processes;
  std::sort(procs.begin(), procs.end(), [&](const auto& a, const auto& b) {
    return SortKey(a, spec.sort) > SortKey(b, spec.sort);
  });
  if (procs.size() > spec.limit) procs.resize(spec.limit);
  // Memory and current function of the processes listed, from the node in one call.
  std::vector<erlang::ProcessState> states;
  if (names != nullptr && names->connected()) {
    std::vector<std::string> pids;
    for (const auto& p : procs) pids.push_back(p.pid);
    auto got = names->GetProcessStates(pids, std::chrono::seconds(2));
    if (got.ok()) states = std::move(*got);
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    const probes::ProcessStats& p = procs[i];
    protocol::TopProcessEntry e;
    e.pid = p.pid;
    if (names != nullptr && names->connected()) {
      auto info = names->GetProcessInfo(p.pid, std::chrono::milliseconds(500));
      if (info.ok() && info->alive) {
        e.name = !info->registered_name.empty() ? info->registered_name : info->initial_call;
      }
    }
    if (!e.name && !p.initial_call.empty()) e.name = p.initial_call;
    e.cpu_ns = p.total.cpu_ns;
    e.sched_count = p.total.sched_count;
    e.queue_len = p.queue_len;
    e.queue_len_max = p.queue_len_max;
    e.msgs_in = p.total.msgs_in;
    e.msgs_out = p.total.msgs_out;
    e.gc_count = p.total.gc_count();
    e.gc_p99_ns = probes::GcPauseQuantile(p, 0.99);
    e.reds = p.total.reds;
    if (i < states.size() && states[i].alive) {
      e.memory = states[i].memory_bytes;
      if (!states[i].current_function.empty()) e.current_function = states[i].current_function;
    }
    entry.processes.push_back(std::move(e));
  }
  auto& ports = snap.ports;
  std::sort(ports.begin(), ports.end(),
            [](const auto& a, const auto& b) { return a.total.bytes_out > b.total.bytes_out; });
  if (ports.size() > spec.limit) ports.resize(spec.limit);
  for (const probes::PortStats& p : ports) {
    entry.ports.push_back({p.port, p.name, p.total.bytes_out, p.total.commands});
  }
  for (const probes::SchedulerStats& s : snap.schedulers) {
    entry.schedulers.push_back({static_cast<uint32_t>(s.tid), std::string(SchedulerKindText(s.kind)),
                                s.total.busy_ns, s.total.idle_ns, s.total.offcpu_ns});
  }
  if (names != nullptr && names->connected()) {
    auto ets = names->GetEtsTables(erlang::kMaxEtsTablesDescribed, std::chrono::seconds(2));
    if (ets.ok()) entry.ets = EtsEntry(*ets, spec.limit);
  }
  return entry;
}

}  // namespace

StatusOr<std::vector<protocol::TopBeamEntry>> RunHostTop(const HostTopSpec& spec,
                                                         const std::atomic<bool>& stop) {
  const std::vector<beam::BeamProcess> beams = HostBeams(spec.node, spec.only_netns);
  if (beams.empty()) return NoBeamFound(spec.node, spec.only_netns, /*usdt_only=*/true);
  std::vector<std::pair<const beam::BeamProcess*, std::unique_ptr<probes::Top>>> running;
  for (const beam::BeamProcess& b : beams) {
    auto top = probes::Top::Start(b, probes::TopOptions{});
    if (!top.ok()) {
      spdlog::warn("top: BEAM {}: {}", b.pid, top.status().message());
      continue;
    }
    running.emplace_back(&b, std::move(*top));
  }
  if (running.empty()) return Unavailable("no BEAM of this host could be measured (see the log)");
  spdlog::info("top attached to {} BEAM(s) for {} ms", running.size(), spec.duration_ms);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(spec.duration_ms);
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<protocol::TopBeamEntry> out;
  for (auto& [beam, top] : running) {
    top->Detach();
    auto snap = top->Read();
    if (!snap.ok()) {
      spdlog::warn("top: BEAM {}: {}", beam->pid, snap.status().message());
      continue;
    }
    std::unique_ptr<erlang::NodeClient> names;
    if (!beam->node_name.empty()) {
      auto client =
          erlang::NodeClient::Connect(beam->node_name, spec.cookie, std::chrono::seconds(2));
      if (client.ok()) names = std::move(*client);
    }
    out.push_back(Summarize(*beam, *snap, top->queue_length_source(), spec, names.get()));
  }
  return out;
}

}  // namespace orion::daemon
