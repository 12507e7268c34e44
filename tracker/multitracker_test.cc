#include "tracker/multitracker.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shoal::tracker {
namespace {

using std::chrono::seconds;

const TimePoint kT0 = TimePoint{} + std::chrono::hours(1000);

AnnounceResponse Ok(int interval, std::optional<int> min_interval = {}) {
  AnnounceResponse r;
  r.interval = seconds(interval);
  if (min_interval) r.min_interval = seconds(*min_interval);
  return r;
}

const std::string& Url(const Multitracker& m, TrackerIndex i) {
  return m.tracker(i).url;
}

// Polls once and expects exactly one announce; returns it.
Multitracker::Announce PollOne(Multitracker& m, TimePoint now) {
  std::vector<Multitracker::Announce> a = m.Poll(now);
  EXPECT_EQ(a.size(), 1u);
  return a.empty() ? Multitracker::Announce{} : a[0];
}

// Tiers keep their order; shuffling only permutes within a tier, is
// deterministic per seed, and duplicates and empty tiers are dropped.
TEST(MultitrackerTest, ShufflesWithinTiersOnly) {
  std::vector<std::vector<std::string>> tiers = {
      {"http://a/announce", "http://b/announce", "http://c/announce",
       "http://d/announce"},
      {},
      {"udp://e:1", "udp://f:1", "http://a/announce"}};
  std::set<std::vector<std::string>> orders;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Multitracker m(tiers, seed);
    ASSERT_EQ(m.size(), 6u);
    std::vector<std::string> order;
    for (TrackerIndex i : m.order()) order.push_back(Url(m, i));
    std::vector<std::string> first(order.begin(), order.begin() + 4);
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, (std::vector<std::string>{
                         "http://a/announce", "http://b/announce",
                         "http://c/announce", "http://d/announce"}));
    EXPECT_EQ(m.tracker(m.order()[4]).tier, 1);
    orders.insert(order);
    Multitracker again(tiers, seed);
    EXPECT_EQ(again.order(), m.order());
  }
  EXPECT_GT(orders.size(), 1u);
}

// The first announce is "started" to the first tracker; later ones are
// regular, after the interval, and not before.
TEST(MultitrackerTest, AnnouncesStartedThenAtInterval) {
  Multitracker m({{"http://a/announce"}}, 1);
  EXPECT_TRUE(m.Poll(kT0).empty());  // not started
  m.Start(kT0);
  Multitracker::Announce a = PollOne(m, kT0);
  EXPECT_EQ(a.event, TrackerEvent::kStarted);
  EXPECT_TRUE(m.Poll(kT0).empty());  // one in flight at a time
  EXPECT_FALSE(m.NextWakeup().has_value());
  m.OnAnnounceSuccess(a.tracker, kT0, Ok(1800));
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(1800));
  EXPECT_EQ(m.tracker(a.tracker).next_announce, kT0 + seconds(1800));
  EXPECT_TRUE(m.Poll(kT0 + seconds(1799)).empty());
  a = PollOne(m, kT0 + seconds(1800));
  EXPECT_EQ(a.event, TrackerEvent::kNone);
}

// Intervals are clamped to [min_interval, max_interval].
TEST(MultitrackerTest, ClampsIntervals) {
  MultitrackerOptions options;
  options.min_interval = seconds(60);
  options.max_interval = seconds(3600);
  Multitracker m({{"http://a/announce"}}, 1, options);
  m.Start(kT0);
  Multitracker::Announce a = PollOne(m, kT0);
  m.OnAnnounceSuccess(a.tracker, kT0, Ok(1));
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(60));
  a = PollOne(m, kT0 + seconds(60));
  m.OnAnnounceSuccess(a.tracker, kT0 + seconds(60), Ok(1'000'000));
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(60 + 3600));
}

// Failures fall through the tier, then to the next tier, at once; the
// tracker that answers moves to the front of its tier.
TEST(MultitrackerTest, FallsThroughAndPromotes) {
  Multitracker m({{"http://a/announce", "http://b/announce"},
                  {"http://c/announce", "http://d/announce"}},
                 7);
  const std::vector<TrackerIndex> initial = m.order();
  m.Start(kT0);
  Multitracker::Announce a = PollOne(m, kT0);
  EXPECT_EQ(a.tracker, initial[0]);
  m.OnAnnounceFailure(a.tracker, kT0, absl::UnavailableError("down"));
  a = PollOne(m, kT0);
  EXPECT_EQ(a.tracker, initial[1]);
  EXPECT_EQ(a.event, TrackerEvent::kStarted);
  m.OnAnnounceFailure(a.tracker, kT0, absl::DeadlineExceededError("slow"));
  a = PollOne(m, kT0);
  EXPECT_EQ(a.tracker, initial[2]);
  m.OnAnnounceFailure(a.tracker, kT0, absl::UnavailableError("down"));
  a = PollOne(m, kT0);
  EXPECT_EQ(a.tracker, initial[3]);
  m.OnAnnounceSuccess(a.tracker, kT0, Ok(1800));
  EXPECT_EQ(m.working(), initial[3]);
  // d moved in front of c, within tier 2 only.
  EXPECT_EQ(m.order(), (std::vector<TrackerIndex>{initial[0], initial[1],
                                                  initial[3], initial[2]}));
  EXPECT_EQ(m.tracker(initial[0]).failures, 1);
  EXPECT_EQ(m.tracker(initial[0]).last_error.code(),
            absl::StatusCode::kUnavailable);
}

// Backoff doubles from backoff_base up to backoff_cap.
TEST(MultitrackerTest, BackoffScheduleIsExponentialWithCap) {
  MultitrackerOptions options;
  options.backoff_base = seconds(15);
  options.backoff_cap = seconds(3600);
  Multitracker m({{"http://a/announce"}}, 1, options);
  std::vector<int64_t> delays;
  for (int f = 1; f <= 12; ++f) delays.push_back(m.BackoffDelay(f).count());
  EXPECT_EQ(delays, (std::vector<int64_t>{15, 30, 60, 120, 240, 480, 960, 1920,
                                          3600, 3600, 3600, 3600}));
  EXPECT_EQ(m.BackoffDelay(1000).count(), 3600);

  // Driving it: each failure pushes the next attempt out by the delay.
  m.Start(kT0);
  TimePoint now = kT0;
  for (int f = 1; f <= 10; ++f) {
    Multitracker::Announce a = PollOne(m, now);
    EXPECT_EQ(a.event, TrackerEvent::kStarted);
    m.OnAnnounceFailure(a.tracker, now, absl::UnavailableError("down"));
    EXPECT_TRUE(m.Poll(now).empty());
    ASSERT_TRUE(m.NextWakeup().has_value());
    EXPECT_EQ(*m.NextWakeup() - now, m.BackoffDelay(f));
    EXPECT_TRUE(m.Poll(*m.NextWakeup() - seconds(1)).empty());
    now = *m.NextWakeup();
  }
  Multitracker::Announce a = PollOne(m, now);
  m.OnAnnounceSuccess(a.tracker, now, Ok(900));
  EXPECT_EQ(m.tracker(a.tracker).failures, 0);
  EXPECT_EQ(m.NextWakeup(), now + seconds(900));
}

// A preferred tracker that recovers is used again at the next round.
TEST(MultitrackerTest, ReturnsToPreferredTrackerAfterBackoff) {
  Multitracker m({{"http://a/announce"}, {"http://b/announce"}}, 1);
  const TrackerIndex a_idx = m.order()[0], b_idx = m.order()[1];
  m.Start(kT0);
  Multitracker::Announce a = PollOne(m, kT0);
  m.OnAnnounceFailure(a_idx, kT0, absl::UnavailableError("down"));  // 15 s
  a = PollOne(m, kT0);
  EXPECT_EQ(a.tracker, b_idx);
  m.OnAnnounceSuccess(b_idx, kT0, Ok(1800));
  a = PollOne(m, kT0 + seconds(1800));
  EXPECT_EQ(a.tracker, a_idx);
  EXPECT_EQ(a.event, TrackerEvent::kStarted);
  m.OnAnnounceSuccess(a_idx, kT0 + seconds(1800), Ok(1800));
  EXPECT_EQ(m.working(), a_idx);
}

// "completed" goes once to a tracker that saw "started", after its min
// interval; a tracker first reached after completion gets "started" only.
TEST(MultitrackerTest, SendsCompletedOnce) {
  Multitracker m({{"http://a/announce"}, {"http://b/announce"}}, 1);
  const TrackerIndex a_idx = m.order()[0], b_idx = m.order()[1];
  m.Start(kT0);
  m.OnAnnounceSuccess(PollOne(m, kT0).tracker, kT0, Ok(1800, 120));
  m.Complete(kT0 + seconds(10));
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(10));
  EXPECT_TRUE(m.Poll(kT0 + seconds(10)).empty());  // min interval 120 s
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(120));
  Multitracker::Announce a = PollOne(m, kT0 + seconds(120));
  EXPECT_EQ(a.tracker, a_idx);
  EXPECT_EQ(a.event, TrackerEvent::kCompleted);
  m.OnAnnounceFailure(a_idx, kT0 + seconds(120), absl::UnavailableError("x"));
  a = PollOne(m, kT0 + seconds(120));
  EXPECT_EQ(a.tracker, b_idx);
  EXPECT_EQ(a.event, TrackerEvent::kStarted);
  m.OnAnnounceSuccess(b_idx, kT0 + seconds(120), Ok(1800));
  a = PollOne(m, kT0 + seconds(120 + 1800));
  EXPECT_EQ(a.tracker, a_idx);  // recovered: still owes "completed"
  EXPECT_EQ(a.event, TrackerEvent::kCompleted);
  m.OnAnnounceSuccess(a_idx, kT0 + seconds(1920), Ok(1800));
  a = PollOne(m, kT0 + seconds(1920 + 1800));
  EXPECT_EQ(a.event, TrackerEvent::kNone);
}

// Stop sends "stopped" in parallel to every tracker that saw "started", and
// only to those; failures are not retried.
TEST(MultitrackerTest, StopsEveryStartedTracker) {
  Multitracker m(
      {{"http://a/announce"}, {"http://b/announce"}, {"http://c/announce"}}, 1);
  const std::vector<TrackerIndex> o = m.order();
  m.Start(kT0);
  m.OnAnnounceSuccess(PollOne(m, kT0).tracker, kT0, Ok(1800));  // a started
  m.OnAnnounceFailure(PollOne(m, kT0 + seconds(1800)).tracker,
                      kT0 + seconds(1800), absl::UnavailableError("x"));
  m.OnAnnounceSuccess(PollOne(m, kT0 + seconds(1800)).tracker,
                      kT0 + seconds(1800), Ok(1800));  // b started
  m.Stop(kT0 + seconds(1900));
  EXPECT_EQ(m.state(), Multitracker::State::kStopping);
  std::vector<Multitracker::Announce> stops = m.Poll(kT0 + seconds(1900));
  ASSERT_EQ(stops.size(), 2u);
  std::set<TrackerIndex> stopped;
  for (const auto& s : stops) {
    EXPECT_EQ(s.event, TrackerEvent::kStopped);
    stopped.insert(s.tracker);
  }
  EXPECT_EQ(stopped, (std::set<TrackerIndex>{o[0], o[1]}));
  EXPECT_TRUE(m.Poll(kT0 + seconds(1900)).empty());
  m.OnAnnounceSuccess(o[0], kT0 + seconds(1901), Ok(1800));
  EXPECT_EQ(m.state(), Multitracker::State::kStopping);
  m.OnAnnounceFailure(o[1], kT0 + seconds(1901), absl::UnavailableError("x"));
  EXPECT_EQ(m.state(), Multitracker::State::kStopped);
  EXPECT_TRUE(m.Poll(kT0 + seconds(5000)).empty());
  // Start again: "started" once more.
  m.Start(kT0 + seconds(5000));
  EXPECT_EQ(PollOne(m, kT0 + seconds(5000)).event, TrackerEvent::kStarted);
}

// Stop while "started" is in flight: a success is followed by "stopped".
TEST(MultitrackerTest, StopDuringStartedTakesItBack) {
  Multitracker m({{"http://a/announce"}}, 1);
  m.Start(kT0);
  Multitracker::Announce a = PollOne(m, kT0);
  m.Stop(kT0);
  EXPECT_TRUE(m.Poll(kT0).empty());
  m.OnAnnounceSuccess(a.tracker, kT0, Ok(1800));
  Multitracker::Announce s = PollOne(m, kT0);
  EXPECT_EQ(s.event, TrackerEvent::kStopped);
  m.OnAnnounceSuccess(s.tracker, kT0, Ok(1800));
  EXPECT_EQ(m.state(), Multitracker::State::kStopped);

  // Never started: Stop finishes at once.
  Multitracker idle({{"http://a/announce"}}, 1);
  idle.Start(kT0);
  idle.Stop(kT0);
  EXPECT_EQ(idle.state(), Multitracker::State::kStopped);
}

// Reannounce forgives backoff but respects min interval.
TEST(MultitrackerTest, ReannounceForgivesBackoff) {
  Multitracker m({{"http://a/announce"}}, 1);
  m.Start(kT0);
  m.OnAnnounceFailure(PollOne(m, kT0).tracker, kT0,
                      absl::UnavailableError("x"));
  EXPECT_TRUE(m.Poll(kT0 + seconds(1)).empty());
  m.Reannounce(kT0 + seconds(1));
  Multitracker::Announce a = PollOne(m, kT0 + seconds(1));
  m.OnAnnounceSuccess(a.tracker, kT0 + seconds(1), Ok(1800, 300));
  m.Reannounce(kT0 + seconds(2));
  EXPECT_TRUE(m.Poll(kT0 + seconds(2)).empty());
  EXPECT_EQ(m.NextWakeup(), kT0 + seconds(301));
  EXPECT_EQ(PollOne(m, kT0 + seconds(301)).event, TrackerEvent::kNone);
}

// No trackers: nothing to do, never a wakeup.
TEST(MultitrackerTest, EmptyIsInert) {
  Multitracker m({}, 1);
  m.Start(kT0);
  EXPECT_TRUE(m.Poll(kT0).empty());
  EXPECT_FALSE(m.NextWakeup().has_value());
}

}  // namespace
}  // namespace shoal::tracker
