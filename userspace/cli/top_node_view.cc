#include "userspace/cli/top_node_view.h"

#include <spdlog/spdlog.h>

namespace orion::cli {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const NodeView::Budget NodeView::Budget::kLiveView = {milliseconds(300), milliseconds(500)};
const NodeView::Budget NodeView::Budget::kJson = {milliseconds(5000), milliseconds(5000)};

NodeView::NodeView(std::unique_ptr<erlang::NodeClient> client, std::string cookie)
    : client_(std::move(client)), node_(client_->node_name()), cookie_(std::move(cookie)) {}

void NodeView::Refresh(const std::vector<const probes::ProcessStats*>& processes,
                       const Budget& budget) {
  const auto deadline = Clock::now() + budget.names;
  for (const auto* p : processes) {
    if (Clock::now() >= deadline) break;
    if (names_.count(p->pid)) continue;
    if (!EnsureConnected()) return;
    auto info = client_->GetProcessInfo(p->pid, milliseconds(500));
    if (!info.ok()) {
      if (info.status().code() == StatusCode::kInvalidArgument) {
        names_[p->pid] = {};
        continue;
      }
      spdlog::warn("names from {}: {}", node_, info.status().message());
      return;
    }
    names_[p->pid] = std::move(*info);
  }

  std::vector<std::string> pids;
  for (const auto* p : processes) pids.push_back(p->pid);
  if (!EnsureConnected()) return;
  auto states = client_->GetProcessStates(pids, budget.call);
  if (states.ok()) {
    states_.clear();
    for (size_t i = 0; i < pids.size(); ++i) states_[pids[i]] = std::move((*states)[i]);
  } else {
    spdlog::warn("memory and current functions from {}: {}", node_, states.status().message());
  }
  if (!EnsureConnected()) return;
  auto ets = client_->GetEtsTables(erlang::kMaxEtsTablesDescribed, budget.call);
  if (ets.ok()) {
    ets_ = std::move(*ets);
  } else {
    spdlog::warn("ETS tables from {}: {}", node_, ets.status().message());
  }
}

const erlang::ProcessInfo* NodeView::Name(const std::string& pid) const {
  auto it = names_.find(pid);
  return it == names_.end() ? nullptr : &it->second;
}

const erlang::ProcessState* NodeView::State(const std::string& pid) const {
  auto it = states_.find(pid);
  return it == states_.end() ? nullptr : &it->second;
}

bool NodeView::EnsureConnected() {
  if (client_ && client_->connected()) return true;
  if (Clock::now() < next_reconnect_) return false;
  next_reconnect_ = Clock::now() + std::chrono::seconds(10);
  auto client = erlang::NodeClient::Connect(node_, cookie_, std::chrono::seconds(2));
  if (!client.ok()) {
    spdlog::warn("reconnecting to {}: {}", node_, client.status().message());
    return false;
  }
  client_ = std::move(*client);
  return true;
}

}  // namespace orion::cli
