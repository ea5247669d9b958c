// A real Erlang node for integration tests: starts the USDT-enabled erl from
// beam_dtrace_build/ (or any erl), with tests/erlang/ on its code path, and evaluates
// expressions in it through tests/erlang/orion_test_repl.erl over stdin/stdout.
//
//   BeamNode node;
//   ASSERT_TRUE(node.Start({.flavor = "emu"})) << node.error();
//   EXPECT_EQ(node.Eval("orion_workload:known(1)."), "2");
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/support/subprocess.h"

namespace orion::testing {

struct BeamNodeOptions {
  std::string flavor = "emu";  // -emu_flavor; "" for the binary's default
  std::string sname;           // -sname (erl starts epmd if needed); "" = not distributed
  std::string name;            // -name (long names)
  std::string cookie;          // -setcookie
  std::string erl;             // erl to run; default: <OtpPrefix()>/bin/erl
  std::vector<std::string> extra_args;
  std::vector<std::string> env;  // extra "NAME=value" environment entries
  // A command that runs erl, e.g. {"ip", "netns", "exec", "ns1"}; it must exec erl in place.
  std::vector<std::string> launcher;
};

class BeamNode {
 public:
  // Starts the node and waits until the REPL is ready (up to 60 s).
  bool Start(const BeamNodeOptions& options);

  // Evaluates one expression (ending with '.'); returns the printed result (~tp on one
  // line), or "ERROR {Class,Reason}" if it raised, or "TIMEOUT"/"DEAD".
  std::string Eval(const std::string& expr,
                   std::chrono::milliseconds timeout = std::chrono::seconds(120));

  pid_t os_pid() const { return os_pid_; }  // the beam.* process
  const std::string& error() const { return error_; }
  const std::string& node_name() const { return node_name_; }  // "" if not distributed

  void Kill() { process_.Kill(); }
  bool Alive() const { return process_.Alive(); }

  // The USDT-enabled OTP prefix the tests use ($ORION_OTP_PREFIX or the build's default).
  static std::string OtpPrefix();
  // The prefix of the stock (unpatched) USDT OTP `release` that `beam_dtrace_build/build.sh
  // --otp RELEASE --no-patches --print-prefix` names, built or not; "" if the script fails.
  static std::string StockPrefix(int release);
  // The same for the build with Orion's patches (`build.sh --otp RELEASE --print-prefix`).
  static std::string PatchedPrefix(int release);
  // The prefix of the patched OTP 25 with the debug JIT emulator (beam.debug.jit: assertions
  // and the JIT's stack checks) that `beam_dtrace_build/build.sh --debug --print-prefix`
  // names, built or not; "" if the script fails. Run as erl -emu_type debug -emu_flavor jit.
  static std::string DebugPrefix();
  // Directory with the compiled test modules (tests/erlang/*.erl).
  static std::string TestEbin();

 private:
  Subprocess process_;
  pid_t os_pid_ = -1;
  std::string error_;
  std::string node_name_;
};

}  // namespace orion::testing
