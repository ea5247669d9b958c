#include "userspace/erlang/cookie.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "userspace/erlang/c_node.h"

namespace orion::erlang {
namespace {

class CookieTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/orion-cookie-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::string dir_;
};

TEST_F(CookieTest, ReadsOneLineFromAPrivateFile) {
  auto cookie = ReadCookieFile(Write("ok", "SECRETCOOKIE\n", 0600), /*require_root_owned=*/false);
  ASSERT_TRUE(cookie.ok()) << cookie.status().message();
  EXPECT_EQ(*cookie, "SECRETCOOKIE");
}

TEST_F(CookieTest, RefusesFilesOthersCanReadAndSaysHowToFixThem) {
  const Status s = ReadCookieFile(Write("open", "C\n", 0644), false).status();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("mode 0644"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("chmod 600"), std::string::npos) << s.message();
}

TEST_F(CookieTest, RefusesEmptyMissingAndSymlinkedFiles) {
  EXPECT_EQ(ReadCookieFile(Write("empty", "", 0600), false).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCookieFile(dir_ + "/missing", false).status().code(), StatusCode::kNotFound);
  const std::string target = Write("target", "C\n", 0600);
  ASSERT_EQ(::symlink(target.c_str(), (dir_ + "/link").c_str()), 0);
  EXPECT_EQ(ReadCookieFile(dir_ + "/link", false).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadCookieFile(Write("spaces", "two words\n", 0600), false).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CookieTest, TheDaemonWantsRootAsTheOwner) {
  const std::string path = Write("owned", "C\n", 0600);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
    const Status s = ReadCookieFile(path, /*require_root_owned=*/true).status();
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
    EXPECT_NE(s.message().find("owned by uid 65534"), std::string::npos) << s.message();
  } else {
    EXPECT_EQ(ReadCookieFile(path, /*require_root_owned=*/true).status().code(),
              StatusCode::kPermissionDenied);
  }
}

TEST(NodeNameTest, ShortAndLongNames) {
  auto explicit_host = ParseNodeName("orion@10.0.0.1", false);
  ASSERT_TRUE(explicit_host.ok());
  EXPECT_EQ(explicit_host->full(), "orion@10.0.0.1");
  auto short_name = ParseNodeName("orion", false);
  ASSERT_TRUE(short_name.ok());
  EXPECT_EQ(short_name->alive, "orion");
  EXPECT_EQ(short_name->host.find('.'), std::string::npos);
  EXPECT_FALSE(ParseNodeName("or ion", false).ok());
  EXPECT_FALSE(ParseNodeName("@host", false).ok());
  EXPECT_FALSE(ParseNodeName("orion@", false).ok());
}

}  // namespace
}  // namespace orion::erlang
