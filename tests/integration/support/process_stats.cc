#include "tests/integration/support/process_stats.h"

#include <filesystem>
#include <fstream>
#include <string>

namespace orion::testing {

uint64_t RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

size_t ThreadCount(pid_t pid) {
  std::error_code error;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", error);
  if (error) return 0;
  return static_cast<size_t>(std::distance(tasks, std::filesystem::directory_iterator()));
}

}  // namespace orion::testing
