#include "userspace/protocol/protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sketch/encoding/ddsketch_encoding.h"
#include "tests/unit/erlang/erlang_vm.h"

namespace orion::protocol {
namespace {

using erlang::testing::FromHex;
using erlang::testing::Hex;
using erlang::testing::RunErlang;
using erlang::testing::TermToBinary;

Term A(std::string_view name) {
  return Term::Atom(name);
}
Term I(int64_t value) {
  return Term::Integer(value);
}

Term DecodeOrDie(std::span<const uint8_t> bytes) {
  auto term = DecodeTerm(bytes, DecodeLimits{});
  EXPECT_TRUE(term.ok()) << term.status().ToString();
  return term.ok() ? *term : Term();
}

std::vector<std::string> Lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The envelope, with a real gen_server:call.

TEST(ProtocolTest, AnswersARealGenServerCall) {
  // A fake server receives what gen_server:call really sends (OTP 25: Tag = [alias | Ref]).
  const auto lines = Lines(RunErlang(R"(
      Parent = self(),
      Server = spawn(fun() -> receive M -> Parent ! {got, M} end end),
      spawn(fun() -> catch gen_server:call(Server, {ping}, 1000) end),
      {'$gen_call', {_, Tag}, _} = M = receive {got, Got} -> Got end,
      Hex = fun(T, V) -> binary:encode_hex(term_to_binary(T, [{minor_version, V}])) end,
      io:format("~s~n~s~n~s~n~s~n",
                [Hex(M, 1), Hex(M, 2), Hex(Tag, 1), Hex({Tag, {ok, pong}}, 2)]))"));
  ASSERT_EQ(lines.size(), 4u);
  const auto v1 = FromHex(lines[0]);
  const auto v2 = FromHex(lines[1]);

  const auto call2 = ParseIncomingCall(v2);
  ASSERT_TRUE(call2.ok()) << call2.status().ToString();
  ASSERT_TRUE(call2->request.ok()) << call2->request.status().ToString();
  EXPECT_TRUE(std::holds_alternative<PingRequest>(*call2->request));
  EXPECT_EQ(call2->call.from.node, "nonode@nohost");
  EXPECT_EQ(call2->call.tag.kind(), TermKind::kRaw);
  // The reply is byte for byte what Erlang would send.
  EXPECT_EQ(Hex(EncodeGenReply(call2->call.tag, EncodePingReply())), lines[3]);

  // The default minor version writes the tag's atom as ATOM_EXT; the tag is echoed as it came.
  const auto call1 = ParseIncomingCall(v1);
  ASSERT_TRUE(call1.ok()) << call1.status().ToString();
  EXPECT_EQ(Hex(call1->call.tag.bytes()), lines[2].substr(2));  // without the version byte
  const auto reply = EncodeGenReply(call1->call.tag, EncodePingReply());
  EXPECT_EQ(RunErlang("{T, R} = binary_to_term(binary:decode_hex(<<\"" + Hex(reply) +
                      "\">>)), io:format(\"~w\", [{T =:= binary_to_term(binary:decode_hex(<<\"" +
                      lines[2] + "\">>)), R}])"),
            "{true,{ok,pong}}");
}

TEST(ProtocolTest, GenCallAndReplyRoundTrip) {
  const ErlangPid self{.node = "orion@h1", .id = 42, .serial = 1, .creation = 7};
  const Term tag = Term::ImproperList(
      {A("alias")}, Term::Reference({.node = "orion@h1", .creation = 7, .ids = {1, 2, 3}}));
  const CaptureRequest capture{
      .patterns = {"lists:sort/1"}, .duration_ms = 100, .scope = Scope::kLocal};
  const auto bytes = EncodeGenCall(self, tag, EncodeRequest(capture));
  const auto in = ParseIncomingCall(bytes);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->call.from, self);
  EXPECT_EQ(Hex(in->call.tag.bytes()), Hex(EncodeTermBody(tag)));
  ASSERT_TRUE(in->request.ok());
  EXPECT_EQ(std::get<CaptureRequest>(*in->request), capture);

  const auto reply = ParseGenReply(DecodeOrDie(EncodeGenReply(in->call.tag, EncodePingReply())));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->tag, tag);
  EXPECT_EQ(reply->reply, EncodePingReply());
}

TEST(ProtocolTest, MessagesThatAreNotCallsAreDropped) {
  for (const Term& message :
       {Term::Tuple({A("$gen_cast"), Term::Tuple({A("ping")})}),
        Term::Tuple({A("$gen_call"), Term::Tuple({A("not_a_pid"), A("tag")}), A("x")}),
        Term::Tuple({A("$gen_call"), A("from"), Term::Tuple({A("ping")})}), A("ping")}) {
    const auto in = ParseIncomingCall(EncodeTerm(message));
    ASSERT_FALSE(in.ok()) << FormatTerm(message);
    EXPECT_EQ(in.status().message().rfind("not a gen_server call", 0), 0u) << in.status().message();
  }
  EXPECT_FALSE(ParseIncomingCall(std::vector<uint8_t>{131, 104}).ok());
}

TEST(ProtocolTest, ABadRequestInAGoodEnvelopeIsAnswered) {
  const ErlangPid from{.node = "a@b", .id = 1};
  const auto in = ParseIncomingCall(EncodeGenCall(from, A("tag"), Term::Tuple({A("reboot")})));
  ASSERT_TRUE(in.ok());
  ASSERT_FALSE(in->request.ok());
  const Term reply =
      DecodeOrDie(EncodeGenReply(in->call.tag, EncodeErrorStatus(in->request.status())));
  EXPECT_EQ(FormatTerm(reply),
            "{tag,{error,{bad_request,<<\"unknown request reboot (known: ping, version, targets, "
            "capture, top, watch_add, watches, watch_remove, stream, stream_stop, functions)\">>}}}");
}

// ---------------------------------------------------------------------------------------------
// Requests.

TEST(ProtocolTest, ParsesRequestsWrittenInErlang) {
  const auto bytes = TermToBinary({
      "{ping}",
      "{version}",
      "{targets}",
      // Elixir: GenServer.call(..., {:capture, %{patterns: ["lists:sort/1"], duration_ms: 5000}})
      "{capture, #{patterns => [<<\"lists:sort/1\">>], duration_ms => 5000}}",
      // Erlang strings, unicode included, and every option.
      "{capture, #{patterns => [\"ets:lookup/2\", [16#151 | \":f/1\"], [233 | \":g/1\"], "
      "<<\"m\">>], "
      "duration_ms => 600000, node => 'app@host', scope => local, max_functions => 64}}",
      "{capture, #{patterns => [<<\"m\">>], duration_ms => 5, per_node => true}}",
      "{capture, #{patterns => [<<\"m\">>], duration_ms => 5, max_rate => 0}}",
      "{capture, #{patterns => [<<\"m\">>], duration_ms => 5, mode => tracer, "
      "match_spec => <<\"[{[nadia, '_'], [], []}]\">>}}",
      "{capture, #{patterns => [<<\"m\">>], duration_ms => 5, mode => probes}}",
      "{top, #{duration_ms => 1, scope => cluster}}",
      "{top, #{duration_ms => 5, sort => queue, limit => 3}}",
      "{top, #{duration_ms => 5, sort => reds}}",
      "{watch_add, #{patterns => [<<\"lists:sort/1\">>]}}",
      "{watch_add, #{patterns => [\"m\"], node => 'app@host', mode => tracer, "
      "match_spec => <<\"[{[nadia], [], []}]\">>}}",
      "{watches}",
      "{watch_remove, 7}",
  });
  const std::vector<Request> expected = {
      PingRequest{},
      VersionRequest{},
      TargetsRequest{},
      CaptureRequest{.patterns = {"lists:sort/1"}, .duration_ms = 5000},
      CaptureRequest{.patterns = {"ets:lookup/2", "\xc5\x91:f/1", "\xc3\xa9:g/1", "m"},
                     .duration_ms = 600000,
                     .node = "app@host",
                     .scope = Scope::kLocal,
                     .max_functions = 64},
      CaptureRequest{.patterns = {"m"}, .duration_ms = 5, .per_node = true},
      CaptureRequest{.patterns = {"m"}, .duration_ms = 5, .max_rate = 0},
      CaptureRequest{.patterns = {"m"},
                     .duration_ms = 5,
                     .mode = CaptureMode::kTracer,
                     .match_spec = "[{[nadia, '_'], [], []}]"},
      CaptureRequest{.patterns = {"m"}, .duration_ms = 5, .mode = CaptureMode::kProbes},
      TopRequest{.duration_ms = 1, .scope = Scope::kCluster},
      TopRequest{.duration_ms = 5, .sort = TopSort::kQueue, .limit = 3},
      TopRequest{.duration_ms = 5, .sort = TopSort::kReds},
      WatchAddRequest{.patterns = {"lists:sort/1"}},
      WatchAddRequest{.patterns = {"m"},
                      .node = "app@host",
                      .mode = CaptureMode::kTracer,
                      .match_spec = "[{[nadia], [], []}]"},
      WatchesRequest{},
      WatchRemoveRequest{.id = 7},
  };
  ASSERT_EQ(bytes.size(), expected.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto request = ParseRequest(DecodeOrDie(bytes[i]));
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    EXPECT_EQ(*request, expected[i]) << i;
    // And back: EncodeRequest is what a daemon sends its peers.
    const auto again = ParseRequest(DecodeOrDie(EncodeTerm(EncodeRequest(*request))));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, expected[i]) << i;
  }
}

TEST(ProtocolTest, RejectsBadRequestsWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ping",
       "a request is a tuple such as {ping} or {capture, #{patterns => "
       "[<<\"lists:sort/1\">>], duration_ms => 5000}}, not ping"},
      {"{}", "a request is a tuple such as {ping}"},
      {"{pong}",
       "unknown request pong (known: ping, version, targets, capture, top, watch_add, watches, "
       "watch_remove, stream, stream_stop, functions)"},
      {"{watch_add, #{}}", "watch_add: missing key patterns"},
      {"{watch_add, #{patterns => [<<\"a\">>], duration_ms => 5}}",
       "watch_add: unknown key duration_ms (known: patterns, node, mode, match_spec)"},
      {"{watch_add, #{patterns => [<<\"a\">>], mode => probes, match_spec => <<\"[]\">>}}",
       "watch_add: a match_spec needs mode tracer or auto"},
      {"{watch_add, #{patterns => [<<\"a\">>], mode => jit}}",
       "watch_add: mode must be auto, probes or tracer, not jit"},
      {"{watches, 1}", "{watches} takes no arguments"},
      {"{watch_remove, 0}", "watch_remove: id must be an integer from 1 to 4294967295, not 0"},
      {"{watch_remove}", "watch_remove takes the watch's id"},
      {"{ping, 1}", "{ping} takes no arguments"},
      {"{capture}", "capture takes one map of options"},
      {"{capture, [1]}", "capture takes a map of options"},
      {"{capture, #{duration_ms => 5000}}", "capture: missing key patterns"},
      {"{capture, #{patterns => [<<\"a\">>]}}", "capture: missing key duration_ms"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, nodes => x}}",
       "capture: unknown key nodes (known: patterns, duration_ms, node, scope, max_functions, "
       "per_node, max_rate, mode, match_spec)"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, mode => jit}}",
       "capture: mode must be auto, probes or tracer, not jit"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, match_spec => \"[{'_',[],[]}]\"}}",
       "capture: match_spec must be a binary of 1 to 4096 bytes"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, match_spec => <<>>}}",
       "capture: match_spec must be a binary"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, match_spec => <<0:4097/unit:8>>}}",
       "capture: match_spec must be a binary of 1 to 4096 bytes"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, mode => probes, "
       "match_spec => <<\"[{'_',[],[]}]\">>}}",
       "capture: a match_spec needs mode tracer or auto"},
      {"{capture, #{<<\"patterns\">> => [<<\"a\">>], duration_ms => 5}}",
       "capture: unknown key <<\"patterns\">>"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 0}}",
       "capture: duration_ms must be an integer from 1 to 600000, not 0"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 600001}}",
       "capture: duration_ms must be an integer from 1 to 600000, not 600001"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => -1}}", "not -1"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 1.5}}", "not 1.5"},
      {"{capture, #{patterns => [], duration_ms => 5}}", "capture: patterns must be a non-empty"},
      {"{capture, #{patterns => \"lists:sort/1\", duration_ms => 5}}",
       "capture: patterns must be a non-empty list"},
      {"{capture, #{patterns => [a], duration_ms => 5}}",
       "capture: patterns[0] must be a binary or a string, not a"},
      {"{capture, #{patterns => [<<>>], duration_ms => 5}}", "capture: patterns[0] is empty"},
      {"{capture, #{patterns => [<<\"a\">>, [-1]], duration_ms => 5}}",
       "capture: patterns[1] must be a binary or a string"},
      {"{capture, #{patterns => [<<\"a\", 10>>], duration_ms => 5}}",
       "capture: patterns[0] holds a control character"},
      {"{capture, #{patterns => [list_to_binary(lists:duplicate(256, $a))], duration_ms => 5}}",
       "capture: patterns[0] is 256 bytes long (at most 255)"},
      {"{capture, #{patterns => lists:duplicate(33, <<\"a\">>), duration_ms => 5}}",
       "capture: 33 patterns (at most 32)"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, node => app}}",
       "capture: node must be a node name such as 'app@host', not app"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, node => <<\"a@b\">>}}",
       "capture: node must be a node name"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, scope => world}}",
       "capture: scope must be cluster or local, not world"},
      {"{capture, #{patterns => [<<\"a\">>], duration_ms => 5, max_functions => 4097}}",
       "capture: max_functions must be an integer from 1 to 4096, not 4097"},
      {"{top, #{duration_ms => 5, patterns => []}}",
       "top: unknown key patterns (known: duration_ms, node, scope, sort, limit)"},
  };
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back(c.first);
  const auto bytes = TermToBinary(expressions);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto request = ParseRequest(DecodeOrDie(bytes[i]));
    ASSERT_FALSE(request.ok()) << cases[i].first;
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(request.status().message().find(cases[i].second), std::string::npos)
        << cases[i].first << " -> " << request.status().message();
    EXPECT_EQ(ErrorKindOf(request.status()), ErrorKind::kBadRequest);
  }
}

TEST(ProtocolTest, LimitsAreConfigurable) {
  ProtocolLimits limits;
  limits.max_patterns = 1;
  limits.max_duration_ms = 10;
  const Term two = EncodeRequest(CaptureRequest{.patterns = {"a", "b"}, .duration_ms = 5});
  EXPECT_EQ(ParseRequest(two, limits).status().message(), "capture: 2 patterns (at most 1)");
  const Term slow = EncodeRequest(TopRequest{.duration_ms = 11});
  EXPECT_EQ(ParseRequest(slow, limits).status().message(),
            "top: duration_ms must be an integer from 1 to 10, not 11");
}

// ---------------------------------------------------------------------------------------------
// Replies and errors.

TEST(ProtocolTest, RepliesAreWhatErlangWouldEncode) {
  const TargetsResult targets{.node = "orion@h1",
                              .beams = {{.os_pid = 123,
                                         .node = "app@h1",
                                         .node_source = NodeSource::kEpmd,
                                         .flavor = BeamFlavor::kEmu,
                                         .function_probes = true},
                                        {.os_pid = 456, .flavor = BeamFlavor::kJit}},
                              .peers = {"orion@h2"}};
  const std::vector<std::pair<Term, std::string>> cases = {
      {EncodePingReply(), "{ok, pong}"},
      {EncodeVersionReply("0.1.0"),
       "{ok, #{protocol => 2, versions => [1, 2], orion => <<\"0.1.0\">>}}"},
      {EncodeTargetsReply(targets),
       "{ok, #{node => 'orion@h1', beams => [#{os_pid => 123, node => 'app@h1', node_source => "
       "epmd, flavor => emu, function_probes => true}, #{os_pid => 456, node => undefined, "
       "node_source => none, flavor => jit, function_probes => false}], "
       "peers => [#{node => 'orion@h2'}]}}"},
      {EncodeWatchAddReply(3), "{ok, 3}"},
      {EncodeWatchesReply({{.id = 3,
                            .patterns = {"lists:sort/1"},
                            .node = "app@h1",
                            .origin = "protocol",
                            .beams = {{.os_pid = 77, .node = "app@h1", .state = "live"}}}}),
       "{ok, [#{id => 3, patterns => [<<\"lists:sort/1\">>], node => 'app@h1', mode => auto, "
       "origin => protocol, beams => [#{os_pid => 77, node => <<\"app@h1\">>, "
       "state => <<\"live\">>}]}]}"},
      {EncodeOkReply(), "ok"},
      {EncodeError(ErrorKind::kBusy, "a capture is running"),
       "{error, {busy, <<\"a capture is running\">>}}"},
      {EncodeErrorStatus(DeadlineExceeded("peer orion@h2 did not answer")),
       "{error, {timeout, <<\"peer orion@h2 did not answer\">>}}"},
  };
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back(c.second);
  const auto expected = TermToBinary(expressions);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Hex(EncodeTerm(cases[i].first)), Hex(expected[i])) << cases[i].second;
  }
}

// What a client (orion ui's DaemonLink) decodes is what the daemon encoded, node_source included.
TEST(ProtocolTest, TargetsReplyRoundTrips) {
  const TargetsResult targets{.node = "orion@h1",
                              .beams = {{.os_pid = 123,
                                         .node = "rabbit@h1",
                                         .node_source = NodeSource::kEpmd,
                                         .flavor = BeamFlavor::kJit},
                                        {.os_pid = 124,
                                         .node = "quiet@h1",
                                         .node_source = NodeSource::kCmdline,
                                         .flavor = BeamFlavor::kEmu,
                                         .function_probes = true},
                                        {.os_pid = 456, .flavor = BeamFlavor::kJit}},
                              .peers = {"orion@h2"}};
  auto decoded = DecodeTargetsReply(EncodeTargetsReply(targets));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->beams.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(decoded->beams[i].os_pid, targets.beams[i].os_pid);
    EXPECT_EQ(decoded->beams[i].node, targets.beams[i].node);
    EXPECT_EQ(decoded->beams[i].node_source, targets.beams[i].node_source);
    EXPECT_EQ(decoded->beams[i].flavor, targets.beams[i].flavor);
    EXPECT_EQ(decoded->beams[i].function_probes, targets.beams[i].function_probes);
  }
  EXPECT_EQ(decoded->peers, targets.peers);
}

TEST(ProtocolTest, ErrorKindsFollowStatusCodes) {
  EXPECT_EQ(ErrorKindOf(InvalidArgument("x")), ErrorKind::kBadRequest);
  EXPECT_EQ(ErrorKindOf(ResourceExhausted("x")), ErrorKind::kBusy);
  EXPECT_EQ(ErrorKindOf(NotFound("x")), ErrorKind::kNotFound);
  EXPECT_EQ(ErrorKindOf(Unavailable("x")), ErrorKind::kUnavailable);
  EXPECT_EQ(ErrorKindOf(FailedPrecondition("x")), ErrorKind::kUnavailable);
  EXPECT_EQ(ErrorKindOf(PermissionDenied("x")), ErrorKind::kUnavailable);
  EXPECT_EQ(ErrorKindOf(DeadlineExceeded("x")), ErrorKind::kTimeout);
  EXPECT_EQ(ErrorKindOf(Internal("x")), ErrorKind::kInternal);
}

// ---------------------------------------------------------------------------------------------
// Capture results: encode, decode, merge.

probes::FunctionStats Function(std::string mfa, std::initializer_list<uint64_t> wall_ns) {
  probes::FunctionStats f;
  f.mfa = std::move(mfa);
  for (uint64_t ns : wall_ns) {
    EXPECT_TRUE(f.wall.add_integer(ns).ok());
    EXPECT_TRUE(f.cpu.add_integer(ns / 2).ok());
  }
  return f;
}

void ExpectSameSketch(const sketch::CountSketch& a, const sketch::CountSketch& b,
                      const std::string& what) {
  EXPECT_EQ(a.count(), b.count()) << what;
  EXPECT_EQ(a.zero_count(), b.zero_count()) << what;
  EXPECT_TRUE(b.negative_store().empty()) << what;
  size_t bins = 0;
  a.positive_store().for_each([&](int index, uint64_t count) {
    ++bins;
    EXPECT_EQ(b.positive_store().count_at(index), count) << what << " bin " << index;
  });
  size_t other_bins = 0;
  b.positive_store().for_each([&](int, uint64_t) { ++other_bins; });
  EXPECT_EQ(bins, other_bins) << what;
  if (!a.empty()) {
    EXPECT_EQ(a.min(), b.min()) << what;
    EXPECT_EQ(a.max(), b.max()) << what;
  }
  EXPECT_EQ(a.sum(), b.sum()) << what;
}

void ExpectSameResult(const CaptureResult& a, const CaptureResult& b) {
  ASSERT_EQ(a.functions.size(), b.functions.size());
  for (size_t i = 0; i < a.functions.size(); ++i) {
    const auto& fa = a.functions[i];
    const auto& fb = b.functions[i];
    EXPECT_EQ(fa.mfa, fb.mfa);
    ExpectSameSketch(fa.wall, fb.wall, fa.mfa + " wall");
    ExpectSameSketch(fa.cpu, fb.cpu, fa.mfa + " cpu");
    EXPECT_EQ(fa.exceptions, fb.exceptions) << fa.mfa;
    EXPECT_EQ(fa.tail_calls, fb.tail_calls) << fa.mfa;
    EXPECT_EQ(fa.exits, fb.exits) << fa.mfa;
  }
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    EXPECT_EQ(a.nodes[i].node, b.nodes[i].node);
    EXPECT_EQ(a.nodes[i].status.ok(), b.nodes[i].status.ok());
    EXPECT_EQ(a.nodes[i].status.message(), b.nodes[i].status.message());
    ASSERT_EQ(a.nodes[i].functions.has_value(), b.nodes[i].functions.has_value());
    if (a.nodes[i].functions) {
      ASSERT_EQ(a.nodes[i].functions->size(), b.nodes[i].functions->size());
      for (size_t f = 0; f < a.nodes[i].functions->size(); ++f) {
        ExpectSameSketch((*a.nodes[i].functions)[f].wall, (*b.nodes[i].functions)[f].wall,
                         (*a.nodes[i].functions)[f].mfa + " per node");
      }
    }
  }
  EXPECT_EQ(EncodeTerm(EncodeCaptureReply(a)), EncodeTerm(EncodeCaptureReply(b)));
}

CaptureResult SampleResult() {
  CaptureResult result;
  result.functions = {Function("ets:lookup/2", {}), Function("lists:sort/1", {1200, 1500, 90000})};
  result.functions[0].exceptions = 5;  // only exceptions: count 0
  result.functions[1].exceptions = 2;
  result.functions[1].tail_calls = 3;
  result.functions[1].exits = 1;
  result.nodes = {{"orion@h1", OkStatus()}, {"orion@h2", Unavailable("connection refused")}};
  result.lost.frames_evicted = 4;
  result.lost.hash_collisions = UINT64_MAX;
  result.duration_ms = 5000;
  return result;
}

CaptureResult DecodeReplyOrDie(const Term& reply, const ProtocolLimits& limits = {}) {
  auto result = DecodeCaptureReply(DecodeOrDie(EncodeTerm(reply)), limits);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : CaptureResult{};
}

TEST(ProtocolTest, CaptureReplyRoundTrips) {
  const CaptureResult result = SampleResult();
  ExpectSameResult(DecodeReplyOrDie(EncodeCaptureReply(result)), result);
}

TEST(ProtocolTest, TopRepliesCarryEveryBeamAndNode) {
  TopBeamEntry beam;
  beam.host = "orion@h1";
  beam.os_pid = 4242;
  beam.node = "app@h1";
  beam.processes.push_back({.pid = "<0.85.0>", .name = "busy", .cpu_ns = 7, .queue_len_max = 9});
  beam.processes.push_back({.pid = "<0.86.0>",
                            .reds = 4000,
                            .memory = 2688,
                            .current_function = "timer:sleep/1"});
  beam.ets = TopEtsEntry{.tables = 21,
                         .described = 21,
                         .memory = 90000,
                         .by_memory = {{"ac_tab", "ac_tab", "<0.45.0>", 6, 2000, "set"}}};
  beam.ports.push_back({"#Port<0.12>", "tcp_inet", 1000, 3});
  beam.schedulers.push_back({977, "normal", 5, 6, 1});
  const Term reply =
      EncodeTopReply({EncodeTopBeam(beam)}, {NodeStatus{"orion@h1", OkStatus(), std::nullopt}}, 5);
  const auto parts = ReadTopReply(DecodeOrDie(EncodeTerm(reply)));
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->beams.size(), 1u);
  EXPECT_EQ(parts->beams[0], EncodeTopBeam(beam));
  const Term* processes = parts->beams[0].map_find("processes");
  ASSERT_NE(processes, nullptr);
  EXPECT_EQ(processes->elements()[0].map_find("name")->text(), "busy");
  EXPECT_TRUE(processes->elements()[0].map_find("memory")->is_atom("undefined"));
  EXPECT_EQ(processes->elements()[1].map_find("current_function")->text(), "timer:sleep/1");
  const Term* ets = parts->beams[0].map_find("ets");
  ASSERT_NE(ets, nullptr);
  EXPECT_EQ(ets->map_find("by_memory")->elements()[0].map_find("id")->text(), "ac_tab");
  ASSERT_EQ(parts->nodes.size(), 1u);
  EXPECT_TRUE(parts->nodes[0].status.ok());
  // An error reply comes back as its Status; a beam that is not a map is refused.
  EXPECT_EQ(ReadTopReply(EncodeError(ErrorKind::kBusy, "later")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_FALSE(ReadTopReply(EncodeTopReply({Term::Atom("x")}, {}, 5)).ok());
  // A bad sort is a bad request that names it.
  const auto bad = ParseRequest(DecodeOrDie(EncodeTerm(
      Term::Tuple({Term::Atom("top"), Term::Map({{Term::Atom("duration_ms"), Term::Integer(5)},
                                                 {Term::Atom("sort"), Term::Atom("memory")}})}))));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sort must be cpu, reds, queue, gc or sends"), std::string::npos);
}

TEST(ProtocolTest, PerNodeResultsRoundTripInTheNodeMaps) {
  CaptureResult result = SampleResult();
  result.nodes[0].functions = result.functions;  // per_node => true: orion@h1's own part
  result.nodes[0].stopped_at_rate = 823077;      // its overload guard stopped it
  const CaptureResult decoded = DecodeReplyOrDie(EncodeCaptureReply(result));
  EXPECT_EQ(decoded.nodes[0].stopped_at_rate, std::optional<uint64_t>(823077));
  EXPECT_FALSE(decoded.nodes[1].stopped_at_rate.has_value());
  ExpectSameResult(decoded, result);
  ASSERT_TRUE(decoded.nodes[0].functions.has_value());
  EXPECT_EQ(decoded.nodes[0].functions->size(), 2u);
  EXPECT_FALSE(decoded.nodes[1].functions.has_value()) << "a failed node has no part";
}

TEST(ProtocolTest, CaptureReplyReadsInErlang) {
  const auto bytes = EncodeTerm(EncodeCaptureReply(SampleResult()));
  EXPECT_EQ(RunErlang(R"({ok, #{calls := [Empty, Sort], nodes := Nodes, lost := Lost,
                                duration_ms := D}} = binary_to_term(binary:decode_hex(<<")" +
                      Hex(bytes) + R"(">>)),
      io:format("~p~n", [{D, Nodes, maps:get(hash_collisions, Lost),
                          maps:with([mfa, count, min_ns, max_ns, sum_ns, p50_ns, exceptions], Sort),
                          maps:with([mfa, count, min_ns, p99_ns, sum_ns], Empty),
                          maps:get(count, maps:get(cpu, Sort))}]))"),
            "{5000,\n"
            " [#{beams => [],node => orion@h1,status => ok},\n"
            "  #{beams => [],error => <<\"connection refused\">>,node => orion@h2,\n"
            "    status => error}],\n"
            " 18446744073709551615,\n"
            " #{count => 3,exceptions => 2,max_ns => 90000,mfa => <<\"lists:sort/1\">>,\n"
            "   min_ns => 1200,p50_ns => 1504,sum_ns => 92700},\n"
            " #{count => 0,mfa => <<\"ets:lookup/2\">>,min_ns => undefined,\n"
            "   p99_ns => undefined,sum_ns => 0},\n"
            " 3}\n");
}

// A host with the app, the shell that asked (no such module there), a BEAM that is not
// distributed and one whose capture failed.
std::vector<BeamStatus> SampleBeams() {
  return {{.os_pid = 4242,
           .node = "app@h1",
           .flavor = BeamFlavor::kEmu,
           .mode = CaptureMode::kProbes,
           .status = BeamOutcome::kCounted,
           .calls = 1000},
          {.os_pid = 4343,
           .node = "shell@h1",
           .flavor = BeamFlavor::kJit,
           .mode = CaptureMode::kTracer,
           .status = BeamOutcome::kModuleNotLoaded,
           .reason = "cannot load module 'Elixir.Bar.Repo': nofile"},
          {.os_pid = 4444,
           .flavor = BeamFlavor::kJit,
           .status = BeamOutcome::kRefused,
           .reason = "pid 4444 is not a distributed node"},
          {.os_pid = 4545,
           .node = "rabbit@h1",
           .flavor = BeamFlavor::kJit,
           .mode = CaptureMode::kTracer,
           .status = BeamOutcome::kFailed,
           .reason = "tracer mode on rabbit@h1: is the cookie right?"}};
}

TEST(ProtocolTest, BeamStatusesRoundTripInTheNodeMaps) {
  CaptureResult result = SampleResult();
  result.nodes[0].beams = SampleBeams();
  result.nodes[1].beams = {SampleBeams()[3]};  // a host none of whose BEAMs could be captured
  const CaptureResult decoded = DecodeReplyOrDie(EncodeCaptureReply(result));
  ASSERT_EQ(decoded.nodes.size(), 2u);
  EXPECT_EQ(decoded.nodes[0].beams, SampleBeams());
  EXPECT_EQ(decoded.nodes[1].beams, std::vector<BeamStatus>{SampleBeams()[3]});
  ExpectSameResult(decoded, result);
  EXPECT_EQ(BeamOutcomeName(BeamOutcome::kModuleNotLoaded), "module_not_loaded");
}

TEST(ProtocolTest, BeamStatusesAreWhatErlangWouldEncode) {
  CaptureResult result;
  result.nodes = {{"orion@h1", OkStatus()}};
  result.nodes[0].beams = {SampleBeams()[0], SampleBeams()[2]};
  const auto expected = TermToBinary(
      {"{ok, #{calls => [], duration_ms => 0, "
       "lost => #{frames_evicted => 0, depth_overflow => 0, functions_over_limit => 0, "
       "mfa_truncated => 0, read_errors => 0, recursion_misses => 0, hash_collisions => 0}, "
       "nodes => [#{node => 'orion@h1', status => ok, beams => ["
       "#{os_pid => 4242, node => 'app@h1', flavor => emu, mode => probes, status => counted, "
       "reason => <<>>, calls => 1000}, "
       "#{os_pid => 4444, node => undefined, flavor => jit, mode => undefined, status => refused, "
       "reason => <<\"pid 4444 is not a distributed node\">>, calls => 0}]}]}}"});
  EXPECT_EQ(Hex(EncodeTerm(EncodeCaptureReply(result))), Hex(expected[0]));
}

TEST(ProtocolTest, BeamStatusesReadInErlangAndDecodeFromErlang) {
  // What a shell sees (the sum of what was counted, each BEAM's status) ...
  CaptureResult result = SampleResult();
  result.nodes[0].beams = SampleBeams();
  const auto bytes = EncodeTerm(EncodeCaptureReply(result));
  EXPECT_EQ(RunErlang(R"({ok, #{nodes := [#{beams := Beams} | _]}} =
                             binary_to_term(binary:decode_hex(<<")" +
                      Hex(bytes) + R"(">>)),
      [io:format("~p ~p ~p ~p ~p~n", [P, N, S, C, R]) ||
       #{os_pid := P, node := N, status := S, calls := C, reason := R} <- Beams])"),
            "4242 app@h1 counted 1000 <<>>\n"
            "4343 shell@h1 module_not_loaded 0 <<\"cannot load module 'Elixir.Bar.Repo': "
            "nofile\">>\n"
            "4444 undefined refused 0 <<\"pid 4444 is not a distributed node\">>\n"
            "4545 rabbit@h1 failed 0 <<\"tracer mode on rabbit@h1: is the cookie right?\">>\n");
  // ... and a peer's reply written in Erlang, with a key from a newer protocol in a BEAM's map
  // (ignored) and a node from before `beams` (none).
  const auto peer = TermToBinary(
      {"{ok, #{calls => [], duration_ms => 5, lost => #{frames_evicted => 0, depth_overflow => 0, "
       "functions_over_limit => 0, mfa_truncated => 0, read_errors => 0, recursion_misses => 0, "
       "hash_collisions => 0}, nodes => ["
       "#{node => 'orion@h1', status => ok, beams => [#{os_pid => 4343, node => 'shell@h1', "
       "flavor => jit, mode => tracer, status => module_not_loaded, calls => 0, "
       "reason => <<\"cannot load module 'Elixir.Bar.Repo': nofile\">>, rss => 7}]}, "
       "#{node => 'orion@h2', status => ok}]}}"});
  const auto decoded = DecodeCaptureReply(DecodeOrDie(peer[0]));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->nodes.size(), 2u);
  EXPECT_EQ(decoded->nodes[0].beams, std::vector<BeamStatus>{SampleBeams()[1]});
  EXPECT_TRUE(decoded->nodes[1].beams.empty());
}

TEST(ProtocolTest, RejectsHostileBeamStatuses) {
  const std::string good =
      "#{os_pid => 1, node => undefined, flavor => emu, mode => probes, status => counted, "
      "reason => <<>>, calls => 3}";
  ProtocolLimits two_beams;
  two_beams.max_beams = 2;
  ProtocolLimits short_errors;
  short_errors.max_error_length = 4;
  struct Case {
    std::string beams;  // the host's `beams`, in Erlang
    ProtocolLimits limits;
    std::string error;  // "ok": it decodes
  };
  const std::vector<Case> cases = {
      {"[" + good + "]", {}, "ok"},
      {"x", {}, "nodes[0]: beams must be a list, not x"},
      {"[x]", {}, "nodes[0]: beams[0] must be a map"},
      {"[#{os_pid => 1}]", {}, "nodes[0]: beams[0]: missing key node"},
      {"[maps:put(status, melted, " + good + ")]",
       {},
       "nodes[0]: beams[0]: status must be one of counted, module_not_loaded, refused, failed, "
       "not melted"},
      {"[maps:put(os_pid, 0, " + good + ")]",
       {},
       "nodes[0]: beams[0]: os_pid must be an integer from 1 to 2147483647, not 0"},
      {"[maps:put(node, <<\"app@h\">>, " + good + ")]",
       {},
       "nodes[0]: beams[0]: node must be a node name such as 'app@host', not <<\"app@h\">>"},
      {"[maps:put(calls, -1, " + good + ")]",
       {},
       "nodes[0]: beams[0]: calls must be a non-negative integer, not -1"},
      {"[maps:put(reason, reason, " + good + ")]",
       {},
       "nodes[0]: beams[0]: reason must be a binary, not reason"},
      {"[" + good + ", " + good + ", " + good + "]", two_beams, "nodes[0]: 3 beams (at most 2)"},
      // A long reason is kept only up to max_error_length.
      {"[maps:put(reason, <<\"0123456789\">>, " + good + ")]", short_errors, "ok"},
  };
  std::vector<std::string> replies;
  for (const Case& c : cases) {
    replies.push_back(
        "{ok, #{calls => [], duration_ms => 5, lost => #{frames_evicted => 0, "
        "depth_overflow => 0, functions_over_limit => 0, mfa_truncated => 0, read_errors => 0, "
        "recursion_misses => 0, hash_collisions => 0}, nodes => [#{node => 'orion@h1', "
        "status => ok, beams => " +
        c.beams + "}]}}");
  }
  const auto bytes = TermToBinary(replies);
  ASSERT_EQ(bytes.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto decoded = DecodeCaptureReply(DecodeOrDie(bytes[i]), cases[i].limits);
    EXPECT_EQ(decoded.ok() ? std::string("ok") : decoded.status().message(), cases[i].error)
        << cases[i].beams;
  }
  const auto truncated = DecodeCaptureReply(DecodeOrDie(bytes.back()), short_errors);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->nodes[0].beams[0].reason, "0123...");
}

// Replaces `key` in the map of the first call of a capture reply.
Term WithCallField(const Term& reply, std::string_view key, Term value) {
  const Term& map = reply.elements()[1];
  std::vector<std::pair<Term, Term>> top(map.map_entries().begin(), map.map_entries().end());
  for (auto& [k, v] : top) {
    if (!k.is_atom("calls")) continue;
    std::vector<Term> calls(v.elements().begin(), v.elements().end());
    std::vector<std::pair<Term, Term>> fields(calls[0].map_entries().begin(),
                                              calls[0].map_entries().end());
    bool replaced = false;
    for (auto& [fk, fv] : fields) {
      if (fk.is_atom(key)) {
        fv = value;
        replaced = true;
      }
    }
    if (!replaced) fields.emplace_back(A(key), value);
    calls[0] = Term::Map(std::move(fields));
    v = Term::List(std::move(calls));
  }
  return Term::Tuple({A("ok"), Term::Map(std::move(top))});
}

TEST(ProtocolTest, RejectsHostileCaptureReplies) {
  CaptureResult one;
  one.functions = {Function("lists:sort/1", {1000, 2000})};
  const Term good = EncodeCaptureReply(one);
  const auto error = [](const Term& reply, const ProtocolLimits& limits = {}) {
    const auto decoded = DecodeCaptureReply(DecodeOrDie(EncodeTerm(reply)), limits);
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  EXPECT_EQ(error(good), "ok");
  EXPECT_EQ(error(WithCallField(good, "count", Term::Unsigned(UINT64_MAX))),
            "calls[0] (lists:sort/1): count 18446744073709551615 but its sketch holds 2");
  EXPECT_EQ(error(WithCallField(good, "max_ns", I(1))),
            "calls[0] (lists:sort/1): max_ns 1 disagrees with its sketch");
  EXPECT_EQ(error(WithCallField(good, "exceptions", I(-1))),
            "calls[0] (lists:sort/1): exceptions must be a non-negative integer, not -1");
  EXPECT_EQ(error(WithCallField(good, "sketch", A("x"))),
            "calls[0] (lists:sort/1): sketch must be a binary (a DDSketch protobuf), not x");
  EXPECT_NE(error(WithCallField(good, "sketch", Term::Binary("\xff\xff\xff"))).find("sketch: "),
            std::string::npos);
  // Another mapping cannot merge exactly with the kernel's.
  auto other = sketch::CountSketch(*sketch::IndexMapping::Logarithmic(0.01));
  ASSERT_TRUE(other.add(1000).ok());
  EXPECT_NE(error(WithCallField(good, "cpu_sketch", Term::Binary(sketch::EncodeDDSketch(other))))
                .find("cpu_sketch: not the kernel's mapping"),
            std::string::npos);
  // Bins beyond the kernel's slots (a value the kernel never produces), negative values.
  sketch::CountSketch far(sketch::IndexMapping::Kernel());
  ASSERT_TRUE(far.add(1e20).ok());
  EXPECT_NE(error(WithCallField(good, "cpu_sketch", Term::Binary(sketch::EncodeDDSketch(far))))
                .find("outside the kernel's 0..2815"),
            std::string::npos);
  sketch::CountSketch negative(sketch::IndexMapping::Kernel());
  ASSERT_TRUE(negative.add(-5).ok());
  EXPECT_EQ(
      error(WithCallField(good, "cpu_sketch", Term::Binary(sketch::EncodeDDSketch(negative)))),
      "calls[0] (lists:sort/1): cpu_sketch: negative latencies");
  // The same function twice, too many functions, too many nodes.
  CaptureResult twice;
  twice.functions = {Function("a:f/1", {1}), Function("a:f/1", {2})};
  EXPECT_EQ(error(EncodeCaptureReply(twice)), "calls: a:f/1 is listed twice");
  ProtocolLimits limits;
  limits.max_functions = 1;
  EXPECT_EQ(error(EncodeCaptureReply(twice), limits), "2 calls (at most 1)");
  limits.max_reply_bins = 2;  // lists:sort/1's wall sketch spans 65 bins
  EXPECT_EQ(error(good, limits), "calls: sketches of more than 2 bins");
  limits.max_peers = 0;
  CaptureResult nodes;
  nodes.nodes = {{"a@b", OkStatus()}, {"c@d", OkStatus()}};
  EXPECT_EQ(error(EncodeCaptureReply(nodes), limits), "2 nodes (at most 1)");
  // Missing and malformed parts.
  EXPECT_EQ(error(Term::Tuple({A("ok"), Term::Map({})})), "capture reply: missing key calls");
  const std::string long_mfa =
      error(WithCallField(good, "mfa", Term::Binary(std::string(256, 'a'))));
  EXPECT_EQ(long_mfa.rfind("calls[0]: mfa must be a binary of 1 to 255 bytes, not <<\"aaaa", 0),
            0u);
  EXPECT_EQ(long_mfa.substr(long_mfa.size() - 3), "...");
  EXPECT_EQ(error(Term::Tuple({A("ok"), A("x")})).rfind("a capture reply is", 0), 0u);
  // Keys from a newer protocol are ignored.
  EXPECT_EQ(error(WithCallField(good, "future_field", I(1))), "ok");
}

TEST(ProtocolTest, PeerErrorsBecomeStatuses) {
  const auto decoded = DecodeCaptureReply(EncodeError(ErrorKind::kBusy, "a capture is running"));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(decoded.status().message(), "a capture is running");
  const auto future =
      DecodeCaptureReply(Term::Tuple({A("error"), Term::Tuple({A("melted"), Term::Binary("m")})}));
  EXPECT_EQ(future.status().ToString(), "internal error: melted: m");
  ProtocolLimits limits;
  limits.max_error_length = 4;
  const auto long_message =
      DecodeCaptureReply(EncodeError(ErrorKind::kInternal, "0123456789"), limits);
  EXPECT_EQ(long_message.status().message(), "0123...");
}

// Latencies from a log-normal distribution (sums stay far below 2^53: exact in a double).
TEST(ProtocolTest, MergeEqualsTheCaptureOfTheUnion) {
  const std::vector<std::string> mfas = {"'Elixir.Foo':bar/3", "a:f/1", "ets:lookup/2",
                                         "lists:sort/1", "z:z/0"};
  constexpr int kParts = 4;
  std::mt19937_64 rng(20240601);
  std::lognormal_distribution<double> latency(9.0, 2.0);
  std::uniform_int_distribution<size_t> pick_mfa(0, mfas.size() - 1);
  std::uniform_int_distribution<int> pick_part(0, kParts - 1);
  std::uniform_int_distribution<uint64_t> small(0, 1000);

  std::map<std::string, probes::FunctionStats> whole;
  std::vector<std::map<std::string, probes::FunctionStats>> parts(kParts);
  for (int i = 0; i < 30000; ++i) {
    const std::string& mfa = mfas[pick_mfa(rng)];
    const int part = pick_part(rng);
    const auto wall = static_cast<uint64_t>(std::min(latency(rng), 1e10));
    const uint64_t cpu = wall / (1 + small(rng) % 4);
    for (auto* into : {&whole[mfa], &parts[part][mfa]}) {
      into->mfa = mfa;
      ASSERT_TRUE(into->wall.add_integer(wall).ok());
      ASSERT_TRUE(into->cpu.add_integer(cpu).ok());
    }
  }
  std::vector<CaptureResult> results(kParts);
  CaptureResult expected;
  for (int p = 0; p < kParts; ++p) {
    for (auto& [mfa, f] : parts[p]) {
      f.exceptions = small(rng);
      f.tail_calls = small(rng);
      f.exits = small(rng);
      whole[mfa].exceptions += f.exceptions;
      whole[mfa].tail_calls += f.tail_calls;
      whole[mfa].exits += f.exits;
      results[p].functions.push_back(f);
    }
    results[p].lost.frames_evicted = small(rng);
    results[p].lost.read_errors = small(rng);
    expected.lost.frames_evicted += results[p].lost.frames_evicted;
    expected.lost.read_errors += results[p].lost.read_errors;
    results[p].duration_ms = 1000 + p;
    results[p].nodes = {
        {"orion@h" + std::to_string(p), p == 2 ? Unavailable("no BEAM") : OkStatus()}};
    expected.nodes.push_back(results[p].nodes[0]);
  }
  for (auto& [mfa, f] : whole) expected.functions.push_back(f);
  expected.duration_ms = 1000 + kParts - 1;

  const auto merged = MergeCaptureResults(results);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  ExpectSameResult(*merged, expected);
  EXPECT_EQ(merged->lost.frames_evicted, expected.lost.frames_evicted);
  EXPECT_EQ(merged->duration_ms, expected.duration_ms);

  // The same after each part crossed the wire as a peer's reply.
  std::vector<CaptureResult> received;
  for (const auto& result : results)
    received.push_back(DecodeReplyOrDie(EncodeCaptureReply(result)));
  const auto merged_received = MergeCaptureResults(std::move(received));
  ASSERT_TRUE(merged_received.ok());
  ExpectSameResult(*merged_received, expected);
}

}  // namespace
}  // namespace orion::protocol
