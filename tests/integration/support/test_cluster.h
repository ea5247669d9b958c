// A cluster on one machine for the daemon's tests: N "hosts", each a network namespace with
// its own address (10.77.0.i on a bridge), its own epmd, a USDT BEAM node app@10.77.0.i and an
// `orion daemon` named orion@10.77.0.i listening on 10.77.0.i (--listen). The test itself runs in
// the root namespace, which reaches every host through the bridge (10.77.0.254), like an
// operator's machine would.
//
//   TestCluster cluster;
//   ASSERT_TRUE(cluster.Create(3)) << cluster.error();   // namespaces, BEAMs, daemons
//   cluster.beam(0).Eval("orion_workload:call_known(10).");
//   cluster.CutOff(2);                                     // host 2 drops off the network
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/subprocess.h"

namespace orion::testing {

class TestCluster {
 public:
  static constexpr const char* kCookie = "orion-test-cookie";

  TestCluster() = default;
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Creates `hosts` namespaces with a BEAM each and, if `daemons`, a daemon each that knows
  // every other daemon as a peer (--peers, no discovery). `daemon_args` are added to each.
  bool Create(int hosts, bool daemons = true, std::vector<std::string> daemon_args = {});

  // Starts host i's daemon (again, after KillDaemon); false if it does not come up.
  // `discover`: find peers by asking the BEAM for nodes() instead of --no-discover.
  bool StartDaemon(int i, std::vector<std::string> extra_args = {}, bool discover = false);
  void KillDaemon(int i);  // kill -9
  bool DaemonAlive(int i) const;
  pid_t daemon_pid(int i) const;
  // Restarts host i's BEAM (same node name).
  bool RestartBeam(int i);

  // Adds `ip` (10.77.0.x) to the root namespace's side of the bridge: a second source address
  // for the test's own connections. Removed with the bridge.
  bool AddRootAddress(const std::string& ip);

  // Host i's link down / up: packets to and from it are dropped, connections stall.
  void CutOff(int i);
  void Restore(int i);

  int size() const { return static_cast<int>(hosts_.size()); }
  BeamNode& beam(int i) { return *hosts_[i].beam; }
  std::string ip(int i) const { return "10.77.0." + std::to_string(i + 1); }
  std::string daemon_node(int i) const { return "orion@" + ip(i); }
  std::string beam_node(int i) const { return "app@" + ip(i); }
  // The command prefix that runs a program on host i (in its network namespace).
  std::vector<std::string> launcher(int i) const;
  std::string cookie_file() const { return dir_ + "/cookie"; }
  std::string daemon_log(int i) const { return dir_ + "/daemon" + std::to_string(i) + ".log"; }
  // The end of host i's daemon log (its last `max_bytes`), for a failed test's output.
  std::string DaemonLogTail(int i, size_t max_bytes = 6000) const;
  const std::string& error() const { return error_; }

  // Runs `orion ARGS` in the root namespace; stdout in `out` (stderr to the test's log).
  int RunOrion(const std::vector<std::string>& args, std::string* out,
               std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // Evaluates `expr` in a plain `erl` shell (Debian's erl, not project code) started as a
  // distributed node in the root namespace with `cookie`; returns what it printed.
  std::string ShellEval(const std::string& expr, const std::string& cookie = kCookie,
                        std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // The same with Debian's `elixir -e` (an Elixir shell's node, named the same way).
  std::string ElixirEval(const std::string& expr,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // The same shell on host i (in its network namespace, named shell...@10.77.0.<i+1>): a BEAM
  // of that host, as an operator's own shell is.
  std::string ShellEvalOn(int i, const std::string& expr,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

 private:
  struct Host {
    std::string ns;
    std::string veth_host;
    std::unique_ptr<BeamNode> beam;
    std::unique_ptr<Subprocess> daemon;
    std::vector<std::string> daemon_args;
  };
  bool Run(const std::vector<std::string>& argv);
  bool StartBeam(int i);
  void Destroy();
  std::string Shell(std::vector<std::string> launcher, const std::string& address,
                    const std::string& expr, const std::string& cookie,
                    std::chrono::milliseconds timeout);

  std::vector<Host> hosts_;
  std::string dir_;
  std::string error_;
  int shells_ = 0;
};

// The first line of `output` that starts with `prefix`, without it ("" if none).
std::string LineAfter(const std::string& output, const std::string& prefix);

}  // namespace orion::testing
