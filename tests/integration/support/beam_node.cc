#include "tests/integration/support/beam_node.h"

#include <cstdlib>

namespace orion::testing {

std::string BeamNode::OtpPrefix() {
  if (const char* env = std::getenv("ORION_OTP_PREFIX"); env && *env) return env;
  return ORION_TEST_OTP_PREFIX;
}

namespace {

// What beam_dtrace_build/build.sh ARGS --print-prefix prints, or "" if it fails. `own_prefix`:
// with ORION_OTP_PREFIX unset (which the script would print instead).
std::string BuildShPrefix(const std::vector<std::string>& args, bool own_prefix) {
  std::vector<std::string> command;
  if (own_prefix) command = {"/usr/bin/env", "-u", "ORION_OTP_PREFIX"};
  command.push_back(std::string(ORION_TEST_SOURCE_DIR) + "/beam_dtrace_build/build.sh");
  command.insert(command.end(), args.begin(), args.end());
  command.push_back("--print-prefix");
  std::string out;
  const int status = RunCommand(command, &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return status == 0 ? out : "";
}

}  // namespace

// A release's own build whatever ORION_OTP_PREFIX names (with it set, build.sh would print it
// for every release: a "stock 29" node was then the patched build the variable named).
std::string BeamNode::StockPrefix(int release) {
  return BuildShPrefix({"--otp", std::to_string(release), "--no-patches"}, true);
}

std::string BeamNode::PatchedPrefix(int release) {
  return BuildShPrefix({"--otp", std::to_string(release)}, true);
}

std::string BeamNode::DebugPrefix() { return BuildShPrefix({"--debug"}, true); }

std::string BeamNode::TestEbin() {
  return ORION_TEST_EBIN;
}

bool BeamNode::Start(const BeamNodeOptions& options) {
  std::vector<std::string> args = options.launcher;
  args.push_back(options.erl.empty() ? OtpPrefix() + "/bin/erl" : options.erl);
  if (!options.flavor.empty()) args.insert(args.end(), {"-emu_flavor", options.flavor});
  if (!options.sname.empty()) args.insert(args.end(), {"-sname", options.sname});
  if (!options.name.empty()) args.insert(args.end(), {"-name", options.name});
  if (!options.cookie.empty()) args.insert(args.end(), {"-setcookie", options.cookie});
  args.insert(args.end(), {"-noshell", "-pa", TestEbin()});
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  args.insert(args.end(), {"-s", "orion_test_repl", "start"});

  if (!process_.Start(args, options.env)) {
    error_ = process_.error();
    return false;
  }
  // erl -> erlexec -> beam exec in place, so the child pid is the beam's; the REPL prints
  // os:getpid() anyway.
  std::string ready = process_.WaitForLine("ORION-READY ", std::chrono::seconds(60));
  if (ready.empty()) {
    error_ = "the node did not start: " + args[options.launcher.size()];
    process_.Kill();
    return false;
  }
  os_pid_ = static_cast<pid_t>(std::atoi(ready.c_str() + 12));
  if (!options.sname.empty() || !options.name.empty()) {
    node_name_ = Eval("node().");
    if (node_name_.size() >= 2 && node_name_.front() == '\'') {
      node_name_ = node_name_.substr(1, node_name_.size() - 2);
    }
  }
  return true;
}

std::string BeamNode::Eval(const std::string& expr, std::chrono::milliseconds timeout) {
  if (!process_.WriteLine(expr)) return "DEAD";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  while (process_.ReadLine(&out, deadline)) {
    if (out.rfind("ORION-RESULT ", 0) == 0) return out.substr(13);
    if (out.rfind("ORION-ERROR ", 0) == 0) return "ERROR " + out.substr(12);
  }
  return process_.Alive() ? "TIMEOUT" : "DEAD";
}

}  // namespace orion::testing
