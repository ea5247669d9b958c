// What `orion top` asks the node itself, over one hidden C-node connection (erlang/node_client.h),
// beside what the kernel measures: registered names and initial calls (once per process), the
// memory and current function of the processes shown, and the ETS tables (at each refresh).
//
//   NodeView node(std::move(client), cookie);
//   ... every refresh, for the rows about to be shown:
//   node.Refresh(rows, NodeView::Budget::kLiveView);
//   if (const auto* s = node.State(p.pid)) ... s->memory_bytes, s->current_function ...
//
// Every call is bounded; a call that times out closes the connection (a late reply could not be
// told from the next one), and the view reconnects at most every 10 s, showing what it has
// meanwhile (names stay cached; states and tables are those of the last refresh that got them).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "userspace/erlang/node_client.h"
#include "userspace/probes/top.h"

namespace orion::cli {

class NodeView {
 public:
  // How long a refresh may wait for the node: the live view refreshes every interval, a JSON
  // document is made once.
  struct Budget {
    std::chrono::milliseconds names;  // all the name lookups of one refresh
    std::chrono::milliseconds call;   // each call for states or tables
    static const Budget kLiveView;
    static const Budget kJson;
  };

  NodeView(std::unique_ptr<erlang::NodeClient> client, std::string cookie);

  // Names of the processes not seen yet, then the states of all of them and the ETS tables.
  void Refresh(const std::vector<const probes::ProcessStats*>& processes, const Budget& budget);

  const erlang::ProcessInfo* Name(const std::string& pid) const;    // cached since first seen
  const erlang::ProcessState* State(const std::string& pid) const;  // of the last refresh
  const std::optional<erlang::EtsSummary>& ets() const { return ets_; }
  const std::string& node() const { return node_; }

 private:
  bool EnsureConnected();

  std::unique_ptr<erlang::NodeClient> client_;
  std::string node_;
  std::string cookie_;
  std::chrono::steady_clock::time_point next_reconnect_{};
  std::unordered_map<std::string, erlang::ProcessInfo> names_;
  std::unordered_map<std::string, erlang::ProcessState> states_;
  std::optional<erlang::EtsSummary> ets_;
};

}  // namespace orion::cli
