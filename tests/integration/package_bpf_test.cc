// The .deb (packaging/, scripts/package.sh), end to end on this machine: it installs, the
// daemon runs from the installed files (not the build tree) and captures through them, and it
// removes cleanly, leaving nothing attached and nothing of the package behind.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/support/beam_node.h"
#include "tests/integration/support/bpf_requirements.h"
#include "tests/integration/support/capture_json.h"
#include "tests/integration/support/probe_state.h"
#include "tests/integration/support/subprocess.h"

namespace orion {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kInstalledOrion[] = "/usr/sbin/orion";
constexpr char kCookie[] = "orion-package-test";

std::string BuiltDeb() {
  const fs::path dir = fs::path(ORION_TEST_BUILD_DIR) / "package";
  std::string newest;
  fs::file_time_type newest_time{};
  if (!fs::is_directory(dir)) return "";
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".deb" &&
        (newest.empty() || entry.last_write_time() > newest_time)) {
      newest = entry.path();
      newest_time = entry.last_write_time();
    }
  }
  return newest;
}

bool PackageInstalled() {
  std::string out;
  return testing::RunCommand({"/usr/bin/dpkg-query", "-W", "-f=${Status}", "orion"}, &out) == 0 &&
         out.find("install ok installed") != std::string::npos;
}

std::string ShortHostname() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::string h(host);
  return h.substr(0, h.find('.'));
}

class PackageTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (daemon_.Alive()) daemon_.Kill();
    // Leave the machine as it was, whatever failed above.
    if (installed_by_test_ && PackageInstalled()) {
      std::string out;
      testing::RunCommand({"/usr/bin/dpkg", "--purge", "orion"}, &out, std::chrono::seconds(120));
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  testing::Subprocess daemon_;
  bool installed_by_test_ = false;
  std::string dir_;
};

TEST_F(PackageTest, DebInstallsRunsACaptureAndRemovesCleanly) {
  ORION_REQUIRE_BPF_OR_SKIP();
  const std::string deb = BuiltDeb();
  ASSERT_FALSE(deb.empty()) << "no .deb in " << ORION_TEST_BUILD_DIR
                            << "/package: scripts/package.sh builds it (scripts/setup.sh runs it)";
  ASSERT_FALSE(PackageInstalled())
      << "the orion package is already installed on this machine; this test installs and "
         "purges it, so it will not touch an installation it did not make";

  std::string out;
  ASSERT_EQ(testing::RunCommand({"/usr/bin/dpkg", "-i", deb}, &out, std::chrono::seconds(120)), 0)
      << out;
  installed_by_test_ = true;
  for (const char* path :
       {kInstalledOrion, "/lib/systemd/system/orion.service", "/etc/orion/orion.toml",
        "/usr/lib/orion/tracer/orion_tracer.beam", "/usr/lib/orion/tracer/orion_tracer_nif.so"}) {
    EXPECT_TRUE(fs::exists(path)) << path << " is not installed";
  }
  struct stat etc {};
  ASSERT_EQ(::stat("/etc/orion", &etc), 0);
  EXPECT_EQ(etc.st_mode & 0777, 0700u) << "postinst keeps /etc/orion private";
  struct stat token {};
  ASSERT_EQ(::stat("/etc/orion/metrics.token", &token), 0) << "postinst makes the /metrics token";
  EXPECT_EQ(token.st_mode & 0777, 0600u);

  // A USDT node with a workload, and the installed daemon with the packaged default config.
  testing::BeamNode node;
  ASSERT_TRUE(node.Start({.flavor = "emu", .sname = "pkgapp", .cookie = kCookie})) << node.error();
  char tmpl[] = "/tmp/orion-package-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  const std::string cookie_file = dir_ + "/cookie";
  { std::ofstream(cookie_file) << kCookie; }
  ASSERT_EQ(::chmod(cookie_file.c_str(), 0600), 0);
  ASSERT_TRUE(
      daemon_.Start({kInstalledOrion, "daemon", "--name", "orion_pkgtest", "--config",
                     "/etc/orion/orion.toml", "--cookie-file", cookie_file, "--no-discover",
                     "--metrics-listen", "127.0.0.1:19466", "--metrics-token-file",
                     "/etc/orion/metrics.token"},
                    {}, /*merge_stderr=*/true));
  ASSERT_FALSE(daemon_.WaitForLine("orion: info: orion_pkgtest@", std::chrono::seconds(30)).empty())
      << "the installed daemon did not start";

  const std::string daemon_node = "orion_pkgtest@" + ShortHostname();
  testing::Subprocess capture;
  ASSERT_TRUE(capture.Start({kInstalledOrion, "capture", "--daemon", daemon_node, "--cookie-file",
                             cookie_file, "--node", node.node_name(), "--duration", "6", "--json",
                             "orion_workload:known/1"}));
  // Calls only once the capture is attached: the daemon logs it.
  ASSERT_FALSE(
      daemon_.WaitForLine("orion: info: capture attached", std::chrono::seconds(30)).empty());
  ASSERT_EQ(node.Eval("orion_workload:call_known(5000)."), "ok");
  const std::string doc_text = capture.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(capture.Wait(std::chrono::seconds(10)), 0) << doc_text;
  const json doc = json::parse(doc_text);
  EXPECT_EQ(testing::CountOf(doc, "orion_workload:known/1"), 5000u) << doc_text;

  // /metrics answers a scrape with the packaged token, and only with it.
  std::ifstream token_in("/etc/orion/metrics.token");
  std::string metrics_token;
  std::getline(token_in, metrics_token);
  httplib::Client metrics("127.0.0.1", 19466);
  auto refused = metrics.Get("/metrics");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto scraped = metrics.Get("/metrics", {{"Authorization", "Bearer " + metrics_token}});
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->body.find("orion_watch_gaps_total"), std::string::npos) << scraped->body;

  // Stop the daemon, remove the package: nothing attached, nothing left.
  const std::set<int> programs = testing::ProcessBpfProgramIds(daemon_.pid());
  daemon_.Signal(SIGTERM);
  EXPECT_EQ(daemon_.Wait(std::chrono::seconds(20)), 0);
  ASSERT_EQ(
      testing::RunCommand({"/usr/bin/dpkg", "--purge", "orion"}, &out, std::chrono::seconds(120)),
      0)
      << out;
  installed_by_test_ = false;
  for (const char* path : {kInstalledOrion, "/lib/systemd/system/orion.service",
                           "/etc/orion/orion.toml", "/etc/orion/metrics.token", "/usr/lib/orion",
                           "/var/lib/orion"}) {
    EXPECT_FALSE(fs::exists(path)) << path << " is left after purge";
  }
  if (!programs.empty()) EXPECT_EQ(testing::CountLinksOfPrograms(programs), 0);
  auto inspected = beam::InspectBeam(node.os_pid());
  ASSERT_TRUE(inspected.ok());
  EXPECT_EQ(testing::SemaphoreOf(*inspected, "orion__call"), 0);
  EXPECT_EQ(node.Eval("orion_workload:known(1)."), "2") << "the node runs on";
}

}  // namespace
}  // namespace orion
