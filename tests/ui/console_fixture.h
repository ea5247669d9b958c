// The fixture of the browser tests (tests/ui/*_browser_bpf_test.cc): a cluster of real USDT
// BEAMs and daemons (support/test_cluster.h), a real `orion ui` joined through host 0's daemon,
// and Debian's chromium on its page (browser_driver.h).
//
//   class MyTest : public testing::ConsoleFixture {};
//   TEST_F(MyTest, X) { OpenConsole(2); if (HasFatalFailure()) return; browser_.Run(...); }
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/subprocess.h"
#include "tests/integration/support/test_cluster.h"
#include "tests/ui/browser_driver.h"

// A driver answer that must be {"ok": true, ...}.
#define ASSERT_OK(answer) \
  ASSERT_TRUE((answer).value("ok", false)) << (answer).value("error", (answer).dump())

namespace orion::testing {

// The count of `mfa` in a summary document (orion capture --json's keys).
inline uint64_t SummaryCount(const nlohmann::json& doc, const std::string& mfa) {
  if (!doc.contains("calls")) return 0;
  for (const auto& c : doc["calls"]) {
    if (c.value("mfa", "") == mfa || c.value("name", "") == mfa)
      return c.value("count", uint64_t{0});
  }
  return 0;
}

// What a card shows besides a count (ConsoleFixture::WaitForCalls).
struct Shown {
  bool drawn = false;  // its charts are drawn
  std::string state;   // its state contains this ("": any)
};

class ConsoleFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ORION_REQUIRE_BPF_OR_SKIP();
    ASSERT_TRUE(
        std::filesystem::exists(std::string(ORION_UI_WEB_DIR) + "/node_modules/playwright-core"))
        << "run scripts/setup.sh (npm ci in userspace/ui/web)";
    ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
        << "Debian's chromium is missing: scripts/setup.sh installs it";
  }

  void TearDown() override {
    if (!HasFailure()) return;
    std::fprintf(stderr, "---- orion ui output ----\n%s\n",
                 ui_.ReadAll(std::chrono::seconds(1)).c_str());
    for (int i = 0; i < cluster_.size(); ++i) {
      std::ifstream log(cluster_.daemon_log(i));
      std::string text((std::istreambuf_iterator<char>(log)), {});
      if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
      std::fprintf(stderr, "---- %s log ----\n%s\n", cluster_.daemon_node(i).c_str(), text.c_str());
    }
  }

  // Starts `orion ui` through host 0's daemon on a free port; returns the URL it printed.
  std::string StartUi() {
    const std::vector<std::string> argv = {
        ORION_TEST_ORION_BIN,   "ui",       "--daemon",   cluster_.daemon_node(0), "--cookie-file",
        cluster_.cookie_file(), "--listen", "127.0.0.1:0"};
    if (!ui_.Start(argv, {}, /*merge_stderr=*/true)) return "";
    const std::string line = ui_.WaitForLine("http://", std::chrono::seconds(30));
    return line.substr(0, line.find_first_of(" \t"));
  }

  // A cluster of `hosts`, orion ui on it, and chromium on its page.
  void OpenConsole(int hosts) {
    ASSERT_TRUE(cluster_.Create(hosts)) << cluster_.error();
    OpenConsoleOnCluster();
  }

  // orion ui on the cluster already created, and chromium on its page.
  void OpenConsoleOnCluster() {
    url_ = StartUi();
    ASSERT_FALSE(url_.empty()) << "orion ui printed no URL";
    ASSERT_TRUE(browser_.Start(ORION_UI_NODE, ORION_UI_DRIVER));
    const nlohmann::json answer = browser_.Run({{"op", "goto"}, {"url", url_}});
    ASSERT_OK(answer);
    EXPECT_EQ(answer["status"], 200);
    EXPECT_EQ(answer["title"], "Orion console");
  }

  // Fills the query box with `query` and presses Start; the new capture's id once its card says
  // it is capturing ("" and a failure otherwise).
  std::string StartCapture(const std::string& query) {
    nlohmann::json answer =
        browser_.Run({{"op", "fill"}, {"selector", "[data-testid=query]"}, {"text", query}});
    if (!answer.value("ok", false)) {
      ADD_FAILURE() << answer.dump();
      return "";
    }
    answer = browser_.Run({{"op", "start"}});
    if (!answer.value("ok", false)) {
      ADD_FAILURE() << answer.dump();
      return "";
    }
    const std::string id = answer["id"];
    answer = WaitForState(id, "capturing", 20000);
    if (!answer.value("ok", false)) {
      ADD_FAILURE() << answer.dump();
      return "";
    }
    return id;
  }

  // The driver's answer once capture `id`'s card shows `calls` calls of `fn` (and `also`), or
  // its answer at `timeout_ms` ({"ok": false, "error": what it saw}).
  nlohmann::json WaitForCalls(const std::string& id, const std::string& fn, int64_t calls,
                              int timeout_ms, const Shown& also = {}) {
    nlohmann::json request = {{"op", "waitFor"},
                              {"id", id},
                              {"function", fn},
                              {"calls", calls},
                              {"timeoutMs", timeout_ms}};
    if (also.drawn) request["drawn"] = true;
    if (!also.state.empty()) request["state"] = also.state;
    return browser_.Run(request);
  }

  // The driver's answer once capture `id`'s card's state contains `state` ("capturing").
  nlohmann::json WaitForState(const std::string& id, const std::string& state, int timeout_ms) {
    return browser_.Run(
        {{"op", "waitFor"}, {"id", id}, {"state", state}, {"timeoutMs", timeout_ms}});
  }

  // The page logged no error (uncaught exceptions, console.error) so far.
  void ExpectNoPageErrors() {
    const nlohmann::json answer = browser_.Run({{"op", "stats"}});
    ASSERT_OK(answer);
    EXPECT_EQ(answer["pageErrors"], nlohmann::json::array()) << "the page logged errors";
  }

  TestCluster cluster_;
  Subprocess ui_;
  std::string url_;
  BrowserDriver browser_;
};

}  // namespace orion::testing
