// Streams and function names through the daemons (protocol version 2, docs/protocol.md
// "Streams (version 2)"), asked from a plain `erl` shell (Debian's, not project code) as any user would: real daemons in network
// namespaces, real BEAMs, real probes. The oracles are outside the system under test: the
// workload's own call counts, the BPF links the daemon processes hold (kernel fdinfo), the
// daemons' logs, and what the shell's mailbox received.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <csignal>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/test_cluster.h"

namespace orion {
namespace {

using testing::LineAfter;
using testing::TestCluster;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Erlang (shell side): Collect(Ref, Timeout) receives the stream's messages until {stopped, _},
// printing one line per event: `EV interval Seq [{Node, CallsOfKnown}] Dropped`,
// `EV node_down Node`, `EV stopped Reason`; then `SEQS [...]` and `CALLS [{Node, Sum}]`.
const char* const kCollect =
    "Known = <<\"orion_workload:known/1\">>,"
    "Collect = fun Loop(Ref, Seqs, Sums) ->"
    "  receive"
    "    {orion_stream, Ref, {interval, #{seq := Seq, nodes := Nodes, dropped := D}}} ->"
    "      Calls = [{N, lists:sum([C || #{name := Nm, calls := C} <- Fs, Nm =:= Known])}"
    "               || #{node := N, functions := Fs} <- Nodes],"
    "      io:format(\"EV interval ~p ~w ~p~n\", [Seq, Calls, D]),"
    "      Sums2 = lists:foldl(fun({N, C}, M) -> maps:update_with(N, fun(X) -> X + C end, C, M) "
    "                          end, Sums, Calls),"
    "      Loop(Ref, [Seq | Seqs], Sums2);"
    "    {orion_stream, Ref, {node_down, N, _Why}} ->"
    "      io:format(\"EV node_down ~p~n\", [N]), Loop(Ref, Seqs, Sums);"
    "    {orion_stream, Ref, {stopped, R}} ->"
    "      io:format(\"EV stopped ~p~n\", [R]),"
    "      io:format(\"SEQS ~w~n\", [lists:reverse(Seqs)]),"
    "      io:format(\"CALLS ~w~n\", [lists:sort(maps:to_list(Sums))])"
    "  after 30000 -> io:format(\"EV timeout~n\")"
    "  end "
    "end,";

std::string StreamCall(const std::string& daemon, int duration_ms, int interval_ms) {
  return "gen_server:call({orion, '" + daemon +
         "'}, {stream, #{patterns => [<<\"orion_workload:known/1\">>], mode => probes, "
         "duration_ms => " + std::to_string(duration_ms) +
         ", interval_ms => " + std::to_string(interval_ms) + "}})";
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override { ORION_REQUIRE_BPF_OR_SKIP(); }

  void TearDown() override {
    if (!HasFailure()) return;
    for (int i = 0; i < cluster_.size(); ++i) {
      std::string text = ReadFile(cluster_.daemon_log(i));
      if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
      std::fprintf(stderr, "---- %s log ----\n%s\n", cluster_.daemon_node(i).c_str(),
                   text.c_str());
    }
  }

  // Waits until daemon i's log holds `what` (at least `times` times).
  bool LogSays(int i, const std::string& what, size_t times = 1,
               std::chrono::seconds timeout = std::chrono::seconds(20)) {
    return testing::WaitFor(
        [&] {
          const std::string log = ReadFile(cluster_.daemon_log(i));
          size_t n = 0;
          for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
          return n >= times;
        },
        timeout);
  }

  // Nothing of any stream stays attached: neither daemon holds a BPF link.
  bool NothingAttached() {
    return testing::WaitFor(
        [&] {
          for (int i = 0; i < cluster_.size(); ++i) {
            if (testing::CountProcessBpfLinks(cluster_.daemon_pid(i)) != 0) return false;
          }
          return true;
        },
        std::chrono::seconds(10));
  }

  TestCluster cluster_;
};

TEST_F(StreamTest, IntervalsComeInOrderAndSumToTheWorkloadsCallsOnEveryHost) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(cluster_.beam(i).Eval("orion_workload:call_known(1)."), "ok");
  auto shell = std::async(std::launch::async, [&] {
    return cluster_.ShellEval(std::string(kCollect) + "{ok, Ref} = " +
                              StreamCall(cluster_.daemon_node(0), 7000, 500) +
                              ", io:format(\"REF ~p~n\", [is_reference(Ref)]), Collect(Ref, [], #{}),");
  });
  ASSERT_TRUE(LogSays(0, "capture attached")) << "host 0 never attached";
  ASSERT_TRUE(LogSays(1, "capture attached")) << "host 1 never attached";
  EXPECT_GT(testing::CountProcessBpfLinks(cluster_.daemon_pid(0)), 0) << "the oracle sees links";
  // Known workloads while the stream runs: 700 calls on host 0, 300 on host 1.
  ASSERT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(700)."), "ok");
  ASSERT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(300)."), "ok");
  const std::string out = shell.get();
  EXPECT_EQ(LineAfter(out, "REF "), "true") << out;
  EXPECT_EQ(LineAfter(out, "EV stopped "), "done") << out;
  EXPECT_EQ(out.find("EV timeout"), std::string::npos) << out;
  EXPECT_EQ(out.find("EV node_down"), std::string::npos) << out;
  // In order, none skipped, one per interval (7 s / 0.5 s from the attach, a few before it and
  // the last one).
  const std::string seqs = LineAfter(out, "SEQS ");
  std::string expected = "[";
  int n = 0;
  for (std::stringstream in(seqs.substr(1)); in.good();) {
    int seq = 0;
    char sep = 0;
    if (!(in >> seq >> sep)) break;
    expected += (n > 0 ? "," : "") + std::to_string(n + 1);
    ++n;
  }
  expected += "]";
  EXPECT_EQ(seqs, expected) << out;
  EXPECT_GE(n, 14) << out;
  EXPECT_LE(n, 22) << out;
  EXPECT_EQ(LineAfter(out, "CALLS "), "[{'" + cluster_.beam_node(0) + "',700},{'" +
                                          cluster_.beam_node(1) + "',300}]")
      << out;
  EXPECT_TRUE(NothingAttached());
}

TEST_F(StreamTest, StreamStopEndsItWithStoppedAndDetachesEverywhere) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  ASSERT_NE(cluster_.beam(0).Eval(
                "spawn(fun L() -> orion_workload:call_known(10), timer:sleep(50), L() end)."),
            "DEAD");
  // Last, a short stream read with the shell's flush() (docs/protocol.md shows this output).
  const std::string flush =
      "{ok, R2} = gen_server:call({orion, '" + cluster_.daemon_node(0) +
      "'}, {stream, #{patterns => [<<\"orion_workload:known/1\">>], duration_ms => 1500, "
      "interval_ms => 1000, scope => local}}), io:format(\"FLUSH~n\"), timer:sleep(4000), "
      "c:flush(),";
  const std::string out = cluster_.ShellEval(
      std::string(kCollect) + "{ok, Ref} = " + StreamCall(cluster_.daemon_node(0), 60000, 300) +
      ", receive {orion_stream, Ref, {interval, _}} -> ok end,"
      "receive {orion_stream, Ref, {interval, _}} -> ok end,"
      "io:format(\"STOP ~p~n\", [gen_server:call({orion, '" + cluster_.daemon_node(0) +
      "'}, {stream_stop, Ref})]),"
      "Collect(Ref, [], #{}),"
      "io:format(\"AGAIN ~p~n\", [gen_server:call({orion, '" + cluster_.daemon_node(0) +
      "'}, {stream_stop, Ref})])," + flush);
  std::printf("%s\n", out.c_str());
  EXPECT_NE(out.find("{stopped,done}"), std::string::npos) << out;
  EXPECT_EQ(LineAfter(out, "STOP "), "ok") << out;
  EXPECT_EQ(LineAfter(out, "EV stopped "), "stopped") << out;
  EXPECT_EQ(LineAfter(out, "AGAIN ").rfind("{error,{not_found,", 0), 0u) << out;
  EXPECT_TRUE(NothingAttached());
  EXPECT_TRUE(LogSays(1, "stream for ")) << "the peer's part ended too";
}

TEST_F(StreamTest, ACallerKilledMidStreamLeavesNothingAttached) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  // The caller is a process of the shell; the shell (and its connection) lives on after it is
  // killed, so only the daemon's monitor on the caller can tell.
  auto shell = std::async(std::launch::async, [&] {
    return cluster_.ShellEval(
        "Shell = self(),"
        "P = spawn(fun() -> {ok, Ref} = " + StreamCall(cluster_.daemon_node(0), 60000, 300) +
        ", receive {orion_stream, Ref, {interval, _}} -> Shell ! streaming end,"
        "  receive never -> ok end end),"
        "receive streaming -> ok after 20000 -> io:format(\"NEVER STREAMED~n\") end,"
        "exit(P, kill), io:format(\"KILLED ~p~n\", [is_process_alive(P)]),"
        "receive wait_for_the_test -> ok after 12000 -> ok end,");
  });
  ASSERT_TRUE(LogSays(0, "capture attached"));
  EXPECT_TRUE(LogSays(0, "its caller ended")) << "the daemon saw the caller die";
  EXPECT_TRUE(LogSays(0, "stream for ")) << "the stream ended";
  EXPECT_TRUE(NothingAttached());
  const std::string out = shell.get();
  EXPECT_EQ(LineAfter(out, "KILLED "), "false") << out;
  EXPECT_EQ(out.find("NEVER"), std::string::npos) << out;
}

TEST_F(StreamTest, APeerDaemonKilledMidStreamIsANodeDownAndTheStreamGoesOn) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  auto shell = std::async(std::launch::async, [&] {
    return cluster_.ShellEval(std::string(kCollect) + "{ok, Ref} = " +
                              StreamCall(cluster_.daemon_node(0), 6000, 300) +
                              ", Collect(Ref, [], #{}),");
  });
  ASSERT_TRUE(LogSays(0, "capture attached"));
  ASSERT_TRUE(LogSays(1, "capture attached"));
  cluster_.KillDaemon(1);
  ASSERT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(200)."), "ok");
  const std::string out = shell.get();
  EXPECT_EQ(LineAfter(out, "EV node_down "), "'" + cluster_.daemon_node(1) + "'") << out;
  EXPECT_EQ(LineAfter(out, "EV stopped "), "done") << out;
  // Host 0's calls are all there after the peer went.
  const std::string calls = LineAfter(out, "CALLS ");
  EXPECT_NE(calls.find("{'" + cluster_.beam_node(0) + "',200}"), std::string::npos) << out;
  EXPECT_EQ(testing::CountProcessBpfLinks(cluster_.daemon_pid(0)), 0);
}


// ---------------------------------------------------------------------------------------------
// {functions, Prefix}: the names of the functions loaded on the cluster's BEAMs. The oracle is
// what the test loaded into each node (a generated Erlang module, Elixir's own Enum).

// Erlang (shell side): Show(Tag, Reply) prints `Tag N Truncated` then `Tag Name` per name, or
// `Tag Reply` for anything else.
const char* const kShow =
    "Show = fun(Tag, {ok, #{functions := Fs, truncated := T}}) ->"
    "         io:format(\"~s ~p ~p~n\", [Tag, length(Fs), T]),"
    "         [io:format(\"~s ~s~n\", [Tag, F]) || F <- Fs], ok;"
    "       (Tag, Other) -> io:format(\"~s ~0p~n\", [Tag, Other]) end,";

// Every line of `output` that starts with `prefix`, without it.
std::vector<std::string> LinesAfter(const std::string& output, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) lines.push_back(line.substr(prefix.size()));
  }
  return lines;
}

// Loads `module` with the exported functions `names` (arity 0) into a node: a module of the
// node's own, that no daemon knows of.
std::string LoadModule(const std::string& module, const std::string& names) {
  return "Names = " + names + ","
         "Forms = [{attribute, 1, module, " + module + "},"
         "         {attribute, 1, export, [{N, 0} || N <- Names]}"
         "        | [{function, 1, N, 0, [{clause, 1, [], [], [{atom, 1, N}]}]} || N <- Names]],"
         "{ok, M, Bin} = compile:forms(Forms), {module, M} = code:load_binary(M, \"gen.erl\", Bin).";
}

class FunctionsTest : public StreamTest {
 protected:
  std::string Call(int daemon, const std::string& request) {
    return "gen_server:call({orion, '" + cluster_.daemon_node(daemon) + "'}, " + request + ")";
  }
};

TEST_F(FunctionsTest, ErlangAndElixirNamesOfLoadedFunctionsCompleteAPrefixWithinBounds) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  // 150 functions f100..f249 (sorted as numbers are), and Elixir's Enum from Debian's Elixir.
  ASSERT_EQ(cluster_.beam(0).Eval(LoadModule(
                "orion_many", "[list_to_atom(\"f\" ++ integer_to_list(I)) || I <- lists:seq(100, 249)]")),
            "{module,orion_many}");
  ASSERT_EQ(cluster_.beam(0).Eval("code:add_patha(\"/usr/lib/elixir/lib/elixir/ebin\"), "
                                  "code:ensure_loaded('Elixir.Enum')."),
            "{module,'Elixir.Enum'}");
  const std::string out = cluster_.ShellEval(
      std::string(kShow) +
      "Show(\"SORT\", " + Call(0, "{functions, <<\"lists:so\">>}") + ")," +
      "Show(\"ENUM\", " + Call(0, "{functions, \"Enum.ma\"}") + ")," +
      "Show(\"MODS\", " + Call(0, "{functions, <<\"orion_ma\">>}") + ")," +
      "Show(\"ENUMS\", " + Call(0, "{functions, <<\"Enu\">>}") + ")," +
      "Show(\"ELIXIR_ERLANG\", " + Call(0, "{functions, <<\":lists.so\">>}") + ")," +
      "Show(\"MANY\", " + Call(0, "{functions, <<\"orion_many:\">>}") + ")," +
      "Show(\"NONE\", " + Call(0, "{functions, <<\"no_such_module:f\">>}") + ")," +
      "Show(\"BADARG\", " + Call(0, "{functions, 42}") + ")," +
      "Show(\"LONG\", " + Call(0, "{functions, list_to_binary(lists:duplicate(300, $a))}") + "),"
      // What docs/protocol.md shows from erl.
      "io:format(\"ERL ~p~n\", [" + Call(0, "{functions, <<\"lists:so\">>}") + "]),"
      "io:format(\"ERL ~p~n\", [" + Call(0, "{functions, <<\"lis\">>}") + "]),"
      "io:format(\"ERL ~p~n\", [" + Call(0, "{functions, \"Enum.ma\", #{scope => local}}") + "]),");
  std::printf("%s\n", out.c_str());
  EXPECT_EQ(LinesAfter(out, "SORT "),
            (std::vector<std::string>{"2 false", "lists:sort/1", "lists:sort/2"}))
      << out;
  const std::vector<std::string> enums = LinesAfter(out, "ENUM ");
  ASSERT_FALSE(enums.empty()) << out;
  EXPECT_EQ(enums[0].rfind(" false"), enums[0].size() - 6) << out;
  for (const char* name : {"Enum.map/2", "Enum.map_every/3", "Enum.max/1", "Enum.map_reduce/3"}) {
    EXPECT_NE(std::find(enums.begin(), enums.end(), name), enums.end()) << name << "\n" << out;
  }
  EXPECT_EQ(LinesAfter(out, "MODS "), (std::vector<std::string>{"1 false", "orion_many:"})) << out;
  const std::vector<std::string> modules = LinesAfter(out, "ENUMS ");
  EXPECT_NE(std::find(modules.begin(), modules.end(), "Enum."), modules.end()) << out;
  EXPECT_EQ(LinesAfter(out, "ELIXIR_ERLANG "),
            (std::vector<std::string>{"2 false", ":lists.sort/1", ":lists.sort/2"}))
      << out;
  // Bounded: 100 of the 150, the first in order, and said to be cut.
  const std::vector<std::string> many = LinesAfter(out, "MANY ");
  ASSERT_EQ(many.size(), 101u) << out;
  EXPECT_EQ(many[0], "100 true");
  EXPECT_EQ(many[1], "orion_many:f100/0");
  EXPECT_EQ(many[100], "orion_many:f199/0");
  EXPECT_EQ(LinesAfter(out, "NONE "), (std::vector<std::string>{"0 false"})) << out;
  EXPECT_EQ(LineAfter(out, "BADARG "),
            "{error,{bad_request,<<\"functions: the prefix must be a binary or a string, not "
            "42\">>}}")
      << out;
  EXPECT_EQ(LineAfter(out, "LONG ").rfind("{error,{bad_request,<<\"functions: the prefix is 300 "
                                          "bytes long",
                                          0),
            0u)
      << out;
}

TEST_F(FunctionsTest, ClusterScopeAsksEveryHostAndABeamThatDoesNotAnswerIsLeftOut) {
  ASSERT_TRUE(cluster_.Create(2)) << cluster_.error();
  ASSERT_EQ(cluster_.beam(0).Eval(LoadModule("orion_on_host0", "[probe]")), "{module,orion_on_host0}");
  ASSERT_EQ(cluster_.beam(1).Eval(LoadModule("orion_on_host1", "[probe]")), "{module,orion_on_host1}");
  const std::string node1 = "'" + cluster_.beam_node(1) + "'";
  std::string out = cluster_.ShellEval(
      std::string(kShow) +
      "Show(\"CLUSTER\", " + Call(0, "{functions, <<\"orion_on_host\">>}") + ")," +
      "Show(\"LOCAL\", " + Call(0, "{functions, <<\"orion_on_host\">>, #{scope => local}}") + ")," +
      "Show(\"NODE\", " + Call(0, "{functions, <<\"orion_on_host\">>, #{node => " + node1 + "}}") +
      ")," +
      "Show(\"PEER\", " + Call(1, "{functions, <<\"orion_on_host1:p\">>, #{scope => local}}") + "),");
  EXPECT_EQ(LinesAfter(out, "CLUSTER "),
            (std::vector<std::string>{"2 false", "orion_on_host0:", "orion_on_host1:"}))
      << out;
  EXPECT_EQ(LinesAfter(out, "LOCAL "), (std::vector<std::string>{"1 false", "orion_on_host0:"}))
      << out;
  EXPECT_EQ(LinesAfter(out, "NODE "), (std::vector<std::string>{"1 false", "orion_on_host1:"}))
      << out;
  EXPECT_EQ(LinesAfter(out, "PEER "),
            (std::vector<std::string>{"1 false", "orion_on_host1:probe/0"}))
      << out;

  // Host 1's BEAM stops answering (SIGSTOP): the reply still comes, with host 0's names.
  const pid_t beam1 = cluster_.beam(1).os_pid();
  ASSERT_EQ(::kill(beam1, SIGSTOP), 0);
  out = cluster_.ShellEval(std::string(kShow) + "T0 = erlang:monotonic_time(millisecond)," +
                           "Show(\"STOPPED\", " + Call(0, "{functions, <<\"orion_on_host\">>}") +
                           "), io:format(\"TOOK ~p~n\", [erlang:monotonic_time(millisecond) - T0]),");
  ::kill(beam1, SIGCONT);
  EXPECT_EQ(LinesAfter(out, "STOPPED "), (std::vector<std::string>{"1 false", "orion_on_host0:"}))
      << out;
  EXPECT_TRUE(LogSays(1, "functions: " + cluster_.beam_node(1))) << "host 1 says why";
}

TEST_F(FunctionsTest, AnElixirShellCompletesElixirNames) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  ASSERT_EQ(cluster_.beam(0).Eval("code:add_patha(\"/usr/lib/elixir/lib/elixir/ebin\"), "
                                  "code:ensure_loaded('Elixir.Enum')."),
            "{module,'Elixir.Enum'}");
  // What docs/protocol.md shows from iex.
  const std::string out = cluster_.ElixirEval(
      "reply = GenServer.call({:orion, :\"" + cluster_.daemon_node(0) +
      "\"}, {:functions, \"Enum.flat\"}); IO.puts(\"EX \" <> inspect(reply))");
  std::printf("%s\n", out.c_str());
  EXPECT_EQ(LineAfter(out, "EX "),
            R"({:ok, %{functions: ["Enum.flat_map/2", "Enum.flat_map_reduce/3"], truncated: false}})")
      << out;
}

}  // namespace
}  // namespace orion
