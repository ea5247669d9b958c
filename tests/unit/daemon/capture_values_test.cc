// probes/capture_values.h: the per-interval delta that streams and watches report.
#include "userspace/probes/capture_values.h"

#include <gtest/gtest.h>

namespace orion::probes {
namespace {

FunctionStats Stats(const std::string& mfa, std::initializer_list<uint64_t> wall_ns) {
  FunctionStats f;
  f.mfa = mfa;
  for (uint64_t v : wall_ns) {
    EXPECT_TRUE(f.wall.add_integer(v).ok());
    EXPECT_TRUE(f.cpu.add_integer(v / 2).ok());
  }
  return f;
}

TEST(CaptureValuesTest, ADeltaHoldsExactlyTheCallsBetweenTwoReads) {
  FunctionStats prev = Stats("m:f/1", {1000, 2000, 0});
  FunctionStats cur = Stats("m:f/1", {1000, 2000, 0, 5000, 5000, 0, 1'000'000});
  cur.exceptions = 3;
  prev.exceptions = 1;
  auto delta = FunctionStatsDelta(prev, cur);
  ASSERT_TRUE(delta.ok()) << delta.status().message();
  EXPECT_EQ(delta->wall.count(), 4u);
  EXPECT_EQ(delta->wall.zero_count(), 1u);
  EXPECT_EQ(delta->exceptions, 2u);
  EXPECT_DOUBLE_EQ(delta->wall.sum(), 1'010'000.0);
  // Merged back onto the earlier read, the delta gives the later one, bin for bin.
  FunctionStats sum = prev;
  ASSERT_TRUE(MergeFunctionStats(sum, *delta).ok());
  EXPECT_EQ(sum.wall.count(), cur.wall.count());
  for (double q : {0.0, 0.5, 0.9, 1.0}) {
    EXPECT_EQ(*sum.wall.quantile(q), *cur.wall.quantile(q)) << q;
  }
  // The delta's max is its top bin's value: within the mapping's accuracy of the true max.
  EXPECT_NEAR(delta->wall.max(), 1'000'000.0, 1'000'000.0 * 0.0055);
}

TEST(CaptureValuesTest, CountsThatGoDownAreNotOneSource) {
  auto delta = FunctionStatsDelta(Stats("m:f/1", {1000, 2000}), Stats("m:f/1", {1000}));
  EXPECT_EQ(delta.status().code(), StatusCode::kInvalidArgument);
}

TEST(CaptureValuesTest, FunctionsWithoutChangeAreLeftOutAndNewOnesCountWhole) {
  std::vector<FunctionStats> prev{Stats("a:f/0", {10}), Stats("b:g/0", {20})};
  std::vector<FunctionStats> cur{Stats("a:f/0", {10}), Stats("b:g/0", {20, 30}),
                                 Stats("c:h/0", {40})};
  auto delta = FunctionsDelta(prev, cur);
  ASSERT_TRUE(delta.ok()) << delta.status().message();
  ASSERT_EQ(delta->size(), 2u);
  EXPECT_EQ((*delta)[0].mfa, "b:g/0");
  EXPECT_EQ((*delta)[0].wall.count(), 1u);
  EXPECT_EQ((*delta)[1].mfa, "c:h/0");
  EXPECT_EQ((*delta)[1].wall.count(), 1u);
}

TEST(CaptureValuesTest, LostCountersSubtractAndAddUp) {
  LostCounters a{.frames_evicted = 1, .read_errors = 2};
  LostCounters b{.frames_evicted = 4, .read_errors = 2, .hash_collisions = 1};
  const LostCounters d = LostDelta(a, b);
  EXPECT_EQ(d.frames_evicted, 3u);
  EXPECT_EQ(d.read_errors, 0u);
  EXPECT_EQ(LostTotal(d), 4u);
}

}  // namespace
}  // namespace orion::probes
