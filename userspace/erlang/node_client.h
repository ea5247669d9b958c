// A hidden C node (erl_interface) connected to one Erlang node, for bounded remote calls:
// names of processes for `orion top`, and node discovery (erlang:nodes/0) for the daemon.
//
//   ASSIGN_OR_RETURN(std::string cookie, ReadCookieFile(path, false));  // dist/cookie.h
//   ASSIGN_OR_RETURN(auto node, NodeClient::Connect("app@host", cookie, 2s));
//   ASSIGN_OR_RETURN(ProcessInfo info, node->GetProcessInfo("<0.123.0>", 1s));
//
//   // Any function: arguments as an encoded list (ei_x_encode_list_header...), no version byte.
//   ei_x_buff args; ei_x_new(&args); ei_x_encode_empty_list(&args);
//   ASSIGN_OR_RETURN(std::string reply, node->Rpc("erlang", "nodes", {args.buff, args.index}, 1s));
//   ei_x_free(&args);
//   int index = 0; ... ei_decode_list_header(reply.data(), &index, &n) ...
//
// The connection is a distribution channel: a C node is hidden (it shows in nodes(hidden) on
// the other side, not in nodes()). Cookie authentication is a challenge/response; the traffic
// is not encrypted. Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace orion::erlang {

// What erlang:process_info(Pid, [registered_name, initial_call]) says about a process.
struct ProcessInfo {
  bool alive = false;           // false: no such process (any more)
  std::string registered_name;  // "" if it has none
  std::string initial_call;     // "mod:fun/arity"; for proc_lib processes (gen_server, ...)
                                // proc_lib:translate_initial_call/1, e.g. "my_server:init/1"
};

// What erlang:process_info(Pid, [memory, current_function]) says about a process: the
// columns of etop and observer_cli that only the node knows. Asking sends the process a
// process-info signal, which it handles (as for etop and observer_cli).
struct ProcessState {
  bool alive = false;            // false: no such process (any more)
  uint64_t memory_bytes = 0;     // its memory: heap, stack, message queue, internal structures
  std::string current_function;  // "mod:fun/arity", "" if the node does not say
};

// One ETS table, as ets:info/1 describes it.
struct EtsTable {
  std::string name;        // the table's name atom (unnamed tables have one too)
  std::string id;          // ets:all/0's id: the name for a named table, else the tid printed
  std::string owner;       // "<0.123.0>"
  uint64_t size = 0;       // objects
  uint64_t memory_bytes = 0;
  std::string type;        // set, ordered_set, bag, duplicate_bag
  std::string protection;  // public, protected, private
};

// The node's ETS tables: how many there are, and those described (at most what was asked).
struct EtsSummary {
  uint64_t tables = 0;            // ets:all/0's length
  std::vector<EtsTable> described;  // the first `max_tables` of ets:all/0, minus tables deleted
                                    // in between
};

// Tables described per refresh by `orion top` and the daemon's {top, ...}: ETS passes stay bounded
// on a node with more tables (EtsSummary::tables still counts them all).
inline constexpr size_t kMaxEtsTablesDescribed = 2000;

// The `limit` largest of the described tables (0: all): by memory, then size, then id, as
// observer_cli's ETS view sorts them.
std::vector<const EtsTable*> LargestEtsTables(const EtsSummary& ets, size_t limit);

// The rpc lists:map(fun ets:info/1, Ids) that describes the tables of ets:all/0's reply
// `ets_all` (external format without the version byte): Ids are its first `max_tables` elements,
// echoed byte for byte. Built with the term codec (erlang/term.h), which counts the list cells.
struct EtsInfoCall {
  std::string args;              // the rpc's argument list [fun ets:info/1, Ids], encoded
  std::vector<std::string> ids;  // each of Ids printed: a table name, or a tid as "#Ref<...>"
  uint64_t tables = 0;           // ets:all/0's length
};
StatusOr<EtsInfoCall> EtsInfoArgs(std::string_view ets_all, size_t max_tables);

class NodeClient {
 public:
  // Connects to `node_name` ("app@host", "app@host.example.com") as a hidden node named
  // "orion_<pid>_<n>@<the same host>" (short or long names, as the node uses), within `timeout`
  // (name resolution of the host aside). NotFound if epmd does not know the node, Unavailable
  // if it refuses us (usually the cookie), DeadlineExceeded on timeout.
  static StatusOr<std::unique_ptr<NodeClient>> Connect(const std::string& node_name,
                                                       const std::string& cookie,
                                                       std::chrono::milliseconds timeout);
  ~NodeClient();
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;

  // rpc:call(Node, Module, Function, Args) answered within `timeout`. `encoded_args` is the
  // argument list in the external term format without the version byte (what ei_x_encode_*
  // writes into a buffer made by ei_x_new). Returns the reply term, encoded, without the version
  // byte: decode it from index 0. A call that raised replies {badrpc, Reason}, decoded by the
  // caller. After a timeout or a broken connection the client is closed (a late reply could not
  // be told from the next one): every later call returns Unavailable; connect again.
  StatusOr<std::string> Rpc(std::string_view module, std::string_view function,
                            std::string_view encoded_args, std::chrono::milliseconds timeout);

  // erlang:process_info(Pid, [registered_name, initial_call]) for a pid of this node written
  // as the BEAM prints it ("<0.123.0>"), plus proc_lib:translate_initial_call/1 for processes
  // started by proc_lib. At most two calls, each bounded by `timeout`.
  StatusOr<ProcessInfo> GetProcessInfo(std::string_view pid, std::chrono::milliseconds timeout);

  // erlang:process_info(Pid, [memory, current_function]) for each pid ("<0.123.0>"), in one call
  // (lists:zipwith/3 over the node's own erlang:process_info/2), bounded by `timeout`. One state
  // per pid, in order. InvalidArgument if a pid is not a local pid of the node.
  StatusOr<std::vector<ProcessState>> GetProcessStates(const std::vector<std::string>& pids,
                                                       std::chrono::milliseconds timeout);

  // ets:all/0, then ets:info/1 of its first `max_tables` tables in one call (lists:map/2 over
  // the node's own ets:info/1): two calls, each bounded by `timeout`.
  StatusOr<EtsSummary> GetEtsTables(size_t max_tables, std::chrono::milliseconds timeout);

  const std::string& node_name() const { return node_name_; }  // the node we talk to
  const std::string& own_name() const { return own_name_; }    // our hidden node's name
  bool connected() const { return fd_ >= 0; }
  void Close();

 private:
  struct Cnode;  // ei_cnode, kept out of this header
  NodeClient();

  // The node's pid creation, learned once from a pid it sends (erlang:self/0 over rpc).
  StatusOr<uint32_t> NodeCreation(std::chrono::milliseconds timeout);
  // The node's word size in bytes (erlang:system_info(wordsize)), learned once.
  StatusOr<uint32_t> WordSize(std::chrono::milliseconds timeout);

  std::unique_ptr<Cnode> cnode_;
  int fd_ = -1;
  std::string node_name_;
  std::string own_name_;
  uint32_t creation_ = 0;
  bool creation_known_ = false;
  uint32_t word_size_ = 0;
};

}  // namespace orion::erlang
