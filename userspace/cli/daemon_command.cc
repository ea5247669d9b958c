// orion daemon [--name NAME] [--longnames] [--cookie-file PATH] [--listen ADDR] [--peers NODE,...]
//              [--config PATH]
#include "userspace/cli/daemon_command.h"

#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "userspace/cli/cli_support.h"
#include "userspace/cli/signals.h"
#include "userspace/daemon/config.h"
#include "userspace/daemon/daemon.h"
#include "userspace/erlang/cookie.h"
#include "userspace/probes/bpf_environment.h"

namespace orion {
namespace {

constexpr char kUsage[] =
    "Usage: orion daemon [--name NAME] [--longnames] [--cookie-file PATH] [--listen ADDR[:PORT]]\n"
    "                    [--peers NODE,...] [--config PATH] [--no-discover] [--only-netns]\n"
    "                    [--max-captures N] [--metrics-listen ADDR:PORT --metrics-token-file PATH]\n"
    "                    [-v]\n"
    "\n"
    "Runs the per-host agent: an Erlang hidden node (NAME@host, registered with the local\n"
    "epmd) that answers captures from the orion CLI and from any Erlang/Elixir shell:\n"
    "\n"
    "  gen_server:call({orion, 'orion@host'}, {capture, #{patterns => [<<\"m:f/1\">>],\n"
    "                                                     duration_ms => 5000}}, 15000).\n"
    "\n"
    "and fans cluster captures out to its peers, merging their sketches exactly. Runs in the\n"
    "foreground and logs to stderr (journald under systemd: packaging/orion.service).\n"
    "\n"
    "Options (flags win over the config file):\n"
    "  -n, --name NAME        node name, NAME or NAME@host (default orion)\n"
    "      --longnames        fully qualified host names, like erl -name\n"
    "  -c, --cookie-file P    the cluster's cookie; must be owned by root, mode 0600\n"
    "                         (default /etc/orion/cookie). A cookie on the command line is\n"
    "                         refused: ps would show it.\n"
    "      --listen ADDR[:PORT]\n"
    "                         the distribution listener's IPv4 address (and port; default any\n"
    "                         free port, published in epmd). Default: loopback (127.0.0.1, or\n"
    "                         the loopback address the host name resolves to). For a cluster,\n"
    "                         the host's address that peers and shells reach (e.g. 10.0.0.5)\n"
    "      --peers N1,N2      other daemons (orion@host2,...); more are discovered by asking\n"
    "                         this host's BEAM nodes for nodes()\n"
    "      --no-discover      only the --peers given\n"
    "      --only-netns       serve only BEAMs in the daemon's network namespace\n"
    "      --max-captures N   captures running at once (default 4); more get {error, {busy, _}}\n"
    "      --config PATH      settings file (default /etc/orion/orion.toml, if it exists);\n"
    "                         its [[watch]] tables are standing captures (docs/export.md);\n"
    "                         handshake limits and max_connections: docs/operations.md\n"
    "      --metrics-listen A serve the watches on http://A/metrics for Prometheus (off by\n"
    "                         default; e.g. 127.0.0.1:9464)\n"
    "      --metrics-token-file P  the bearer token a scrape must send (mode 0600)\n"
    "  -v, --verbose          debug logs\n"
    "  -h, --help             this help\n"
    "\n"
    "Each connection must finish the distribution handshake within handshake_timeout_ms\n"
    "(default 2000); at most 512 handshakes are pending (256 per source address), and the\n"
    "least-progressed of a flooding source's own are closed first, so idle or slow\n"
    "connections cannot keep shells and peers out.\n"
    "\n"
    "Examples:\n"
    "  orion daemon                               # orion@<host>, loopback only\n"
    "  orion daemon --longnames --listen 10.0.0.5 --peers orion@10.0.0.6\n"
    "\n"
    "Exit codes: 0 stopped by a signal, 1 runtime failure (epmd, network), 2 bad usage or\n"
    "config, 3 not root or a cookie file others can read.\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "orion daemon: %s\nTry 'orion daemon --help'.\n", message.c_str());
  return cli::kExitUsage;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int RunDaemonCommand(int argc, char** argv) {
  enum {
    kLongnames = 1000,
    kPeers,
    kConfig,
    kNoDiscover,
    kOnlyNetns,
    kMaxCaptures,
    kCookie,
    kMetricsListen,
    kMetricsToken,
    kListen
  };
  static const option kOptions[] = {{"name", required_argument, nullptr, 'n'},
                                    {"longnames", no_argument, nullptr, kLongnames},
                                    {"cookie-file", required_argument, nullptr, 'c'},
                                    {"cookie", required_argument, nullptr, kCookie},
                                    {"setcookie", required_argument, nullptr, kCookie},
                                    {"peers", required_argument, nullptr, kPeers},
                                    {"listen", required_argument, nullptr, kListen},
                                    {"config", required_argument, nullptr, kConfig},
                                    {"no-discover", no_argument, nullptr, kNoDiscover},
                                    {"only-netns", no_argument, nullptr, kOnlyNetns},
                                    {"max-captures", required_argument, nullptr, kMaxCaptures},
                                    {"metrics-listen", required_argument, nullptr, kMetricsListen},
                                    {"metrics-token-file", required_argument, nullptr, kMetricsToken},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  // Flags are applied after the config file, so collect them first.
  std::optional<std::string> name, cookie_file, peers, config_path, metrics_listen, metrics_token,
      listen;
  std::optional<uint32_t> max_captures;
  bool longnames = false, no_discover = false, only_netns = false, verbose = false;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "n:c:vh", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'n': name = optarg; break;
      case kLongnames: longnames = true; break;
      case 'c': cookie_file = optarg; break;
      case kCookie:
        return UsageError("a cookie on the command line is visible to every user (ps); put it "
                          "in a file owned by root with mode 0600 and use --cookie-file");
      case kPeers: peers = optarg; break;
      case kListen: {
        auto parsed = daemon::ParseDistAddress(optarg);
        if (!parsed.ok()) return UsageError(parsed.status().message());
        listen = optarg;
        break;
      }
      case kConfig: config_path = optarg; break;
      case kNoDiscover: no_discover = true; break;
      case kOnlyNetns: only_netns = true; break;
      case kMetricsListen: metrics_listen = optarg; break;
      case kMetricsToken: metrics_token = optarg; break;
      case kMaxCaptures: {
        char* end = nullptr;
        const long n = std::strtol(optarg, &end, 10);
        if (*end != '\0' || n < 1 || n > 64) return UsageError("--max-captures must be 1..64");
        max_captures = static_cast<uint32_t>(n);
        break;
      }
      case 'v': verbose = true; break;
      case 'h': std::fputs(kUsage, stdout); return cli::kExitOk;
      default: std::fputs(kUsage, stderr); return cli::kExitUsage;
    }
  }
  if (optind != argc) return UsageError(std::string("unexpected argument '") + argv[optind] + "'");
  cli::ConfigureLogging(verbose);
  probes::InstallLibbpfLogger(verbose);

  daemon::DaemonConfig config;
  const Status loaded = daemon::LoadConfigFile(config_path.value_or(daemon::kDefaultConfigFile),
                                               /*missing_ok=*/!config_path.has_value(), &config);
  if (!loaded.ok()) return cli::ReportError("daemon", loaded);
  if (name) config.name = *name;
  if (longnames) config.longnames = true;
  if (cookie_file) config.cookie_file = *cookie_file;
  if (peers) config.peers = SplitComma(*peers);
  if (listen) config.listen = *listen;
  if (no_discover) config.discover = false;
  if (only_netns) config.only_netns = true;
  if (max_captures) config.max_captures = *max_captures;
  if (metrics_listen) config.metrics_listen = *metrics_listen;
  if (metrics_token) config.metrics_token_file = *metrics_token;

  if (::geteuid() != 0) {
    return cli::ReportError("daemon", PermissionDenied("the daemon loads BPF programs and reads "
                                                       "other processes' memory: run it as root"));
  }
  if (Status env = probes::CheckBpfEnvironment(); !env.ok()) return cli::ReportError("daemon", env);
  auto cookie = erlang::ReadCookieFile(config.cookie_file, /*require_root_owned=*/true);
  if (!cookie.ok()) return cli::ReportError("daemon", cookie.status());

  auto daemon = daemon::Daemon::Start(config, *cookie, ORION_VERSION);
  if (!daemon.ok()) return cli::ReportError("daemon", daemon.status());
  cli::InstallStopSignals();
  spdlog::info("orion daemon {} as {}; peers: {}{}", ORION_VERSION, (*daemon)->node_name(),
               config.peers.empty() ? "none given" : std::to_string(config.peers.size()),
               config.discover ? " (+ discovery)" : "");
  (*daemon)->Run(cli::StopFlag());
  spdlog::info("stopped");
  return cli::kExitOk;
}

}  // namespace orion
