// The console as a person uses it: Debian's chromium (headless, driven by playwright-core through
// tests/ui/browser_driver.mjs) on the page of a real `orion ui`, joined through a real daemon to
// a cluster of real USDT BEAMs (support/test_cluster.h).
//
// What is proved: autocomplete offers the function and TAB completes it; the calls the page
// counts equal GET /api/captures/ID's and the calls the workload made, per node too; the heatmap
// and the charts are drawn; a dragged time range shows its histogram, quantiles and the
// sketch's accuracy; stop stops; a peer daemon killed mid-capture shows as a lost node; a wrong
// or missing token gets no page and no data. The screenshot of docs/ui.md is taken here
// (build/tests/ui/ui-console.png; ORION_UI_SCREENSHOT=PATH writes it there too).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/ui/console_fixture.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::BrowserDriver;
using testing::SummaryCount;

constexpr char kKnown[] = "orion_workload:known/1";

class ConsoleBrowserTest : public testing::ConsoleFixture {};

TEST_F(ConsoleBrowserTest, PageCountsWhatTheWorkloadCalledDrawsItAndShowsARange) {
  OpenConsole(2);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;

  // Autocomplete: the loaded functions of the nodes, and TAB completes the common prefix.
  for (int i = 0; i < cluster_.size(); ++i) {
    ASSERT_EQ(cluster_.beam(i).Eval("element(1, code:ensure_loaded(orion_workload))."), "module");
  }
  // A module name first, then its functions; TAB completes their common prefix, then the one left.
  json answer = browser.Run({{"op", "typeQuery"}, {"text", "orion_workl"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["suggestions"], json::array({"orion_workload:"}));
  answer = browser.Run({{"op", "typeQuery"}, {"text", "orion_workload:kno"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["suggestions"], json::array({kKnown, "orion_workload:known_then_spin/2"}));
  answer = browser.Run({{"op", "key"}, {"key", "Tab"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["value"], "orion_workload:known");
  answer = browser.Run({{"op", "typeQuery"}, {"text", "orion_workload:known/"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["suggestions"], json::array({kKnown}));
  answer = browser.Run({{"op", "key"}, {"key", "Tab"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["value"], kKnown);

  answer = browser.Run({{"op", "start"}});
  ASSERT_OK(answer);
  const std::string id = answer["id"];
  ASSERT_OK(WaitForState(id, "capturing", 20000));

  // The workload, after the capture is attached: exactly this many calls on each host.
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(30000)."), "ok");
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(20000)."), "ok");
  answer = WaitForCalls(id, kKnown, 50000, 30000, {.drawn = true});
  ASSERT_OK(answer);
  const json seen = answer["capture"];
  EXPECT_EQ(seen["functions"][kKnown]["calls"], 50000);
  EXPECT_EQ(seen["nodes"][cluster_.beam_node(0)]["calls"], 30000) << seen["nodes"].dump();
  EXPECT_EQ(seen["nodes"][cluster_.beam_node(1)]["calls"], 20000) << seen["nodes"].dump();
  EXPECT_GT(seen["drawn"]["wall-chart"]["heat"], 20) << "no heatmap in the wall-time chart";
  EXPECT_GT(seen["drawn"]["cpu-chart"]["heat"], 20) << "no heatmap in the on-CPU chart";
  EXPECT_GT(seen["drawn"]["rate-chart"]["painted"], 0) << "no calls/s line";

  // The server's summary (an oracle outside the page) says the same.
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  ASSERT_EQ(answer["status"], 200) << answer.dump();
  EXPECT_EQ(SummaryCount(answer["json"], kKnown), 50000u) << answer["json"].dump();

  // A time range over the whole window (dragged from the left edge to past the right one, as a
  // person would): its histogram, quantiles and the accuracy.
  answer = browser.Run({{"op", "selectRange"}, {"id", id}, {"from", 0.002}, {"to", 1.05}});
  ASSERT_OK(answer);
  const json range = answer["capture"]["range"];
  ASSERT_TRUE(range.is_object()) << answer.dump();
  EXPECT_EQ(range["calls"], 50000);
  EXPECT_NE(range["accuracy"].get<std::string>().find("0.54 %"), std::string::npos) << range.dump();
  EXPECT_NE(range["quantiles"].get<std::string>().find("p99.9"), std::string::npos);
  EXPECT_GT(answer["capture"]["drawn"]["histogram"]["painted"], 50) << "no histogram drawn";

  const std::string shot = std::string(ORION_TEST_BUILD_DIR) + "/tests/ui/ui-console.png";
  ASSERT_OK(browser.Run({{"op", "screenshot"}, {"path", shot}, {"fullPage", true}}));
  if (const char* copy = std::getenv("ORION_UI_SCREENSHOT")) {
    std::filesystem::copy_file(shot, copy, std::filesystem::copy_options::overwrite_existing);
  }

  // Stop: the page says so, and the server agrees.
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", id}, {"selector", "[data-testid=stop]"}}));
  ASSERT_OK(WaitForState(id, "stopped", 20000));
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["json"].value("state", ""), "stopped") << answer.dump();

  ExpectNoPageErrors();
}

TEST_F(ConsoleBrowserTest, APeerDaemonKilledMidCaptureShowsAsALostNode) {
  OpenConsole(2);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  ASSERT_OK(browser.Run({{"op", "fill"}, {"selector", "[data-testid=query]"}, {"text", kKnown}}));
  json answer = browser.Run({{"op", "start"}});
  ASSERT_OK(answer);
  const std::string id = answer["id"];
  ASSERT_OK(WaitForState(id, "capturing", 20000));
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(1000)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 1000, 20000));

  cluster_.KillDaemon(1);
  answer = browser.Run({{"op", "waitFor"}, {"id", id}, {"notice", "lost"}, {"timeoutMs", 40000}});
  ASSERT_OK(answer);
  bool names_the_node = false;
  for (const auto& notice : answer["capture"]["notices"]) {
    names_the_node = names_the_node ||
                     notice.get<std::string>().find(cluster_.beam_node(1)) != std::string::npos ||
                     notice.get<std::string>().find(cluster_.daemon_node(1)) != std::string::npos;
  }
  EXPECT_TRUE(names_the_node) << answer["capture"]["notices"].dump();
  // The rest goes on: host 0's calls still arrive.
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(500)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 1500, 20000));
}

TEST_F(ConsoleBrowserTest, AWrongOrMissingTokenGetsNoPageAndNoData) {
  OpenConsole(1);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  const std::string base = url_.substr(0, url_.find("/?token="));

  for (const std::string& bad : {base + "/?token=0123456789abcdef0123456789abcdef", base + "/"}) {
    json answer = browser.Run({{"op", "goto"}, {"url", bad}});
    ASSERT_OK(answer);
    EXPECT_EQ(answer["status"], 401) << bad;
    EXPECT_NE(answer["title"], "Orion console") << bad;
    EXPECT_NE(answer["body"].get<std::string>().find("token"), std::string::npos) << answer.dump();
  }
  json answer = browser.Run({{"op", "api"}, {"path", "/api/captures"}, {"token", "wrong"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["status"], 401);
  // The right token still works after the refusals.
  answer = browser.Run({{"op", "goto"}, {"url", url_}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["status"], 200);
}

}  // namespace
}  // namespace orion
