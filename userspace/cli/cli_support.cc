#include "userspace/cli/cli_support.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace orion::cli {

void ConfigureLogging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("orion");
  logger->set_pattern("orion: %^%l%$: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

int ReportError(std::string_view command, const Status& status) {
  std::fprintf(stderr, "orion %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               status.message().c_str());
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitUsage;
    case StatusCode::kPermissionDenied: return kExitPermission;
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition: return kExitTarget;
    default: return kExitFailure;
  }
}

bool ParseSeconds(const char* text, double* seconds) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v <= 0) return false;
  *seconds = v;
  return true;
}

}  // namespace orion::cli
