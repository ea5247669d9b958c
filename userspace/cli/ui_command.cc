// orion ui --daemon NODE [--cookie-file PATH] [--listen HOST:PORT] [--allow-remote]
//
// The live console (docs/ui.md): a hidden C node connected to a daemon, and an HTTP server on
// loopback that serves the embedded page and its API behind a random token.
#include "userspace/cli/ui_command.h"

#include <getopt.h>
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "userspace/cli/cli_support.h"
#include "userspace/cli/signals.h"
#include "userspace/erlang/cookie.h"
#include "userspace/http/http_access.h"
#include "userspace/ui/capture_registry.h"
#include "userspace/ui/daemon_link.h"
#include "userspace/ui/embedded_assets.h"
#include "userspace/ui/ui_server.h"

namespace orion {
namespace {

constexpr char kUsage[] =
    "Usage: orion ui --daemon NODE [--cookie-file PATH] [--listen HOST:PORT] [--allow-remote]\n"
    "                [-v]\n"
    "\n"
    "The live console: a web page, embedded in this binary, that shows the latency of the\n"
    "functions you name over time, per node, across the cluster (calls/s, wall and on-CPU\n"
    "percentiles, heatmaps; docs/ui.md). orion ui joins the cluster as a hidden node through\n"
    "the daemon NODE and serves the page on 127.0.0.1:7070. It prints the page's URL, with a\n"
    "new random access token, as the first line on stdout: open it in a browser.\n"
    "\n"
    "Options:\n"
    "      --daemon NODE      the daemon to join the cluster through (orion@host)\n"
    "      --cookie-file P    the cluster's cookie (default /etc/orion/cookie)\n"
    "      --listen H:P       where to serve the page (default 127.0.0.1:7070; port 0: any\n"
    "                         free port, printed in the URL)\n"
    "      --allow-remote     allow an address other hosts can reach (0.0.0.0:7070); the\n"
    "                         token still guards every request, the traffic is not encrypted\n"
    "  -v, --verbose          log more\n"
    "  -h, --help             this text\n"
    "\n"
    "Every request needs the token (Authorization: Bearer TOKEN, or ?token=TOKEN), a Host\n"
    "header naming this server, and no Origin but its own. Ctrl-C stops orion ui; the daemons\n"
    "stop its captures and nothing stays attached.\n"
    "\n"
    "Example:\n"
    "  orion ui --daemon orion@web1 --cookie-file /etc/orion/cookie\n"
    "  http://127.0.0.1:7070/?token=5f0c9e...\n";

struct UiOptions {
  std::string daemon;
  std::string cookie_file = erlang::kDefaultCookieFile;
  std::string listen = "127.0.0.1:7070";
  bool allow_remote = false;
  bool verbose = false;
};

enum { kDaemon = 1000, kCookieFile, kListen, kAllowRemote };

// 0 to run, else the exit code.
int ParseArguments(int argc, char** argv, UiOptions* options) {
  static const option kOptions[] = {{"daemon", required_argument, nullptr, kDaemon},
                                    {"cookie-file", required_argument, nullptr, kCookieFile},
                                    {"listen", required_argument, nullptr, kListen},
                                    {"allow-remote", no_argument, nullptr, kAllowRemote},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "vh", kOptions, nullptr)) != -1) {
    switch (c) {
      case kDaemon: options->daemon = optarg; break;
      case kCookieFile: options->cookie_file = optarg; break;
      case kListen: options->listen = optarg; break;
      case kAllowRemote: options->allow_remote = true; break;
      case 'v': options->verbose = true; break;
      case 'h': std::fputs(kUsage, stdout); return -1;
      default: std::fputs(kUsage, stderr); return cli::kExitUsage;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "orion ui: unexpected argument '%s'\n\n%s", argv[optind], kUsage);
    return cli::kExitUsage;
  }
  if (options->daemon.empty()) {
    std::fprintf(stderr, "orion ui: --daemon NODE is required (the daemon to join the cluster "
                         "through, e.g. orion@web1)\n");
    return cli::kExitUsage;
  }
  return 0;
}

// The kept window: 10 minutes; ORION_UI_WINDOW_S shortens it for measurements only
// (scripts/bench/ui_goal.sh: a window that is full within a minute or two).
StatusOr<ui::RegistryLimits> RegistryLimitsFromEnvironment() {
  ui::RegistryLimits limits;
  const char* window = std::getenv("ORION_UI_WINDOW_S");
  if (window == nullptr || *window == '\0') return limits;
  char* end = nullptr;
  const unsigned long seconds = std::strtoul(window, &end, 10);
  if (*end != '\0' || seconds < 10 || seconds > limits.window_ms / 1000) {
    return InvalidArgument("ORION_UI_WINDOW_S=", window, ": the kept window in seconds, 10 to ",
                           limits.window_ms / 1000, " (unset it for the default, 10 minutes)");
  }
  limits.window_ms = seconds * 1000;
  spdlog::warn("keeping {} s of each capture's intervals, not 10 minutes (ORION_UI_WINDOW_S): a "
               "page that connects gets that much history",
               seconds);
  return limits;
}

}  // namespace

int RunUiCommand(int argc, char** argv) {
  UiOptions options;
  const int parsed = ParseArguments(argc, argv, &options);
  if (parsed == -1) return cli::kExitOk;
  if (parsed != 0) return parsed;
  cli::ConfigureLogging(options.verbose);

  auto listen = http::ParseListenAddress(options.listen);
  if (!listen.ok()) return cli::ReportError("ui", listen.status());
  if (!http::IsLoopback(listen->host) && !options.allow_remote) {
    return cli::ReportError(
        "ui", InvalidArgument("--listen ", options.listen,
                              " can be reached from other hosts: pass --allow-remote to mean "
                              "it, or listen on 127.0.0.1"));
  }
  auto cookie = erlang::ReadCookieFile(options.cookie_file, /*require_root_owned=*/false);
  if (!cookie.ok()) return cli::ReportError("ui", cookie.status());
  auto token = http::RandomToken();
  if (!token.ok()) return cli::ReportError("ui", token.status());
  if (!ui::EmbeddedPageBuilt()) {
    spdlog::warn("this orion was built without the console's page (run scripts/setup.sh, "
                 "then rebuild): the page served says so");
  }

  // Two malloc arenas, not one per HTTP thread (up to 8 per core): what one thread frees the
  // others reuse, instead of a reserve of free memory in each thread's arena.
  ::mallopt(M_ARENA_MAX, 2);
  auto limits = RegistryLimitsFromEnvironment();
  if (!limits.ok()) return cli::ReportError("ui", limits.status());
  ui::CaptureRegistry registry(*limits);
  auto link = ui::DaemonLink::Start({.daemon = options.daemon, .cookie = *cookie}, registry);
  if (!link.ok()) return cli::ReportError("ui", link.status());
  auto server = ui::UiServer::Start({.listen = *listen, .token = *token}, registry, **link);
  if (!server.ok()) return cli::ReportError("ui", server.status());

  cli::InstallStopSignals();
  std::printf("%s\n", (*server)->url().c_str());
  std::fflush(stdout);
  spdlog::info("serving the console through {}: open the URL above; Ctrl-C stops", options.daemon);
  // glibc keeps what the threads freed in its arenas for reuse, and returns little of it: what
  // the kept windows hold is bounded, but a reserve of free pages grew beside it
  // (scripts/bench.sh ui-memory: "heap free"). Every 10 s the free pages go back to the kernel.
  auto trimmed = std::chrono::steady_clock::now();
  while (!cli::StopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() - trimmed >= std::chrono::seconds(10)) {
      ::malloc_trim(0);
      trimmed = std::chrono::steady_clock::now();
    }
  }
  spdlog::info("stopping: the daemons stop this console's captures");
  server->reset();
  link->reset();
  return cli::kExitOk;
}

}  // namespace orion
