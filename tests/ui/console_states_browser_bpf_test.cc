// The console's states and views, as a person sees them in Debian's chromium (headless, through
// tests/ui/browser_driver.mjs) on the page of a real `orion ui`, joined through a real daemon to
// a cluster of real USDT BEAMs (support/test_cluster.h, tests/ui/console_fixture.h).
//
// What is proved: captures side by side count apart, one stopped and removed is freed (the API
// no longer has it); the per-node table's filter shows one node's counts, the API's; the overload
// guard's stop shows with its reason and Resume captures again; a peer daemon lost then back,
// and the page's own daemon unreachable then back; the export of a capture (JSON) and of a range
// (the merged DDSketch protobuf) decode, with orion's own decoder, to the counts the page shows;
// an Elixir function is named as Elixir names it; the latency axis is labelled at round values
// and the function table fits its card in a 1400 px window.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/support/elixir_app.h"
#include "tests/ui/console_fixture.h"

namespace orion {
namespace {

using nlohmann::json;
using testing::BrowserDriver;
using testing::SummaryCount;

constexpr char kKnown[] = "orion_workload:known/1";
constexpr char kOther[] = "orion_workload:other/1";

// N calls of orion_workload:other/1 (none of the workload's own loops calls it).
std::string CallOther(int n) {
  return "lists:foreach(fun(I) -> orion_workload:other(I) end, lists:seq(1, " + std::to_string(n) +
         ")).";
}

class ConsoleStatesTest : public testing::ConsoleFixture {
 protected:
  // The calls the page shows for `fn` in capture `id` (-1: no such row).
  int64_t PageCalls(const std::string& id, const std::string& fn) {
    const json answer = browser_.Run({{"op", "capture"}, {"id", id}});
    const json& functions = answer["capture"]["functions"];
    if (!functions.contains(fn)) return -1;
    return functions[fn]["calls"].get<int64_t>();
  }

  // `orion sketch show --json FILE`: the sketch's count, as orion's own decoder reads it.
  int64_t DecodedCount(const std::string& file) {
    std::string out;
    EXPECT_EQ(cluster_.RunOrion({"sketch", "show", "--json", file}, &out), 0) << out;
    const json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.contains("count")) {
      ADD_FAILURE() << "orion sketch show said: " << out;
      return -1;
    }
    return doc["count"].get<int64_t>();
  }

  std::string TempPath(const std::string& name) {
    const std::string dir = std::string(ORION_TEST_BUILD_DIR) + "/tests/ui/downloads";
    std::filesystem::create_directories(dir);
    return dir + "/" + name;
  }
};

TEST_F(ConsoleStatesTest, CapturesSideBySideCountApartAndARemovedOneIsFreed) {
  OpenConsole(1);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  const std::string a = StartCapture(kKnown);
  const std::string b = StartCapture(kOther);
  ASSERT_FALSE(a.empty() || b.empty());

  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(3000)."), "ok");
  EXPECT_EQ(cluster_.beam(0).Eval(CallOther(2000)), "ok");
  json answer = WaitForCalls(a, kKnown, 3000, 30000, {.drawn = true});
  ASSERT_OK(answer);
  EXPECT_FALSE(answer["capture"]["functions"].contains(kOther)) << answer.dump();
  answer = WaitForCalls(b, kOther, 2000, 30000, {.drawn = true});
  ASSERT_OK(answer);
  EXPECT_FALSE(answer["capture"]["functions"].contains(kKnown)) << answer.dump();

  // Side by side in a 1400 px window: each function table fits its card, and the latency axis
  // is labelled at round values (1 µs, 20 µs, 100 ms...), not at the data's own ends.
  const std::regex round_label("^[1-9]0{0,2} (ns|µs|ms|s)$");
  for (const std::string& id : {a, b}) {
    answer = browser.Run({{"op", "capture"}, {"id", id}});
    ASSERT_OK(answer);
    const json& seen = answer["capture"];
    EXPECT_EQ(seen["tableOverflow"], 0)
        << "the function table overflows its card by " << seen["tableOverflow"] << " px";
    ASSERT_GE(seen["yTicks"].size(), 2u) << seen.dump();
    for (const auto& label : seen["yTicks"]) {
      EXPECT_TRUE(std::regex_match(label.get<std::string>(), round_label)) << seen["yTicks"].dump();
    }
  }

  // Stop a, then remove it: its card goes, and orion ui no longer has it.
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", a}, {"selector", "[data-testid=stop]"}}));
  ASSERT_OK(WaitForState(a, "stopped", 20000));
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", a}, {"selector", "[data-testid=remove]"}}));
  answer = browser.Run({{"op", "waitGone"}, {"id", a}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["cards"], json::array({b}));
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures"}});
  ASSERT_OK(answer);
  ASSERT_EQ(answer["status"], 200) << answer.dump();
  std::vector<std::string> listed;
  for (const auto& c : answer["json"]["captures"]) listed.push_back(c["id"]);
  EXPECT_EQ(listed, std::vector<std::string>({b}));
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + a}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["status"], 404) << answer.dump();

  // b goes on.
  EXPECT_EQ(cluster_.beam(0).Eval(CallOther(500)), "ok");
  ASSERT_OK(WaitForCalls(b, kOther, 2500, 20000, {.state = "capturing"}));
  ExpectNoPageErrors();
}

TEST_F(ConsoleStatesTest, TheNodeFilterShowsThatNodesCountsAsTheApiHasThem) {
  OpenConsole(2);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  const std::string id = StartCapture(kKnown);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(3000)."), "ok");
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(2000)."), "ok");
  json answer = WaitForCalls(id, kKnown, 5000, 30000);
  ASSERT_OK(answer);

  // The API's per-node counts (an oracle outside the page).
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  std::map<std::string, uint64_t> api_calls;
  for (const auto& n : answer["json"]["nodes"]) api_calls[n["node"]] = n["calls"];
  ASSERT_EQ(api_calls[cluster_.beam_node(1)], 2000u) << answer["json"]["nodes"].dump();

  // A click on host 1's row: the page shows that node only.
  const std::string row = "[data-node=\"" + cluster_.beam_node(1) + "\"]";
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", id}, {"selector", row}}));
  answer = WaitForCalls(id, kKnown, api_calls[cluster_.beam_node(1)], 10000);
  ASSERT_OK(answer);
  EXPECT_NE(answer["capture"]["filter"].get<std::string>().find(cluster_.beam_node(1)),
            std::string::npos)
      << answer.dump();
  // The per-node table still lists every node (a click on another row switches to it).
  EXPECT_EQ(answer["capture"]["nodes"][cluster_.beam_node(0)]["calls"],
            api_calls[cluster_.beam_node(0)])
      << answer["capture"]["nodes"].dump();
  // Its histogram too.
  answer = browser.Run({{"op", "selectRange"}, {"id", id}, {"from", 0.002}, {"to", 1.05}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["capture"]["range"]["calls"], 2000) << answer.dump();

  // A second click: all nodes again.
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", id}, {"selector", row}}));
  ASSERT_OK(WaitForCalls(id, kKnown, 5000, 10000));
}

TEST_F(ConsoleStatesTest, ExportsOfACaptureAndOfARangeDecodeToThePagesCounts) {
  OpenConsole(1);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  const std::string id = StartCapture(kKnown);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(4000)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 4000, 30000, {.drawn = true}));

  // The capture as JSON, downloaded as a person does: its count and its wall-time sketch.
  const std::string json_file = TempPath("capture.json");
  json answer = browser.Run({{"op", "download"},
                             {"id", id},
                             {"selector", "[data-testid=export-json]"},
                             {"path", json_file}});
  ASSERT_OK(answer);
  std::ifstream in(json_file);
  const json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << "the export is not JSON";
  ASSERT_EQ(doc["functions"].size(), 1u) << doc.dump().substr(0, 2000);
  const json& fn = doc["functions"][0];
  EXPECT_EQ(fn["name"], kKnown);
  EXPECT_EQ(fn["calls"], 4000);
  const std::string sketch_file = TempPath("capture-wall.b64");
  std::ofstream(sketch_file) << fn["wall"]["sketch"].get<std::string>();
  EXPECT_EQ(DecodedCount(sketch_file), 4000);

  // A range over the whole window: its merged DDSketch protobuf and its JSON.
  answer = browser.Run({{"op", "selectRange"}, {"id", id}, {"from", 0.002}, {"to", 1.05}});
  ASSERT_OK(answer);
  const int64_t range_calls = answer["capture"]["range"]["calls"];
  EXPECT_EQ(range_calls, 4000);
  const std::string pb_file = TempPath("range-wall.pb");
  answer = browser.Run({{"op", "download"},
                        {"id", id},
                        {"selector", "[data-testid=export-sketch]"},
                        {"path", pb_file}});
  ASSERT_OK(answer);
  EXPECT_NE(answer["name"].get<std::string>().find(".pb"), std::string::npos) << answer.dump();
  EXPECT_EQ(DecodedCount(pb_file), range_calls);
  const std::string range_file = TempPath("range.json");
  ASSERT_OK(browser.Run({{"op", "download"},
                         {"id", id},
                         {"selector", "[data-testid=export-range-json]"},
                         {"path", range_file}}));
  std::ifstream range_in(range_file);
  const json range = json::parse(range_in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(range.is_discarded());
  EXPECT_TRUE(range["from_s"].is_number()) << "not the range's export";
  EXPECT_EQ(range["functions"][0]["calls"], range_calls);
}

TEST_F(ConsoleStatesTest, TheOverloadGuardsStopShowsItsReasonAndResumeCapturesAgain) {
  OpenConsole(1);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  // A capture with a low guard (max_rate: events per second), made through the API as a tool
  // would; the page shows it once reloaded.
  json answer = browser.Run({{"op", "api"},
                             {"method", "POST"},
                             {"path", "/api/captures"},
                             {"body", {{"patterns", json::array({kKnown})}, {"max_rate", 20000}}}});
  ASSERT_OK(answer);
  ASSERT_EQ(answer["status"], 201) << answer.dump();
  const std::string id = answer["json"]["id"];
  ASSERT_OK(browser.Run({{"op", "goto"}, {"url", url_}}));
  ASSERT_OK(WaitForState(id, "capturing", 20000));
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(10)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 10, 20000));

  // Far over 20,000 calls a second: the guard stops it, the page says so and why.
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(400000)."), "ok");
  answer = browser.Run({{"op", "waitFor"},
                        {"id", id},
                        {"state", "overload guard"},
                        {"notice", "Resume"},
                        {"timeoutMs", 30000}});
  ASSERT_OK(answer);
  const std::string state = answer["capture"]["state"];
  EXPECT_NE(state.find(" events/s"), std::string::npos) << "no reason given: " << state;
  answer = browser.Run(
      {{"op", "text"}, {"selector", "[data-capture-id=\"" + id + "\"] [data-testid=restart]"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["text"], "Resume");
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["json"]["state"], "overloaded") << answer.dump();
  const int64_t before = PageCalls(id, kKnown);
  ASSERT_GT(before, 10);

  // Resume: capturing again, the new calls added to the old.
  ASSERT_OK(browser.Run({{"op", "click"}, {"id", id}, {"selector", "[data-testid=restart]"}}));
  ASSERT_OK(WaitForState(id, "capturing", 20000));
  EXPECT_EQ(cluster_.beam(0).Eval("orion_workload:call_known(1000)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, before + 1000, 20000, {.state = "capturing"}));
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["json"]["state"], "running") << answer.dump();
}

TEST_F(ConsoleStatesTest, ANodeLostAndBackAndTheDaemonUnreachableAndBackAreShown) {
  OpenConsole(2);
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;
  const std::string id = StartCapture(kKnown);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(1000)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 1000, 20000));

  // Host 1's daemon killed, then started again: lost, then back.
  cluster_.KillDaemon(1);
  ASSERT_OK(browser.Run({{"op", "waitFor"}, {"id", id}, {"notice", "lost"}, {"timeoutMs", 40000}}));
  ASSERT_TRUE(cluster_.StartDaemon(1)) << cluster_.DaemonLogTail(1);
  json answer =
      browser.Run({{"op", "waitFor"}, {"id", id}, {"notice", "is back"}, {"timeoutMs", 60000}});
  ASSERT_OK(answer);
  EXPECT_EQ(cluster_.beam(1).Eval("orion_workload:call_known(500)."), "ok");
  ASSERT_OK(WaitForCalls(id, kKnown, 1500, 30000));

  // orion ui's own daemon killed: the page says it is unreachable; started again: reachable.
  cluster_.KillDaemon(0);
  answer = browser.Run({{"op", "waitText"},
                        {"selector", "[data-testid=banner]"},
                        {"text", "cannot reach its daemon"},
                        {"timeoutMs", 30000}});
  ASSERT_OK(answer);
  ASSERT_TRUE(cluster_.StartDaemon(0)) << cluster_.DaemonLogTail(0);
  answer = browser.Run({{"op", "waitText"},
                        {"selector", "[data-testid=banner]"},
                        {"text", "reachable again"},
                        {"timeoutMs", 60000}});
  ASSERT_OK(answer);
  // And captures work again.
  const std::string again = StartCapture(kOther);
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(cluster_.beam(0).Eval(CallOther(300)), "ok");
  ASSERT_OK(WaitForCalls(again, kOther, 300, 30000));
}

TEST_F(ConsoleStatesTest, AnElixirFunctionIsNamedAsElixirNamesIt) {
  ASSERT_TRUE(cluster_.Create(1)) << cluster_.error();
  testing::Subprocess app;
  ASSERT_NE(testing::StartBarRepoApp(cluster_, 0, &app), 0)
      << "the Elixir app did not start in emu";
  OpenConsoleOnCluster();
  if (HasFatalFailure()) return;
  BrowserDriver& browser = browser_;

  json answer = browser.Run({{"op", "typeQuery"}, {"text", "Bar.Repo.g"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["suggestions"], json::array({"Bar.Repo.get/1"}));
  answer = browser.Run({{"op", "key"}, {"key", "Tab"}});
  ASSERT_OK(answer);
  EXPECT_EQ(answer["value"], "Bar.Repo.get/1");
  answer = browser.Run({{"op", "start"}});
  ASSERT_OK(answer);
  const std::string id = answer["id"];
  ASSERT_OK(WaitForState(id, "capturing", 20000));
  app.WriteLine("run 1000");
  ASSERT_EQ(app.WaitForLine("DONE ", std::chrono::seconds(20)), "DONE 1000");
  answer = WaitForCalls(id, "Bar.Repo.get/1", 1000, 20000);
  ASSERT_OK(answer);
  answer = browser.Run({{"op", "api"}, {"path", "/api/captures/" + id}});
  ASSERT_OK(answer);
  EXPECT_EQ(SummaryCount(answer["json"], "Bar.Repo.get/1"), 1000u) << answer["json"].dump();
}

}  // namespace
}  // namespace orion
