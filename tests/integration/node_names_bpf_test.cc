// Nodes named at run time, found by the names they have: a daemon finds a BEAM's node name
// through epmd and the BEAM's listening socket (userspace/beam/node_names.h), not only from
// -sname/-name on its command line. Each test runs on one host of the namespace cluster
// (support/test_cluster.h): its own network namespace, epmd and `orion daemon --only-netns`.
//
// What is proved: an `erl` started without a name that calls net_kernel:start/1 is listed by
// {targets} under its name with node_source => epmd, and by `orion probes --list` run from
// another network namespace; a capture through the daemon that names it counts exactly its
// calls (another node on the host makes the same calls, uncounted).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
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

class NodeNamesTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  void TearDown() override {
    if (!HasFailure() || cluster_.size() == 0) return;
    std::string text = ReadFile(cluster_.daemon_log(0));
    if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
    std::fprintf(stderr, "---- daemon log ----\n%s\n", text.c_str());
  }

  // A shell asks the daemon of host 0 for {targets}; one "BEAM <os_pid> <node> <source>" line
  // per BEAM of the host.
  std::string Targets() {
    return cluster_.ShellEval("{ok, T} = gen_server:call({orion, '" + cluster_.daemon_node(0) +
                              "'}, {targets}),"
                              "[io:format(\"BEAM ~p ~s ~s~n\", [P, N, S]) || #{os_pid := P, node "
                              ":= N, node_source := S} <- maps:get(beams, T)],");
  }

  // A shell asks the daemon of host 0 to capture `mfa` for `duration_ms` on the node named
  // `node` only; prints "COUNT <n>" (0 if the function was not called) or "ERROR <reason>".
  std::future<std::string> CaptureOnNode(const std::string& node, const std::string& mfa,
                                         int duration_ms) {
    const std::string expr =
        "case gen_server:call({orion, '" + cluster_.daemon_node(0) +
        "'}, {capture, #{patterns => [<<\"" + mfa + "\">>], duration_ms => " +
        std::to_string(duration_ms) + ", node => '" + node +
        "'}}, 60000) of"
        "  {ok, #{calls := Calls}} ->"
        "    io:format(\"COUNT ~p~n\", [lists:sum([C || #{count := C} <- Calls])]);"
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
  auto capture = CaptureOnNode(name, "orion_workload:known/1", 6000);
  ASSERT_TRUE(WaitForCaptureOn(name));
  ASSERT_EQ(late.Eval("orion_workload:call_known(" + std::to_string(kCalls) + ")."), "ok");
  const std::string out = capture.get();
  EXPECT_EQ(LineAfter(out, "COUNT "), std::to_string(kCalls)) << out;
}

}  // namespace
}  // namespace orion
