// An Elixir application node as an operator finds one: tests/elixir/bar_repo_app.exs run by
// Debian's elixir on the USDT OTP in the emu flavor, on host i of a TestCluster, named
// bar@<host i>. Bar.Repo.get/1 is its function; "run N" on its stdin makes N calls of it and
// prints "DONE N".
//
//   Subprocess app;
//   const pid_t pid = StartBarRepoApp(cluster, 0, &app);   // 0: did not start (in emu)
//   app.WriteLine("run 1000");
//   app.WaitForLine("DONE ", std::chrono::seconds(20));     // "DONE 1000"
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/subprocess.h"
#include "tests/integration/support/test_cluster.h"

namespace orion::testing {

inline std::string BarRepoAppNode(const TestCluster& cluster, int i) {
  return "bar@" + cluster.ip(i);
}

// The app's OS pid once it says it is ready in the emu flavor; 0 otherwise.
inline pid_t StartBarRepoApp(const TestCluster& cluster, int i, Subprocess* app) {
  std::vector<std::string> argv = cluster.launcher(i);
  argv.insert(argv.end(), {"/usr/bin/elixir", "--name", BarRepoAppNode(cluster, i), "--cookie",
                           TestCluster::kCookie,
                           std::string(ORION_TEST_SOURCE_DIR) + "/tests/elixir/bar_repo_app.exs"});
  if (!app->Start(argv, {"PATH=" + BeamNode::OtpPrefix() + "/bin:/usr/bin:/bin",
                         "ELIXIR_ERL_OPTIONS=-emu_flavor emu"})) {
    return 0;
  }
  const std::string ready = app->WaitForLine("BAR-READY ", std::chrono::seconds(60));
  if (ready.empty() || ready.substr(ready.rfind(' ') + 1) != "emu") return 0;
  return static_cast<pid_t>(std::stoi(ready.substr(10)));
}

}  // namespace orion::testing
