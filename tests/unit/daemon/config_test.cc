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
listen = "10.0.0.5:4370"
handshake_timeout_ms = 1500
max_pending_handshakes = 32
max_pending_handshakes_per_source = 4
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
  EXPECT_EQ(c.listen, "10.0.0.5:4370");
  EXPECT_EQ(c.handshake_timeout_ms, 1500u);
  EXPECT_EQ(c.max_pending_handshakes, 32u);
  EXPECT_EQ(c.max_pending_handshakes_per_source, 4u);
}

TEST(DaemonConfigTest, DistAddressIsAnIpv4AddressAndAnOptionalPort) {
  auto plain = ParseDistAddress("10.0.0.5");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(plain->text(), "10.0.0.5");
  EXPECT_EQ(plain->port, 0);
  auto with_port = ParseDistAddress("0.0.0.0:4370");
  ASSERT_TRUE(with_port.ok()) << with_port.status().message();
  EXPECT_EQ(with_port->text(), "0.0.0.0:4370");
  for (const char* bad : {"", "localhost", "10.0.0", "10.0.0.5:", "10.0.0.5:65536", "10.0.0.5:x",
                          "::1", "10.0.0.5:-1"}) {
    EXPECT_EQ(ParseDistAddress(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(DaemonConfigTest, DefaultDistAddressIsLoopback) {
  EXPECT_EQ(DefaultDistAddress("localhost").text(), "127.0.0.1");
  // A host name that does not resolve, or resolves off loopback: still loopback.
  EXPECT_EQ(DefaultDistAddress("no-such-host.invalid").text(), "127.0.0.1");
  EXPECT_EQ(DefaultDistAddress("192.0.2.7").text(), "127.0.0.1");
  EXPECT_EQ(DefaultDistAddress("127.0.1.1").text(), "127.0.1.1");
}

TEST(DaemonConfigTest, ErrorsNameTheLineAndTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"name = orion", "test:1: "},  // not TOML: toml++ says why
      {"name = 1", "test:1: expected a \"quoted string\""},
      {"\n\nbogus = 1", "test:3: unknown setting 'bogus'"},
      {"cookie = \"secret\"", "a cookie does not belong in the config file"},
      {"longnames = 1", "test:1: expected true or false"},
      {"longnames = yes", "test:1: Error while parsing value"},
      {"max_captures = -1", "expected a non-negative integer"},
      {"max_captures = 0", "must be at least 1"},
      {"\nlisten = \"localhost\"", "test:2: listen address 'localhost' is not ADDR or ADDR:PORT"},
      {"handshake_timeout_ms = 10", "handshake_timeout_ms must be 100..60000"},
      {"max_pending_handshakes_per_source = 0", "must be at least 1"},
      {"peers = \"orion@a\"", "expected an array of strings"},
      {"just words", "test:1: "},
      {"[[watch]]\nnode = \"a@h\"", "test:1: a [[watch]] needs patterns"},
      {"[[watch]]\npatterns = [\"m:f/1\"]\nmode = \"fast\"", "test:3: mode must be"},
      {"[[watch]]\npatterns = [\"m:f/1\"]\nnodes = \"a\"", "test:3: unknown key 'nodes'"},
      {"max_watches = 1\n[[watch]]\npatterns = [\"a\"]\n[[watch]]\npatterns = [\"b\"]",
       "more than max_watches (1)"},
  };
  for (const auto& [text, want] : cases) {
    DaemonConfig c;
    const Status s = ParseConfigText(text, "test", &c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(want), std::string::npos) << text << " -> " << s.message();
  }
}

TEST(DaemonConfigTest, ReadsWatches) {
  DaemonConfig c;
  const Status s = ParseConfigText(R"(metrics_listen = "127.0.0.1:9464"
metrics_token_file = "/etc/orion/metrics.token"

[[watch]]
patterns = ["Bar.Repo.get/1", "lists:sort/1"]

[[watch]]
patterns = ["ets:lookup/2"]
node = "app@web1"
mode = "tracer"
match_spec = "[{[data, '_'], [], []}]"
)",
                                   "test", &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c.metrics_token_file, "/etc/orion/metrics.token");
  ASSERT_EQ(c.watches.size(), 2u);
  EXPECT_EQ(c.watches[0].patterns, (std::vector<std::string>{"Bar.Repo.get/1", "lists:sort/1"}));
  EXPECT_EQ(c.watches[0].mode, "auto");
  EXPECT_EQ(c.watches[0].node, "");
  EXPECT_EQ(c.watches[1].node, "app@web1");
  EXPECT_EQ(c.watches[1].mode, "tracer");
  EXPECT_EQ(c.watches[1].match_spec, "[{[data, '_'], [], []}]");
}

TEST(DaemonConfigTest, MissingDefaultFileIsFineButAMissingGivenFileIsNot) {
  DaemonConfig c;
  EXPECT_TRUE(LoadConfigFile("/nonexistent/orion.toml", /*missing_ok=*/true, &c).ok());
  EXPECT_EQ(LoadConfigFile("/nonexistent/orion.toml", /*missing_ok=*/false, &c).code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace orion::daemon
