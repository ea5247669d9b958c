// Protocol version 2: {stream, ...}, {stream_stop, Id}, {functions, Prefix}, and the stream
// messages {orion_stream, Id, Event}, checked from both sides: terms written in Erlang are
// parsed here, and terms encoded here are matched and read in Erlang (the installed VM).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sketch/encoding/ddsketch_encoding.h"
#include "tests/unit/erlang/erlang_vm.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/protocol/protocol.h"

namespace orion::protocol {
namespace {

using erlang::testing::FromHex;
using erlang::testing::Hex;
using erlang::testing::RunErlang;
using erlang::testing::TermToBinary;

Term A(std::string_view name) {
  return Term::Atom(name);
}

Term DecodeOrDie(std::span<const uint8_t> bytes) {
  auto term = DecodeTerm(bytes, DecodeLimits{});
  EXPECT_TRUE(term.ok()) << term.status().ToString();
  return term.ok() ? *term : Term();
}

// What ~p printed, on one line (its line breaks depend on the width).
std::string OneLine(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    while (i + 1 < text.size() && text[i + 1] == ' ') ++i;
    if (i + 1 < text.size()) out += ' ';
  }
  return out;
}

Term Ref() {
  return Term::Reference({.node = "orion@h1", .creation = 7, .ids = {1, 2, 3}});
}

probes::FunctionStats Function(std::string mfa, std::initializer_list<uint64_t> wall_ns) {
  probes::FunctionStats f;
  f.mfa = std::move(mfa);
  for (uint64_t ns : wall_ns) {
    EXPECT_TRUE(f.wall.add_integer(ns).ok());
    EXPECT_TRUE(f.cpu.add_integer(ns / 3).ok());
  }
  return f;
}

IntervalEvent SampleInterval() {
  IntervalEvent interval{.seq = 3, .end_ms = 1767225600123, .interval_ms = 1000, .dropped = 2};
  NodeInterval app{.node = "app@h1", .host = "h1", .os_pid = 4242, .lost = 1};
  app.functions = {Function("'Elixir.Bar.Repo':get/1", {1500, 2500, 9000}),
                   Function("lists:sort/1", {700})};
  app.functions[0].exceptions = 4;
  NodeInterval plain{.node = "nonode@nohost", .host = "h2", .os_pid = 77};
  interval.nodes = {app, plain};
  return interval;
}

// ---------------------------------------------------------------------------------------------
// Requests.

TEST(StreamProtocolTest, ParsesRequestsWrittenInErlang) {
  const auto bytes = TermToBinary({
      R"({stream, #{patterns => [<<"lists:sort/1">>, "Enum.map/2"], duration_ms => 60000,
                    interval_ms => 500, node => 'app@h1', scope => local, max_functions => 10,
                    max_rate => 0, mode => tracer, match_spec => <<"[{'_',[],[]}]">>}})",
      R"({stream, #{patterns => [<<"ets:_/_">>], duration_ms => 1000}})",
      R"({stream_stop, make_ref()})",
      R"({functions, <<"lists:so">>})",
      R"({functions, "Enum.ma", #{scope => local, node => 'app@h1'}})",
  });
  const auto full = ParseRequest(DecodeOrDie(bytes[0]));
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  const StreamRequest expected{.patterns = {"lists:sort/1", "Enum.map/2"},
                               .duration_ms = 60000,
                               .interval_ms = 500,
                               .node = "app@h1",
                               .scope = Scope::kLocal,
                               .max_functions = 10,
                               .max_rate = 0,
                               .mode = CaptureMode::kTracer,
                               .match_spec = "[{'_',[],[]}]"};
  EXPECT_EQ(std::get<StreamRequest>(*full), expected);
  // What a daemon sends its peers parses back to the same request.
  EXPECT_EQ(std::get<StreamRequest>(*ParseRequest(EncodeRequest(expected))), expected);

  const auto defaults = ParseRequest(DecodeOrDie(bytes[1]));
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(std::get<StreamRequest>(*defaults).interval_ms, 1000u);
  EXPECT_EQ(std::get<StreamRequest>(*defaults).scope, Scope::kCluster);

  const auto stop = ParseRequest(DecodeOrDie(bytes[2]));
  ASSERT_TRUE(stop.ok()) << stop.status().ToString();
  EXPECT_EQ(std::get<StreamStopRequest>(*stop).id.kind(), TermKind::kReference);
  EXPECT_EQ(std::get<StreamStopRequest>(*ParseRequest(EncodeRequest(*stop))),
            std::get<StreamStopRequest>(*stop));

  const auto prefix = ParseRequest(DecodeOrDie(bytes[3]));
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(std::get<FunctionsRequest>(*prefix), (FunctionsRequest{.prefix = "lists:so"}));
  const auto local = ParseRequest(DecodeOrDie(bytes[4]));
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  const FunctionsRequest local_expected{
      .prefix = "Enum.ma", .node = "app@h1", .scope = Scope::kLocal};
  EXPECT_EQ(std::get<FunctionsRequest>(*local), local_expected);
  EXPECT_EQ(std::get<FunctionsRequest>(*ParseRequest(EncodeRequest(local_expected))),
            local_expected);
}

TEST(StreamProtocolTest, RejectsBadRequestsWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{stream, #{patterns => [<<\"a\">>], duration_ms => 5, interval_ms => 99}}",
       "stream: interval_ms must be an integer from 100 to 60000, not 99"},
      {"{stream, #{patterns => [<<\"a\">>], duration_ms => 5, per_node => true}}",
       "stream: unknown key per_node (known: patterns, duration_ms, interval_ms, node, scope, "
       "max_functions, max_rate, mode, match_spec)"},
      {"{stream, #{duration_ms => 5}}", "stream: missing key patterns"},
      {"{stream, #{patterns => [<<>>], duration_ms => 5}}", "stream: patterns[0] is empty"},
      {"{stream, #{patterns => [<<\"a\">>], duration_ms => 600001}}",
       "stream: duration_ms must be an integer from 1 to 600000"},
      {"{stream, #{patterns => [<<\"a\">>], duration_ms => 5, mode => probes, "
       "match_spec => <<\"[]\">>}}",
       "stream: a match_spec needs mode tracer or auto"},
      {"{stream, [1]}", "stream takes a map of options"},
      {"{stream_stop, 1}", "stream_stop takes the reference {stream, ...} answered, not 1"},
      {"{stream_stop}", "stream_stop takes one argument"},
      {"{functions}", "functions takes a prefix"},
      {"{functions, a}", "functions: the prefix must be a binary or a string, not a"},
      {"{functions, list_to_binary(lists:duplicate(256, $a))}",
       "functions: the prefix is 256 bytes long (at most 255)"},
      {"{functions, <<\"a\", 9>>}", "functions: the prefix holds a control character"},
      {"{functions, <<\"a\">>, #{scope => world}}",
       "functions: scope must be cluster or local, not world"},
      {"{functions, <<\"a\">>, #{limit => 5}}", "functions: unknown key limit (known: node, scope)"},
  };
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back(c.first);
  const auto bytes = TermToBinary(expressions);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto request = ParseRequest(DecodeOrDie(bytes[i]));
    ASSERT_FALSE(request.ok()) << cases[i].first;
    EXPECT_EQ(ErrorKindOf(request.status()), ErrorKind::kBadRequest);
    EXPECT_NE(request.status().message().find(cases[i].second), std::string::npos)
        << cases[i].first << " -> " << request.status().message();
  }
}

// ---------------------------------------------------------------------------------------------
// Stream messages.

TEST(StreamProtocolTest, MessagesAreWhatErlangWouldEncode) {
  const std::vector<std::pair<StreamEvent, std::string>> cases = {
      {NodeDownEvent{"orion@h2", "connection closed"},
       "{node_down, 'orion@h2', <<\"connection closed\">>}"},
      {StoppedEvent{}, "{stopped, done}"},
      {StoppedEvent{.reason = StopReason::kStopped}, "{stopped, stopped}"},
      {StoppedEvent{.reason = StopReason::kOverload, .rate = 2500000},
       "{stopped, {overload, 2500000}}"},
      {StoppedEvent{.reason = StopReason::kError, .error = "no BEAM"},
       "{stopped, {error, <<\"no BEAM\">>}}"},
      {IntervalEvent{.seq = 1, .end_ms = 1000, .interval_ms = 1000},
       "{interval, #{seq => 1, end_ms => 1000, interval_ms => 1000, nodes => [], dropped => 0}}"},
  };
  std::vector<std::string> expressions;
  for (const auto& c : cases) expressions.push_back("{orion_stream, 42, " + c.second + "}");
  const auto expected = TermToBinary(expressions);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Hex(EncodeStreamMessage(Term::Integer(42), cases[i].first)), Hex(expected[i]))
        << cases[i].second;
  }
}

TEST(StreamProtocolTest, IntervalsReadInErlang) {
  const auto bytes = EncodeStreamMessage(Ref(), SampleInterval());
  // What a shell does with it: match the message, take the node entries apart, decode nothing
  // but the names and counts.
  EXPECT_EQ(OneLine(RunErlang(R"(
      {orion_stream, Id, {interval, #{seq := Seq, end_ms := End, interval_ms := I,
                                     dropped := D, nodes := [App, Plain]}}} =
          binary_to_term(binary:decode_hex(<<")" +
                              Hex(bytes) + R"(">>)),
      #{node := N, host := H, os_pid := P, lost := L, functions := [Get, Sort]} = App,
      io:format("~p~n", [{is_reference(Id), Seq, End, I, D, N, H, P, L,
                          maps:with([name, mfa, calls, exceptions], Get),
                          maps:with([name, calls], Sort), is_binary(maps:get(wall, Get)),
                          maps:get(node, Plain), maps:get(functions, Plain)}]))")),
            "{true,3,1767225600123,1000,2,app@h1,<<\"h1\">>,4242,1, "
            "#{calls => 3,exceptions => 4,mfa => <<\"'Elixir.Bar.Repo':get/1\">>, "
            "name => <<\"Bar.Repo.get/1\">>}, #{calls => 1,name => <<\"lists:sort/1\">>}, "
            "true,nonode@nohost,[]}");
}

void ExpectSameFunctions(const std::vector<probes::FunctionStats>& a,
                         const std::vector<probes::FunctionStats>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].mfa, b[i].mfa);
    EXPECT_EQ(a[i].exceptions, b[i].exceptions) << a[i].mfa;
    EXPECT_EQ(sketch::EncodeDDSketch(a[i].wall), sketch::EncodeDDSketch(b[i].wall)) << a[i].mfa;
    EXPECT_EQ(sketch::EncodeDDSketch(a[i].cpu), sketch::EncodeDDSketch(b[i].cpu)) << a[i].mfa;
  }
}

TEST(StreamProtocolTest, IntervalsRoundTripExactly) {
  const IntervalEvent sent = SampleInterval();
  const auto message = DecodeStreamMessage(DecodeOrDie(EncodeStreamMessage(Ref(), sent)));
  ASSERT_TRUE(message.ok()) << message.status().ToString();
  EXPECT_EQ(message->id, Ref());
  const auto& got = std::get<IntervalEvent>(message->event);
  EXPECT_EQ(got.seq, sent.seq);
  EXPECT_EQ(got.end_ms, sent.end_ms);
  EXPECT_EQ(got.interval_ms, sent.interval_ms);
  EXPECT_EQ(got.dropped, sent.dropped);
  ASSERT_EQ(got.nodes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got.nodes[i].node, sent.nodes[i].node);
    EXPECT_EQ(got.nodes[i].host, sent.nodes[i].host);
    EXPECT_EQ(got.nodes[i].os_pid, sent.nodes[i].os_pid);
    EXPECT_EQ(got.nodes[i].lost, sent.nodes[i].lost);
    ExpectSameFunctions(got.nodes[i].functions, sent.nodes[i].functions);
  }
}

TEST(StreamProtocolTest, MessagesWrittenInErlangDecode) {
  // Sketches are opaque to a shell: they travel as the binaries it was given.
  const auto wall = sketch::EncodeDDSketch(Function("m:f/1", {1000, 2000}).wall);
  const auto cpu = sketch::EncodeDDSketch(Function("m:f/1", {1000, 2000}).cpu);
  const auto bytes = TermToBinary({
      "{orion_stream, make_ref(), {interval, #{seq => 9, end_ms => 5, interval_ms => 250, "
      "future_key => 1, nodes => [#{node => 'a@b', host => <<\"b\">>, os_pid => 1, lost => 0, "
      "functions => [#{name => <<\"m:f/1\">>, mfa => <<\"m:f/1\">>, calls => 2, exceptions => 1, "
      "wall => binary:decode_hex(<<\"" +
          Hex(wall) + "\">>), cpu => binary:decode_hex(<<\"" + Hex(cpu) + "\">>)}]}]}}}",
      "{orion_stream, make_ref(), {node_down, 'orion@h2', <<\"connection closed\">>}}",
      "{orion_stream, make_ref(), {stopped, {overload, 3000000}}}",
      "{orion_stream, make_ref(), {stopped, {error, <<\"bad\">>}}}",
  });
  const auto interval = DecodeStreamMessage(DecodeOrDie(bytes[0]));
  ASSERT_TRUE(interval.ok()) << interval.status().ToString();
  const auto& event = std::get<IntervalEvent>(interval->event);
  EXPECT_EQ(event.seq, 9u);
  EXPECT_EQ(event.dropped, 0u) << "absent: none";
  ASSERT_EQ(event.nodes.size(), 1u);
  ASSERT_EQ(event.nodes[0].functions.size(), 1u);
  EXPECT_EQ(event.nodes[0].functions[0].wall.count(), 2u);
  EXPECT_EQ(event.nodes[0].functions[0].exceptions, 1u);

  const auto down = DecodeStreamMessage(DecodeOrDie(bytes[1]));
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_EQ(std::get<NodeDownEvent>(down->event).node, "orion@h2");
  EXPECT_EQ(std::get<NodeDownEvent>(down->event).reason, "connection closed");
  const auto overload = DecodeStreamMessage(DecodeOrDie(bytes[2]));
  ASSERT_TRUE(overload.ok());
  EXPECT_EQ(std::get<StoppedEvent>(overload->event).reason, StopReason::kOverload);
  EXPECT_EQ(std::get<StoppedEvent>(overload->event).rate, 3000000u);
  const auto error = DecodeStreamMessage(DecodeOrDie(bytes[3]));
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(std::get<StoppedEvent>(error->event).error, "bad");
}

TEST(StreamProtocolTest, RejectsHostileMessages) {
  const auto error = [](const Term& message, const ProtocolLimits& limits = {}) {
    const auto decoded = DecodeStreamMessage(DecodeOrDie(EncodeTerm(message)), limits);
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  const Term good = StreamMessageTerm(Ref(), SampleInterval());
  EXPECT_EQ(error(good), "ok");
  // calls that disagree with the sketch beside them.
  IntervalEvent lying = SampleInterval();
  const Term bad_calls = Term::Tuple(
      {A("orion_stream"), Ref(),
       Term::Tuple({A("interval"),
                    Term::Map({{A("seq"), Term::Integer(1)},
                               {A("end_ms"), Term::Integer(1)},
                               {A("interval_ms"), Term::Integer(1000)},
                               {A("nodes"),
                                Term::List({Term::Map(
                                    {{A("node"), A("a@b")},
                                     {A("host"), Term::Binary("b")},
                                     {A("os_pid"), Term::Integer(1)},
                                     {A("lost"), Term::Integer(0)},
                                     {A("functions"),
                                      Term::List({Term::Map(
                                          {{A("mfa"), Term::Binary("m:f/1")},
                                           {A("calls"), Term::Integer(5)},
                                           {A("exceptions"), Term::Integer(0)},
                                           {A("wall"), Term::Binary(sketch::EncodeDDSketch(
                                                           lying.nodes[0].functions[1].wall))},
                                           {A("cpu"), Term::Binary(sketch::EncodeDDSketch(
                                                          lying.nodes[0].functions[1].cpu))}})})}})})}})})});
  EXPECT_EQ(error(bad_calls),
            "interval: nodes[0]: functions[0] (m:f/1): calls 5 but its sketch holds 1");
  ProtocolLimits limits;
  limits.max_stream_nodes = 1;
  EXPECT_EQ(error(good, limits), "interval: nodes must be a list of at most 1 maps");
  limits = {};
  limits.max_functions = 1;
  EXPECT_EQ(error(good, limits), "interval: nodes[0]: functions must be a list of at most 1 maps");
  limits = {};
  limits.max_reply_bins = 3;
  EXPECT_EQ(error(good, limits), "interval: sketches of more than 3 bins");
  EXPECT_EQ(error(Term::Tuple({A("orion_stream"), Ref(), Term::Tuple({A("stopped"), A("late")})})),
            "stopped: the reason must be done, stopped, {overload, Rate} or {error, Message}, "
            "not late");
  EXPECT_EQ(error(Term::Tuple({A("orion_stream"), Ref(), Term::Tuple({A("exploded")})})),
            "unknown stream event {exploded} (known: interval, node_down, stopped)");
  EXPECT_EQ(error(Term::Tuple({A("other"), Ref(), A("x")})).rfind("not a stream message", 0), 0u);
  EXPECT_EQ(error(Term::Tuple({A("orion_stream"), Ref(),
                               Term::Tuple({A("node_down"), A("nodename"), Term::Binary("x")})})),
            "node_down: node must be a node name such as 'app@host', not nodename");
}

TEST(StreamProtocolTest, StreamRepliesCarryTheReference) {
  const auto id = DecodeStreamReply(DecodeOrDie(EncodeTerm(EncodeStreamReply(Ref()))));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, Ref());
  EXPECT_EQ(DecodeStreamReply(EncodeError(ErrorKind::kBusy, "8 streams")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeStreamReply(Term::Tuple({A("ok"), Term::Integer(1)})).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Function names.

TEST(StreamProtocolTest, FunctionsRepliesAreWhatErlangWouldEncode) {
  const FunctionsResult result{.functions = {"Enum.map/2", "lists:sort/1"}, .truncated = true};
  const auto expected = TermToBinary(
      {R"({ok, #{functions => [<<"Enum.map/2">>, <<"lists:sort/1">>], truncated => true}})"});
  EXPECT_EQ(Hex(EncodeTerm(EncodeFunctionsReply(result))), Hex(expected[0]));
  const auto decoded = DecodeFunctionsReply(DecodeOrDie(expected[0]));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->functions, result.functions);
  EXPECT_TRUE(decoded->truncated);
  EXPECT_EQ(DecodeFunctionsReply(Term::Tuple({A("ok"), Term::Map({{A("functions"),
                                                                    Term::List({A("x")})},
                                                                   {A("truncated"), A("false")}})}))
                .status()
                .message()
                .rfind("functions reply: a name must be a binary", 0),
            0u);
}

TEST(StreamProtocolTest, MergedFunctionsStayWithinTheirBounds) {
  FunctionsResult a, b;
  for (int i = 0; i < 80; ++i) a.functions.push_back("m:f" + std::to_string(i) + "/1");
  for (int i = 40; i < 120; ++i) b.functions.push_back("m:f" + std::to_string(i) + "/1");
  const FunctionsResult merged = MergeFunctions({a, b});
  EXPECT_EQ(merged.functions.size(), 100u);
  EXPECT_TRUE(merged.truncated);
  EXPECT_TRUE(std::is_sorted(merged.functions.begin(), merged.functions.end()));
  EXPECT_EQ(std::adjacent_find(merged.functions.begin(), merged.functions.end()),
            merged.functions.end());
  // 64 KiB of names at most: 300 names of 250 bytes are cut at 262.
  FunctionsResult long_names;
  for (int i = 0; i < 300; ++i) {
    long_names.functions.push_back(std::to_string(1000 + i) + std::string(246, 'x'));
  }
  ProtocolLimits limits;
  limits.max_function_names = 1000;
  const FunctionsResult cut = MergeFunctions({long_names}, limits);
  EXPECT_EQ(cut.functions.size(), 65536u / 250);
  EXPECT_TRUE(cut.truncated);
  const FunctionsResult small = MergeFunctions({FunctionsResult{.functions = {"b:b/0", "a:a/0"}}});
  EXPECT_EQ(small.functions, (std::vector<std::string>{"a:a/0", "b:b/0"}));
  EXPECT_FALSE(small.truncated);
}

TEST(StreamProtocolTest, ElixirFunctionsAreShownByTheirElixirNames) {
  EXPECT_EQ(probes::DisplayMfa("'Elixir.Bar.Repo':get/1"), "Bar.Repo.get/1");
  EXPECT_EQ(probes::DisplayMfa("'Elixir.Foo':'valid?'/1"), "Foo.valid?/1");
  EXPECT_EQ(probes::DisplayMfa("lists:sort/1"), "lists:sort/1");
  EXPECT_EQ(probes::DisplayMfa("'a b':f/0"), "'a b':f/0");
  EXPECT_EQ(probes::DisplayMfa("not an mfa"), "not an mfa");
  // What is shown parses back to the same function.
  for (std::string_view mfa : {"'Elixir.Bar.Repo':get/1", "lists:sort/1"}) {
    const auto pattern = probes::ParseMfaPattern(probes::DisplayMfa(mfa));
    ASSERT_TRUE(pattern.ok()) << pattern.status().ToString();
    EXPECT_TRUE(pattern->Matches(mfa)) << mfa;
  }
}

}  // namespace
}  // namespace orion::protocol
