#include "tests/unit/erlang/erlang_vm.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace orion::erlang::testing {

// The expressions go through a file: a command line argument is limited to 128 KiB.
std::string RunErlang(const std::string& expressions) {
  char path[] = "/tmp/orion_erlang_test_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0 || write(fd, expressions.data(), expressions.size()) !=
                    static_cast<ssize_t>(expressions.size())) {
    ADD_FAILURE() << "cannot write " << path;
    return "";
  }
  close(fd);
  const std::string eval =
      std::string("{ok, Code} = file:read_file(\"") + path +
      "\"), {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Code) ++ \".\"), "
      "{ok, Exprs} = erl_parse:parse_exprs(Tokens), "
      "erl_eval:exprs(Exprs, erl_eval:new_bindings()), halt().";
  int out[2];
  if (pipe(out) != 0) {
    ADD_FAILURE() << "pipe failed";
    return "";
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execl(ORION_ERL, ORION_ERL, "-noshell", "-noinput", "-eval", eval.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) output.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << ORION_ERL << " failed (status " << status << ") on: " << expressions.substr(0, 2000)
      << "\noutput: " << output.substr(0, 2000);
  return output;
}

std::vector<std::vector<uint8_t>> TermToBinary(const std::vector<std::string>& expressions,
                                               std::string_view options) {
  std::string code;
  for (const auto& expression : expressions) {
    if (!code.empty()) code += ", ";
    code += "io:format(\"~s~n\", [binary:encode_hex(term_to_binary(" + expression + ", " +
            std::string(options) + "))])";
  }
  std::istringstream lines(RunErlang(code));
  std::vector<std::vector<uint8_t>> out;
  for (std::string line; std::getline(lines, line);) out.push_back(FromHex(line));
  EXPECT_EQ(out.size(), expressions.size());
  out.resize(expressions.size());
  return out;
}

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::vector<uint8_t> FromHex(std::string_view hex) {
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

}  // namespace orion::erlang::testing
