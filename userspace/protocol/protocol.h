// The daemon's protocol, version 2: what `orion daemon` accepts from Erlang/Elixir shells and
// from peer daemons, and what it answers (version 1's requests are unchanged; version 2 adds
// streams and {functions, Prefix}).  docs/protocol.md is the spec; this module is its one
// implementation, on top of the bounded term codec (term.h).
//
// A request is a gen_server:call to {orion, 'orion@host'}.  The daemon's loop:
//
//   StatusOr<IncomingCall> in = ParseIncomingCall(payload, limits);  // untrusted bytes
//   if (!in.ok()) { log in.status(); drop the message; }             // nobody to answer
//   Term reply = !in->request.ok() ? EncodeErrorStatus(in->request.status())
//                                  : Answer(*in->request);          // EncodePingReply(), ...
//   send EncodeGenReply(in->call.tag, reply) to in->call.from
//
// and when it fans a capture out to its peers (scope => local, so that they do not fan out):
//
//   CaptureRequest local = capture; local.scope = Scope::kLocal;
//   send EncodeGenCall(self, tag, EncodeRequest(local)) to {orion, Peer}
//   reply: ParseGenReply(term) -> DecodeCaptureReply(reply.reply) -> MergeCaptureResults(...)
//
// A stream ({stream, ...} -> {ok, Id}) then sends the caller EncodeStreamMessage(Id, Event) for
// each interval, node lost and the end; a daemon reads its peers' with DecodeStreamMessage.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "userspace/erlang/term.h"
#include "userspace/probes/capture_types.h"

namespace orion::protocol {

// Requests and replies are Erlang terms (userspace/erlang/term.h).
using erlang::DecodeLimits;
using erlang::ErlangPid;
using erlang::Term;
using erlang::TermKind;

inline constexpr int kProtocolVersion = 2;
// Every version this implementation serves ({version} lists them).
inline constexpr int kProtocolVersions[] = {1, 2};

// Bounds on what a request or a peer's reply may ask for or carry (docs/protocol.md, "Limits").
struct ProtocolLimits {
  DecodeLimits decode;                  // for the bytes of a message
  size_t max_patterns = 32;             // patterns in one capture
  size_t max_pattern_length = 255;      // bytes of a pattern, and of an MFA in a reply
  size_t max_match_spec_length = 4096;  // bytes of a capture's match spec (tracer mode)
  uint64_t max_duration_ms = 600'000;   // 10 minutes (the least is 1 ms)
  uint32_t max_functions = 4096;        // a capture's max_functions, and the calls of a reply
  size_t max_peers = 64;                // a reply lists at most max_peers + 1 nodes
  size_t max_error_length = 1024;       // bytes kept of a peer's error message, of a BEAM's reason
  size_t max_beams = 256;               // BEAMs listed in one node's entry of a capture reply
  // Bins (highest - lowest + 1, 8 bytes each) over all the sketches of a peer's reply: what its
  // sketches may make the daemon allocate.  Each sketch is also bounded by the kernel's 2816 bins.
  uint64_t max_reply_bins = uint64_t{1} << 23;
  uint32_t min_interval_ms = 100;     // a stream's interval_ms
  uint32_t max_interval_ms = 60'000;
  size_t max_stream_nodes = 256;      // node entries of one interval (BEAMs over every host)
  // {functions, Prefix}: entries of a reply, and their bytes.
  size_t max_function_names = 100;
  size_t max_function_bytes = 64 * 1024;
};

// ---------------------------------------------------------------------------------------------
// The gen_server envelope.

// {'$gen_call', {From, Tag}, Request}.
struct GenCall {
  ErlangPid from;  // where the reply goes (the fields of ei's erlang_pid)
  Term tag;        // a Raw term: the caller's Tag byte for byte ([alias | Ref] on OTP 24+)
  Term request;
};
StatusOr<GenCall> ParseGenCall(const Term& message);

// {Tag, Reply}, with the version byte: the message to send to GenCall::from.
std::vector<uint8_t> EncodeGenReply(const Term& tag, const Term& reply);

// The calling side, for a daemon that asks its peers: {'$gen_call', {From, Tag}, Request} with the
// version byte, and the {Tag, Reply} that comes back (compare its tag with the one sent).
std::vector<uint8_t> EncodeGenCall(const ErlangPid& from, const Term& tag, const Term& request);
struct GenReply {
  Term tag;
  Term reply;
};
StatusOr<GenReply> ParseGenReply(const Term& message);

// ---------------------------------------------------------------------------------------------
// Requests.

// cluster: this daemon and its peers.  local: this daemon only (what peers are sent).
enum class Scope { kCluster, kLocal };

struct PingRequest {
  bool operator==(const PingRequest&) const = default;
};
struct VersionRequest {
  bool operator==(const VersionRequest&) const = default;
};
struct TargetsRequest {
  bool operator==(const TargetsRequest&) const = default;
};
enum class CaptureMode { kAuto, kProbes, kTracer };
std::string_view CaptureModeName(CaptureMode mode);  // "auto", "probes", "tracer"
struct CaptureRequest {
  std::vector<std::string> patterns;  // as given: the daemon parses them (ParseMfaPattern)
  uint64_t duration_ms = 0;
  std::optional<std::string> node;  // only the BEAMs with this node name
  Scope scope = Scope::kCluster;
  std::optional<uint32_t> max_functions;  // else the daemon's default
  bool per_node = false;                  // also each node's own results (NodeStatus::functions)
  std::optional<uint64_t> max_rate;       // probe hits/s that stop a host's capture; 0: none
  // How each BEAM is captured (docs/tracer.md): probes (function probes: the emu flavor of a
  // USDT build), tracer (ERTS call tracing through orion_tracer, any distributed node), or
  // auto (probes where they fire, tracer elsewhere; tracer everywhere with a match spec).
  CaptureMode mode = CaptureMode::kAuto;
  std::optional<std::string> match_spec;  // Erlang term syntax, checked on each node (tracer)
  bool operator==(const CaptureRequest&) const = default;
};
enum class TopSort { kCpu, kReds, kQueue, kGc, kSends };
struct TopRequest {
  uint64_t duration_ms = 0;
  std::optional<std::string> node;
  Scope scope = Scope::kCluster;
  TopSort sort = TopSort::kCpu;  // which processes make the cut
  uint32_t limit = 20;           // processes per BEAM (1..200)
  bool operator==(const TopRequest&) const = default;
};
std::string_view TopSortName(TopSort sort);  // "cpu", "reds", "queue", "gc", "sends"
// Standing captures of the daemon that is asked (docs/export.md); never fanned out.
// {watch_add, #{patterns => [...], node => N, mode => M, match_spec => S}} -> {ok, Id}
struct WatchAddRequest {
  std::vector<std::string> patterns;
  std::optional<std::string> node;
  CaptureMode mode = CaptureMode::kAuto;
  std::optional<std::string> match_spec;
  bool operator==(const WatchAddRequest&) const = default;
};
// {watches} -> {ok, [#{id, patterns, mode, origin, beams, node?, match_spec?}]}
struct WatchesRequest {
  bool operator==(const WatchesRequest&) const = default;
};
// {watch_remove, Id} -> ok
struct WatchRemoveRequest {
  uint32_t id = 0;
  bool operator==(const WatchRemoveRequest&) const = default;
};

// {stream, #{...}}: a capture that reports every interval_ms to the calling process
// (docs/protocol.md, "Streams"). The same options as a capture, less per_node (a stream is
// always per node), plus interval_ms.
struct StreamRequest {
  std::vector<std::string> patterns;
  uint64_t duration_ms = 0;
  uint32_t interval_ms = 1000;
  std::optional<std::string> node;
  Scope scope = Scope::kCluster;
  std::optional<uint32_t> max_functions;
  std::optional<uint64_t> max_rate;
  CaptureMode mode = CaptureMode::kAuto;
  std::optional<std::string> match_spec;
  bool operator==(const StreamRequest&) const = default;
};
// {stream_stop, Id}: Id is the reference {stream, ...} answered.
struct StreamStopRequest {
  Term id;
  bool operator==(const StreamStopRequest&) const = default;
};
// {functions, Prefix} (and {functions, Prefix, #{node => N, scope => local}}): the loaded
// functions whose names start with Prefix, for completion.
struct FunctionsRequest {
  std::string prefix;  // "lists:so", "Enum.ma", "lis"
  std::optional<std::string> node;
  Scope scope = Scope::kCluster;
  bool operator==(const FunctionsRequest&) const = default;
};
using Request =
    std::variant<PingRequest, VersionRequest, TargetsRequest, CaptureRequest, TopRequest,
                 WatchAddRequest, WatchesRequest, WatchRemoveRequest, StreamRequest,
                 StreamStopRequest, FunctionsRequest>;

// Validates a request term against the spec and the limits.  InvalidArgument says what is wrong
// in words a shell user can act on (the daemon answers it as bad_request).
StatusOr<Request> ParseRequest(const Term& request, const ProtocolLimits& limits = {});
// The request term (ParseRequest(EncodeRequest(r)) == r): what a daemon sends its peers.
Term EncodeRequest(const Request& request);

// One message from the network, as the daemon's loop sees it: bytes (with the version byte) to a
// gen_server call and its request.  An error means the message is not a gen_server call that can
// be answered (drop it); a bad request inside a good envelope is `request`'s error (answer it).
// Never reads past the input or allocates beyond the limits, whatever the bytes.
struct IncomingCall {
  GenCall call;
  StatusOr<Request> request;
};
StatusOr<IncomingCall> ParseIncomingCall(std::span<const uint8_t> message,
                                         const ProtocolLimits& limits = {});

// ---------------------------------------------------------------------------------------------
// Errors: {error, {Kind, <<"message">>}}.

enum class ErrorKind { kBadRequest, kBusy, kNotFound, kUnavailable, kInternal, kTimeout };

std::string_view ErrorKindName(ErrorKind kind);  // "bad_request", ...
Term EncodeError(ErrorKind kind, std::string_view message);
// The kind a Status maps to: InvalidArgument -> bad_request, ResourceExhausted -> busy,
// NotFound -> not_found, Unavailable, FailedPrecondition and PermissionDenied -> unavailable,
// DeadlineExceeded -> timeout, anything else -> internal.
ErrorKind ErrorKindOf(const Status& status);
Term EncodeErrorStatus(const Status& status);

// ---------------------------------------------------------------------------------------------
// Replies.

Term EncodePingReply();                                   // {ok, pong}
Term EncodeOkReply();                                     // ok

// One watch as {watches} lists it.
struct WatchEntry {
  uint32_t id = 0;
  std::vector<std::string> patterns;
  std::optional<std::string> node;
  CaptureMode mode = CaptureMode::kAuto;
  std::optional<std::string> match_spec;
  std::string origin;  // "config" or "protocol"
  struct Beam {
    pid_t os_pid = 0;
    std::string node;   // its series' node label
    std::string state;  // "live", "attaching", "... retrying in 60 s"
  };
  std::vector<Beam> beams;
};
Term EncodeWatchAddReply(uint32_t id);                          // {ok, Id}
Term EncodeWatchesReply(const std::vector<WatchEntry>& watches);  // {ok, [...]}
// {ok, #{protocol => 2, versions => [1, 2], orion => <<V>>}}
Term EncodeVersionReply(std::string_view orion_version);

enum class BeamFlavor { kEmu, kJit };
// Where a BEAM's node name came from: epmd (registered, possibly at run time), or only its
// command line's -sname/-name (epmd does not know it).
enum class NodeSource { kNone, kCmdline, kEpmd };
struct BeamTarget {
  pid_t os_pid = 0;
  std::optional<std::string> node;  // its node name, if distributed
  NodeSource node_source = NodeSource::kNone;
  BeamFlavor flavor = BeamFlavor::kEmu;
  bool function_probes = false;  // function entry/return probes fire (USDT build, emu flavor)
};
struct TargetsResult {
  std::string node;  // this daemon's node name
  std::vector<BeamTarget> beams;
  std::vector<std::string> peers;  // peer daemons' node names
};
std::string_view NodeSourceName(NodeSource source);  // "epmd", "cmdline", "none"
Term EncodeTargetsReply(const TargetsResult& targets);
// A daemon's answer to {targets} (what `orion ui` lists as nodes), or its error as a Status.
StatusOr<TargetsResult> DecodeTargetsReply(const Term& reply, const ProtocolLimits& limits = {});

// What became of one BEAM of a host in a capture (`beams` in a node's entry of the reply).
// A host's capture counts what it can: one BEAM that lacks the module (the operator's own
// shell) or cannot be captured is reported here, not as the host's error.
enum class BeamOutcome {
  kCounted,          // captured; `calls` is what it counted
  kModuleNotLoaded,  // none of the patterns names a function of its loaded code
  kRefused,          // not captured, by rule: no USDT probes, not distributed, another
                     // capture holds it, a limit, or stopped by the overload guard
  kFailed,           // an error while attaching or reading
};
std::string_view BeamOutcomeName(BeamOutcome outcome);  // "counted", "module_not_loaded", ...
struct BeamStatus {
  pid_t os_pid = 0;
  std::optional<std::string> node;  // its node name, if distributed
  BeamFlavor flavor = BeamFlavor::kJit;
  std::optional<CaptureMode> mode;  // kProbes or kTracer: how it was captured; none if refused
  BeamOutcome status = BeamOutcome::kCounted;
  std::string reason;  // why (or, when counted, what to know: it exited, modules it lacked)
  uint64_t calls = 0;  // calls it counted (that returned), over every function
  bool operator==(const BeamStatus&) const = default;
};

// One daemon's part in a capture: ok, or why it has no results.
struct NodeStatus {
  std::string node;
  Status status;
  // With per_node => true: this node's own part of the result (`calls` in its node map).
  std::optional<std::vector<probes::FunctionStats>> functions;
  // The overload guard stopped this node's capture early at this many probe hits per second
  // (`stopped => #{reason => max_rate, rate => N}` in its node map).
  std::optional<uint64_t> stopped_at_rate;
  // Each BEAM of its host (capture replies; empty for a daemon that did not answer).
  std::vector<BeamStatus> beams;
};

struct CaptureResult {
  std::vector<probes::FunctionStats> functions;  // sorted by MFA; sketches use the kernel mapping
  std::vector<NodeStatus> nodes;
  probes::LostCounters lost;
  uint64_t duration_ms = 0;
};

// {ok, #{calls => [...], nodes => [...], lost => #{...}, duration_ms => N}} (docs/protocol.md).
Term EncodeCaptureReply(const CaptureResult& result);
// A peer's reply to a capture, validated: every sketch decodes, uses the kernel's mapping and
// agrees with the count, min, max and sum beside it.  An {error, {Kind, Msg}} reply comes back as
// a Status of the matching code with Msg.
StatusOr<CaptureResult> DecodeCaptureReply(const Term& reply, const ProtocolLimits& limits = {});
// {top, ...}: one entry per BEAM of every host, as `orion top --json` names the fields.
struct TopProcessEntry {
  std::string pid;                  // "<0.123.0>"
  std::optional<std::string> name;  // registered name or initial call, when known
  uint64_t cpu_ns = 0, sched_count = 0, queue_len = 0, queue_len_max = 0, msgs_in = 0, msgs_out = 0,
           gc_count = 0, reds = 0;
  std::optional<uint64_t> gc_p99_ns;
  // From the node (erlang:process_info/2), when it answered:
  std::optional<uint64_t> memory;                // bytes
  std::optional<std::string> current_function;  // "mod:fun/arity"
};
// One ETS table, from the node (ets:info/1).
struct TopEtsTable {
  std::string id;     // the name of a named table, else the tid as Erlang prints it
  std::string name;   // its name atom
  std::string owner;  // "<0.123.0>"
  uint64_t size = 0, memory = 0;  // objects, bytes
  std::string type;   // set, ordered_set, bag, duplicate_bag
};
struct TopEtsEntry {
  uint64_t tables = 0;              // ets:all/0's length
  uint64_t described = 0;           // tables described (at most 2,000)
  uint64_t memory = 0;              // bytes of the tables described
  std::vector<TopEtsTable> by_memory;  // the largest, at most the request's limit
};
struct TopPortEntry {
  std::string port;  // "#Port<0.12>"
  std::string name;  // "tcp_inet"
  uint64_t bytes_out = 0, commands = 0;
};
struct TopSchedulerEntry {
  uint32_t tid = 0;
  std::string kind;  // "normal", "dirty_cpu", "dirty_io", "other"
  uint64_t busy_ns = 0, idle_ns = 0, offcpu_ns = 0;
};
struct TopBeamEntry {
  std::string host;  // the daemon that measured it: 'orion@h1'
  pid_t os_pid = 0;
  std::optional<std::string> node;  // 'app@h1'
  BeamFlavor flavor = BeamFlavor::kJit;
  std::vector<TopProcessEntry> processes;  // the request's top `limit` by `sort`
  std::vector<TopPortEntry> ports;         // by bytes out, at most `limit`
  std::vector<TopSchedulerEntry> schedulers;
  std::string queue_source = "senders";  // "senders" (patch 0011) or "receiver_signals"
  std::optional<TopEtsEntry> ets;        // when the node answered
};
Term EncodeTopBeam(const TopBeamEntry& beam);
// {ok, #{beams => [Beam], nodes => [NodeStatus], duration_ms => N}}; `beams` are terms from
// EncodeTopBeam or from peers' replies (ReadTopReply).
Term EncodeTopReply(std::vector<Term> beams, const std::vector<NodeStatus>& nodes,
                    uint64_t duration_ms);
// A peer's reply to {top, ...}: its beam terms (checked to be maps, at most 64) and node
// statuses. The beam terms are passed on as they are (already bounded by the decoder): a
// daemon does not interpret them, it concatenates.
struct TopReplyParts {
  std::vector<Term> beams;
  std::vector<NodeStatus> nodes;
};
StatusOr<TopReplyParts> ReadTopReply(const Term& reply, const ProtocolLimits& limits = {});

// ---------------------------------------------------------------------------------------------
// Streams (version 2).

// One BEAM's part of an interval: what its targeted functions did in that interval (deltas).
struct NodeInterval {
  std::string node;   // the BEAM's node name; 'nonode@nohost' for a BEAM that is not distributed
  std::string host;   // the host it runs on (the daemon's host)
  uint64_t os_pid = 0;
  std::vector<probes::FunctionStats> functions;  // sorted by MFA; functions with no change left out
  uint64_t lost = 0;  // every loss counter of the interval added up
};
struct IntervalEvent {
  uint64_t seq = 0;     // 1, 2, ...: one per interval, none skipped on the daemon's side
  uint64_t end_ms = 0;  // Unix time the interval ended (the reporting daemon's clock)
  uint32_t interval_ms = 0;
  std::vector<NodeInterval> nodes;
  uint64_t dropped = 0;  // intervals of this stream not delivered so far (the caller was slow)
};
// A peer daemon or a BEAM lost mid-stream; the stream goes on with the others.
struct NodeDownEvent {
  std::string node;
  std::string reason;
};
enum class StopReason { kDone, kStopped, kOverload, kError };
std::string_view StopReasonName(StopReason reason);  // "done", "stopped", "overload", "error"
// The last message of a stream.
struct StoppedEvent {
  StopReason reason = StopReason::kDone;
  uint64_t rate = 0;   // kOverload: events per second the guard saw
  std::string error;   // kError: what went wrong
};
using StreamEvent = std::variant<IntervalEvent, NodeDownEvent, StoppedEvent>;

// {orion_stream, Id, Event}, with the version byte: the message a stream sends its caller.
std::vector<uint8_t> EncodeStreamMessage(const Term& id, const StreamEvent& event);
Term StreamMessageTerm(const Term& id, const StreamEvent& event);
struct StreamMessage {
  Term id;
  StreamEvent event;
};
// A stream message from a peer, validated like a capture reply: sketches of the kernel's
// mapping, counts that agree with them, at most max_stream_nodes nodes, max_functions
// functions each and max_reply_bins bins in all. InvalidArgument for anything else (including
// a message that is not {orion_stream, _, _}).
StatusOr<StreamMessage> DecodeStreamMessage(const Term& message, const ProtocolLimits& limits = {});

// {ok, Id}: the answer to {stream, ...}.
Term EncodeStreamReply(const Term& id);
// The Id of a peer's {ok, Id}, or its error as a Status.
StatusOr<Term> DecodeStreamReply(const Term& reply, const ProtocolLimits& limits = {});

// {ok, #{functions => [<<"lists:sort/1">>, ...], truncated => Bool}}.
struct FunctionsResult {
  std::vector<std::string> functions;  // sorted, unique, within the limits
  bool truncated = false;              // more matched than the limits let through
};
Term EncodeFunctionsReply(const FunctionsResult& result);
StatusOr<FunctionsResult> DecodeFunctionsReply(const Term& reply, const ProtocolLimits& limits = {});
// The union of several results, sorted, cut to max_function_names entries and
// max_function_bytes bytes (truncated if anything was cut or any part was truncated).
FunctionsResult MergeFunctions(std::vector<FunctionsResult> parts, const ProtocolLimits& limits = {});

// One result with every function merged exactly (bin by bin, counts and exact summaries added),
// counters summed, nodes concatenated, the longest duration.
StatusOr<CaptureResult> MergeCaptureResults(std::vector<CaptureResult> results);

}  // namespace orion::protocol
