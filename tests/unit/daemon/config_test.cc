#include "userspace/daemon/config.h"

#include <gtest/gtest.h>

namespace orion::daemon {
namespace {

TEST(DaemonConfigTest, ReadsEverySetting) {
  DaemonConfig c;
  ASSERT_TRUE(ParseConfigText(R"(# /etc/orion/orion.toml
name = "orion@db1.example.com"   # with the host
longnames = true
cookie_file = "/etc/orion/cluster.cookie"
peers = ["orion@db2.example.com", "orion@db3.example.com"]
discover = false
only_netns = true
max_captures = 2
max_connections = 8
max_duration_ms = 60000
grace_ms = 5000
)",
                              "test", &c)
                  .ok());
  EXPECT_EQ(c.name, "orion@db1.example.com");
  EXPECT_TRUE(c.longnames);
  EXPECT_EQ(c.cookie_file, "/etc/orion/cluster.cookie");
  EXPECT_EQ(c.peers, (std::vector<std::string>{"orion@db2.example.com", "orion@db3.example.com"}));
  EXPECT_FALSE(c.discover);
  EXPECT_TRUE(c.only_netns);
  EXPECT_EQ(c.max_captures, 2u);
  EXPECT_EQ(c.max_connections, 8u);
  EXPECT_EQ(c.max_duration_ms, 60000u);
  EXPECT_EQ(c.grace_ms, 5000u);
}

TEST(DaemonConfigTest, ErrorsNameTheLineAndTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"name = orion", "test:1: expected a \"quoted string\""},
      {"\n\nbogus = 1", "test:3: unknown setting 'bogus'"},
      {"cookie = \"secret\"", "a cookie does not belong in the config file"},
      {"longnames = yes", "expected true or false"},
      {"max_captures = -1", "expected a non-negative integer"},
      {"max_captures = 0", "must be at least 1"},
      {"peers = \"orion@a\"", "expected an array of strings"},
      {"just words", "expected key = value"},
  };
  for (const auto& [text, want] : cases) {
    DaemonConfig c;
    const Status s = ParseConfigText(text, "test", &c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(want), std::string::npos) << text << " -> " << s.message();
  }
}

TEST(DaemonConfigTest, MissingDefaultFileIsFineButAMissingGivenFileIsNot) {
  DaemonConfig c;
  EXPECT_TRUE(LoadConfigFile("/nonexistent/orion.toml", /*missing_ok=*/true, &c).ok());
  EXPECT_EQ(LoadConfigFile("/nonexistent/orion.toml", /*missing_ok=*/false, &c).code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace orion::daemon
