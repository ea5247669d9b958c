#include "userspace/daemon/handshake_admission.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace orion::daemon {
namespace {

using Clock = HandshakeAdmission::Clock;
using Id = HandshakeAdmission::Id;
using std::chrono::milliseconds;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);

HandshakeLimits Limits(uint32_t total, uint32_t per_source, uint32_t running_per_source = 2) {
  HandshakeLimits limits;
  limits.deadline = milliseconds(2000);
  limits.max_pending = total;
  limits.max_pending_per_source = per_source;
  limits.max_running_per_source = running_per_source;
  return limits;
}

// Admits one connection from `source` `ms` after the start; fails the test if it is refused.
Id MustAdmit(HandshakeAdmission& a, const std::string& source, int ms,
             std::vector<Id>* evicted = nullptr) {
  auto decision = a.Admit(source, kStart + milliseconds(ms));
  EXPECT_TRUE(decision.admitted.has_value()) << source << " at " << ms << " ms";
  if (evicted != nullptr) *evicted = decision.evicted;
  return decision.admitted.value_or(0);
}

TEST(HandshakeAdmissionTest, AFullSourceEvictsItsOldestIdleConnection) {
  HandshakeAdmission a(Limits(64, 3));
  const Id first = MustAdmit(a, "10.0.0.9", 0);
  const Id second = MustAdmit(a, "10.0.0.9", 1);
  MustAdmit(a, "10.0.0.9", 2);
  std::vector<Id> evicted;
  MustAdmit(a, "10.0.0.9", 3, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{first});
  MustAdmit(a, "10.0.0.9", 4, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{second});
  EXPECT_EQ(a.PendingFrom("10.0.0.9"), 3u);
  EXPECT_FALSE(a.Pending(first));
}

TEST(HandshakeAdmissionTest, ProgressOutranksAgeAndAnIdleFloodCannotPushItOut) {
  HandshakeAdmission a(Limits(64, 3));
  const Id peer = MustAdmit(a, "10.0.0.9", 0);  // a real peer: its name arrives
  a.Advance(peer, HandshakeStage::kNameReceived);
  const Id dripper = MustAdmit(a, "10.0.0.9", 1);  // a byte so far
  a.Advance(dripper, HandshakeStage::kPartialName);
  const Id idle = MustAdmit(a, "10.0.0.9", 2);
  std::vector<Id> evicted;
  // Idle connections from the same source replace each other...
  const Id idle2 = MustAdmit(a, "10.0.0.9", 3, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{idle});
  MustAdmit(a, "10.0.0.9", 4, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{idle2});
  EXPECT_TRUE(a.Pending(peer));
  EXPECT_TRUE(a.Pending(dripper));
}

TEST(HandshakeAdmissionTest, ANewcomerIsRefusedWhenEveryOtherOfItsSourceGotFurther) {
  HandshakeAdmission a(Limits(64, 2));
  const Id one = MustAdmit(a, "10.0.0.9", 0);
  const Id two = MustAdmit(a, "10.0.0.9", 1);
  a.Advance(one, HandshakeStage::kPartialName);
  a.Advance(two, HandshakeStage::kNameReceived);
  const auto decision = a.Admit("10.0.0.9", kStart + milliseconds(2));
  EXPECT_FALSE(decision.admitted.has_value());
  EXPECT_TRUE(decision.evicted.empty());
  EXPECT_TRUE(a.Pending(one));
  EXPECT_TRUE(a.Pending(two));
}

TEST(HandshakeAdmissionTest, ANewcomerThatSentItsNameAlreadyOutranksDrippers) {
  HandshakeAdmission a(Limits(64, 2));
  const Id one = MustAdmit(a, "10.0.0.9", 0);
  const Id two = MustAdmit(a, "10.0.0.9", 1);
  a.Advance(one, HandshakeStage::kPartialName);
  a.Advance(two, HandshakeStage::kPartialName);
  const auto decision =
      a.Admit("10.0.0.9", kStart + milliseconds(2), HandshakeStage::kNameReceived);
  ASSERT_TRUE(decision.admitted.has_value());
  EXPECT_EQ(decision.evicted, std::vector<Id>{one});
  EXPECT_EQ(a.NextToRun(), decision.admitted);
}

TEST(HandshakeAdmissionTest, AtTheTotalBoundTheSourceHoldingTheMostPays) {
  HandshakeAdmission a(Limits(4, 4));
  const Id peer = MustAdmit(a, "10.0.0.2", 0);  // another source's peer, idle for now
  const Id f1 = MustAdmit(a, "10.0.0.9", 1);
  const Id f2 = MustAdmit(a, "10.0.0.9", 2);
  const Id f3 = MustAdmit(a, "10.0.0.9", 3);
  a.Advance(f1, HandshakeStage::kNameReceived);  // even a flooder's progressed one goes
  a.Advance(f2, HandshakeStage::kNameReceived);
  a.Advance(f3, HandshakeStage::kNameReceived);
  std::vector<Id> evicted;
  // A third source arrives: the flooder, holding 3, loses its oldest least-progressed.
  const Id other = MustAdmit(a, "10.0.0.3", 4, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{f1});
  // The flooder keeps coming with idle connections: they are turned away (its two left got
  // further), and 10.0.0.2's and 10.0.0.3's are never evicted.
  for (int i = 0; i < 50; ++i) {
    const auto decision = a.Admit("10.0.0.9", kStart + milliseconds(5 + i));
    EXPECT_FALSE(decision.admitted.has_value());
    EXPECT_TRUE(decision.evicted.empty());
  }
  // A fourth source: the flooder still holds the most and pays again.
  MustAdmit(a, "10.0.0.4", 60, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{f2});
  EXPECT_TRUE(a.Pending(peer));
  EXPECT_TRUE(a.Pending(other));
  EXPECT_TRUE(a.Pending(f3));
  EXPECT_EQ(a.pending(), 4u);
}

TEST(HandshakeAdmissionTest, ManySourcesOfOneIdleConnectionEachDoNotLockOutANewSource) {
  HandshakeAdmission a(Limits(8, 2));
  std::vector<Id> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(MustAdmit(a, "127.0.0." + std::to_string(10 + i), i));
  std::vector<Id> evicted;
  MustAdmit(a, "10.0.0.1", 100, &evicted);
  EXPECT_EQ(evicted, std::vector<Id>{idle[0]});  // the oldest idle one
}

TEST(HandshakeAdmissionTest, EveryHandshakeHasOneDeadlineFromItsAccept) {
  HandshakeAdmission a(Limits(64, 16));
  const Id early = MustAdmit(a, "10.0.0.9", 0);
  const Id late = MustAdmit(a, "10.0.0.2", 500);
  a.Advance(early, HandshakeStage::kPartialName);  // progress does not extend it
  EXPECT_EQ(a.NextDeadline(), kStart + milliseconds(2000));
  EXPECT_EQ(a.DeadlineOf(late), kStart + milliseconds(2500));
  EXPECT_TRUE(a.Expire(kStart + milliseconds(1999)).empty());
  EXPECT_EQ(a.Expire(kStart + milliseconds(2000)), std::vector<Id>{early});
  EXPECT_EQ(a.NextDeadline(), kStart + milliseconds(2500));
  EXPECT_EQ(a.Expire(kStart + milliseconds(9000)), std::vector<Id>{late});
  EXPECT_FALSE(a.NextDeadline().has_value());
  EXPECT_EQ(a.pending(), 0u);
}

TEST(HandshakeAdmissionTest, WorkersGoToTheSourceRunningTheFewestWithinItsCap) {
  HandshakeAdmission a(Limits(64, 16, /*running_per_source=*/2));
  std::vector<Id> flood;
  for (int i = 0; i < 4; ++i) {
    flood.push_back(MustAdmit(a, "10.0.0.9", i));
    a.Advance(flood.back(), HandshakeStage::kNameReceived);
  }
  const Id peer = MustAdmit(a, "10.0.0.2", 10);
  a.Advance(peer, HandshakeStage::kNameReceived);
  const Id idle = MustAdmit(a, "10.0.0.3", 11);  // not ready: never run
  EXPECT_EQ(a.NextToRun(), flood[0]);  // oldest, nobody running yet
  EXPECT_EQ(a.NextToRun(), peer);      // 10.0.0.2 runs none, 10.0.0.9 one
  EXPECT_EQ(a.NextToRun(), flood[1]);
  EXPECT_EQ(a.NextToRun(), std::nullopt);  // 10.0.0.9 is at its cap of 2
  a.Remove(flood[0]);                      // one of them finished
  EXPECT_EQ(a.NextToRun(), flood[2]);
  EXPECT_TRUE(a.Pending(idle));
}

TEST(HandshakeAdmissionTest, RemovedAndUnknownIdsAreForgottenQuietly) {
  HandshakeAdmission a(Limits(2, 2));
  const Id one = MustAdmit(a, "10.0.0.9", 0);
  a.Remove(one);
  a.Remove(one);
  a.Advance(one, HandshakeStage::kRunning);
  a.Remove(12345);
  EXPECT_EQ(a.pending(), 0u);
  EXPECT_EQ(a.PendingFrom("10.0.0.9"), 0u);
  std::vector<Id> evicted;
  MustAdmit(a, "10.0.0.9", 1, &evicted);
  MustAdmit(a, "10.0.0.9", 2, &evicted);
  EXPECT_TRUE(evicted.empty());
}

}  // namespace
}  // namespace orion::daemon
