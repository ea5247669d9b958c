// orion capture --pid PID [--duration S] [--interval S] [--json] PATTERN...
//
// Latency of the named functions on a running, USDT-enabled BEAM (the emu flavor, or the JIT
// of Orion's patched build), measured in the kernel. Live table on a terminal, final table
// (or one JSON document) at the end.
#include "userspace/cli/capture_command.h"

#include <getopt.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include "userspace/beam/beam_process.h"
#include "userspace/cli/cli_support.h"
#include "userspace/cli/latency_report.h"
#include "userspace/cli/remote_capture.h"
#include "userspace/cli/signals.h"
#include "userspace/cli/tracer_capture_command.h"
#include "userspace/erlang/cookie.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/rate_guard.h"

namespace orion {
namespace {

constexpr char kUsage[] =
    "Usage: orion capture --pid PID [--pid PID...] [--duration SECONDS] [--interval SECONDS]\n"
    "                     [--json] [--max-functions N] [--pairing beam|bpf] [-v] PATTERN...\n"
    "       orion capture --daemon NODE [--cluster] [--node NAME] [--cookie-file PATH]\n"
    "                     [--mode auto|probes|tracer] [--match SPEC]\n"
    "                     [--duration SECONDS] [--json] PATTERN...\n"
    "       orion capture --mode tracer --node NODE --cookie-file PATH [--match SPEC]\n"
    "                     [--duration SECONDS] [--json] PATTERN...\n"
    "\n"
    "Measures how long Erlang/Elixir functions take on a running BEAM, in the kernel, with no\n"
    "restart: wall time and on-CPU time of every call, as DDSketches (0.54 % relative\n"
    "accuracy). The BEAM must be a USDT build (beam_dtrace_build/): either flavor of Orion's\n"
    "patched build (the JIT and emu emulators pair the calls themselves), or the emu flavor of\n"
    "another. On any other distributed node (stock OTP, a JIT without Orion's patches) --pid\n"
    "picks tracer mode by itself (ERTS's call tracing picks the calls; wall time only;\n"
    "docs/tracer.md).\n"
    "\n"
    "Patterns:\n"
    "  mod:fun/arity   one function             lists:sort/1\n"
    "  mod:fun/_       every arity (or mod:fun) lists:sort\n"
    "  mod:_/_         every function (or mod)  lists\n"
    "  Mod.fun/arity   Elixir                   MyApp.Repo.get/2, MyApp.Repo, :ets.lookup/2\n"
    "\n"
    "Options:\n"
    "  -p, --pid PID          the BEAM's OS pid (repeat for several BEAMs)\n"
    "  -d, --duration S       stop after S seconds (default: until Ctrl-C)\n"
    "  -i, --interval S       refresh the live view every S seconds (default 1)\n"
    "  -j, --json             print one JSON document at the end (no live view)\n"
    "      --max-functions N  functions with a histogram, for wide patterns (default 128)\n"
    "      --max-rate N       stop (and report what was captured) when the BEAM delivers more\n"
    "                         than N events a second over one second (default 2000000; 0: no\n"
    "                         limit): pairing in the BEAM an event is a targeted call (about\n"
    "                         0.15-0.5 us of the node's time each), pairing in BPF a probe hit\n"
    "                         (two per targeted call, 0.5-1.5 us each)\n"
    "      --pairing W        beam (default): BEAMs with Orion's patches 0007-0012 pair each\n"
    "                         call with its return at a breakpoint in the targeted function\n"
    "                         and fire one probe per 64 ended calls (a tenth of the cost, and\n"
    "                         other code runs untouched; docs/probes.md); bpf: pair in BPF\n"
    "                         from the function probes everywhere, as on other USDT builds\n"
    "                         (the emu flavor only: the JIT has no function probes)\n"
    "\n"
    "Through the daemons (orion daemon, docs/operations.md):\n"
    "      --daemon NODE      ask this daemon (orion@host) to capture on its host's BEAMs\n"
    "      --cluster          ... and on every host of the cluster, merged\n"
    "      --node NAME        only the BEAM node NAME (app@host1); default: every BEAM,\n"
    "                         each listed under its host: counted, module not loaded (a shell\n"
    "                         without the module is no error), refused or failed, and why;\n"
    "                         --max-rate is each BEAM's\n"
    "      --per-node         also each daemon's own results (which host is slow?)\n"
    "      --cookie-file P    the cluster's cookie (default /etc/orion/cookie)\n"
    "      --mode M           auto (default: function probes where they fire, tracer mode on\n"
    "                         other nodes, tracer mode everywhere with --match), probes, tracer\n"
    "                         (--duration defaults to 10 s; --interval does not apply)\n"
    "\n"
    "Tracer mode, for JIT and stock BEAMs (docs/tracer.md):\n"
    "      --mode tracer      ERTS's match specs choose the calls, Orion's tracer NIF times them\n"
    "                         (any distributed node, emu too: untargeted code untouched,\n"
    "                         wall time only)\n"
    "      --node NAME        the node (app@host, on this host) to load orion_tracer into\n"
    "      --match SPEC       a match spec: \"[{['_', nadia], [], []}]\" (default: every call)\n"
    "  -v, --verbose          debug logs, including libbpf's\n"
    "  -h, --help             this help\n"
    "\n"
    "Examples:\n"
    "  orion capture --pid $(pgrep -f beam.emu) --duration 10 'my_app:handle_call/3'\n"
    "  orion capture --pid 4242 --json --duration 30 MyApp.Repo ets:lookup/2 > latency.json\n"
    "  orion capture --daemon orion@web1 --cluster --duration 30 MyApp.Repo.get/2\n"
    "  orion capture --daemon orion@web1 --cluster --match \"[{['_', nadia], [], []}]\" \\\n"
    "                users:get/2\n"
    "  orion capture --mode tracer --node app@web1 --cookie-file ~/.erlang.cookie \\\n"
    "                --match \"[{['_', nadia], [], []}]\" --duration 10 users:get/2\n"
    "\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or pattern, 3 not privileged,\n"
    "4 the target cannot be profiled (gone, not a BEAM, no probes, a JIT that does not pair).\n";

struct Options {
  std::vector<pid_t> pids;
  std::optional<double> duration;
  double interval = 1;
  bool json = false;
  bool verbose = false;
  uint32_t max_functions = 128;
  uint64_t max_rate = 2'000'000;  // probe hits per second; 0: no limit
  bool pairing = true;            // --pairing beam (default) or bpf
  std::vector<probes::MfaPattern> patterns;
  std::vector<std::string> pattern_texts;  // as written, for a daemon
  std::string daemon;
  bool cluster = false;
  bool per_node = false;
  std::string node;
  std::string cookie_file = erlang::kDefaultCookieFile;
  bool cookie_file_given = false;
  std::string mode = "probes";  // or "tracer" (docs/tracer.md)
  bool mode_given = false;
  std::string match_spec;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "orion capture: %s\n\n%s", message.c_str(), kUsage);
  return cli::kExitUsage;
}

// Parses argv into `options`; returns an exit code when the command should stop now.
std::optional<int> ParseOptions(int argc, char** argv, Options* options) {
  enum { kMaxFunctions = 1000, kDaemon, kCluster, kNode, kCookieFile, kPerNode, kMode, kMatch,
         kMaxRate, kPairing };
  static const option kOptions[] = {{"pid", required_argument, nullptr, 'p'},
                                    {"duration", required_argument, nullptr, 'd'},
                                    {"interval", required_argument, nullptr, 'i'},
                                    {"json", no_argument, nullptr, 'j'},
                                    {"max-functions", required_argument, nullptr, kMaxFunctions},
                                    {"max-rate", required_argument, nullptr, kMaxRate},
                                    {"pairing", required_argument, nullptr, kPairing},
                                    {"daemon", required_argument, nullptr, kDaemon},
                                    {"cluster", no_argument, nullptr, kCluster},
                                    {"per-node", no_argument, nullptr, kPerNode},
                                    {"node", required_argument, nullptr, kNode},
                                    {"cookie-file", required_argument, nullptr, kCookieFile},
                                    {"mode", required_argument, nullptr, kMode},
                                    {"match", required_argument, nullptr, kMatch},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "p:d:i:jvh", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'p': {
        char* end = nullptr;
        long pid = std::strtol(optarg, &end, 10);
        if (*end != '\0' || pid <= 0) return UsageError(std::string("--pid needs a process id, got '") + optarg + "'");
        options->pids.push_back(static_cast<pid_t>(pid));
        break;
      }
      case 'd': {
        double d;
        if (!cli::ParseSeconds(optarg, &d)) return UsageError("--duration needs a positive number of seconds");
        options->duration = d;
        break;
      }
      case 'i':
        if (!cli::ParseSeconds(optarg, &options->interval)) {
          return UsageError("--interval needs a positive number of seconds");
        }
        break;
      case 'j': options->json = true; break;
      case kMaxFunctions: {
        char* end = nullptr;
        long n = std::strtol(optarg, &end, 10);
        if (*end != '\0' || n < 1 || n > 4096) return UsageError("--max-functions must be 1..4096");
        options->max_functions = static_cast<uint32_t>(n);
        break;
      }
      case kMaxRate: {
        char* end = nullptr;
        const unsigned long long n = std::strtoull(optarg, &end, 10);
        if (*end != '\0' || optarg[0] == '-') {
          return UsageError("--max-rate needs a number of probe hits per second (0: no limit)");
        }
        options->max_rate = n;
        break;
      }
      case kPairing:
        if (std::string_view(optarg) != "beam" && std::string_view(optarg) != "bpf") {
          return UsageError(std::string("--pairing is beam or bpf, not '") + optarg + "'");
        }
        options->pairing = std::string_view(optarg) == "beam";
        break;
      case kDaemon: options->daemon = optarg; break;
      case kCluster: options->cluster = true; break;
      case kPerNode: options->per_node = true; break;
      case kNode: options->node = optarg; break;
      case kCookieFile:
        options->cookie_file = optarg;
        options->cookie_file_given = true;
        break;
      case kMode:
        options->mode = optarg;
        options->mode_given = true;
        break;
      case kMatch: options->match_spec = optarg; break;
      case 'v': options->verbose = true; break;
      case 'h': std::fputs(kUsage, stdout); return cli::kExitOk;
      default: std::fputs(kUsage, stderr); return cli::kExitUsage;
    }
  }
  // Through daemons, each one picks each BEAM's mode (auto) unless told.
  if (!options->daemon.empty() && !options->mode_given) options->mode = "auto";
  if (options->mode != "probes" && options->mode != "tracer" && options->mode != "auto") {
    return UsageError("--mode is auto, probes or tracer");
  }
  if (!options->match_spec.empty() && options->mode == "probes") {
    return UsageError("--match needs tracer mode (function probes cannot test arguments)");
  }
  if (!options->daemon.empty()) {
    if (!options->pids.empty()) {
      return UsageError("--pid and --daemon exclude each other (use --node to pick a BEAM)");
    }
  } else if (options->mode == "auto") {
    return UsageError("--mode auto is for --daemon; with --pid the mode is picked by itself");
  } else if (options->mode == "tracer") {
    if (options->node.empty()) return UsageError("--mode tracer needs --node NAME (app@host)");
    if (!options->pids.empty() || options->cluster || options->per_node) {
      return UsageError("--mode tracer takes --node, not --pid, --cluster or --per-node (or "
                        "use --daemon)");
    }
  } else {
    if (!options->match_spec.empty()) return UsageError("--match needs --mode tracer (or --daemon)");
    if (options->pids.empty()) {
      return UsageError("--pid is required (the OS pid of the BEAM), or --daemon NODE");
    }
    if (options->cluster || options->per_node || !options->node.empty()) {
      return UsageError("--cluster, --per-node and --node need --daemon");
    }
  }
  if (optind == argc) return UsageError("name at least one function pattern, e.g. lists:sort/1");
  for (int i = optind; i < argc; ++i) {
    auto pattern = probes::ParseMfaPattern(argv[i]);
    if (!pattern.ok()) return cli::ReportError("capture", pattern.status());
    options->patterns.push_back(std::move(*pattern));
    options->pattern_texts.push_back(argv[i]);
  }
  return std::nullopt;
}

bool AnyAlive(const std::vector<beam::BeamProcess>& beams) {
  for (const auto& b : beams) {
    if (kill(b.pid, 0) == 0) return true;
  }
  return false;
}

void PrintLive(const probes::CaptureSnapshot& snap, const probes::CaptureSnapshot* previous,
               double interval, double elapsed, const Options& options) {
  std::string header = "orion capture  pid";
  for (pid_t p : options.pids) header += " " + std::to_string(p);
  char buf[96];
  if (options.duration) {
    std::snprintf(buf, sizeof(buf), "  %.0f/%.0f s", elapsed, *options.duration);
  } else {
    std::snprintf(buf, sizeof(buf), "  %.0f s (Ctrl-C to stop)", elapsed);
  }
  header += buf;
  std::string body = cli::RenderTable(snap, previous, interval);
  std::printf("\x1b[H\x1b[2J%s\n\n%s%s", header.c_str(), body.c_str(),
              cli::RenderLost(snap.lost).c_str());
  std::fflush(stdout);
}

// Tracer mode on `node` with the command's options (docs/tracer.md); `cookie`, if not empty,
// instead of --cookie-file.
int RunTracerMode(const Options& options, const std::string& node, const std::string& cookie) {
  return cli::RunTracerCapture({.node = node,
                                .cookie_file = options.cookie_file,
                                .cookie = cookie,
                                .max_rate = options.max_rate,
                                .patterns = options.patterns,
                                .match_spec = options.match_spec,
                                .duration = options.duration,
                                .interval = options.interval,
                                .json = options.json,
                                .verbose = options.verbose});
}

}  // namespace

int RunCaptureCommand(int argc, char** argv) {
  Options options;
  if (auto exit_code = ParseOptions(argc, argv, &options)) return *exit_code;
  cli::ConfigureLogging(options.verbose);
  if (options.mode == "tracer" && options.daemon.empty()) {
    return RunTracerMode(options, options.node, /*cookie=*/"");
  }
  if (!options.daemon.empty()) {
    return cli::RunRemoteCapture({.daemon = options.daemon,
                                  .cluster = options.cluster,
                                  .node = options.node,
                                  .cookie_file = options.cookie_file,
                                  .duration_s = options.duration.value_or(10),
                                  .json = options.json,
                                  .max_functions = options.max_functions,
                                  .per_node = options.per_node,
                                  .max_rate = options.max_rate,
                                  .patterns = options.pattern_texts,
                                  .mode = options.mode,
                                  .match_spec = options.match_spec});
  }
  probes::InstallLibbpfLogger(options.verbose);

  probes::CaptureOptions capture_options{.patterns = options.patterns,
                                         .max_functions = options.max_functions,
                                         .pairing = options.pairing};
  std::vector<beam::BeamProcess> beams;
  for (pid_t pid : options.pids) {
    auto beam = beam::InspectAnyBeam(pid);
    if (!beam.ok()) return cli::ReportError("capture", beam.status());
    // Neither function probes nor the emulator's pairing can capture this here: the node's own
    // call tracing can (tracer mode), if it is a distributed node orion can connect to.
    // `--mode probes` keeps the refusal.
    const std::string why = probes::WhyNotCapturable(*beam, capture_options);
    if (!why.empty() && !options.mode_given && options.pids.size() == 1 &&
        !beam->node_name.empty()) {
      StatusOr<std::string> cookie = std::string();
      if (!options.cookie_file_given) {
        cookie = cli::NodeCookie(*beam);
        if (!cookie.ok()) return cli::ReportError("capture", cookie.status());
      }
      spdlog::info("pid {} {}: using tracer mode on node {} instead (ERTS's call tracing picks "
                   "the calls, Orion's tracer NIF times them; wall time only; docs/tracer.md)",
                   pid, why, beam->node_name);
      return RunTracerMode(options, beam->node_name, *cookie);
    }
    if (beam->usdt_sites == 0) {
      auto usdt = beam::InspectBeam(pid);  // its error says how to get a USDT build
      return cli::ReportError("capture", usdt.ok() ? Internal("no USDT probes") : usdt.status());
    }
    if (Status s = probes::CheckCapturable(*beam, capture_options); !s.ok()) {
      return cli::ReportError("capture", s);
    }
    beams.push_back(std::move(*beam));
  }
  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return cli::ReportError("capture", env);

  auto capture = probes::Capture::Start(beams, capture_options);
  if (!capture.ok()) return cli::ReportError("capture", capture.status());

  cli::InstallStopSignals();
  const bool live = !options.json && isatty(STDOUT_FILENO);
  std::string what;
  for (const auto& p : options.patterns) what += " " + p.ToString();
  if (options.duration) {
    spdlog::info("capturing{} for {:g} s", what, *options.duration);
  } else {
    spdlog::info("capturing{} until Ctrl-C", what);
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_refresh = start + std::chrono::duration<double>(options.interval);
  std::optional<probes::CaptureSnapshot> previous;
  bool target_gone = false;
  probes::RateGuard guard(options.max_rate, start);  // --max-rate
  std::optional<double> over_rate;
  while (!cli::StopRequested()) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (options.duration && elapsed >= *options.duration) break;
    if (!AnyAlive(beams)) {
      target_gone = true;
      break;
    }
    if (guard.Due(now)) {
      auto events = (*capture)->Events();
      if (!events.ok()) return cli::ReportError("capture", events.status());
      if ((over_rate = guard.Over(now, *events))) break;
    }
    if (live && now >= next_refresh) {
      auto snap = (*capture)->Read();
      if (!snap.ok()) return cli::ReportError("capture", snap.status());
      PrintLive(*snap, previous ? &*previous : nullptr, options.interval, elapsed, options);
      previous = std::move(*snap);
      next_refresh += std::chrono::duration<double>(options.interval);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  (*capture)->Detach();
  auto snap = (*capture)->Read();
  if (!snap.ok()) return cli::ReportError("capture", snap.status());

  if (options.json) {
    nlohmann::json doc;
    doc["mode"] = "probes";
    doc["pid"] = options.pids.front();
    doc["pids"] = options.pids;
    doc["duration_s"] = elapsed;
    doc["patterns"] = nlohmann::json::array();
    for (const auto& p : options.patterns) doc["patterns"].push_back(p.ToString());
    doc["calls"] = nlohmann::json::array();
    for (const auto& f : snap->functions) doc["calls"].push_back(cli::FunctionJson(f));
    doc["lost"] = cli::LostJson(snap->lost);
    doc["target_exited"] = target_gone;
    // BEAMs that paired calls themselves (patches 0007, 0012); the others paired in BPF.
    doc["paired_in_beam"] = snap->paired_beams;
    if (over_rate) {
      doc["stopped"] = {{"reason", "max_rate"},
                        {"rate", static_cast<uint64_t>(*over_rate)},
                        {"max_rate", options.max_rate}};
    } else {
      doc["stopped"] = nullptr;
    }
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    if (live) std::printf("\x1b[H\x1b[2J");
    std::printf("orion capture: %.1f s, %llu events, %llu targeted calls%s\n\n", elapsed,
                static_cast<unsigned long long>(snap->events),
                static_cast<unsigned long long>(snap->matched),
                snap->paired_beams == options.pids.size() ? " (paired in the BEAM)"
                : snap->paired_beams > 0                   ? " (paired in some BEAMs)"
                                                           : "");
    std::printf("%s%s", cli::RenderTable(*snap, nullptr, elapsed).c_str(),
                cli::RenderLost(snap->lost).c_str());
  }
  std::fflush(stdout);
  if (target_gone) {
    spdlog::warn("the BEAM exited during the capture; the results above are what was captured until then");
  }
  if (over_rate) {
    spdlog::warn("stopped early: the BEAM delivered {:.0f} events a second, over --max-rate {} "
                 "(targeted calls or probe hits: 0.15-1.5 us of the node's time each, "
                 "docs/capture.md); the results above are what was "
                 "captured until then. Narrow the patterns, or raise --max-rate (0: no limit)",
                 *over_rate, options.max_rate);
  }
  return cli::kExitOk;
}

}  // namespace orion
