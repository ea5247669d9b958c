// The rpc arguments NodeClient builds, decoded by the real Erlang VM (the node decodes them the
// same way: a malformed argument list makes it drop the connection).
#include "userspace/erlang/node_client.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/erlang/erlang_vm.h"

namespace orion::erlang {
namespace {

using testing::Hex;

std::string Body(const std::vector<uint8_t>& term_to_binary) {
  return std::string(term_to_binary.begin() + 1, term_to_binary.end());  // without the 131
}

// ets:all/0 answers names and tids (OTP 25: references, NEWER_REFERENCE_EXT); the call echoes the
// first ones into [fun ets:info/1, Ids], a proper list Erlang decodes to exactly that.
TEST(NodeClientTest, EtsInfoArgsAreTheCallErlangDecodes) {
  const std::vector<uint8_t> all =
      testing::TermToBinary({"[logger, ets:new(t, []), ets:new(u, []), ac_tab]"})[0];
  auto call = EtsInfoArgs(Body(all), 3);
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call->tables, 4u);
  ASSERT_EQ(call->ids.size(), 3u);
  EXPECT_EQ(call->ids[0], "logger");
  EXPECT_EQ(call->ids[1].rfind("#Ref<nonode@nohost.", 0), 0u) << call->ids[1];
  EXPECT_NE(call->ids[1], call->ids[2]);
  const std::string args(call->args);
  EXPECT_EQ(testing::RunErlang(
                "All = binary_to_term(binary:decode_hex(<<\"" + Hex(all) + "\">>)), "
                "Args = binary_to_term(<<131, (binary:decode_hex(<<\"" +
                Hex(std::vector<uint8_t>(args.begin(), args.end())) + "\">>))/binary>>), "
                "io:format(\"~w\", [Args =:= [fun ets:info/1, lists:sublist(All, 3)]])"),
            "true");
}

TEST(NodeClientTest, EtsInfoArgsBoundTheTablesAsked) {
  const std::vector<uint8_t> all = testing::TermToBinary({"[a, b]"})[0];
  for (size_t max : {0, 1, 2, 5}) {
    auto call = EtsInfoArgs(Body(all), max);
    ASSERT_TRUE(call.ok()) << call.status().message();
    EXPECT_EQ(call->tables, 2u);
    EXPECT_EQ(call->ids.size(), std::min<size_t>(max, 2));
  }
  auto none = EtsInfoArgs(Body(testing::TermToBinary({"[]"})[0]), 10);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->tables, 0u);
  EXPECT_TRUE(none->ids.empty());
}

TEST(NodeClientTest, EtsInfoArgsRejectWhatIsNotAList) {
  for (const char* erlang : {"badrpc", "[a | b]"}) {
    auto call = EtsInfoArgs(Body(testing::TermToBinary({erlang})[0]), 10);
    EXPECT_FALSE(call.ok()) << erlang;
  }
  EXPECT_FALSE(EtsInfoArgs("\x6c\x00\x00\x00\x02", 10).ok()) << "a truncated list";
}

}  // namespace
}  // namespace orion::erlang
