// A child process with a pipe to its stdin and from its stdout, for tests that drive real
// programs (erl, bpftrace, the orion binary). Killed and reaped on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace orion::testing {

class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts argv[0] (a path) in its own process group; it is killed when the thread that
  // started it exits (PR_SET_PDEATHSIG: the test, even one killed by a timeout). stderr is
  // inherited unless `merge_stderr`, which sends it into the stdout pipe.
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
             bool merge_stderr = false);

  // One line of stdout without the newline; false at EOF or when the deadline passes.
  bool ReadLine(std::string* line, std::chrono::steady_clock::time_point deadline);
  // Reads lines until one starts with `prefix`; returns it (or "" on EOF/deadline).
  std::string WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout);
  // Everything left on stdout until EOF or the deadline.
  std::string ReadAll(std::chrono::milliseconds timeout);

  bool WriteLine(const std::string& line);
  void CloseStdin();

  bool Signal(int sig) const;     // to the child
  int Wait(std::chrono::milliseconds timeout);  // exit status (WEXITSTATUS or 128+sig), -1
  void Kill();                    // SIGKILL the process group and reap

  pid_t pid() const { return pid_; }
  bool Alive() const;
  const std::string& error() const { return error_; }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  int exit_status_ = -1;
  std::string buffer_;
  std::string error_;
};

// Runs a command to completion; returns its exit status and fills `out` with stdout+stderr.
int RunCommand(const std::vector<std::string>& argv, std::string* out,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace orion::testing
