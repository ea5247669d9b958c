// erl_interface is set up once per process (userspace/erlang/ei_init.h): the references of a C
// node stay unique when a NodeClient is opened after it. A second ei_init() started them over,
// so two streams of one `orion ui` got the same id from the daemon.
#include "userspace/erlang/ei_init.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <tuple>

#include "userspace/erlang/c_node.h"
#include "userspace/erlang/node_client.h"

namespace orion::erlang {
namespace {

std::tuple<unsigned, unsigned, unsigned> Ids(const erlang_ref& ref) {
  return {ref.n[0], ref.n[1], ref.n[2]};
}

TEST(EiInitTest, ReferencesStayUniqueWhenANodeClientIsOpenedAfterTheCNode) {
  auto name = ParseNodeName("orion_ei_init_test@127.0.0.1", /*longnames=*/true);
  ASSERT_TRUE(name.ok()) << name.status().message();
  auto node = CNode::Create(*name, "cookie");
  ASSERT_TRUE(node.ok()) << node.status().message();
  std::set<std::tuple<unsigned, unsigned, unsigned>> seen;
  for (int i = 0; i < 3; ++i) seen.insert(Ids((*node)->MakeRef()));
  // A NodeClient sets erl_interface up (it fails: no such node; what matters is that it ran).
  auto client = NodeClient::Connect("orion_no_such_node@127.0.0.1", "cookie",
                                    std::chrono::milliseconds(200));
  EXPECT_FALSE(client.ok());
  for (int i = 0; i < 3; ++i) {
    const auto ids = Ids((*node)->MakeRef());
    EXPECT_TRUE(seen.insert(ids).second)
        << "reference " << std::get<0>(ids) << " made twice: erl_interface was set up again";
  }
}

}  // namespace
}  // namespace orion::erlang
