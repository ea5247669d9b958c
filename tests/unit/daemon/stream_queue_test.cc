// The bookkeeping of the daemon's streams: events reach the caller in order, a caller that does
// not read holds a bounded queue (the drops counted and reported), and streams are bounded per
// daemon and per caller.
#include "userspace/daemon/stream_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace orion::daemon {
namespace {

using protocol::IntervalEvent;
using protocol::NodeDownEvent;
using protocol::StoppedEvent;
using protocol::StreamEvent;
using protocol::Term;

Term Id() {
  return Term::Reference({.node = "orion@h1", .creation = 1, .ids = {7}});
}

IntervalEvent Interval(uint64_t seq, int functions = 0) {
  IntervalEvent event{.seq = seq, .end_ms = 1000 * seq, .interval_ms = 1000};
  protocol::NodeInterval node{.node = "app@h1", .host = "h1", .os_pid = 1};
  for (int i = 0; i < functions; ++i) {
    probes::FunctionStats f;
    f.mfa = "m:f" + std::to_string(i) + "/1";
    EXPECT_TRUE(f.wall.add_integer(1000).ok());
    EXPECT_TRUE(f.wall.add_integer(1'000'000'000).ok());  // about 1,900 bins apart
    node.functions.push_back(std::move(f));
  }
  event.nodes.push_back(std::move(node));
  return event;
}

// What the caller received, decoded.
struct Caller {
  std::vector<StreamEvent> got;
  bool reading = true;
  bool Receive(std::vector<uint8_t> bytes) {
    if (!reading) return false;
    auto term = erlang::DecodeTerm(bytes, erlang::DecodeLimits{});
    EXPECT_TRUE(term.ok());
    auto message = protocol::DecodeStreamMessage(*term);
    EXPECT_TRUE(message.ok()) << message.status().ToString();
    EXPECT_EQ(message->id, Id());
    got.push_back(message->event);
    return true;
  }
};

size_t Drain(StreamQueue& queue, Caller& caller) {
  return queue.Drain(Id(), [&](std::vector<uint8_t> b) { return caller.Receive(std::move(b)); });
}

TEST(StreamQueueTest, EventsArriveInTheOrderTheyHappened) {
  StreamQueue queue;
  Caller caller;
  queue.Push(Interval(1));
  queue.Push(NodeDownEvent{"orion@h2", "connection closed"});
  queue.Push(Interval(2));
  EXPECT_EQ(Drain(queue, caller), 3u);
  queue.Push(Interval(3));
  queue.Push(StoppedEvent{});
  EXPECT_TRUE(queue.stopped_queued());
  EXPECT_EQ(Drain(queue, caller), 2u);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
  ASSERT_EQ(caller.got.size(), 5u);
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[0]).seq, 1u);
  EXPECT_EQ(std::get<NodeDownEvent>(caller.got[1]).node, "orion@h2");
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[2]).seq, 2u);
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[3]).seq, 3u);
  EXPECT_TRUE(std::holds_alternative<StoppedEvent>(caller.got[4]));
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[3]).dropped, 0u);
}

TEST(StreamQueueTest, ACallerThatDoesNotReadHoldsABoundedQueue) {
  StreamQueue queue({.max_events = 4, .max_bytes = size_t{1} << 30});
  Caller caller;
  caller.reading = false;
  queue.Push(NodeDownEvent{"orion@h2", "gone"});
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    queue.Push(Interval(seq));
    EXPECT_EQ(Drain(queue, caller), 0u);
    EXPECT_LE(queue.size(), 4u);
  }
  queue.Push(StoppedEvent{});  // kept even when full: the caller must learn the end
  EXPECT_EQ(queue.size(), 4u);
  // The caller reads again: the node_down, the newest intervals, with the count of the dropped
  // ones, and the end.
  caller.reading = true;
  EXPECT_EQ(Drain(queue, caller), 4u);
  ASSERT_EQ(caller.got.size(), 4u);
  EXPECT_EQ(std::get<NodeDownEvent>(caller.got[0]).node, "orion@h2");
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[1]).seq, 999u);
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[2]).seq, 1000u);
  EXPECT_EQ(std::get<IntervalEvent>(caller.got[1]).dropped, 998u);
  EXPECT_EQ(queue.dropped(), 998u);
  EXPECT_TRUE(std::holds_alternative<StoppedEvent>(caller.got[3]));
}

TEST(StreamQueueTest, TheQueueIsBoundedInBytesToo) {
  const size_t one = ApproxEventBytes(Interval(1, 50));
  StreamQueue queue({.max_events = 1000, .max_bytes = 3 * one});
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    queue.Push(Interval(seq, 50));
    EXPECT_LE(queue.bytes(), 3 * one);
  }
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue.dropped(), 97u);
  // An interval larger than the whole bound is dropped rather than kept alone.
  StreamQueue tiny({.max_events = 10, .max_bytes = 10});
  tiny.Push(NodeDownEvent{"a@b", "x"});
  tiny.Push(Interval(1, 5));
  EXPECT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny.dropped(), 1u);
}

TEST(StreamQueueTest, AnEventRefusedStaysQueuedAndComesFirstLater) {
  StreamQueue queue;
  int accepted = 0;
  std::vector<uint64_t> seqs;
  const auto send = [&](std::vector<uint8_t> bytes) {
    if (accepted == 2) return false;  // the connection's outbox is full after two
    ++accepted;
    auto message = protocol::DecodeStreamMessage(*erlang::DecodeTerm(bytes, {}));
    seqs.push_back(std::get<IntervalEvent>(message->event).seq);
    return true;
  };
  for (uint64_t seq = 1; seq <= 5; ++seq) queue.Push(Interval(seq));
  EXPECT_EQ(queue.Drain(Id(), send), 2u);
  accepted = 0;
  EXPECT_EQ(queue.Drain(Id(), send), 2u);
  accepted = 0;
  EXPECT_EQ(queue.Drain(Id(), send), 1u);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(StreamTableTest, StreamsAreBoundedPerDaemonAndPerCaller) {
  StreamTable table({.max_streams = 3, .max_per_caller = 2});
  EXPECT_TRUE(table.Add("s1", "<a.1.0>").ok());
  EXPECT_TRUE(table.Add("s2", "<a.1.0>").ok());
  const Status third = table.Add("s3", "<a.1.0>");
  EXPECT_EQ(third.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(third.message().find("2 per caller"), std::string::npos) << third.message();
  EXPECT_TRUE(table.Add("s3", "<b.1.0>").ok());
  const Status full = table.Add("s4", "<c.1.0>");
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("max_streams"), std::string::npos) << full.message();
  EXPECT_EQ(table.OwnedBy("<a.1.0>"), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_TRUE(table.Remove("s1"));
  EXPECT_FALSE(table.Remove("s1"));
  EXPECT_TRUE(table.Add("s4", "<c.1.0>").ok());
  EXPECT_EQ(table.size(), 3u);
}

// A stream id is never given to two running streams (each stream's events go by its id).
TEST(StreamTableTest, AnIdInUseIsRefused) {
  StreamTable table({.max_streams = 3, .max_per_caller = 2});
  ASSERT_TRUE(table.Add("s1", "<a.1.0>").ok());
  EXPECT_EQ(table.Add("s1", "<b.1.0>").code(), StatusCode::kInternal);
  EXPECT_EQ(table.OwnedBy("<a.1.0>"), (std::vector<std::string>{"s1"}));
  EXPECT_TRUE(table.OwnedBy("<b.1.0>").empty());
}

}  // namespace
}  // namespace orion::daemon
