// Finding node names (userspace/beam/node_names.h): the parsers of epmd's NAMES reply and of
// /proc/net/tcp and tcp6, against replies and tables captured on the test machine
// (testdata/README.md), and the rules that combine epmd's names with the command line's.
// tests/integration/node_names_bpf_test.cc proves the whole path against real nodes.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "userspace/beam/epmd_names.h"
#include "userspace/beam/node_names.h"
#include "userspace/beam/proc_sockets.h"

namespace orion::beam {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(ORION_BEAM_TESTDATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<TcpSocket> ParseTable(const std::string& text) {
  std::vector<TcpSocket> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (auto s = ParseProcNetTcpLine(line)) out.push_back(*s);
  }
  return out;
}

TEST(EpmdNamesReply, GivesEveryRegisteredNameAndPort) {
  auto names = ParseEpmdNamesReply(Fixture("epmd_names_reply.bin"));
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<EpmdName>{{"nnfix4", 46687}, {"nnfix6", 39481}}));
}

TEST(EpmdNamesReply, WithNoNodeIsTheHeaderAlone) {
  auto names = ParseEpmdNamesReply(std::string("\0\0\x11\x11", 4));
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST(EpmdNamesReply, KeepsAliveNamesWithUnusualCharacters) {
  auto names = ParseEpmdNamesReply(std::string("\0\0\x11\x11", 4) +
                                   "name rabbit-1_x at port 25672\nname a at port b at port 1\n");
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<EpmdName>{{"rabbit-1_x", 25672}, {"a at port b", 1}}));
}

TEST(EpmdNamesReply, RejectsWhatEpmdDoesNotSendWithTheLine) {
  const std::string header("\0\0\x11\x11", 4);
  EXPECT_EQ(ParseEpmdNamesReply("ab").status().message(),
            "epmd's NAMES reply is 2 bytes, shorter than its 4-byte header");
  EXPECT_EQ(ParseEpmdNamesReply(header + "name app at port 4000").status().message(),
            "epmd's NAMES reply ends in a cut-off line: 'name app at port 4000'");
  EXPECT_EQ(ParseEpmdNamesReply(header + "hello\n").status().message(),
            "epmd's NAMES reply has a line not of the form 'name N at port P': 'hello'");
  EXPECT_EQ(ParseEpmdNamesReply(header + "name  at port 4000\n").status().code(),
            StatusCode::kInvalidArgument);
  for (const char* port : {"0", "65536", "12x", "", "-1"}) {
    EXPECT_EQ(ParseEpmdNamesReply(header + "name app at port " + port + "\n").status().message(),
              std::string("epmd's NAMES reply has a line with a bad port: 'name app at port ") +
                  port + "'");
  }
}

TEST(ProcNetTcp, ReadsListeningAndConnectedIpv4Sockets) {
  const auto sockets = ParseTable(Fixture("proc_net_tcp"));
  ASSERT_EQ(sockets.size(), 8u);  // every line but the header
  EXPECT_EQ(sockets[0], (TcpSocket{"0.0.0.0", 46687, kTcpListen, 80018}));
  EXPECT_EQ(sockets[1], (TcpSocket{"0.0.0.0", 4369, kTcpListen, 79341}));
  EXPECT_EQ(sockets[3], (TcpSocket{"127.0.0.1", 54586, 0x01, 80022}));
  // A TIME_WAIT socket has no inode, and fewer columns.
  EXPECT_EQ(sockets[6], (TcpSocket{"127.0.0.1", 4369, 0x06, 0}));
}

TEST(ProcNetTcp, ReadsIpv6Sockets) {
  const auto sockets = ParseTable(Fixture("proc_net_tcp6"));
  ASSERT_EQ(sockets.size(), 6u);
  EXPECT_EQ(sockets[0], (TcpSocket{"::", 4369, kTcpListen, 79342}));
  EXPECT_EQ(sockets[1], (TcpSocket{"::", 39481, kTcpListen, 79632}));
  EXPECT_EQ(sockets[2], (TcpSocket{"::1", 4369, 0x01, 81394}));
}

TEST(ProcNetTcp, IgnoresWhatIsNotASocketLine) {
  for (const char* line :
       {"", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt",
        "   0: 0100007F:1111", "   0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1",
        "   0: 01000Z7F:1111 00000000:0000 0A 0:0 0:0 0 0 0 1",
        "   0: 0100007F:1111 00000000:0000 0A 0:0 0:0 0 0 0 12x",
        "   0: 0100007F:11111 00000000:0000 0A 0:0 0:0 0 0 0 1",
        "   0: 000000000000000000000000010000:1111 00000000:0000 0A 0:0 0:0 0 0 0 1"}) {
    EXPECT_FALSE(ParseProcNetTcpLine(line).has_value()) << line;
  }
}

TEST(NodeNameChoice, EpmdNamesANodeNamedAtRunTime) {
  EXPECT_EQ(ChooseNodeName("", "rabbit", "web1"),
            (NodeNameChoice{"rabbit@web1", NameSource::kEpmd}));
}

TEST(NodeNameChoice, TheCommandLineGivesTheHostPartWhenTheAliveNamesAgree) {
  EXPECT_EQ(ChooseNodeName("app@10.0.0.1", "app", "web1"),
            (NodeNameChoice{"app@10.0.0.1", NameSource::kEpmd}));
  // Renamed at run time (net_kernel:stop/0, then start/1): epmd has the name it has now.
  EXPECT_EQ(ChooseNodeName("app@10.0.0.1", "other", "web1"),
            (NodeNameChoice{"other@web1", NameSource::kEpmd}));
}

TEST(NodeNameChoice, TheCommandLineAloneNamesWhatEpmdDoesNotKnow) {
  EXPECT_EQ(ChooseNodeName("app@web1", std::nullopt, "web1"),
            (NodeNameChoice{"app@web1", NameSource::kCmdline}));
  EXPECT_EQ(ChooseNodeName("", std::nullopt, "web1"), (NodeNameChoice{}));
}

TEST(NodeNameFromArgs, ShortNamesTakeTheGivenHost) {
  EXPECT_EQ(NodeNameFromArgs({"beam.smp", "--", "-sname", "app"}, "web1"), "app@web1");
  EXPECT_EQ(NodeNameFromArgs({"-sname", "app@h2"}, "web1"), "app@h2");
  EXPECT_EQ(NodeNameFromArgs({"-name", "app@h.example.com"}, "web1"), "app@h.example.com");
  EXPECT_EQ(NodeNameFromArgs({"-noshell", "-sname"}, "web1"), "");
}

TEST(EpmdPort, IsTheCommandLinesElseTheDefault) {
  // erl turns $ERL_EPMD_PORT into -epmd_port on the emulator's command line.
  EXPECT_EQ(EpmdPortFromArgs({"beam.smp", "--", "-epmd_port", "4370", "-sname", "a"}), 4370);
  EXPECT_EQ(EpmdPortFromArgs({"beam.smp", "--", "-sname", "a"}), kDefaultEpmdPort);
  EXPECT_EQ(EpmdPortFromArgs({"-epmd_port", "70000"}), kDefaultEpmdPort);
  EXPECT_EQ(EpmdPortFromArgs({"-epmd_port", "x"}), kDefaultEpmdPort);
}

TEST(NodeNameMatches, SameNameOrAShortFormOfTheHost) {
  EXPECT_TRUE(NodeNameMatches("rabbit@web1", "rabbit@web1"));
  EXPECT_TRUE(NodeNameMatches("rabbit@web1", "rabbit@web1.example.com"));
  EXPECT_TRUE(NodeNameMatches("rabbit@web1.example.com", "rabbit@web1"));
  EXPECT_FALSE(NodeNameMatches("rabbit@web1", "rabbit@web2"));
  EXPECT_FALSE(NodeNameMatches("rabbit@web1", "rabbit@web10.example.com"));
  EXPECT_FALSE(NodeNameMatches("rabbit@web1", "app@web1"));
  EXPECT_FALSE(NodeNameMatches("rabbit@web1", "rabbit"));
  EXPECT_FALSE(NodeNameMatches("", "rabbit@web1"));
  // An address is not a host name with a domain.
  EXPECT_FALSE(NodeNameMatches("app@10.0.0.1", "app@10.0.0.2"));
  EXPECT_FALSE(NodeNameMatches("app@10", "app@10.0.0.1"));
}

}  // namespace
}  // namespace orion::beam
