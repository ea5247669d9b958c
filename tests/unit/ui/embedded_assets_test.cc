// The page embedded in the binary (userspace/ui/embedded_assets.h): one self-contained HTML
// file, served at "/" and "/index.html", that loads nothing from anywhere else.
#include "userspace/ui/embedded_assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace orion::ui {
namespace {

TEST(EmbeddedAssets, ThePageIsServedAtTheRootAndNothingElseIs) {
  const auto root = EmbeddedAsset("/");
  const auto index = EmbeddedAsset("/index.html");
  ASSERT_TRUE(root.has_value());
  ASSERT_TRUE(index.has_value());
  EXPECT_EQ(root->body, index->body);
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(root->body.starts_with("<!doctype html>")) << root->body.substr(0, 80);
  EXPECT_FALSE(EmbeddedAsset("/app.js").has_value());
  EXPECT_FALSE(EmbeddedAsset("/../etc/passwd").has_value());
  EXPECT_FALSE(EmbeddedAsset("").has_value());
}

TEST(EmbeddedAssets, ThePageIsBuiltAndLoadsNothingFromElsewhere) {
  const std::string page(EmbeddedAsset("/")->body);
  ASSERT_TRUE(EmbeddedPageBuilt())
      << "the page was not bundled: run scripts/setup.sh (npm ci in userspace/ui/web), then "
         "configure again";
  EXPECT_NE(page.find("<script>"), std::string::npos);
  EXPECT_NE(page.find("u-legend"), std::string::npos);  // the chart library (uPlot) is bundled
  // No script, style sheet, image or font from any URL: the page works offline, with no CDN.
  const std::regex external(R"((src|href)\s*=\s*["']?(https?:)?//)", std::regex::icase);
  EXPECT_FALSE(std::regex_search(page, external));
  EXPECT_EQ(page.find("@import"), std::string::npos);
  EXPECT_NE(page.find(R"(<link rel="icon" href="data:,">)"), std::string::npos);
}

}  // namespace
}  // namespace orion::ui
