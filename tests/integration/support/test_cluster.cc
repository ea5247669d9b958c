#include "tests/integration/support/test_cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/support/probe_state.h"

namespace orion::testing {
namespace {

constexpr const char* kBridge = "orion-tbr";
constexpr const char* kBridgeAddress = "10.77.0.254/24";

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "ip";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string LineAfter(const std::string& output, const std::string& prefix) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

TestCluster::~TestCluster() { Destroy(); }

bool TestCluster::Run(const std::vector<std::string>& argv) {
  std::string out;
  if (RunCommand(argv, &out, std::chrono::seconds(30)) != 0) {
    error_ = "command failed:";
    for (const auto& a : argv) error_ += " " + a;
    error_ += ": " + out;
    return false;
  }
  return true;
}

void TestCluster::Destroy() {
  for (Host& h : hosts_) {
    h.daemon.reset();
    h.beam.reset();
  }
  std::string out;
  const std::string ip = IpBinary();
  for (int i = 0; i < 8; ++i) {
    const std::string ns = "orion-t" + std::to_string(i);
    // epmd (started by the namespace's BEAM) lives on in the namespace: end it first.
    RunCommand({"/bin/sh", "-c", ip + " netns pids " + ns + " 2>/dev/null | xargs -r kill -9"},
               &out);
    RunCommand({ip, "netns", "del", ns}, &out);
  }
  RunCommand({ip, "link", "del", kBridge}, &out);
  hosts_.clear();
  if (!dir_.empty()) {
    RunCommand({"/bin/rm", "-rf", dir_}, &out);
    dir_.clear();
  }
}

bool TestCluster::Create(int hosts, bool daemons, std::vector<std::string> daemon_args) {
  Destroy();  // what a crashed earlier run may have left
  char dir[] = "/tmp/orion-cluster-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    error_ = "mkdtemp failed";
    return false;
  }
  dir_ = dir;
  {
    std::ofstream cookie(cookie_file());
    cookie << kCookie << "\n";
  }
  ::chmod(cookie_file().c_str(), 0600);

  const std::string ip = IpBinary();
  if (!Run({ip, "link", "add", kBridge, "type", "bridge"}) ||
      !Run({ip, "addr", "add", kBridgeAddress, "dev", kBridge}) ||
      !Run({ip, "link", "set", kBridge, "up"})) {
    return false;
  }
  hosts_.resize(hosts);
  for (int i = 0; i < hosts; ++i) {
    Host& h = hosts_[i];
    h.ns = "orion-t" + std::to_string(i);
    h.veth_host = "orion-th" + std::to_string(i);
    const std::string veth_ns = "orion-tn" + std::to_string(i);
    if (!Run({ip, "netns", "add", h.ns}) ||
        !Run({ip, "link", "add", h.veth_host, "type", "veth", "peer", "name", veth_ns}) ||
        !Run({ip, "link", "set", veth_ns, "netns", h.ns}) ||
        !Run({ip, "link", "set", h.veth_host, "master", kBridge, "up"}) ||
        !Run({ip, "-n", h.ns, "addr", "add", this->ip(i) + "/24", "dev", veth_ns}) ||
        !Run({ip, "-n", h.ns, "link", "set", veth_ns, "up"}) ||
        !Run({ip, "-n", h.ns, "link", "set", "lo", "up"})) {
      return false;
    }
    if (!StartBeam(i)) return false;
  }
  if (!daemons) return true;
  for (int i = 0; i < hosts; ++i) {
    std::string peers;
    for (int j = 0; j < hosts; ++j) {
      if (j == i) continue;
      peers += (peers.empty() ? "" : ",") + daemon_node(j);
    }
    hosts_[i].daemon_args = daemon_args;
    if (!peers.empty()) hosts_[i].daemon_args.insert(hosts_[i].daemon_args.end(), {"--peers", peers});
    if (!StartDaemon(i)) return false;
  }
  return true;
}

std::vector<std::string> TestCluster::launcher(int i) const {
  return {IpBinary(), "netns", "exec", hosts_[i].ns};
}

bool TestCluster::StartBeam(int i) {
  Host& h = hosts_[i];
  h.beam = std::make_unique<BeamNode>();
  if (!h.beam->Start(
          {.flavor = "emu", .name = beam_node(i), .cookie = kCookie, .launcher = launcher(i)})) {
    error_ = "BEAM " + beam_node(i) + ": " + h.beam->error();
    return false;
  }
  return true;
}

bool TestCluster::RestartBeam(int i) {
  hosts_[i].beam.reset();
  return StartBeam(i);
}

bool TestCluster::StartDaemon(int i, std::vector<std::string> extra_args, bool discover) {
  Host& h = hosts_[i];
  std::string command = "exec " + IpBinary() + " netns exec " + h.ns + " " + ORION_TEST_ORION_BIN +
                        " daemon --name " + daemon_node(i) + " --longnames --cookie-file " +
                        cookie_file() + " --listen " + ip(i) + (discover ? "" : " --no-discover") +
                        " --only-netns";
  for (const auto& a : h.daemon_args) command += " " + a;
  for (const auto& a : extra_args) command += " " + a;
  command += " 2>>" + daemon_log(i);
  const size_t log_start = ReadFile(daemon_log(i)).size();
  h.daemon = std::make_unique<Subprocess>();
  if (!h.daemon->Start({"/bin/sh", "-c", command})) {
    error_ = "daemon " + daemon_node(i) + ": " + h.daemon->error();
    return false;
  }
  const bool up = WaitFor(
      [&] {
        return ReadFile(daemon_log(i)).find(" serving", log_start) != std::string::npos ||
               !h.daemon->Alive();
      },
      std::chrono::seconds(30));
  if (!up || !h.daemon->Alive()) {
    error_ = "daemon " + daemon_node(i) + " did not start: " + ReadFile(daemon_log(i));
    return false;
  }
  return true;
}

std::string TestCluster::DaemonLogTail(int i, size_t max_bytes) const {
  const std::string text = ReadFile(daemon_log(i));
  return text.size() > max_bytes ? "..." + text.substr(text.size() - max_bytes) : text;
}

void TestCluster::KillDaemon(int i) {
  hosts_[i].daemon->Signal(SIGKILL);
  hosts_[i].daemon->Wait(std::chrono::seconds(5));
}

bool TestCluster::DaemonAlive(int i) const {
  return hosts_[i].daemon && hosts_[i].daemon->Alive();
}

pid_t TestCluster::daemon_pid(int i) const { return hosts_[i].daemon->pid(); }

bool TestCluster::AddRootAddress(const std::string& ip) {
  return Run({IpBinary(), "addr", "add", ip + "/24", "dev", kBridge});
}

void TestCluster::CutOff(int i) {
  std::string out;
  RunCommand({IpBinary(), "link", "set", hosts_[i].veth_host, "down"}, &out);
}

void TestCluster::Restore(int i) {
  std::string out;
  RunCommand({IpBinary(), "link", "set", hosts_[i].veth_host, "up"}, &out);
}

int TestCluster::RunOrion(const std::vector<std::string>& args, std::string* out,
                          std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {ORION_TEST_ORION_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p;
  if (!p.Start(argv)) {
    *out = p.error();
    return -1;
  }
  p.CloseStdin();
  *out = p.ReadAll(timeout);
  const int status = p.Wait(std::chrono::seconds(5));
  if (status < 0) p.Kill();
  return status;
}

std::string TestCluster::ShellEval(const std::string& expr, const std::string& cookie,
                                   std::chrono::milliseconds timeout) {
  return Shell({}, "10.77.0.254", expr, cookie, timeout);
}

std::string TestCluster::ElixirEval(const std::string& expr, std::chrono::milliseconds timeout) {
  const std::string name =
      "iex" + std::to_string(::getpid()) + "_" + std::to_string(shells_++) + "@10.77.0.254";
  std::string out;
  RunCommand({"/usr/bin/elixir", "--name", name, "--cookie", kCookie, "-e", expr}, &out, timeout);
  return out;
}

std::string TestCluster::ShellEvalOn(int i, const std::string& expr,
                                     std::chrono::milliseconds timeout) {
  return Shell(launcher(i), ip(i), expr, kCookie, timeout);
}

std::string TestCluster::Shell(std::vector<std::string> launcher, const std::string& address,
                               const std::string& expr, const std::string& cookie,
                               std::chrono::milliseconds timeout) {
  const std::string name =
      "shell" + std::to_string(::getpid()) + "_" + std::to_string(shells_++) + "@" + address;
  launcher.insert(launcher.end(), {"/usr/bin/erl", "-name", name, "-setcookie", cookie,
                                   "-noshell", "-eval", expr + " halt()."});
  std::string out;
  RunCommand(launcher, &out, timeout);
  return out;
}

}  // namespace orion::testing
