#include "userspace/erlang/node_client.h"

#include <arpa/inet.h>
#include <ei.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "userspace/erlang/ei_init.h"
#include "userspace/erlang/term.h"

namespace orion::erlang {
namespace {

using Clock = std::chrono::steady_clock;

// An ei_x_buff that frees itself.
class XBuff {
 public:
  XBuff() { ei_x_new(&x_); }
  ~XBuff() { ei_x_free(&x_); }
  XBuff(const XBuff&) = delete;
  XBuff& operator=(const XBuff&) = delete;
  ei_x_buff* get() { return &x_; }
  std::string_view bytes() const { return {x_.buff, static_cast<size_t>(x_.index)}; }

 private:
  ei_x_buff x_;
};

// The term at `index`, printed the way Erlang would (for error messages).
std::string PrintTerm(const char* buf, int index) {
  char* text = nullptr;
  if (ei_s_print_term(&text, buf, &index) < 0 || !text) return "<undecodable term>";
  std::string s(text);
  std::free(text);
  return s;
}

bool DecodeAtom(const char* buf, int* index, std::string* out) {
  char atom[MAXATOMLEN_UTF8];
  if (ei_decode_atom_as(buf, index, atom, sizeof(atom), ERLANG_UTF8, nullptr, nullptr) < 0) {
    return false;
  }
  *out = atom;
  return true;
}

// {M, F, A} -> "M:F/A"
bool DecodeMfa(const char* buf, int* index, std::string* out) {
  int arity = 0;
  std::string m, f;
  long a = 0;
  if (ei_decode_tuple_header(buf, index, &arity) < 0 || arity != 3) return false;
  if (!DecodeAtom(buf, index, &m) || !DecodeAtom(buf, index, &f)) return false;
  if (ei_decode_long(buf, index, &a) < 0) return false;
  *out = m + ":" + f + "/" + std::to_string(a);
  return true;
}

// "<0.123.0>" -> (123, 0); only pids local to the node (first number 0) can be named.
StatusOr<std::pair<unsigned, unsigned>> ParseLocalPid(std::string_view pid) {
  unsigned channel = 0, number = 0, serial = 0;
  char close = 0;
  const std::string s(pid);
  if (std::sscanf(s.c_str(), "<%u.%u.%u%c", &channel, &number, &serial, &close) != 4 ||
      close != '>') {
    return InvalidArgument("'", pid, "' is not a pid written like <0.123.0>");
  }
  if (channel != 0) return InvalidArgument("pid ", pid, " belongs to another node");
  return std::make_pair(number, serial);
}

// Encodes `fun Module:Function/Arity`, a reference to a function the node already has.
void EncodeExportFun(ei_x_buff* x, const char* module, const char* function, long arity) {
  erlang_fun f = {};
  f.arity = arity;
  std::snprintf(f.module, sizeof(f.module), "%s", module);
  f.type = erlang_fun::EI_FUN_EXPORT;
  f.u.exprt.func = const_cast<char*>(function);
  f.u.exprt.func_allocated = 0;
  ei_x_encode_fun(x, &f);
}

bool IsAtom(int type) {
  return type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT ||
         type == ERL_SMALL_ATOM_UTF8_EXT;
}

// A non-negative integer term (small or big) as a u64; false if it is not one.
bool DecodeCount(const char* buf, int* index, uint64_t* out) {
  unsigned long long v = 0;
  if (ei_decode_ulonglong(buf, index, &v) < 0) return false;
  *out = v;
  return true;
}

std::string PidString(const erlang_pid& p) {
  return "<0." + std::to_string(p.num) + "." + std::to_string(p.serial) + ">";
}

std::string ErlErrno() {
  return std::strerror(erl_errno);
}

}  // namespace

struct NodeClient::Cnode {
  ei_cnode ec;
};

NodeClient::NodeClient() : cnode_(std::make_unique<Cnode>()) {}

NodeClient::~NodeClient() {
  Close();
}

void NodeClient::Close() {
  if (fd_ >= 0) ei_close_connection(fd_);
  fd_ = -1;
}

StatusOr<std::unique_ptr<NodeClient>> NodeClient::Connect(const std::string& node_name,
                                                          const std::string& cookie,
                                                          std::chrono::milliseconds timeout) {
  InitErlInterface();
  static std::atomic<int> instance{0};

  const size_t at = node_name.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == node_name.size()) {
    return InvalidArgument("'", node_name, "' is not a node name like app@host");
  }
  if (node_name.size() > MAXNODELEN) return InvalidArgument("node name too long: ", node_name);
  const std::string host = node_name.substr(at + 1);
  const std::string alive =
      "orion_" + std::to_string(getpid()) + "_" + std::to_string(instance.fetch_add(1));

  std::unique_ptr<NodeClient> client(new NodeClient());
  client->node_name_ = node_name;
  client->own_name_ = alive + "@" + host;  // same host part: short names talk to short names
  in_addr any = {};
  any.s_addr = htonl(INADDR_ANY);
  const unsigned creation = static_cast<unsigned>(getpid()) * 2654435761u | 4;
  if (ei_connect_xinit(&client->cnode_->ec, host.c_str(), alive.c_str(), client->own_name_.c_str(),
                       &any, cookie.c_str(), creation) < 0) {
    return Internal("initialising the C node ", client->own_name_, ": ", ErlErrno());
  }
  const unsigned ms = std::max<unsigned>(1, static_cast<unsigned>(timeout.count()));
  std::string target = node_name;
  const int fd = ei_connect_tmo(&client->cnode_->ec, target.data(), ms);
  if (fd < 0) {
    if (erl_errno == ETIMEDOUT) {
      return DeadlineExceeded("connecting to ", node_name, " took more than ", ms, " ms");
    }
    if (fd == ERL_NO_PORT) {
      return NotFound("no node ", node_name, ": epmd on ", host, " does not know '",
                      node_name.substr(0, at), "' (is the node running, with -sname/-name?)");
    }
    return Unavailable("connecting to ", node_name, " failed (", ErlErrno(),
                       "): is the cookie right? The node logs the refused connection");
  }
  client->fd_ = fd;
  return client;
}

StatusOr<std::string> NodeClient::Rpc(std::string_view module, std::string_view function,
                                      std::string_view encoded_args,
                                      std::chrono::milliseconds timeout) {
  if (fd_ < 0) return Unavailable("not connected to ", node_name_);
  const auto deadline = Clock::now() + timeout;
  std::string mod(module), fun(function);
  if (ei_rpc_to(&cnode_->ec, fd_, mod.data(), fun.data(), encoded_args.data(),
                static_cast<int>(encoded_args.size())) < 0) {
    const std::string why = ErlErrno();
    Close();
    return Unavailable("sending ", module, ":", function, " to ", node_name_, " failed: ", why);
  }
  XBuff reply;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      Close();
      return DeadlineExceeded(node_name_, " did not answer ", module, ":", function, " within ",
                              timeout.count(), " ms");
    }
    erlang_msg msg = {};
    reply.get()->index = 0;
    const int r = ei_rpc_from(&cnode_->ec, fd_, static_cast<int>(left), &msg, reply.get());
    if (r == ERL_TICK) continue;
    if (r == ERL_TIMEOUT) {
      Close();
      return DeadlineExceeded(node_name_, " did not answer ", module, ":", function, " within ",
                              timeout.count(), " ms");
    }
    if (r == ERL_ERROR) {
      // A control message ei does not handle (link, exit, ...) sets msgtype; a broken
      // connection does not.
      if (erl_errno == EIO && msg.msgtype != 0) continue;
      const std::string why = ErlErrno();
      Close();
      return Unavailable("the connection to ", node_name_, " broke: ", why);
    }
    if (msg.msgtype != ERL_SEND && msg.msgtype != ERL_REG_SEND && msg.msgtype != ERL_SEND_TT &&
        msg.msgtype != ERL_REG_SEND_TT) {
      continue;
    }
    // {rex, Reply}
    const char* buf = reply.get()->buff;
    int index = 0, version = 0, arity = 0;
    std::string tag;
    if (ei_decode_version(buf, &index, &version) < 0 ||
        ei_decode_tuple_header(buf, &index, &arity) < 0 || arity != 2 ||
        !DecodeAtom(buf, &index, &tag) || tag != "rex") {
      continue;  // not an rpc reply
    }
    return std::string(buf + index, reply.get()->index - index);
  }
}

StatusOr<uint32_t> NodeClient::NodeCreation(std::chrono::milliseconds timeout) {
  if (creation_known_) return creation_;
  XBuff args;
  ei_x_encode_empty_list(args.get());
  ASSIGN_OR_RETURN(std::string reply, Rpc("erlang", "self", args.bytes(), timeout));
  erlang_pid self;
  int index = 0;
  if (ei_decode_pid(reply.data(), &index, &self) < 0) {
    return Internal("erlang:self() on ", node_name_, " answered ", PrintTerm(reply.data(), 0));
  }
  creation_ = self.creation;
  creation_known_ = true;
  return creation_;
}

StatusOr<uint32_t> NodeClient::WordSize(std::chrono::milliseconds timeout) {
  if (word_size_ != 0) return word_size_;
  XBuff args;  // [wordsize]
  ei_x_encode_list_header(args.get(), 1);
  ei_x_encode_atom(args.get(), "wordsize");
  ei_x_encode_empty_list(args.get());
  ASSIGN_OR_RETURN(std::string reply, Rpc("erlang", "system_info", args.bytes(), timeout));
  long size = 0;
  int index = 0;
  if (ei_decode_long(reply.data(), &index, &size) < 0 || (size != 4 && size != 8)) {
    return Internal("erlang:system_info(wordsize) on ", node_name_, " answered ",
                    PrintTerm(reply.data(), 0));
  }
  word_size_ = static_cast<uint32_t>(size);
  return word_size_;
}

namespace {

// The pid "<0.N.S>" of `node` as ei encodes it.
StatusOr<erlang_pid> LocalPid(std::string_view pid, const std::string& node, uint32_t creation) {
  ASSIGN_OR_RETURN(auto numbers, ParseLocalPid(pid));
  erlang_pid p = {};
  std::snprintf(p.node, sizeof(p.node), "%s", node.c_str());
  p.num = numbers.first;
  p.serial = numbers.second;
  p.creation = creation;
  return p;
}

// `undefined` (false in *present) or a list [{Item, Value}], as erlang:process_info/2 and
// ets:info/1 answer: `value(item, type)` decodes or skips each Value, of ei type `type`.
template <typename DecodeValue>
bool DecodeItems(const char* buf, int* index, bool* present, DecodeValue value) {
  int type = 0, size = 0;
  ei_get_type(buf, index, &type, &size);
  *present = false;
  if (IsAtom(type)) return ei_skip_term(buf, index) == 0;
  int n = 0;
  if (ei_decode_list_header(buf, index, &n) < 0) return false;
  *present = true;
  for (int i = 0; i < n; ++i) {
    int arity = 0;
    std::string item;
    if (ei_decode_tuple_header(buf, index, &arity) < 0 || arity != 2 ||
        !DecodeAtom(buf, index, &item)) {
      return false;
    }
    ei_get_type(buf, index, &type, &size);
    if (!value(item, type)) return false;
  }
  if (n > 0 && ei_decode_list_header(buf, index, &n) < 0) return false;  // the tail []
  return true;
}

// One element of lists:zipwith(fun erlang:process_info/2, ...): `undefined` (the process is
// gone) or [{memory, Bytes}, {current_function, {M, F, A} | undefined}].
bool DecodeProcessState(const char* buf, int* index, ProcessState* out) {
  return DecodeItems(buf, index, &out->alive, [&](const std::string& item, int type) {
    if (item == "memory" && !IsAtom(type)) return DecodeCount(buf, index, &out->memory_bytes);
    if (item == "current_function" && type == ERL_SMALL_TUPLE_EXT) {
      return DecodeMfa(buf, index, &out->current_function);
    }
    return ei_skip_term(buf, index) == 0;
  });
}

// One element of lists:map(fun ets:info/1, ...): `undefined` (deleted meanwhile; false in
// *described) or the table's [{Item, Value}].
bool DecodeEtsInfo(const char* buf, int* index, uint32_t word_size, EtsTable* out,
                   bool* described) {
  return DecodeItems(buf, index, described, [&](const std::string& item, int type) {
    if (item == "name" && IsAtom(type)) return DecodeAtom(buf, index, &out->name);
    if (item == "size") return DecodeCount(buf, index, &out->size);
    if (item == "memory") {
      uint64_t words = 0;
      if (!DecodeCount(buf, index, &words)) return false;
      out->memory_bytes = words * word_size;
      return true;
    }
    if (item == "owner" && (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT)) {
      erlang_pid owner;
      if (ei_decode_pid(buf, index, &owner) < 0) return false;
      out->owner = PidString(owner);
      return true;
    }
    if (item == "type" && IsAtom(type)) return DecodeAtom(buf, index, &out->type);
    if (item == "protection" && IsAtom(type)) return DecodeAtom(buf, index, &out->protection);
    return ei_skip_term(buf, index) == 0;
  });
}

}  // namespace

StatusOr<std::vector<ProcessState>> NodeClient::GetProcessStates(
    const std::vector<std::string>& pids, std::chrono::milliseconds timeout) {
  std::vector<ProcessState> states(pids.size());
  if (pids.empty()) return states;
  for (const std::string& pid : pids) RETURN_IF_ERROR(ParseLocalPid(pid).status());
  ASSIGN_OR_RETURN(uint32_t creation, NodeCreation(timeout));
  XBuff args;  // [fun erlang:process_info/2, Pids, [Items, Items, ...]]
  ei_x_encode_list_header(args.get(), 3);
  EncodeExportFun(args.get(), "erlang", "process_info", 2);
  ei_x_encode_list_header(args.get(), static_cast<long>(pids.size()));
  for (const std::string& pid : pids) {
    ASSIGN_OR_RETURN(erlang_pid p, LocalPid(pid, node_name_, creation));
    ei_x_encode_pid(args.get(), &p);
  }
  ei_x_encode_empty_list(args.get());
  ei_x_encode_list_header(args.get(), static_cast<long>(pids.size()));
  for (size_t i = 0; i < pids.size(); ++i) {
    ei_x_encode_list_header(args.get(), 2);
    ei_x_encode_atom(args.get(), "memory");
    ei_x_encode_atom(args.get(), "current_function");
    ei_x_encode_empty_list(args.get());
  }
  ei_x_encode_empty_list(args.get());
  ei_x_encode_empty_list(args.get());
  ASSIGN_OR_RETURN(std::string reply, Rpc("lists", "zipwith", args.bytes(), timeout));

  const char* buf = reply.data();
  int index = 0, n = 0;
  if (ei_decode_list_header(buf, &index, &n) < 0 || n != static_cast<int>(pids.size())) {
    return Internal("process_info on ", node_name_, " answered ", PrintTerm(buf, 0));
  }
  for (int i = 0; i < n; ++i) {
    if (!DecodeProcessState(buf, &index, &states[i])) {
      return Internal("process_info on ", node_name_, " answered ", PrintTerm(buf, 0));
    }
  }
  return states;
}

std::vector<const EtsTable*> LargestEtsTables(const EtsSummary& ets, size_t limit) {
  std::vector<const EtsTable*> v;
  for (const auto& t : ets.described) v.push_back(&t);
  std::sort(v.begin(), v.end(), [](const EtsTable* a, const EtsTable* b) {
    if (a->memory_bytes != b->memory_bytes) return a->memory_bytes > b->memory_bytes;
    if (a->size != b->size) return a->size > b->size;
    return a->id < b->id;
  });
  if (limit != 0 && v.size() > limit) v.resize(limit);
  return v;
}

StatusOr<EtsInfoCall> EtsInfoArgs(std::string_view ets_all, size_t max_tables) {
  // ets:all/0's reply is a list of atoms and references, one per table: bounded well above any
  // node's table count.
  DecodeLimits limits;
  limits.max_bytes = 64u << 20;
  limits.max_elements = 1u << 20;
  limits.max_terms = 1u << 21;
  ASSIGN_OR_RETURN(Term all, DecodeTermBody(
      std::span(reinterpret_cast<const uint8_t*>(ets_all.data()), ets_all.size()), limits));
  if (all.kind() != TermKind::kList || all.tail() != nullptr) {
    return InvalidArgument("ets:all() answered ", FormatTerm(all), ", not a list");
  }
  EtsInfoCall call;
  call.tables = all.elements().size();
  const size_t asked = std::min(max_tables, all.elements().size());
  std::vector<Term> ids;
  for (size_t i = 0; i < asked; ++i) {
    const Term& id = all.elements()[i];
    ids.push_back(id.AsRaw());  // echoed byte for byte
    call.ids.push_back(id.kind() == TermKind::kAtom ? std::string(id.text()) : FormatTerm(id));
  }
  XBuff fun;
  EncodeExportFun(fun.get(), "ets", "info", 1);
  const std::string_view fun_bytes = fun.bytes();
  const std::vector<uint8_t> args = EncodeTermBody(Term::List(
      {Term::Raw(std::vector<uint8_t>(fun_bytes.begin(), fun_bytes.end())), Term::List(ids)}));
  call.args.assign(args.begin(), args.end());
  return call;
}

StatusOr<EtsSummary> NodeClient::GetEtsTables(size_t max_tables,
                                              std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(uint32_t word_size, WordSize(timeout));
  XBuff none;
  ei_x_encode_empty_list(none.get());
  ASSIGN_OR_RETURN(std::string all, Rpc("ets", "all", none.bytes(), timeout));
  auto call = EtsInfoArgs(all, max_tables);
  if (!call.ok()) return Internal("ets:all() on ", node_name_, ": ", call.status().message());
  EtsSummary summary;
  summary.tables = call->tables;
  if (call->ids.empty()) return summary;
  const int asked = static_cast<int>(call->ids.size());
  const std::vector<std::string>& ids = call->ids;
  ASSIGN_OR_RETURN(std::string infos, Rpc("lists", "map", call->args, timeout));

  const char* buf = infos.data();
  int index = 0, n = 0;
  if (ei_decode_list_header(buf, &index, &n) < 0 || n != asked) {
    return Internal("ets:info/1 on ", node_name_, " answered ", PrintTerm(buf, 0));
  }
  for (int i = 0; i < n; ++i) {
    EtsTable table;
    bool described = false;
    if (!DecodeEtsInfo(buf, &index, word_size, &table, &described)) {
      return Internal("ets:info/1 on ", node_name_, " answered ", PrintTerm(buf, 0));
    }
    if (!described) continue;
    table.id = ids[i];
    summary.described.push_back(std::move(table));
  }
  return summary;
}

StatusOr<ProcessInfo> NodeClient::GetProcessInfo(std::string_view pid,
                                                 std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(ParseLocalPid(pid).status());
  ASSIGN_OR_RETURN(uint32_t creation, NodeCreation(timeout));
  ASSIGN_OR_RETURN(erlang_pid p, LocalPid(pid, node_name_, creation));

  XBuff args;  // [Pid, [registered_name, initial_call]]
  ei_x_encode_list_header(args.get(), 2);
  ei_x_encode_pid(args.get(), &p);
  ei_x_encode_list_header(args.get(), 2);
  ei_x_encode_atom(args.get(), "registered_name");
  ei_x_encode_atom(args.get(), "initial_call");
  ei_x_encode_empty_list(args.get());
  ei_x_encode_empty_list(args.get());
  ASSIGN_OR_RETURN(std::string reply, Rpc("erlang", "process_info", args.bytes(), timeout));

  ProcessInfo info;
  const char* buf = reply.data();
  int index = 0, type = 0, size = 0;
  ei_get_type(buf, &index, &type, &size);
  if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT ||
      type == ERL_SMALL_ATOM_UTF8_EXT) {
    std::string atom;
    if (DecodeAtom(buf, &index, &atom) && atom == "undefined") return info;  // not alive
    return Internal("process_info on ", node_name_, " answered ", PrintTerm(buf, 0));
  }
  int n = 0;
  if (ei_decode_list_header(buf, &index, &n) < 0) {
    return Internal("process_info on ", node_name_, " answered ", PrintTerm(buf, 0));
  }
  info.alive = true;
  for (int i = 0; i < n; ++i) {
    int arity = 0;
    std::string key;
    if (ei_decode_tuple_header(buf, &index, &arity) < 0 || arity != 2 ||
        !DecodeAtom(buf, &index, &key)) {
      return Internal("process_info on ", node_name_, " answered ", PrintTerm(buf, 0));
    }
    ei_get_type(buf, &index, &type, &size);
    if (key == "registered_name" && type != ERL_NIL_EXT) {
      DecodeAtom(buf, &index, &info.registered_name);
    } else if (key == "initial_call" && type == ERL_SMALL_TUPLE_EXT) {
      DecodeMfa(buf, &index, &info.initial_call);
    } else {
      ei_skip_term(buf, &index);
    }
  }

  if (info.initial_call == "proc_lib:init_p/5") {  // gen_server & co: what proc_lib started
    XBuff translate;
    ei_x_encode_list_header(translate.get(), 1);
    ei_x_encode_pid(translate.get(), &p);
    ei_x_encode_empty_list(translate.get());
    ASSIGN_OR_RETURN(std::string mfa,
                     Rpc("proc_lib", "translate_initial_call", translate.bytes(), timeout));
    int i = 0;
    std::string translated;
    if (DecodeMfa(mfa.data(), &i, &translated)) info.initial_call = translated;
  }
  return info;
}

}  // namespace orion::erlang
