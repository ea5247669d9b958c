// Nodes named at run time, found by the names they have: a daemon finds a BEAM's node name
// through epmd and the BEAM's listening socket (userspace/beam/node_names.h), not only from
// -sname/-name on its command line. Each test runs on one host of the namespace cluster
// (support/test_cluster.h): its own network namespace, epmd and `orion daemon --only-netns`.
//
// What is proved: an `erl` started without a name that calls net_kernel:start/1 is listed by
// {targets} under its name with node_source => epmd, and by `orion probes --list` run from
// another network namespace; a capture through the daemon that names it counts exactly its
// calls (another node on the host makes the same calls, uncounted). A real RabbitMQ (Debian's
// rabbitmq-server on Debian's stock erl, as user rabbitmq), which names its node from its boot
// code, is listed under rabbit@<host> and captured through the daemon by that name in tracer
// mode: the counts equal ERTS's own call_count over a window that holds the capture's.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"
#include "tests/integration/support/test_cluster.h"
#include "userspace/beam/namespaces.h"

namespace orion {
namespace {

using testing::BeamNode;
using testing::LineAfter;
using testing::RunCommand;
using testing::Subprocess;
using testing::TestCluster;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string Unquote(std::string atom) {
  if (atom.size() >= 2 && atom.front() == '\'') atom = atom.substr(1, atom.size() - 2);
  return atom;
}

// The emulator's own arguments: what a name read from the command line would come from.
std::string CommandLineOf(pid_t pid) {
  std::string args = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : args) c = c == '\0' ? ' ' : c;
  return args;
}

// Debian's rabbitmq-server as Debian runs it (user rabbitmq, Debian's stock erl, its node name
// given by its boot code: rabbit@<short host>), on host `i` of a TestCluster, with everything of
// its own under a temporary directory: cookie (in its $HOME), mnesia, logs, config, the AMQP and
// distribution ports (free: the host is a fresh network namespace).
class RabbitMq {
 public:
  static constexpr const char* kServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";
  static constexpr const char* kCtl = "/usr/lib/rabbitmq/bin/rabbitmqctl";
  static constexpr int kAmqpPort = 5672;
  static constexpr int kDistPort = 25672;

  // "" if rabbitmq-server and python3-pika are installed, else what to install.
  static std::string Missing() {
    std::string out;
    if (::access(kServer, X_OK) != 0 || ::access(kCtl, X_OK) != 0 ||
        RunCommand({"/usr/bin/python3", "-c", "import pika"}, &out) != 0) {
      return "this test runs a real RabbitMQ and drives it over AMQP: apt-get install "
             "rabbitmq-server python3-pika (scripts/setup.sh installs both)";
    }
    return "";
  }

  ~RabbitMq() {
    server_.Kill();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts it through `launcher` with `cookie` and waits until the broker has started.
  bool Start(const std::vector<std::string>& launcher, const std::string& cookie) {
    launcher_ = launcher;
    char dir[] = "/tmp/orion-rabbitmq-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return Fail("mkdtemp failed");
    dir_ = dir;
    const passwd* user = ::getpwnam("rabbitmq");
    if (user == nullptr) return Fail("no user rabbitmq (the package makes it)");
    std::filesystem::create_directories(dir_ + "/home");
    {
      std::ofstream(dir_ + "/home/.erlang.cookie") << cookie;
    }
    ::chmod((dir_ + "/home/.erlang.cookie").c_str(), 0400);
    for (const auto& p : {dir_, dir_ + "/home", dir_ + "/home/.erlang.cookie"}) {
      if (::chown(p.c_str(), user->pw_uid, user->pw_gid) != 0) return Fail("chown " + p);
    }
    std::vector<std::string> argv = AsRabbitMqUser({
        "RABBITMQ_CONF_ENV_FILE=" + dir_ + "/rabbitmq-env.conf",
        "RABBITMQ_CONFIG_FILE=" + dir_ + "/rabbitmq",
        "RABBITMQ_ADVANCED_CONFIG_FILE=" + dir_ + "/advanced.config",
        "RABBITMQ_ENABLED_PLUGINS_FILE=" + dir_ + "/enabled_plugins",
        "RABBITMQ_MNESIA_BASE=" + dir_ + "/mnesia",
        "RABBITMQ_LOG_BASE=" + dir_ + "/log",
        "RABBITMQ_PID_FILE=" + dir_ + "/rabbitmq.pid",
        "RABBITMQ_NODE_PORT=" + std::to_string(kAmqpPort),
        "RABBITMQ_DIST_PORT=" + std::to_string(kDistPort),
        kServer,
    });
    if (!server_.Start(argv, {}, /*merge_stderr=*/true)) return Fail(server_.error());
    // The banner's last line, "  Starting broker... completed with 0 plugins.", once it is up.
    const std::string line = server_.WaitForLine("  Starting broker...", std::chrono::seconds(150));
    if (line.find("completed") == std::string::npos) {
      return Fail("rabbitmq-server did not start: " + line + "\n" +
                  server_.ReadAll(std::chrono::seconds(2)));
    }
    return true;
  }

  // The OS pid of its beam.smp (from its pid file).
  pid_t os_pid() const {
    return static_cast<pid_t>(std::atoi(ReadFile(dir_ + "/rabbitmq.pid").c_str()));
  }

  // `rabbitmqctl -n NODE eval EXPR`: what it printed.
  std::string Eval(const std::string& node, const std::string& expr) {
    std::string out;
    RunCommand(AsRabbitMqUser({kCtl, "-n", node, "eval", expr}), &out, std::chrono::seconds(60));
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  // Publishes `n` messages to a queue over AMQP (python3-pika, one connection and channel) and
  // closes the connection; the broker has handled every publish when this returns (a channel
  // handles its methods in order, the close last). Prints "PUBLISHED <n>".
  std::string Publish(int n) {
    static constexpr const char* kScript =
        "import sys, pika\n"
        "c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))\n"
        "ch = c.channel()\n"
        "ch.queue_declare(queue='orion_node_names')\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    ch.basic_publish(exchange='', routing_key='orion_node_names', body=b'x')\n"
        "c.close()\n"
        "print('PUBLISHED', sys.argv[2])\n";
    std::vector<std::string> argv = launcher_;
    argv.insert(argv.end(),
                {"/usr/bin/python3", "-c", kScript, std::to_string(kAmqpPort), std::to_string(n)});
    std::string out;
    RunCommand(argv, &out, std::chrono::seconds(60));
    return out;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& why) {
    error_ = why;
    return false;
  }

  // launcher + setpriv to user rabbitmq + a clean environment with HOME (the cookie's place).
  std::vector<std::string> AsRabbitMqUser(const std::vector<std::string>& tail) const {
    std::vector<std::string> argv = launcher_;
    argv.insert(argv.end(), {"/usr/bin/setpriv", "--reuid", "rabbitmq", "--regid", "rabbitmq",
                             "--init-groups", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin",
                             "LANG=C.UTF-8", "HOME=" + dir_ + "/home"});
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
  }

  std::vector<std::string> launcher_;
  std::string dir_;
  std::string error_;
  Subprocess server_;
};

class NodeNamesTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  void TearDown() override {
    if (!HasFailure() || cluster_.size() == 0) return;
    std::fprintf(stderr, "---- daemon log ----\n%s\n", cluster_.DaemonLogTail(0).c_str());
  }

  // A shell asks the daemon of host 0 for {targets}; one "BEAM <os_pid> <node> <source>" line
  // per BEAM of the host.
  std::string Targets() {
    return cluster_.ShellEval("{ok, T} = gen_server:call({orion, '" + cluster_.daemon_node(0) +
                              "'}, {targets}),"
                              "[io:format(\"BEAM ~p ~s ~s~n\", [P, N, S]) || #{os_pid := P, node "
                              ":= N, node_source := S} <- maps:get(beams, T)],");
  }

  // A shell asks the daemon of host 0 to capture `mfas` for `duration_ms` on the node named
  // `node` only; prints "COUNT <n>" (the sum; 0 if nothing was called), a "CALLS <mfa> <n>"
  // line per function called, or "ERROR <reason>".
  std::future<std::string> CaptureOnNode(const std::string& node,
                                         const std::vector<std::string>& mfas, int duration_ms) {
    std::string patterns;
    for (const std::string& mfa : mfas) {
      patterns += (patterns.empty() ? "" : ", ") + std::string("<<\"") + mfa + "\">>";
    }
    const std::string expr =
        "case gen_server:call({orion, '" + cluster_.daemon_node(0) + "'}, {capture, #{patterns => [" +
        patterns + "], duration_ms => " + std::to_string(duration_ms) + ", node => '" + node +
        "'}}, 60000) of"
        "  {ok, #{calls := Calls}} ->"
        "    io:format(\"COUNT ~p~n\", [lists:sum([C || #{count := C} <- Calls])]),"
        "    [io:format(\"CALLS ~s ~p~n\", [M, C]) || #{mfa := M, count := C} <- Calls];"
        "  Other -> io:format(\"ERROR ~p~n\", [Other])"
        " end,";
    return std::async(std::launch::async, [this, expr] { return cluster_.ShellEval(expr); });
  }

  // Until the daemon logs that a capture attached to `node` (the log line lists its targets).
  bool WaitForCaptureOn(const std::string& node) {
    return testing::WaitFor(
        [&] {
          return ReadFile(cluster_.daemon_log(0)).find("capture attached to " + node + " ") !=
                 std::string::npos;
        },
        std::chrono::seconds(30));
  }

  TestCluster cluster_;
};

TEST_F(NodeNamesTest, ErlNamedAtRunTimeIsFoundByNameAndCaptured) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  // A USDT erl started without a name, named later: nothing on its command line says so.
  BeamNode late;
  ASSERT_TRUE(late.Start(
      {.flavor = "emu", .cookie = TestCluster::kCookie, .launcher = cluster_.launcher(0)}))
      << late.error();
  ASSERT_EQ(late.Eval("node()."), "nonode@nohost");
  const std::string alive = "late" + std::to_string(::getpid());
  ASSERT_EQ(late.Eval("element(1, net_kernel:start([" + alive + ", shortnames]))."), "ok");
  const std::string name = Unquote(late.Eval("node()."));
  ASSERT_EQ(name, alive + "@" + beam::ShortHostname());
  const std::string cmdline = CommandLineOf(late.os_pid());
  ASSERT_EQ(cmdline.find(" -sname "), std::string::npos) << cmdline;
  ASSERT_EQ(cmdline.find(" -name "), std::string::npos) << cmdline;

  // {targets}: both BEAMs of the host with the names epmd has for them.
  const std::string targets = Targets();
  EXPECT_NE(targets.find("BEAM " + std::to_string(late.os_pid()) + " " + name + " epmd"),
            std::string::npos)
      << targets;
  EXPECT_NE(targets.find("BEAM " + std::to_string(cluster_.beam(0).os_pid()) + " " +
                         cluster_.beam_node(0) + " epmd"),
            std::string::npos)
      << targets;

  // orion probes --list from the root namespace: epmd is asked in the BEAM's namespace.
  std::string listing;
  ASSERT_EQ(
      cluster_.RunOrion({"probes", "--list", "--pid", std::to_string(late.os_pid())}, &listing), 0)
      << listing;
  EXPECT_NE(listing.find("node " + name + " (epmd)"), std::string::npos) << listing;

  // A capture through the daemon that names the node counts its calls, and only its: the
  // host's other node calls the same function all along.
  ASSERT_NE(cluster_.beam(0).Eval(
                "spawn(fun L() -> orion_workload:call_known(100), timer:sleep(5), L() end)."),
            "DEAD");
  constexpr int kCalls = 20000;
  auto capture = CaptureOnNode(name, {"orion_workload:known/1"}, 6000);
  ASSERT_TRUE(WaitForCaptureOn(name));
  ASSERT_EQ(late.Eval("orion_workload:call_known(" + std::to_string(kCalls) + ")."), "ok");
  const std::string out = capture.get();
  EXPECT_EQ(LineAfter(out, "COUNT "), std::to_string(kCalls)) << out;
}

// The issue's RabbitMQ: Debian's 3.10 on Debian's stock erl (the JIT, no USDT probes) names its
// node from its boot code, so nothing on its command line has the name. The daemon lists it as
// rabbit@<host> (from epmd) and, asked for a capture by that name, captures it in tracer mode.
// Oracle: ERTS's call_count on the same functions, started before the capture and read after it
// (through rabbitmqctl, not the daemon). The publishes all run inside the capture's window and
// nothing else calls these functions (call_count equals the number of publishes), so the counts
// must be equal, function by function.
TEST_F(NodeNamesTest, RabbitMqIsFoundByItsNodeNameAndCapturedAsCallCountCounts) {
  const std::string missing = RabbitMq::Missing();
  ASSERT_TRUE(missing.empty()) << missing;
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  RabbitMq rabbit;
  ASSERT_TRUE(rabbit.Start(cluster_.launcher(0), TestCluster::kCookie)) << rabbit.error();
  const std::string name = "rabbit@" + beam::ShortHostname();
  const std::string cmdline = CommandLineOf(rabbit.os_pid());
  ASSERT_NE(cmdline.find("rabbit"), std::string::npos) << cmdline;
  ASSERT_EQ(cmdline.find(" -sname "), std::string::npos) << cmdline;
  ASSERT_EQ(cmdline.find(" -name "), std::string::npos) << cmdline;

  const std::string targets = Targets();
  ASSERT_NE(targets.find("BEAM " + std::to_string(rabbit.os_pid()) + " " + name + " epmd"),
            std::string::npos)
      << targets;

  // orion probes --list from the root namespace: a BEAM without probes, listed by its name.
  std::string listing;
  ASSERT_EQ(cluster_.RunOrion({"probes", "--list", "--pid", std::to_string(rabbit.os_pid())},
                              &listing),
            0)
      << listing;
  EXPECT_NE(listing.find("node " + name + " (epmd)"), std::string::npos) << listing;
  EXPECT_NE(listing.find("no erlang USDT probes"), std::string::npos) << listing;

  // Called once per basic.publish: by the channel, and the exchange's routing.
  const std::vector<std::string> mfas = {"rabbit_channel:deliver_to_queues/2",
                                         "rabbit_exchange:route/2"};
  const std::string erlang_mfas =
      "[{rabbit_channel, deliver_to_queues, 2}, {rabbit_exchange, route, 2}]";
  ASSERT_EQ(rabbit.Eval(name, "[begin code:ensure_loaded(M), erlang:trace_pattern({M, F, A}, "
                              "true, [call_count]) end || {M, F, A} <- " +
                                  erlang_mfas + "]."),
            "[1,1]");

  constexpr int kPublishes = 2000;
  auto capture = CaptureOnNode(name, mfas, 10000);
  ASSERT_TRUE(WaitForCaptureOn(name));
  EXPECT_NE(ReadFile(cluster_.daemon_log(0)).find("(1 in tracer mode)"), std::string::npos);
  const std::string published = rabbit.Publish(kPublishes);
  ASSERT_EQ(LineAfter(published, "PUBLISHED "), std::to_string(kPublishes)) << published;
  const std::string out = capture.get();

  // After the capture: ERTS's counts, and the oracle's patterns cleared.
  const std::string counted = rabbit.Eval(
      name, "[begin {call_count, N} = erlang:trace_info(MFA, call_count), "
            "erlang:trace_pattern(MFA, false, [call_count]), N end || MFA <- " +
                erlang_mfas + "].");
  const std::string n = std::to_string(kPublishes);
  ASSERT_EQ(counted, "[" + n + "," + n + "]") << "ERTS's call_count; the capture: " << out;
  for (const std::string& mfa : mfas) {
    EXPECT_EQ(LineAfter(out, "CALLS " + mfa + " "), n) << mfa << "\n" << out;
  }
}

}  // namespace
}  // namespace orion
