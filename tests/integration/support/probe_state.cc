#include "tests/integration/support/probe_state.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/support/subprocess.h"
#include "userspace/beam/usdt_notes.h"
#include "userspace/beam/usdt_semaphore.h"

namespace orion::testing {

int SemaphoreOf(const beam::BeamProcess& beam, const std::string& probe) {
  auto notes = beam::ReadUsdtNotes(beam.attach_path);
  if (!notes.ok()) return -1;
  for (const auto& note : *notes) {
    if (note.provider == "erlang" && note.name == probe && note.semaphore != 0) {
      auto value = beam::ReadUsdtSemaphore(beam.pid, beam.attach_path, note.semaphore);
      return value.ok() ? *value : -1;
    }
  }
  return -1;
}

std::set<int> ProcessBpfProgramIds(pid_t pid) {
  std::set<int> ids;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (target != "anon_inode:bpf-prog" && target != "anon_inode:bpf_link") continue;
    std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" +
                       entry.path().filename().string());
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("prog_id:", 0) == 0) ids.insert(std::atoi(line.c_str() + 8));
    }
  }
  return ids;
}

int CountLinksOfPrograms(const std::set<int>& programs) {
  std::string out;
  if (RunCommand({"/usr/sbin/bpftool", "--json", "link", "show"}, &out) != 0) return -1;
  auto links = nlohmann::json::parse(out, nullptr, false);
  if (links.is_discarded()) return -1;
  int n = 0;
  for (const auto& link : links) n += programs.count(link.value("prog_id", -1));
  return n;
}

int CountProcessBpfLinks(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    n += std::filesystem::read_symlink(entry.path(), link_ec).string() == "anon_inode:bpf_link";
  }
  return n;
}

int CountBpfLinks(const std::string& prefix) {
  std::string out;
  if (RunCommand({"/usr/sbin/bpftool", "--json", "link", "show"}, &out) != 0) return -1;
  std::string progs_out;
  if (RunCommand({"/usr/sbin/bpftool", "--json", "prog", "show"}, &progs_out) != 0) return -1;
  auto links = nlohmann::json::parse(out, nullptr, false);
  auto progs = nlohmann::json::parse(progs_out, nullptr, false);
  if (links.is_discarded() || progs.is_discarded()) return -1;
  int n = 0;
  for (const auto& link : links) {
    for (const auto& prog : progs) {
      if (prog.value("id", -1) != link.value("prog_id", -2)) continue;
      const std::string name = prog.value("name", "");
      if (name.rfind(prefix, 0) == 0) ++n;
    }
  }
  return n;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace orion::testing
