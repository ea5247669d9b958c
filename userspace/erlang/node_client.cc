#include "userspace/erlang/node_client.h"

#include <arpa/inet.h>
#include <ei.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

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
  static std::once_flag ei_initialized;
  std::call_once(ei_initialized, [] { ei_init(); });
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

StatusOr<ProcessInfo> NodeClient::GetProcessInfo(std::string_view pid,
                                                 std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(auto numbers, ParseLocalPid(pid));
  ASSIGN_OR_RETURN(uint32_t creation, NodeCreation(timeout));
  erlang_pid p = {};
  std::snprintf(p.node, sizeof(p.node), "%s", node_name_.c_str());
  p.num = numbers.first;
  p.serial = numbers.second;
  p.creation = creation;

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
