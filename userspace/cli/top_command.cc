// orion top --pid PID [--interval S] [--sort cpu|queue|gc|sends] [--limit N]
//           [--json --duration S] [--node NAME] [--cookie-file PATH] [--probes GROUPS]
//
// The BEAM seen from the kernel: which process burns the schedulers, whose mailbox grows, who
// collects garbage, which port carries the traffic, how busy the schedulers are. A full-screen
// view refreshed every interval, or one JSON document for the whole --duration.
#include "userspace/cli/top_command.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>

#include "userspace/beam/beam_process.h"
#include "userspace/cli/cli_support.h"
#include "userspace/cli/latency_report.h"
#include "userspace/cli/signals.h"
#include "userspace/cli/top_node_view.h"
#include "userspace/erlang/cookie.h"
#include "userspace/erlang/node_client.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/top.h"

namespace orion {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

constexpr char kUsage[] =
    "Usage: orion top --pid PID [--interval SECONDS] [--sort cpu|reds|queue|gc|sends] [--limit N]\n"
    "                 [--json --duration SECONDS] [--node NAME] [--cookie-file PATH]\n"
    "                 [--probes GROUPS] [-v]\n"
    "\n"
    "The BEAM seen from the kernel, through its runtime USDT probes (jit and emu flavors):\n"
    "per Erlang process its time on a scheduler, reductions, runs, message-queue length\n"
    "(reported by the senders on a BEAM with Orion's patch 0011) and high-water mark,\n"
    "messages in and out, garbage collections and their pauses; per port the bytes and\n"
    "commands handed to it; per scheduler thread its busy and idle time, and how long the OS\n"
    "kept it off the CPU while it held a process. Nothing runs inside the node. With the\n"
    "node's cookie, the node itself adds names, memory, current functions and ETS tables.\n"
    "\n"
    "Options:\n"
    "  -p, --pid PID          the BEAM's OS pid (default: the only USDT-enabled BEAM running)\n"
    "  -i, --interval S       refresh every S seconds (default 1)\n"
    "  -s, --sort KEY         cpu (time on a scheduler), reds (reductions, etop's order),\n"
    "                         queue (message-queue high-water mark), gc (time in GC),\n"
    "                         sends (messages sent); default cpu\n"
    "  -n, --limit N          processes shown (default: what fits the screen; 100 with --json;\n"
    "                         0 = all)\n"
    "  -j, --json             print one JSON document for the whole --duration (no live view)\n"
    "  -d, --duration S       stop after S seconds (default: until q or Ctrl-C)\n"
    "      --node NAME        the node's name, to show what the node says over a hidden\n"
    "                         C-node connection: registered names and initial calls (once per\n"
    "                         process), memory and current function of the processes shown and\n"
    "                         the ETS tables by memory (every refresh); default: the BEAM's node\n"
    "                         name (from epmd, or its -sname/-name) when --cookie-file is given\n"
    "      --cookie-file PATH the node's cookie (default with --node: $HOME/.erlang.cookie)\n"
    "      --probes GROUPS    probe groups to attach, comma-separated (default all):\n"
    "                         sched, offcpu, messages, gc, ports (costs: docs/top.md)\n"
    "  -v, --verbose          debug logs, including libbpf's\n"
    "  -h, --help             this help\n"
    "\n"
    "Keys in the live view: c cpu, r reds, m queue (mailbox), g gc, s sends, q quit.\n"
    "\n"
    "Examples:\n"
    "  orion top --pid $(pgrep -f beam.smp)\n"
    "  orion top --pid 4242 --sort queue --cookie-file ~/.erlang.cookie\n"
    "  orion top --pid 4242 --json --duration 10 --sort gc > top.json\n"
    "\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 bad usage, 3 not privileged,\n"
    "4 the target cannot be observed (gone, not a BEAM, no probes).\n";

enum class SortKey { kCpu, kReds, kQueue, kGc, kSends };

// The header line's "pid 4242  app@host (jit)", and where its queue lengths come from.
struct BeamDescription {
  pid_t pid = 0;
  std::string node;
  std::string flavor;
  probes::QueueLengthSource queue_source = probes::QueueLengthSource::kNone;
  beam::PidLayoutSource pid_layout = beam::PidLayoutSource::kAssumed;
};

// What the fallback misses, for the warning and the live view.
constexpr char kReceiverSignalsCaveat[] =
    "queue lengths come from message__queued, which a process fires only when it handles its "
    "signals: a mailbox nobody reads shows 0";

const char* SortName(SortKey k) {
  switch (k) {
    case SortKey::kCpu:
      return "cpu";
    case SortKey::kReds:
      return "reds";
    case SortKey::kQueue:
      return "queue";
    case SortKey::kGc:
      return "gc";
    case SortKey::kSends:
      return "sends";
  }
  return "cpu";
}

struct Options {
  std::optional<pid_t> pid;
  double interval = 1;
  std::optional<double> duration;
  SortKey sort = SortKey::kCpu;
  std::optional<size_t> limit;
  bool json = false;
  bool verbose = false;
  std::string node;
  std::string cookie_file;
  uint32_t groups = probes::kTopAllGroups;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "orion top: %s\n\n%s", message.c_str(), kUsage);
  return cli::kExitUsage;
}

std::optional<SortKey> ParseSort(std::string_view s) {
  if (s == "cpu") return SortKey::kCpu;
  if (s == "queue" || s == "mailbox") return SortKey::kQueue;
  if (s == "gc") return SortKey::kGc;
  if (s == "sends") return SortKey::kSends;
  if (s == "reds" || s == "reductions") return SortKey::kReds;
  return std::nullopt;
}

std::optional<int> ParseOptions(int argc, char** argv, Options* options) {
  enum { kNode = 1000, kCookieFile, kProbes };
  static const option kOptions[] = {{"pid", required_argument, nullptr, 'p'},
                                    {"interval", required_argument, nullptr, 'i'},
                                    {"sort", required_argument, nullptr, 's'},
                                    {"limit", required_argument, nullptr, 'n'},
                                    {"json", no_argument, nullptr, 'j'},
                                    {"duration", required_argument, nullptr, 'd'},
                                    {"node", required_argument, nullptr, kNode},
                                    {"cookie-file", required_argument, nullptr, kCookieFile},
                                    {"probes", required_argument, nullptr, kProbes},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "p:i:s:n:jd:vh", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'p': {
        char* end = nullptr;
        const long pid = std::strtol(optarg, &end, 10);
        if (*end != '\0' || pid <= 0) {
          return UsageError(std::string("--pid needs a process id, got '") + optarg + "'");
        }
        options->pid = static_cast<pid_t>(pid);
        break;
      }
      case 'i':
        if (!cli::ParseSeconds(optarg, &options->interval)) {
          return UsageError("--interval needs a positive number of seconds");
        }
        break;
      case 'd': {
        double d;
        if (!cli::ParseSeconds(optarg, &d)) {
          return UsageError("--duration needs a positive number of seconds");
        }
        options->duration = d;
        break;
      }
      case 's': {
        auto sort = ParseSort(optarg);
        if (!sort) {
          return UsageError(std::string("--sort must be cpu, reds, queue, gc or sends, not '") +
                            optarg + "'");
        }
        options->sort = *sort;
        break;
      }
      case 'n': {
        char* end = nullptr;
        const long n = std::strtol(optarg, &end, 10);
        if (*end != '\0' || n < 0) return UsageError("--limit needs a number >= 0");
        options->limit = static_cast<size_t>(n);
        break;
      }
      case 'j':
        options->json = true;
        break;
      case kNode:
        options->node = optarg;
        break;
      case kCookieFile:
        options->cookie_file = optarg;
        break;
      case kProbes: {
        auto groups = probes::ParseTopProbeGroups(optarg);
        if (!groups.ok()) return UsageError(groups.status().message());
        options->groups = *groups;
        break;
      }
      case 'v':
        options->verbose = true;
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        return cli::kExitOk;
      default:
        std::fputs(kUsage, stderr);
        return cli::kExitUsage;
    }
  }
  if (optind != argc) return UsageError(std::string("unexpected argument '") + argv[optind] + "'");
  return std::nullopt;
}

// The name column: registered name, else the initial call (node or spawn probe), else "".
struct DisplayName {
  std::string registered;
  std::string initial_call;
};

DisplayName NameOf(const probes::ProcessStats& p, const cli::NodeView* node) {
  DisplayName d;
  d.initial_call = p.initial_call;
  if (node) {
    if (const auto* info = node->Name(p.pid)) {
      d.registered = info->registered_name;
      if (!info->initial_call.empty()) d.initial_call = info->initial_call;
    }
  }
  return d;
}

// ---- ordering ----

std::vector<const probes::ProcessStats*> Sorted(const probes::TopSnapshot& snap, SortKey key) {
  std::vector<const probes::ProcessStats*> v;
  v.reserve(snap.processes.size());
  for (const auto& p : snap.processes) v.push_back(&p);
  auto rank = [key](const probes::ProcessStats* p) {
    switch (key) {
      case SortKey::kCpu:
        return std::make_tuple(p->interval.cpu_ns, p->interval.sched_count, uint64_t{0});
      case SortKey::kReds:
        return std::make_tuple(p->interval.reds, p->interval.cpu_ns, uint64_t{0});
      case SortKey::kQueue:
        return std::make_tuple(p->queue_len_max, p->queue_len, p->interval.msgs_in);
      case SortKey::kGc:
        return std::make_tuple(p->interval.gc_ns, p->interval.gc_count(), uint64_t{0});
      case SortKey::kSends:
        return std::make_tuple(p->interval.msgs_out, p->interval.words_out, uint64_t{0});
    }
    return std::make_tuple(uint64_t{0}, uint64_t{0}, uint64_t{0});
  };
  std::stable_sort(v.begin(), v.end(), [&](const auto* a, const auto* b) {
    const auto ra = rank(a), rb = rank(b);
    if (ra != rb) return ra > rb;
    return a->pid < b->pid;
  });
  return v;
}

std::vector<const probes::PortStats*> SortedPorts(const probes::TopSnapshot& snap) {
  std::vector<const probes::PortStats*> v;
  for (const auto& p : snap.ports) v.push_back(&p);
  std::sort(v.begin(), v.end(), [](const auto* a, const auto* b) {
    if (a->interval.bytes_out != b->interval.bytes_out)
      return a->interval.bytes_out > b->interval.bytes_out;
    if (a->total.bytes_out != b->total.bytes_out) return a->total.bytes_out > b->total.bytes_out;
    return a->port < b->port;
  });
  return v;
}

// ---- JSON ----

json ProcessJson(const probes::ProcessStats& p, const cli::NodeView* node, uint64_t interval_ns) {
  const DisplayName n = NameOf(p, node);
  const probes::ProcessCounters& c = p.interval;
  json j;
  j["pid"] = p.pid;
  j["name"] = n.registered.empty() ? json(nullptr) : json(n.registered);
  j["initial_call"] = n.initial_call.empty() ? json(nullptr) : json(n.initial_call);
  j["cpu_ns"] = c.cpu_ns;
  j["cpu_share"] =
      interval_ns ? static_cast<double>(c.cpu_ns) / static_cast<double>(interval_ns) : 0.0;
  j["offcpu_ns"] = c.offcpu_ns;
  j["sched_count"] = c.sched_count;
  j["reds"] = c.reds;
  j["queue_len"] = p.queue_len;
  j["queue_len_max"] = p.queue_len_max;
  j["msgs_in"] = c.msgs_in;
  j["msgs_received"] = c.msgs_received;
  j["msgs_out"] = c.msgs_out;
  j["words_out"] = c.words_out;
  j["gc_count"] = c.gc_count();
  j["gc_minor"] = c.gc_minor;
  j["gc_major"] = c.gc_major;
  j["gc_ns"] = c.gc_ns;
  j["gc_max_ns"] = p.gc_max_ns;
  const auto p50 = probes::GcPauseQuantile(p, 0.5), p99 = probes::GcPauseQuantile(p, 0.99);
  j["gc_p50_ns"] = p50 ? json(*p50) : json(nullptr);
  j["gc_p99_ns"] = p99 ? json(*p99) : json(nullptr);
  j["heap_words"] = p.heap_words;
  j["heap_grows"] = c.heap_grows;
  j["exited"] = p.exited;
  // From the node (null without a connection, or when it did not answer).
  const erlang::ProcessState* state = node ? node->State(p.pid) : nullptr;
  const bool known = state && state->alive;
  j["memory"] = known ? json(state->memory_bytes) : json(nullptr);
  j["current_function"] =
      known && !state->current_function.empty() ? json(state->current_function) : json(nullptr);
  return j;
}

// The node's ETS tables, by memory then size (what observer_cli leads with), at most `limit`
// (0 = all).
// {"tables": N, "described": n, "memory_bytes": sum, "by_memory": [...]}, or null without the node.
json EtsJson(const cli::NodeView* node, size_t limit) {
  if (!node || !node->ets()) return nullptr;
  const erlang::EtsSummary& ets = *node->ets();
  uint64_t memory = 0;
  for (const auto& t : ets.described) memory += t.memory_bytes;
  json list = json::array();
  for (const auto* t : erlang::LargestEtsTables(ets, limit)) {
    list.push_back({{"id", t->id},
                    {"name", t->name},
                    {"owner", t->owner},
                    {"size", t->size},
                    {"memory", t->memory_bytes},
                    {"type", t->type},
                    {"protection", t->protection}});
  }
  return {{"tables", ets.tables},
          {"described", ets.described.size()},
          {"memory", memory},
          {"by_memory", std::move(list)}};
}

json SnapshotJson(const probes::TopSnapshot& snap,
                  const std::vector<const probes::ProcessStats*>& rows, const cli::NodeView* node,
                  size_t limit) {
  json doc;
  doc["processes"] = json::array();
  for (const auto* p : rows) doc["processes"].push_back(ProcessJson(*p, node, snap.interval_ns));
  doc["ports"] = json::array();
  std::map<std::string, json> by_name;
  for (const auto* p : SortedPorts(snap)) {
    doc["ports"].push_back({{"port", p->port},
                            {"name", p->name},
                            {"bytes_out", p->interval.bytes_out},
                            {"commands", p->interval.commands},
                            {"outputs", p->interval.outputs},
                            {"controls", p->interval.controls}});
    json& n = by_name[p->name];
    if (n.is_null()) n = {{"name", p->name}, {"ports", 0}, {"bytes_out", 0}, {"commands", 0}};
    n["ports"] = n["ports"].get<uint64_t>() + 1;
    n["bytes_out"] = n["bytes_out"].get<uint64_t>() + p->interval.bytes_out;
    n["commands"] = n["commands"].get<uint64_t>() + p->interval.commands;
  }
  doc["port_names"] = json::array();
  for (auto& [name, n] : by_name) doc["port_names"].push_back(std::move(n));
  doc["schedulers"] = json::array();
  for (const auto& s : snap.schedulers) {
    const auto& c = s.interval;
    doc["schedulers"].push_back(
        {{"tid", s.tid},
         {"thread", s.thread_name},
         {"kind", std::string(probes::SchedulerKindName(s.kind))},
         {"index", s.index},
         {"busy_ns", c.busy_ns},
         {"idle_ns", c.idle_ns},
         {"offcpu_ns", c.offcpu_ns},
         {"idle_offcpu_ns", c.idle_offcpu_ns},
         {"utilization",
          snap.interval_ns ? static_cast<double>(c.busy_ns) / static_cast<double>(snap.interval_ns)
                           : 0.0},
         {"runs", c.runs},
         {"preempted", c.preempted},
         {"blocked", c.blocked}});
  }
  doc["lost"] = {{"procs_evicted", snap.lost.procs_evicted},
                 {"ports_evicted", snap.lost.ports_evicted},
                 {"gc_hists_evicted", snap.lost.gc_hists_evicted},
                 {"read_errors", snap.lost.read_errors},
                 {"gc_unpaired", snap.lost.gc_unpaired},
                 {"threads_untracked", snap.lost.threads_untracked},
                 {"recursion_misses", snap.lost.recursion_misses}};
  doc["events"] = snap.events;
  doc["processes_tracked"] = snap.processes.size();
  doc["ets"] = EtsJson(node, limit);
  return doc;
}

// ---- the terminal view ----

std::string Human(double v) {  // 950, 12.3k, 4.56M
  char buf[32];
  if (v < 1e3) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else if (v < 1e6) {
    std::snprintf(buf, sizeof(buf), "%.3gk", v / 1e3);
  } else if (v < 1e9) {
    std::snprintf(buf, sizeof(buf), "%.3gM", v / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3gG", v / 1e9);
  }
  return buf;
}

std::string Bytes(double v) {
  char buf[32];
  if (v < 1024) {
    std::snprintf(buf, sizeof(buf), "%.0f B", v);
  } else if (v < 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.3g KiB", v / 1024);
  } else if (v < 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.3g MiB", v / (1024 * 1024));
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g GiB", v / (1024.0 * 1024 * 1024));
  }
  return buf;
}

std::string Fit(std::string s, size_t width, bool right) {
  // Cut by bytes, but never inside a UTF-8 sequence.
  if (s.size() > width) {
    size_t cut = width > 0 ? width - 1 : 0;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "~";
  }
  const std::string pad(width > s.size() ? width - s.size() : 0, ' ');
  return right ? pad + s : s + pad;
}

std::string Bar(double share, int width) {
  const int full = static_cast<int>(std::lround(std::clamp(share, 0.0, 1.0) * width));
  std::string s;
  for (int i = 0; i < width; ++i) s += i < full ? "|" : ".";
  return s;
}

struct Screen {
  int rows = 24;
  int cols = 100;
};

Screen TerminalSize() {
  Screen s;
  winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
    s.rows = ws.ws_row;
    s.cols = ws.ws_col;
  }
  return s;
}

std::string RenderSchedulers(const probes::TopSnapshot& snap) {
  std::string out = "schedulers";
  double dirty_cpu = 0, dirty_io = 0, busy = 0, offcpu = 0;
  int n_dirty_cpu = 0, n_dirty_io = 0;
  const double interval = std::max<double>(1, static_cast<double>(snap.interval_ns));
  for (const auto& s : snap.schedulers) {
    const double share = static_cast<double>(s.interval.busy_ns) / interval;
    busy += static_cast<double>(s.interval.busy_ns);
    offcpu += static_cast<double>(s.interval.offcpu_ns);
    if (s.kind == probes::SchedulerKind::kNormal) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "  %d [%s] %3.0f%%", s.index, Bar(share, 10).c_str(),
                    share * 100);
      out += buf;
    } else if (s.kind == probes::SchedulerKind::kDirtyCpu) {
      dirty_cpu += share;
      ++n_dirty_cpu;
    } else if (s.kind == probes::SchedulerKind::kDirtyIo) {
      dirty_io += share;
      ++n_dirty_io;
    }
  }
  char buf[160];
  std::snprintf(
      buf, sizeof(buf),
      "\n            dirty cpu %.0f%% (%d)   dirty io %.0f%% (%d)   off-CPU while busy %.1f%%\n",
      n_dirty_cpu ? dirty_cpu / n_dirty_cpu * 100 : 0.0, n_dirty_cpu,
      n_dirty_io ? dirty_io / n_dirty_io * 100 : 0.0, n_dirty_io,
      busy > 0 ? offcpu / busy * 100 : 0.0);
  return out + buf;
}

std::string RenderView(const probes::TopSnapshot& snap, const BeamDescription& beam,
                       const Options& options, SortKey sort, const cli::NodeView* node,
                       const std::vector<const probes::ProcessStats*>& rows, const Screen& screen) {
  const double seconds = std::max(1e-9, static_cast<double>(snap.interval_ns) / 1e9);
  std::string out;
  char head[256];
  const std::time_t now = std::time(nullptr);
  char clock[16];
  std::strftime(clock, sizeof(clock), "%H:%M:%S", std::localtime(&now));
  std::snprintf(head, sizeof(head),
                "orion top  pid %d%s%s (%s)  %s  every %g s  sort: %s  processes: %zu\n", beam.pid,
                beam.node.empty() ? "" : "  ", beam.node.c_str(), beam.flavor.c_str(), clock,
                options.interval, SortName(sort), snap.processes.size());
  out += head;
  out += RenderSchedulers(snap);
  if (beam.queue_source == probes::QueueLengthSource::kReceiverSignals) {
    out += std::string("mailboxes   no orion__mailbox probe (Orion's patch 0011): ") +
           kReceiverSignalsCaveat + "\n";
  }
  if (beam.pid_layout == beam::PidLayoutSource::kAssumed) {
    out += "pids        decoded as OTP 24-25 lay them out: on OTP 26+ the table's scrambled form\n";
  }
  out += "\n";

  // MEMORY and CURRENT FUNCTION come from the node (with --node/--cookie-file), the rest from
  // the kernel.
  constexpr int kFunctionWidth = 28;
  const int node_width = node ? 10 + 1 + kFunctionWidth : 0;
  const int name_width = std::clamp(screen.cols - 104 - node_width, 16, 60);
  out += Fit("PID", 14, false) + " " + Fit("NAME / INITIAL CALL", name_width, false) + " " +
         Fit("CPU%", 6, true) + Fit("REDS/s", 8, true) + Fit("RUNS/s", 8, true) +
         Fit("QUEUE", 9, true) + Fit("QMAX", 9, true) + Fit("IN/s", 8, true) +
         Fit("OUT/s", 8, true) + Fit("GC/s", 7, true) + Fit("GC p99", 10, true) +
         Fit("HEAP", 8, true);
  if (node) out += Fit("MEMORY", 10, true) + " " + Fit("CURRENT FUNCTION", kFunctionWidth, false);
  out += "\n";
  for (const auto* p : rows) {
    const DisplayName n = NameOf(*p, node);
    const auto& c = p->interval;
    char cpu[16];
    std::snprintf(cpu, sizeof(cpu), "%.1f",
                  static_cast<double>(c.cpu_ns) /
                      static_cast<double>(std::max<uint64_t>(1, snap.interval_ns)) * 100);
    const auto p99 = probes::GcPauseQuantile(*p, 0.99);
    std::string name = n.registered.empty() ? n.initial_call : n.registered;
    if (p->exited) name = "(exited) " + name;
    out += Fit(p->pid, 14, false) + " " + Fit(name, name_width, false) + " " + Fit(cpu, 6, true) +
           Fit(Human(c.reds / seconds), 8, true) + Fit(Human(c.sched_count / seconds), 8, true) +
           Fit(Human(p->queue_len), 9, true) + Fit(Human(p->queue_len_max), 9, true) +
           Fit(Human(c.msgs_in / seconds), 8, true) + Fit(Human(c.msgs_out / seconds), 8, true) +
           Fit(Human(c.gc_count() / seconds), 7, true) +
           Fit(p99 ? cli::FormatDuration(static_cast<double>(*p99)) : "-", 10, true) +
           Fit(p->heap_words ? Human(p->heap_words) : "-", 8, true);
    if (node) {
      const erlang::ProcessState* state = node->State(p->pid);
      const bool known = state && state->alive;
      out += Fit(known ? Bytes(static_cast<double>(state->memory_bytes)) : "-", 10, true) + " " +
             Fit(known ? state->current_function : "-", kFunctionWidth, false);
    }
    out += "\n";
  }

  const auto ports = SortedPorts(snap);
  if (!ports.empty()) {
    out += "\n" + Fit("PORT", 16, false) + " " + Fit("NAME", 24, false) +
           Fit("BYTES OUT/s", 13, true) + Fit("CMDS/s", 9, true) + Fit("BYTES OUT", 13, true) +
           "\n";
    for (size_t i = 0; i < ports.size() && i < 5; ++i) {
      const auto* p = ports[i];
      out += Fit(p->port, 16, false) + " " + Fit(p->name, 24, false) +
             Fit(Bytes(p->interval.bytes_out / seconds), 13, true) +
             Fit(Human(p->interval.commands / seconds), 9, true) +
             Fit(Bytes(p->total.bytes_out), 13, true) + "\n";
    }
  }
  if (node && node->ets()) {
    const erlang::EtsSummary& ets = *node->ets();
    char title[96];
    std::snprintf(title, sizeof(title), "  (%zu of %llu tables, by memory)", ets.described.size(),
                  static_cast<unsigned long long>(ets.tables));
    out += "\n" + Fit("ETS TABLE", 28, false) + " " + Fit("OWNER", 14, false) +
           Fit("SIZE", 10, true) + Fit("MEMORY", 12, true) + "  " + Fit("TYPE", 13, false) +
           title + "\n";
    for (const auto* t : erlang::LargestEtsTables(ets, 5)) {
      out += Fit(t->name, 28, false) + " " + Fit(t->owner, 14, false) +
             Fit(Human(static_cast<double>(t->size)), 10, true) +
             Fit(Bytes(static_cast<double>(t->memory_bytes)), 12, true) + "  " +
             Fit(t->type, 13, false) + "\n";
    }
  }
  const auto& l = snap.lost;
  if (l.procs_evicted || l.read_errors || l.gc_hists_evicted || l.threads_untracked ||
      l.recursion_misses) {
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "\nlost: %llu processes evicted, %llu GC histograms evicted, %llu unreadable "
                  "probe arguments, %llu probe hits skipped\n",
                  static_cast<unsigned long long>(l.procs_evicted),
                  static_cast<unsigned long long>(l.gc_hists_evicted),
                  static_cast<unsigned long long>(l.read_errors),
                  static_cast<unsigned long long>(l.recursion_misses));
    out += buf;
  }
  return out;
}

// Raw keyboard input and the alternate screen, restored on destruction.
class Terminal {
 public:
  Terminal() {
    keys_ = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (keys_) {
      termios raw = saved_;
      raw.c_lflag &= ~(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);
    std::fflush(stdout);
  }
  ~Terminal() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (keys_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  // A key pressed within `timeout`, or 0.
  char WaitKey(std::chrono::milliseconds timeout) {
    if (!keys_) {
      std::this_thread::sleep_for(timeout);
      return 0;
    }
    pollfd fd = {STDIN_FILENO, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return 0;
    char c = 0;
    return read(STDIN_FILENO, &c, 1) == 1 ? c : 0;
  }

 private:
  termios saved_{};
  bool keys_ = false;
};

// The full-screen view until q, Ctrl-C, --duration or the BEAM's exit (returns true then).
bool RunLiveView(probes::Top* top, const BeamDescription& description, const Options& options,
                 cli::NodeView* node) {
  const auto start = Clock::now();
  bool target_gone = false;
  Terminal terminal;
  SortKey sort = options.sort;
  auto next = start;
  bool redraw = false;
  std::optional<probes::TopSnapshot> last;
  while (!cli::StopRequested()) {
    if (options.duration &&
        std::chrono::duration<double>(Clock::now() - start).count() >= *options.duration) {
      break;
    }
    if (kill(description.pid, 0) != 0) {
      target_gone = true;
      break;
    }
    if (Clock::now() >= next || redraw) {
      if (!redraw || !last) {
        auto snap = top->Read();
        if (!snap.ok()) {
          spdlog::error("{}", snap.status().message());
          break;
        }
        last = std::move(*snap);
        next = Clock::now() + Seconds(options.interval);
      }
      redraw = false;
      const Screen screen = TerminalSize();
      const int ets_rows = node ? 8 : 0;  // the ETS section's title, header and 5 tables
      const size_t fits = static_cast<size_t>(std::max(1, screen.rows - 14 - ets_rows));
      auto rows = Sorted(*last, sort);
      rows.resize(std::min(
          rows.size(), options.limit.value_or(fits) ? options.limit.value_or(fits) : rows.size()));
      if (node) node->Refresh(rows, cli::NodeView::Budget::kLiveView);
      std::string view = RenderView(*last, description, options, sort, node, rows, screen);
      view += "\nkeys: c cpu  r reds  m queue  g gc  s sends  q quit";
      std::fputs("\x1b[H\x1b[2J", stdout);
      std::fputs(view.c_str(), stdout);
      std::fflush(stdout);
    }
    const char key = terminal.WaitKey(std::chrono::milliseconds(100));
    if (key == 'q' || key == 'Q') break;
    if (auto s = key == 'c'   ? std::optional(SortKey::kCpu)
                 : key == 'm' ? std::optional(SortKey::kQueue)
                 : key == 'g' ? std::optional(SortKey::kGc)
                 : key == 's' ? std::optional(SortKey::kSends)
                 : key == 'r' ? std::optional(SortKey::kReds)
                              : std::nullopt) {
      sort = *s;
      redraw = true;
    }
  }
  top->Detach();
  return target_gone;
}

}  // namespace

int RunTopCommand(int argc, char** argv) {
  Options options;
  if (auto exit_code = ParseOptions(argc, argv, &options)) return *exit_code;
  cli::ConfigureLogging(options.verbose);
  probes::InstallLibbpfLogger(options.verbose);

  if (!options.pid) {
    if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return cli::ReportError("top", env);
    auto beams = beam::FindUsdtBeams();
    if (beams.size() != 1) {
      return UsageError(beams.empty()
                            ? "no USDT-enabled BEAM is running; name one with --pid"
                            : "several USDT-enabled BEAMs are running; choose one with --pid");
    }
    options.pid = beams.front().pid;
  }
  auto beam = beam::InspectBeam(*options.pid);
  if (!beam.ok()) return cli::ReportError("top", beam.status());
  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return cli::ReportError("top", env);

  // Names, if asked for: connect before attaching, so that a wrong cookie fails fast.
  std::unique_ptr<cli::NodeView> node_view;
  if (!options.node.empty() || !options.cookie_file.empty()) {
    std::string node = options.node.empty() ? beam->node_name : options.node;
    if (node.empty()) {
      return UsageError("the BEAM of pid " + std::to_string(beam->pid) +
                        " is not distributed (epmd knows no name for it, and its command line "
                        "gives no -sname/-name): names cannot be looked up");
    }
    std::string cookie_file = options.cookie_file;
    if (cookie_file.empty()) {
      const char* home = std::getenv("HOME");
      cookie_file = std::string(home ? home : "") + "/.erlang.cookie";
    }
    auto cookie = erlang::ReadCookieFile(cookie_file, /*require_root_owned=*/false);
    if (!cookie.ok()) return cli::ReportError("top", cookie.status());
    auto client = erlang::NodeClient::Connect(node, *cookie, std::chrono::seconds(3));
    if (!client.ok()) return cli::ReportError("top", client.status());
    spdlog::debug("names from {} as hidden node {}", node, (*client)->own_name());
    node_view = std::make_unique<cli::NodeView>(std::move(*client), *cookie);
    options.node = node;
  }

  auto top = probes::Top::Start(*beam, probes::TopOptions{.groups = options.groups});
  if (!top.ok()) return cli::ReportError("top", top.status());
  cli::InstallStopSignals();
  const BeamDescription description{
      beam->pid, options.node.empty() ? beam->node_name : options.node,
      std::string(beam::FlavorName(beam->flavor)), (*top)->queue_length_source(),
      (*top)->pid_layout_source()};
  if (description.queue_source == probes::QueueLengthSource::kReceiverSignals) {
    spdlog::warn(
        "the BEAM of pid {} has no orion__mailbox probe (Orion's patch 0011; "
        "beam_dtrace_build/build.sh builds a BEAM with it): {}",
        beam->pid, kReceiverSignalsCaveat);
  }

  const bool live = !options.json && isatty(STDOUT_FILENO);
  const auto start = Clock::now();
  bool target_gone = false;

  if (options.json || !live) {
    // One document for the whole duration (--json), or a plain table per interval.
    auto next = start + Seconds(options.interval);
    while (!cli::StopRequested()) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      if (options.duration && elapsed >= *options.duration) break;
      if (kill(beam->pid, 0) != 0) {
        target_gone = true;
        break;
      }
      if (!options.json && Clock::now() >= next) {
        auto snap = (*top)->Read();
        if (!snap.ok()) return cli::ReportError("top", snap.status());
        auto rows = Sorted(*snap, options.sort);
        rows.resize(std::min(
            rows.size(), options.limit.value_or(20) ? options.limit.value_or(20) : rows.size()));
        if (node_view) node_view->Refresh(rows, cli::NodeView::Budget::kLiveView);
        std::printf("%s\n", RenderView(*snap, description, options, options.sort, node_view.get(), rows,
                                       Screen{1000, 140})
                                .c_str());
        std::fflush(stdout);
        next += Seconds(options.interval);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!options.json) return cli::kExitOk;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    auto snap = (*top)->Read();
    (*top)->Detach();
    if (!snap.ok()) return cli::ReportError("top", snap.status());
    auto rows = Sorted(*snap, options.sort);
    const size_t limit = options.limit.value_or(100);
    if (limit) rows.resize(std::min(rows.size(), limit));
    if (node_view) node_view->Refresh(rows, cli::NodeView::Budget::kJson);
    json doc = SnapshotJson(*snap, rows, node_view.get(), limit);
    doc["pid"] = beam->pid;
    doc["node"] = description.node.empty() ? json(nullptr) : json(description.node);
    doc["flavor"] = description.flavor;
    doc["duration_s"] = elapsed;
    doc["sort"] = SortName(options.sort);
    doc["probes"] = probes::TopProbeGroupNames(options.groups);
    doc["queue_source"] = std::string(probes::QueueLengthSourceName(description.queue_source));
    doc["pid_layout"] = std::string(beam::PidLayoutSourceName(description.pid_layout));
    doc["target_exited"] = target_gone;
    std::printf("%s\n", doc.dump(2).c_str());
    std::fflush(stdout);
    if (target_gone)
      spdlog::warn("the BEAM exited; the results above are what was seen until then");
    return cli::kExitOk;
  }

  if (RunLiveView(top->get(), description, options, node_view.get())) {
    spdlog::warn("the BEAM (pid {}) exited", beam->pid);
  }
  return cli::kExitOk;
}

}  // namespace orion
