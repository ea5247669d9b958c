// What `orion ui`'s HTTP server asks of the cluster: start and stop a capture's stream, list
// functions and nodes, and say whether the daemon is reachable. DaemonLink (daemon_link.h)
// implements it through a daemon; the HTTP tests implement it with a stand-in that feeds the
// registry.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "userspace/ui/capture_registry.h"

namespace orion::ui {

class UiBackend {
 public:
  virtual ~UiBackend() = default;
  // Starts (or starts again) the stream of capture `id` with `options`; what the stream
  // delivers goes to the registry. InvalidArgument carries the daemon's word on a bad pattern or
  // match spec.
  virtual Status StartCapture(const std::string& id, const CaptureOptions& options) = 0;
  // Stops the capture's stream, if it runs (the registry keeps its data).
  virtual Status StopCapture(const std::string& id) = 0;
  // {"functions": [...], "truncated": bool}
  virtual StatusOr<nlohmann::json> Functions(const std::string& prefix) = 0;
  // {"nodes": [{"node", "host", "daemon"}], "daemons": [{"daemon", "status", "error"}]}
  virtual StatusOr<nlohmann::json> Nodes() = 0;
  // {"daemon": "orion@h", "connected": bool}
  virtual nlohmann::json DaemonStatus() = 0;
};

}  // namespace orion::ui
