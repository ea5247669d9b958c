#include "tests/integration/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace orion::testing {

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::Start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       bool merge_stderr) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    // The child dies with the test, even a test killed by ctest's timeout: a daemon or a BEAM
    // that outlived its test would hold ports, names and namespaces (and, under flock without -o,
    // the tests' lock) for whatever runs next.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    if (merge_stderr) dup2(out_pipe[1], STDERR_FILENO);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  pid_ = pid;
  return true;
}

bool Subprocess::ReadLine(std::string* line, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || from_child_ < 0) return false;
    pollfd pfd = {from_child_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char chunk[4096];
    ssize_t n = read(from_child_, chunk, sizeof(chunk));
    if (n <= 0) {
      if (!buffer_.empty()) {  // a last line without newline
        *line = buffer_;
        buffer_.clear();
        return true;
      }
      return false;
    }
    buffer_.append(chunk, n);
  }
}

std::string Subprocess::WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  while (ReadLine(&line, deadline)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

std::string Subprocess::ReadAll(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string all, line;
  while (ReadLine(&line, deadline)) all += line + "\n";
  return all;
}

bool Subprocess::WriteLine(const std::string& line) {
  if (to_child_ < 0) return false;
  // A child that died with its stdin open: the write fails (EPIPE) and the test says so, rather
  // than SIGPIPE killing the test binary with no word of what happened.
  static const bool kIgnoreSigpipe = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)kIgnoreSigpipe;
  std::string data = line + "\n";
  return write(to_child_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
}

void Subprocess::CloseStdin() {
  if (to_child_ >= 0) close(to_child_);
  to_child_ = -1;
}

bool Subprocess::Signal(int sig) const { return pid_ > 0 && kill(pid_, sig) == 0; }

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Subprocess::Alive() const {
  if (pid_ <= 0 || kill(pid_, 0) != 0) return false;
  // An exited child that is not reaped yet (a zombie) is not alive.
  std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

void Subprocess::Kill() {
  CloseStdin();
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (from_child_ >= 0) close(from_child_);
  from_child_ = -1;
}

int RunCommand(const std::vector<std::string>& argv, std::string* out,
               std::chrono::milliseconds timeout) {
  Subprocess p;
  if (!p.Start(argv, {}, /*merge_stderr=*/true)) {
    *out = p.error();
    return -1;
  }
  p.CloseStdin();
  *out = p.ReadAll(timeout);
  int status = p.Wait(std::chrono::seconds(5));
  if (status < 0) p.Kill();
  return status;
}

}  // namespace orion::testing
