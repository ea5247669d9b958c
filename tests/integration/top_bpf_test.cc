// orion top, end to end, on both flavors of the USDT BEAM: the real binary, real probes, real
// Erlang workloads whose properties are known on the Erlang side (tests/erlang/
// orion_top_workload.erl): a mailbox never read, a busy loop, a TCP socket written a known
// number of bytes, GC counts checked against erlang:trace/3 on the same run, and nothing left
// attached afterwards.
#include <ei.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"
#include "userspace/beam/beam_process.h"
#include "userspace/beam/pair_table.h"
#include "userspace/beam/pid_layout.h"
#include "userspace/erlang/node_client.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::BeamNode;
using testing::Subprocess;

// Strips the quotes of a string the REPL printed ("\"<0.88.0>\"" -> "<0.88.0>").
std::string Unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Parses "{\"#Port<0.7>\",123,4}" into its three fields.
struct TcpResult {
  std::string port;
  uint64_t bytes = 0;
  uint64_t sends = 0;
};
TcpResult ParseTcpResult(const std::string& text) {
  TcpResult r;
  const size_t q1 = text.find('"'), q2 = text.find('"', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) return r;
  r.port = text.substr(q1 + 1, q2 - q1 - 1);
  unsigned long long bytes = 0, sends = 0;
  std::sscanf(text.c_str() + q2 + 1, ",%llu,%llu}", &bytes, &sends);
  r.bytes = bytes;
  r.sends = sends;
  return r;
}

// Parses an Erlang list of integers printed by the REPL: "[1,2,3]" (stops at the first ']').
std::vector<double> ParseIntegerList(std::string text) {
  text = text.substr(0, text.find(']'));
  std::replace(text.begin(), text.end(), '[', ' ');
  std::replace(text.begin(), text.end(), ',', ' ');
  std::istringstream in(text);
  std::vector<double> v;
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

// The element of rank floor(q * (n - 1)) of the sorted values (the sketch's definition).
double LowerQuantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::floor(q * (static_cast<double>(v.size()) - 1)))];
}

// The strings of an Erlang list of strings the REPL printed: "[\"<0.1.0>\",\"<0.2.0>\"]".
std::vector<std::string> ParseStringList(const std::string& list) {
  std::vector<std::string> strings;
  for (size_t q1 = list.find('"'); q1 != std::string::npos; q1 = list.find('"', q1 + 1)) {
    const size_t q2 = list.find('"', q1 + 1);
    if (q2 == std::string::npos) break;
    strings.push_back(list.substr(q1 + 1, q2 - q1 - 1));
    q1 = q2;
  }
  return strings;
}

const json* FindProcess(const json& doc, const std::string& pid) {
  for (const auto& p : doc["processes"]) {
    if (p["pid"] == pid) return &p;
  }
  return nullptr;
}

const json* FindPort(const json& doc, const std::string& port) {
  for (const auto& p : doc["ports"]) {
    if (p["port"] == port) return &p;
  }
  return nullptr;
}

// `orion top --json` running in the background until Stop().
class RunningTop {
 public:
  bool Start(const BeamNode& node, std::vector<std::string> extra = {},
             const std::string& duration = "600") {
    std::vector<std::string> args = {
        ORION_TEST_ORION_BIN,         "top", "--json", "--duration", duration, "--pid",
        std::to_string(node.os_pid())};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!process_.Start(args)) return false;
    auto beam = beam::InspectBeam(node.os_pid());
    if (!beam.ok()) return false;
    // Attached once the BEAM sees the semaphores of the groups set (driver__outputv is the last
    // USDT probe attached; the erts_schedule uprobes and sched_switch follow within a moment).
    // message__send, not message__queued: top attaches message__queued only on a BEAM without
    // patch 0011's orion__mailbox.
    const bool attached = testing::WaitFor(
                              [&] {
                                return (testing::SemaphoreOf(*beam, "process__spawn") > 0 &&
                                        testing::SemaphoreOf(*beam, "message__send") > 0 &&
                                        testing::SemaphoreOf(*beam, "driver__outputv") > 0) ||
                                       !process_.Alive();
                              },
                              std::chrono::seconds(30)) &&
                          process_.Alive();
    if (attached) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return attached;
  }

  json Stop(int signal = SIGINT) {
    process_.Signal(signal);
    const std::string out = process_.ReadAll(std::chrono::seconds(60));
    exit_status_ = process_.Wait(std::chrono::seconds(10));
    json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) ADD_FAILURE() << "orion top printed no JSON: " << out;
    return doc;
  }

  int exit_status() const { return exit_status_; }
  Subprocess& process() { return process_; }

 private:
  Subprocess process_;
  int exit_status_ = -1;
};

// Top over 20 workers of 100,000 reductions each, spawned once 40,000 processes spawned and ended
// have taken pids past a 15-bit number (OTP 25 counts on in the serial, 26+ in a 28-bit number);
// with `message`, each worker then gets one message. Top's document and the workers' pids as the
// node's own pid_to_list/1 gives them, read after top stopped.
constexpr uint64_t kWorkerRounds = 100000;
struct WorkersInTop {
  json doc;
  std::vector<std::string> pids;
  std::string listed;  // what worker_pids/1 answered
};
WorkersInTop TopOverWorkers(BeamNode& node, bool message) {
  WorkersInTop seen;
  EXPECT_EQ(node.Eval("orion_top_workload:spawn_and_end(40000)."), "ok");
  RunningTop top;
  if (!top.Start(node, {"--sort", "reds", "--limit", "0"})) {
    ADD_FAILURE() << "orion top did not attach";
    return seen;
  }
  EXPECT_EQ(node.Eval("orion_top_workload:start_workers(orion_top_workers, 20, " +
                      std::to_string(kWorkerRounds) + ")."),
            "ok");
  if (message) EXPECT_EQ(node.Eval("orion_top_workload:message_workers(orion_top_workers)."), "ok");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  seen.doc = top.Stop();
  seen.listed = node.Eval("orion_top_workload:worker_pids(orion_top_workers).");
  seen.pids = ParseStringList(seen.listed);
  return seen;
}

class TopTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    const std::string tag = GetParam() + "_" + std::to_string(getpid());
    cookie_ = "orion_top_cookie_" + tag;
    ASSERT_TRUE(node_.Start({.flavor = GetParam(), .sname = "orion_top_" + tag, .cookie = cookie_}))
        << node_.error();
    ASSERT_EQ(node_.Eval("erlang:system_info(emu_flavor)."), GetParam());
    dir_ = "/tmp/orion_top_test_" + tag;
    mkdir(dir_.c_str(), 0700);
    cookie_file_ = dir_ + "/cookie";
    std::ofstream(cookie_file_) << cookie_ << "\n";
    chmod(cookie_file_.c_str(), 0600);
  }
  void TearDown() override {
    if (!cookie_file_.empty()) unlink(cookie_file_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }

  std::vector<std::string> NameFlags() const {
    return {"--node", node_.node_name(), "--cookie-file", cookie_file_};
  }

  BeamNode node_;
  std::string cookie_;
  std::string dir_;
  std::string cookie_file_;
};

// The mailbox tests never ask the processes they fill anything while top measures (no
// process_info: that makes a process handle its signals, which is what the probe of an
// unpatched BEAM waits for); the oracle, process_info(P, message_queue_len), is read after top
// has stopped. On the patched BEAM the lengths come from the senders (orion__mailbox, patch
// 0011).

TEST_P(TopTest, MailboxNobodyReadsTopsTheQueueSortWithoutBeingPolled) {
  const std::string sink = Unquote(node_.Eval("orion_top_workload:start_sleeper(orion_top_sink)."));
  ASSERT_EQ(sink.front(), '<') << sink;
  RunningTop top;
  std::vector<std::string> flags = {"--sort", "queue"};
  for (const auto& f : NameFlags()) flags.push_back(f);
  ASSERT_TRUE(top.Start(node_, flags));
  ASSERT_EQ(node_.Eval("orion_top_workload:send_n(orion_top_sink, 100000)."), "100000");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const uint64_t oracle =
      std::stoull(node_.Eval("orion_top_workload:sink_queue_len(orion_top_sink)."));
  EXPECT_EQ(oracle, 100000u);
  EXPECT_EQ(top.exit_status(), 0);
  EXPECT_EQ(doc["queue_source"], "senders");
  ASSERT_FALSE(doc["processes"].empty());
  const json& first = doc["processes"][0];
  EXPECT_EQ(first["pid"], sink) << first.dump();
  EXPECT_EQ(first["name"], "orion_top_sink") << first.dump();
  EXPECT_GE(first["queue_len_max"].get<uint64_t>(), 100000u) << first.dump();
  EXPECT_EQ(first["queue_len"].get<uint64_t>(), oracle) << first.dump();
  EXPECT_EQ(first["msgs_in"].get<uint64_t>(), 100000u) << first.dump();
  EXPECT_EQ(first["msgs_received"].get<uint64_t>(), 0u) << first.dump();
  EXPECT_EQ(doc["sort"], "queue");
  EXPECT_EQ(doc["flavor"], GetParam());
  // The process that sent them (the REPL's evaluator) sent at least 100,000 messages.
  uint64_t max_sent = 0;
  for (const auto& p : doc["processes"])
    max_sent = std::max(max_sent, p["msgs_out"].get<uint64_t>());
  EXPECT_GE(max_sent, 100000u);
  for (const auto& [name, value] : doc["lost"].items()) EXPECT_EQ(value, 0u) << name;
  node_.Eval("orion_top_workload:stop_registered(orion_top_sink).");
}

// A server in a selective receive: it answers calls while casts it never matches pile up.
// Bound: top's length is the senders' count of every message in the server's queues, so it
// differs from process_info's only by the messages the server took while a sender read its
// queue's length (a race of a few instructions): at most one per call here, and the test allows
// 1 % of the calls' count + 2 messages.
TEST_P(TopTest, SelectiveReceiveBacklogMatchesProcessInfoReadAfter) {
  const std::string server =
      Unquote(node_.Eval("orion_top_workload:start_selective(orion_top_selective)."));
  ASSERT_EQ(server.front(), '<') << server;
  RunningTop top;
  ASSERT_TRUE(top.Start(node_, {"--sort", "queue", "--limit", "0"}));
  constexpr uint64_t kCasts = 50000, kEvery = 500;
  ASSERT_EQ(node_.Eval("orion_top_workload:casts_and_calls(orion_top_selective, 50000, 500)."),
            std::to_string(kCasts / kEvery));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const uint64_t oracle =
      std::stoull(node_.Eval("orion_top_workload:sink_queue_len(orion_top_selective)."));
  EXPECT_EQ(oracle, kCasts);
  EXPECT_EQ(doc["queue_source"], "senders");
  ASSERT_FALSE(doc["processes"].empty());
  const json& first = doc["processes"][0];
  EXPECT_EQ(first["pid"], server) << first.dump();
  const double bound = 2 + 0.01 * (kCasts / kEvery);
  EXPECT_NEAR(first["queue_len"].get<double>(), static_cast<double>(oracle), bound) << first.dump();
  EXPECT_GE(first["queue_len_max"].get<double>(), static_cast<double>(oracle) - bound)
      << first.dump();
  EXPECT_EQ(first["msgs_in"].get<uint64_t>(), kCasts + kCasts / kEvery) << first.dump();
  EXPECT_EQ(first["msgs_received"].get<uint64_t>(), kCasts / kEvery) << first.dump();
  node_.Eval("orion_top_workload:stop_registered(orion_top_selective).");
}

// A slow reader (one message, then 1 ms of sleep) flooded with 20,000 messages builds a backlog;
// it stops reading (a flag it reads itself) before top stops. A fast reader keeps its queue
// near empty. Both lengths equal process_info's read after top stopped, within the same race as
// above (a sender that read the length while the reader took a message): one message.
TEST_P(TopTest, SlowAndFastReadersMatchProcessInfoReadAfter) {
  const std::string slow =
      Unquote(node_.Eval("orion_top_workload:start_reader(orion_top_slow, 1)."));
  const std::string fast =
      Unquote(node_.Eval("orion_top_workload:start_reader(orion_top_fast, 0)."));
  RunningTop top;
  ASSERT_TRUE(top.Start(node_, {"--sort", "queue", "--limit", "0"}));
  ASSERT_EQ(node_.Eval("orion_top_workload:send_n(orion_top_slow, 20000)."), "20000");
  ASSERT_EQ(node_.Eval("orion_top_workload:send_n(orion_top_fast, 20000)."), "20000");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  node_.Eval("orion_top_workload:stop_reading(orion_top_slow).");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const uint64_t slow_oracle =
      std::stoull(node_.Eval("orion_top_workload:sink_queue_len(orion_top_slow)."));
  const uint64_t fast_oracle =
      std::stoull(node_.Eval("orion_top_workload:sink_queue_len(orion_top_fast)."));
  EXPECT_EQ(doc["queue_source"], "senders");
  EXPECT_TRUE(doc["ets"].is_null()) << "no node connection, no ETS tables";
  const json* s = FindProcess(doc, slow);
  const json* f = FindProcess(doc, fast);
  ASSERT_NE(s, nullptr) << slow;
  ASSERT_NE(f, nullptr) << fast;
  EXPECT_GT(slow_oracle, 10000u) << "the slow reader should have a backlog";
  EXPECT_NEAR((*s)["queue_len"].get<double>(), static_cast<double>(slow_oracle), 1) << s->dump();
  EXPECT_GE((*s)["queue_len_max"].get<uint64_t>(), slow_oracle) << s->dump();
  EXPECT_EQ((*s)["msgs_in"].get<uint64_t>(), 20000u) << s->dump();
  EXPECT_EQ((*s)["msgs_received"].get<uint64_t>(), 20000u - slow_oracle) << s->dump();
  EXPECT_EQ(fast_oracle, 0u);
  EXPECT_LE((*f)["queue_len"].get<uint64_t>(), 1u) << f->dump();  // the race above: a message
  EXPECT_EQ((*f)["msgs_in"].get<uint64_t>(), 20000u) << f->dump();
  EXPECT_EQ((*f)["msgs_received"].get<uint64_t>(), 20000u) << f->dump();
  EXPECT_LE((*f)["queue_len_max"].get<uint64_t>(), 20000u) << f->dump();
  node_.Eval("orion_top_workload:stop_registered(orion_top_slow).");
  node_.Eval("orion_top_workload:stop_registered(orion_top_fast).");
}

// Reductions come from the kernel (erts_schedule's count of each run); memory, current function
// and ETS tables from the node. A process spawned while top runs burns a known amount of work
// and then waits: process_info(P, reductions) read afterwards is all it used, and top's count is
// that one or slightly above (the virtual reductions of its waits), within 1 %.
TEST_P(TopTest, BurningReductionsTopsSortRedsWithTheNodesColumns) {
  const std::string table =
      Unquote(node_.Eval("orion_top_workload:start_ets(orion_top_big, 10000)."));
  ASSERT_EQ(table.front(), '<') << table;
  RunningTop top;
  std::vector<std::string> flags = {"--sort", "reds"};
  for (const auto& f : NameFlags()) flags.push_back(f);
  ASSERT_TRUE(top.Start(node_, flags));
  const std::string burner =
      Unquote(node_.Eval("orion_top_workload:burn(orion_top_burner, 3000000)."));
  ASSERT_EQ(burner.front(), '<') << burner;
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const double oracle =
      std::stod(node_.Eval("orion_top_workload:reductions_of(orion_top_burner)."));
  const uint64_t table_bytes =
      std::stoull(node_.Eval("orion_top_workload:ets_memory_bytes(orion_top_big)."));
  EXPECT_EQ(doc["sort"], "reds");
  ASSERT_FALSE(doc["processes"].empty());
  const json& first = doc["processes"][0];
  EXPECT_EQ(first["pid"], burner) << first.dump();
  EXPECT_EQ(first["name"], "orion_top_burner") << first.dump();
  EXPECT_GT(oracle, 3e6);
  EXPECT_GE(first["reds"].get<double>(), oracle * 0.99) << first.dump();
  EXPECT_LE(first["reds"].get<double>(), oracle * 1.01) << first.dump();
  // From the node, after the measurement.
  EXPECT_EQ(first["current_function"], "orion_top_workload:burn_wait/0") << first.dump();
  ASSERT_TRUE(first["memory"].is_number()) << first.dump();
  EXPECT_GT(first["memory"].get<uint64_t>(), 0u);
  ASSERT_TRUE(doc["ets"].is_object()) << doc["ets"].dump();
  const json& ets = doc["ets"];
  EXPECT_GE(ets["tables"].get<uint64_t>(), 10u) << ets.dump();
  EXPECT_EQ(ets["described"], ets["tables"]) << ets.dump();
  ASSERT_FALSE(ets["by_memory"].empty());
  const json& big = ets["by_memory"][0];
  EXPECT_EQ(big["id"], "orion_top_big") << big.dump();
  EXPECT_EQ(big["size"], 10000u) << big.dump();
  EXPECT_EQ(big["memory"].get<uint64_t>(), table_bytes) << big.dump();
  EXPECT_EQ(big["owner"], table) << big.dump();
  EXPECT_EQ(big["type"], "set") << big.dump();
  node_.Eval("orion_top_workload:stop_registered(orion_top_burner).");
  node_.Eval("orion_top_workload:stop_registered(orion_top_big).");
}

// The pids top reads as the emulator's terms (the process each scheduling returns, the receiver
// orion__mailbox names) are decoded with a layout (bpf/top.h, "Keys"): OTP 25 keeps a pid's
// data as is in the term, OTP 26 on the process table's scrambled form of it. 40,000 processes
// spawned and ended first take the workers' pids past a 15-bit number (OTP 25 counts on in the
// serial, 29 in a 28-bit number). Each worker's reductions (scheduler path) and its one message
// (mailbox path) must land on the entry of the pid the node's own pid_to_list/1 gives, read
// after the measurement.
TEST_P(TopTest, PidsOfTheEmulatorsTermsAreTheNodesOwnReadAfter) {
  const WorkersInTop seen = TopOverWorkers(node_, /*message=*/true);
  const json& doc = seen.doc;
  ASSERT_FALSE(doc.is_discarded());
  ASSERT_EQ(seen.pids.size(), 20u) << seen.listed;
  EXPECT_EQ(doc["queue_source"], "senders");
  EXPECT_EQ(doc["pid_layout"], "emulator");
  for (const std::string& pid : seen.pids) {
    const json* p = FindProcess(doc, pid);
    ASSERT_NE(p, nullptr) << pid << " is not in top's processes";
    EXPECT_GE((*p)["reds"].get<uint64_t>(), kWorkerRounds) << p->dump();
    EXPECT_GE((*p)["sched_count"].get<uint64_t>(), 1u) << p->dump();
    EXPECT_EQ((*p)["msgs_in"].get<uint64_t>(), 1u) << p->dump();
    EXPECT_EQ((*p)["queue_len"].get<uint64_t>(), 1u) << p->dump();
  }
  node_.Eval("orion_top_workload:stop_workers(orion_top_workers).");
}

// A BEAM without the pairing table (stock, or an older patch set) gets the layout computed from
// its erts version and -P (userspace/beam/pid_layout.cc): the rule must be the one the patched
// emulator of the same release states, for the default table and for tables +P makes smaller
// or larger (rounded up to a power of 2).
TEST_P(TopTest, PidLayoutComputedFromTheCommandLineIsTheEmulatorsOwn) {
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, {"+P", "5000"}, {"+P", "300000"}, {"+P", "1024"}}) {
    BeamNode node;
    ASSERT_TRUE(node.Start({.flavor = GetParam(), .extra_args = extra})) << node.error();
    auto beam = beam::InspectBeam(node.os_pid());
    ASSERT_TRUE(beam.ok()) << beam.status().message();
    const auto stated = beam::ReadPidLayout(*beam);
    ASSERT_TRUE(stated.ok()) << stated.status().message();
    const auto computed = beam::PidLayoutFromCommandLine(*beam);
    ASSERT_TRUE(computed.ok()) << computed.status().message();
    EXPECT_EQ(*computed, *stated) << "+P " << (extra.empty() ? "default" : extra[1]) << ": "
                                  << stated->pix_mask << " " << stated->pix_cl_mask << " "
                                  << stated->pix_cli_mask << " " << stated->pix_cl_shift << " "
                                  << stated->pix_cli_shift;
  }
}

TEST_P(TopTest, BusyLoopTopsCpuWithAboutOneSchedulerAndIdleNodeIsIdle) {
  // Idle first: nothing runs, every scheduler is mostly idle.
  std::string out;
  ASSERT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "top", "--json", "--duration", "2", "--pid",
                                 std::to_string(node_.os_pid())},
                                &out),
            0)
      << out;
  json idle = json::parse(out, nullptr, false);
  ASSERT_FALSE(idle.is_discarded()) << out;
  const int schedulers = std::stoi(node_.Eval("erlang:system_info(schedulers)."));
  int normal = 0;
  for (const auto& s : idle["schedulers"]) {
    EXPECT_LT(s["utilization"].get<double>(), 0.05) << s.dump();
    EXPECT_NEAR(static_cast<double>(s["busy_ns"].get<uint64_t>() + s["idle_ns"].get<uint64_t>()),
                idle["duration_s"].get<double>() * 1e9, 0.05e9)
        << s.dump();
    normal += s["kind"] == "normal";
  }
  EXPECT_EQ(normal, schedulers);

  // Busy: one process that never waits holds one scheduler all the time.
  const std::string busy = Unquote(node_.Eval("orion_top_workload:start_busy(orion_top_busy)."));
  std::vector<std::string> args = {
      ORION_TEST_ORION_BIN,          "top", "--json", "--duration", "3", "--sort", "cpu", "--pid",
      std::to_string(node_.os_pid())};
  for (const auto& f : NameFlags()) args.push_back(f);
  ASSERT_EQ(testing::RunCommand(args, &out), 0) << out;
  node_.Eval("orion_top_workload:stop_registered(orion_top_busy).");
  json doc = json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  ASSERT_FALSE(doc["processes"].empty());
  const json& first = doc["processes"][0];
  EXPECT_EQ(first["pid"], busy) << first.dump();
  EXPECT_EQ(first["name"], "orion_top_busy") << first.dump();
  EXPECT_LE(first["cpu_share"].get<double>(), 1.01) << first.dump();
  EXPECT_GT(first["sched_count"].get<uint64_t>(), 10u) << "preempted by reductions and rescheduled";
  // It holds its scheduler whenever that thread is on a CPU: the on-CPU shares, not the wall
  // clock's. On a machine with more runnable threads than cores, the OS also takes the thread
  // off the CPU in the scheduler loop between two runs, which is nobody's time on the scheduler
  // (measured: 21-23 % of the wall clock at a load average of 20 on 2 cores, so that
  // cpu_share fell to 0.77-0.80 on both flavors).
  auto on_cpu_share = [](const json& s) {
    const double busy = static_cast<double>(s["busy_ns"].get<uint64_t>()) -
                        static_cast<double>(s["offcpu_ns"].get<uint64_t>());
    const double idle = static_cast<double>(s["idle_ns"].get<uint64_t>()) -
                        static_cast<double>(s["idle_offcpu_ns"].get<uint64_t>());
    return busy + idle > 0 ? busy / (busy + idle) : 0.0;
  };
  // Its time shows on the scheduler threads: about one scheduler busy in total.
  double busy_share = 0, max_share = 0;
  for (const auto& s : doc["schedulers"]) {
    if (s["kind"] != "normal") continue;
    busy_share += on_cpu_share(s);
    max_share = std::max(max_share, on_cpu_share(s));
  }
  EXPECT_GT(max_share, 0.85) << doc["schedulers"].dump();
  EXPECT_GT(busy_share, 0.85) << doc["schedulers"].dump();
  EXPECT_LT(busy_share, 1.5) << doc["schedulers"].dump();
}

TEST_P(TopTest, TcpPortShowsExactlyTheBytesWritten) {
  RunningTop top;
  ASSERT_TRUE(top.Start(node_, {"--limit", "5"}));
  // 200 sends of 1..200 bytes, raw framing; then 50 sends of 1000 bytes with {packet, 2}:
  // the 2-byte length header inet_drv adds to each is not part of what the port was given.
  const TcpResult raw =
      ParseTcpResult(node_.Eval("orion_top_workload:tcp_send(lists:seq(1, 200), raw)."));
  const TcpResult framed =
      ParseTcpResult(node_.Eval("orion_top_workload:tcp_send(lists:duplicate(50, 1000), 2)."));
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  ASSERT_EQ(raw.bytes, 200u * 201 / 2);
  ASSERT_EQ(framed.bytes, 50u * 1000);
  for (const TcpResult* r : {&raw, &framed}) {
    const json* port = FindPort(doc, r->port);
    ASSERT_NE(port, nullptr) << r->port << " in " << doc["ports"].dump();
    EXPECT_EQ((*port)["name"], "tcp_inet");
    EXPECT_EQ((*port)["bytes_out"].get<uint64_t>(), r->bytes) << port->dump();
    EXPECT_EQ((*port)["commands"].get<uint64_t>(), r->sends) << port->dump();
    EXPECT_EQ((*port)["outputs"].get<uint64_t>(), r->sends) << port->dump();
  }
  // Per port name: tcp_inet carries at least both sockets' bytes.
  bool found = false;
  for (const auto& n : doc["port_names"]) {
    if (n["name"] != "tcp_inet") continue;
    found = true;
    EXPECT_GE(n["bytes_out"].get<uint64_t>(), raw.bytes + framed.bytes);
  }
  EXPECT_TRUE(found) << doc["port_names"].dump();
}

TEST_P(TopTest, GcCountsEqualErlangTracingOnTheSameRun) {
  RunningTop top;
  ASSERT_TRUE(top.Start(node_, {"--sort", "gc", "--limit", "0"}));
  // {"<0.N.0>",[MinorStart,MinorEnd,MajorStart,MajorEnd],[PauseNs,...]}
  std::string result = node_.Eval("orion_top_workload:traced_gc(3000).");
  result.erase(std::remove(result.begin(), result.end(), ' '), result.end());
  json doc = top.Stop();
  ASSERT_FALSE(doc.is_discarded());
  const size_t q1 = result.find('"'), q2 = result.find('"', q1 + 1);
  ASSERT_NE(q2, std::string::npos) << result;
  const std::string pid = result.substr(q1 + 1, q2 - q1 - 1);
  unsigned long long minor_start = 0, minor_end = 0, major_start = 0, major_end = 0;
  ASSERT_EQ(std::sscanf(result.c_str() + q2 + 1, ",[%llu,%llu,%llu,%llu]", &minor_start, &minor_end,
                        &major_start, &major_end),
            4)
      << result.substr(0, 200);
  ASSERT_GT(minor_start, 100u) << "the workload should collect often";
  const json* p = FindProcess(doc, pid);
  ASSERT_NE(p, nullptr) << pid;
  EXPECT_EQ((*p)["gc_minor"].get<uint64_t>(), minor_end) << p->dump();
  EXPECT_EQ((*p)["gc_major"].get<uint64_t>(), major_end) << p->dump();
  EXPECT_EQ((*p)["gc_count"].get<uint64_t>(), minor_start + major_start) << p->dump();
  EXPECT_EQ(minor_start, minor_end);
  EXPECT_EQ(major_start, major_end);
  EXPECT_GT((*p)["heap_grows"].get<uint64_t>(), 0u) << p->dump();
  EXPECT_EQ(doc["lost"]["gc_unpaired"], 0u);
  // Spawned while attached: the spawn probe gave its initial call.
  EXPECT_TRUE((*p)["initial_call"].is_string()) << p->dump();

  // Pauses: the trace timestamps bracket the probes, so every kernel pause is shorter than its
  // oracle pause, and so is every order statistic: each kernel quantile is at most the oracle's
  // (within the GC sketch's accuracy, 4.3 %). The typical pause differs by the few instructions
  // and probe traps in between (the tail also by whatever the BEAM does between the end probe
  // and the end trace message), so the median is bounded from below too: loosely, since the
  // oracle's bracket also holds the building of the start trace message (its heap info), which
  // on these small heaps costs up to about half a pause (seen: kernel 22 µs, oracle 35 µs).
  std::vector<double> oracle = ParseIntegerList(result.substr(result.find("],[") + 2));
  ASSERT_EQ(oracle.size(), minor_end + major_end);
  constexpr double kAlpha = 0.0433, kSlackNs = 10'000;
  EXPECT_LE((*p)["gc_ns"].get<double>(), std::accumulate(oracle.begin(), oracle.end(), 0.0));
  EXPECT_LE((*p)["gc_max_ns"].get<double>(), *std::max_element(oracle.begin(), oracle.end()));
  for (auto [q, key] : {std::pair{0.5, "gc_p50_ns"}, {0.99, "gc_p99_ns"}}) {
    ASSERT_TRUE((*p)[key].is_number()) << p->dump();
    const double exact = LowerQuantile(oracle, q), got = (*p)[key].get<double>();
    EXPECT_LE(got, exact * (1 + kAlpha) + 1) << key << " oracle " << exact;
    if (q == 0.5) {
      EXPECT_GE(got, 0.5 * exact * (1 - kAlpha) - kSlackNs) << key << " oracle " << exact;
    }
  }
}

TEST_P(TopTest, PlainOutputWithoutATerminal) {
  std::string out;
  ASSERT_EQ(testing::RunCommand({ORION_TEST_ORION_BIN, "top", "--duration", "1.5", "--interval",
                                 "0.5", "--pid", std::to_string(node_.os_pid())},
                                &out),
            0)
      << out;
  EXPECT_NE(out.find("orion top  pid " + std::to_string(node_.os_pid())), std::string::npos) << out;
  EXPECT_NE(out.find("schedulers"), std::string::npos) << out;
  EXPECT_NE(out.find("NAME / INITIAL CALL"), std::string::npos) << out;
}

TEST_P(TopTest, NothingStaysAttachedAfterExitSigtermOrKill9) {
  auto beam = beam::InspectBeam(node_.os_pid());
  ASSERT_TRUE(beam.ok());
  // Signal 0: the normal end of a --duration run. The links checked are those of this orion's
  // programs, whatever else runs on the machine.
  for (int signal : {0, SIGTERM, SIGKILL}) {
    SCOPED_TRACE("signal " + std::to_string(signal));
    RunningTop top;
    ASSERT_TRUE(top.Start(node_, {}, signal == 0 ? "3" : "600"));
    const std::set<int> programs = testing::ProcessBpfProgramIds(top.process().pid());
    // 16 USDT probe sites, 2 erts_schedule uprobes, sched_switch.
    EXPECT_GE(testing::CountLinksOfPrograms(programs), 19);
    if (signal == 0) {
      EXPECT_EQ(top.process().Wait(std::chrono::seconds(30)), 0);
    } else {
      top.process().Signal(signal);
      top.process().Wait(std::chrono::seconds(20));
    }
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          for (const char* probe :
               {"process__spawn", "process__exit", "orion__mailbox", "message__send",
                "gc_minor__start", "port__command", "driver__outputv", "process__heap_grow"}) {
            if (testing::SemaphoreOf(*beam, probe) != 0) return false;
          }
          return true;
        },
        std::chrono::seconds(10)))
        << "a USDT semaphore is still set: the BEAM still formats probe arguments";
    EXPECT_EQ(testing::CountLinksOfPrograms(programs), 0)
        << "a uprobe or the sched_switch link is left";
    EXPECT_EQ(node_.Eval("orion_top_workload:pid_string(self()) =/= \"\"."), "true")
        << "the BEAM was harmed";
  }
}

INSTANTIATE_TEST_SUITE_P(Flavors, TopTest, ::testing::Values("jit", "emu"),
                         [](const auto& info) { return info.param; });

// orion top on a stock (unpatched) USDT OTP 29 node, which has no pairing table to state its
// pid layout: top computes it from the erts version and -P. The node runs with +P 5000 (a table
// of 8192, not the default's 2^20), so a layout from the wrong size would misread the pids.
// The workers' reductions (scheduler path: Process.common.id) must land on the pids the node's
// own pid_to_list/1 gives, read after the measurement.
class TopStockTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    const std::string prefix = BeamNode::StockPrefix(29);
    const std::string erl = prefix + "/bin/erl";
    if (access(erl.c_str(), X_OK) != 0) {
      const std::string reason = "no stock OTP 29 build at " + prefix +
                                 ": build it with beam_dtrace_build/build.sh --otp 29 "
                                 "--no-patches (or scripts/setup.sh)";
      if (testing::BpfRequired()) FAIL() << reason << " (ORION_REQUIRE_BPF=1)";
      GTEST_SKIP() << "SKIPPING: " << reason;
    }
    ASSERT_TRUE(node_.Start({.flavor = GetParam(), .erl = erl, .extra_args = {"+P", "5000"}}))
        << node_.error();
    ASSERT_EQ(node_.Eval("erlang:system_info(emu_flavor)."), GetParam());
  }
  BeamNode node_;
};

TEST_P(TopStockTest, PidsOfAStockOtp29NodeAreComputedFromItsCommandLine) {
  const WorkersInTop seen = TopOverWorkers(node_, /*message=*/false);
  const json& doc = seen.doc;
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["pid_layout"], "cmdline");
  ASSERT_EQ(seen.pids.size(), 20u) << seen.listed;
  for (const std::string& pid : seen.pids) {
    const json* p = FindProcess(doc, pid);
    ASSERT_NE(p, nullptr) << pid << " is not in top's processes";
    EXPECT_GE((*p)["reds"].get<uint64_t>(), kWorkerRounds) << p->dump();
    EXPECT_GE((*p)["sched_count"].get<uint64_t>(), 1u) << p->dump();
  }
  node_.Eval("orion_top_workload:stop_workers(orion_top_workers).");
}

INSTANTIATE_TEST_SUITE_P(StockOtp29, TopStockTest, ::testing::Values("jit", "emu"),
                         [](const auto& info) { return info.param; });

// Errors: the message says what to do, the exit code says what kind of problem.
class TopErrorTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  static int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {ORION_TEST_ORION_BIN, "top"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, out);
  }
};

TEST_F(TopErrorTest, PidGoneAndNotABeam) {
  std::string out;
  EXPECT_EQ(Run({"--pid", "4000000", "--json", "--duration", "1"}, &out), 4);
  EXPECT_NE(out.find("no process with pid 4000000"), std::string::npos) << out;
  EXPECT_EQ(Run({"--pid", std::to_string(getpid()), "--json", "--duration", "1"}, &out), 4);
  EXPECT_NE(out.find("not a BEAM"), std::string::npos) << out;
  EXPECT_EQ(Run({"--pid", "1", "--sort", "memory"}, &out), 2);
  EXPECT_NE(out.find("--sort must be"), std::string::npos) << out;
  EXPECT_EQ(Run({"--pid", "1", "--probes", "sched,disk"}, &out), 2);
  EXPECT_NE(out.find("unknown probe group 'disk'"), std::string::npos) << out;
}

TEST_F(TopErrorTest, NotRootIsRefusedWithNothingAttached) {
  BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "jit"})) << node.error();
  std::string out;
  const int rc = testing::RunCommand(
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ORION_TEST_ORION_BIN,
       "top", "--json", "--duration", "1", "--pid", std::to_string(node.os_pid())},
      &out);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("root"), std::string::npos) << out;
  EXPECT_EQ(testing::CountBpfLinks("orion_top"), 0);
}

TEST_F(TopErrorTest, BeamWithoutUsdtProbesPointsToTheBuild) {
  if (access("/usr/lib/erlang/erts-13.1.5/bin/beam.smp", X_OK) != 0) {
    GTEST_SKIP() << "SKIPPING: Debian's stock erlang-base is not installed";
  }
  BeamNode stock;
  ASSERT_TRUE(stock.Start({.flavor = "", .erl = "/usr/bin/erl"})) << stock.error();
  std::string out;
  EXPECT_EQ(Run({"--pid", std::to_string(stock.os_pid()), "--json", "--duration", "1"}, &out), 4);
  EXPECT_NE(out.find("no erlang USDT probes"), std::string::npos) << out;
}

TEST_F(TopErrorTest, WrongCookieSaysSoBeforeAttaching) {
  const std::string tag = std::to_string(getpid());
  BeamNode node;
  ASSERT_TRUE(
      node.Start({.flavor = "jit", .sname = "orion_top_cookie_" + tag, .cookie = "right_" + tag}))
      << node.error();
  const std::string dir = "/tmp/orion_top_cookie_test_" + tag;
  mkdir(dir.c_str(), 0700);
  const std::string file = dir + "/cookie";
  std::ofstream(file) << "wrong_" << tag << "\n";
  chmod(file.c_str(), 0600);
  std::string out;
  const int rc = Run({"--pid", std::to_string(node.os_pid()), "--json", "--duration", "1", "--node",
                      node.node_name(), "--cookie-file", file},
                     &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("cookie"), std::string::npos) << out;
  EXPECT_EQ(testing::CountBpfLinks("orion_top"), 0);
  chmod(file.c_str(), 0644);  // readable by others: refused like erl refuses it
  EXPECT_EQ(Run({"--pid", std::to_string(node.os_pid()), "--json", "--duration", "1", "--node",
                 node.node_name(), "--cookie-file", file},
                &out),
            3)
      << out;
  unlink(file.c_str());
  rmdir(dir.c_str());
}

// The hidden C-node client names come from (and the daemon reuses): bounded calls, clear errors.
class TopNodeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tag = std::to_string(getpid());
    cookie_ = "orion_node_client_" + tag;
    ASSERT_TRUE(node_.Start({.flavor = "jit", .sname = "orion_nc_" + tag, .cookie = cookie_}))
        << node_.error();
  }

  // An encoded argument list (no version byte), built by `fill`.
  template <typename F>
  static std::string Args(F fill) {
    ei_x_buff x;
    ei_x_new(&x);
    fill(&x);
    std::string bytes(x.buff, x.index);
    ei_x_free(&x);
    return bytes;
  }

  BeamNode node_;
  std::string cookie_;
};

TEST_F(TopNodeClientTest, RpcAndProcessInfo) {
  auto client = erlang::NodeClient::Connect(node_.node_name(), cookie_, std::chrono::seconds(5));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->own_name().rfind("orion_", 0), 0u);

  // erlang:node() answers the node's name; the C node is hidden.
  auto reply =
      (*client)->Rpc("erlang", "node", Args([](ei_x_buff* x) { ei_x_encode_empty_list(x); }),
                     std::chrono::seconds(2));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  char atom[MAXATOMLEN_UTF8];
  int index = 0;
  ASSERT_EQ(ei_decode_atom(reply->data(), &index, atom), 0);
  EXPECT_EQ(std::string(atom), node_.node_name());
  EXPECT_EQ(node_.Eval("length(nodes(hidden))."), "1");
  EXPECT_EQ(node_.Eval("nodes()."), "[]");

  // A registered gen_server (started by proc_lib): its name, and the initial call proc_lib
  // knows (its callback module's init/1), not proc_lib:init_p/5.
  const std::string pid = Unquote(node_.Eval("pid_to_list(whereis(rex))."));
  auto info = (*client)->GetProcessInfo(pid, std::chrono::seconds(2));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->alive);
  EXPECT_EQ(info->registered_name, "rex");
  EXPECT_EQ(info->initial_call, "rpc:init/1");

  // An anonymous process spawned with a fun; then the same pid once it is dead.
  const std::string anon =
      Unquote(node_.Eval("P = spawn(fun() -> receive stop -> ok end end), pid_to_list(P)."));
  info = (*client)->GetProcessInfo(anon, std::chrono::seconds(2));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->alive);
  EXPECT_EQ(info->registered_name, "");
  EXPECT_EQ(info->initial_call, "erlang:apply/2");
  ASSERT_EQ(
      node_.Eval("Ref = monitor(process, P), P ! stop, receive {'DOWN', Ref, _, _, _} -> ok end."),
      "ok");
  info = (*client)->GetProcessInfo(anon, std::chrono::seconds(2));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->alive);

  EXPECT_EQ((*client)->GetProcessInfo("<1.2.3>", std::chrono::seconds(1)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*client)->GetProcessInfo("self", std::chrono::seconds(1)).status().code(),
            StatusCode::kInvalidArgument);

  // A function that raises answers {badrpc, _}: a reply for the caller to decode.
  reply = (*client)->Rpc("erlang", "no_such_function",
                         Args([](ei_x_buff* x) { ei_x_encode_empty_list(x); }),
                         std::chrono::seconds(2));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  int arity = 0;
  index = 0;
  ASSERT_EQ(ei_decode_tuple_header(reply->data(), &index, &arity), 0);
  ASSERT_EQ(ei_decode_atom(reply->data(), &index, atom), 0);
  EXPECT_EQ(std::string(atom), "badrpc");
}

TEST_F(TopNodeClientTest, SlowCallTimesOutAndClosesTheConnection) {
  auto client = erlang::NodeClient::Connect(node_.node_name(), cookie_, std::chrono::seconds(5));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  auto reply = (*client)->Rpc("timer", "sleep", Args([](ei_x_buff* x) {
                                ei_x_encode_list_header(x, 1);
                                ei_x_encode_long(x, 3000);
                                ei_x_encode_empty_list(x);
                              }),
                              std::chrono::milliseconds(300));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(reply.status().code(), StatusCode::kDeadlineExceeded) << reply.status().ToString();
  EXPECT_LT(waited, std::chrono::seconds(2));
  EXPECT_FALSE((*client)->connected()) << "a late reply would be taken for the next one";
  EXPECT_EQ((*client)
                ->Rpc("erlang", "node", Args([](ei_x_buff* x) { ei_x_encode_empty_list(x); }),
                      std::chrono::seconds(1))
                .status()
                .code(),
            StatusCode::kUnavailable);
}

TEST_F(TopNodeClientTest, WrongCookieAndUnknownNode) {
  auto wrong =
      erlang::NodeClient::Connect(node_.node_name(), "not_the_cookie", std::chrono::seconds(5));
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnavailable) << wrong.status().ToString();
  EXPECT_NE(wrong.status().message().find("cookie"), std::string::npos);
  const std::string host = node_.node_name().substr(node_.node_name().find('@'));
  auto unknown =
      erlang::NodeClient::Connect("orion_no_such_node" + host, cookie_, std::chrono::seconds(5));
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().ToString();
  EXPECT_EQ(
      erlang::NodeClient::Connect("no_host_part", cookie_, std::chrono::seconds(1)).status().code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace orion
