// Runs tests/ui/browser_driver.mjs (chromium through playwright-core) from C++: one JSON command
// in, one JSON answer out. For the browser tests (tests/ui) and the UI benchmark (tests/bench/ui).
//
//   BrowserDriver browser;
//   browser.Start(node, driver_script);
//   json answer = browser.Run({{"op", "goto"}, {"url", url}});   // answer["ok"], ...
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "tests/integration/support/subprocess.h"

namespace orion::testing {

class BrowserDriver {
 public:
  bool Start(const std::string& node, const std::string& script) {
    return process_.Start({node, script}, {}, /*merge_stderr=*/false);
  }

  // The answer, or {"ok": false, "error": ...} if the driver is gone, silent or garbled.
  nlohmann::json Run(const nlohmann::json& command,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (!process_.WriteLine(command.dump())) return Error("the browser driver is gone");
    std::string line;
    if (!process_.ReadLine(&line, std::chrono::steady_clock::now() + timeout)) {
      return Error("no answer from the browser driver to " + command.dump());
    }
    nlohmann::json answer = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (answer.is_discarded()) return Error("the browser driver said: " + line);
    return answer;
  }

  ~BrowserDriver() {
    if (process_.Alive()) {
      Run({{"op", "close"}}, std::chrono::seconds(20));
      process_.Wait(std::chrono::seconds(10));
    }
  }

 private:
  static nlohmann::json Error(const std::string& message) {
    return {{"ok", false}, {"error", message}};
  }

  Subprocess process_;
};

}  // namespace orion::testing
