// The multitracker state machine (BEP 12) for one torrent, without I/O.
//
// Trackers come in tiers. Each tier is shuffled once, at construction. An
// announce round walks the trackers in order, tier by tier, and announces to
// the first one that is not backing off; if it fails, the next one is tried at
// once (falling through to later tiers); the first that answers is moved to
// the front of its tier and ends the round. The next round starts after that
// tracker's interval. A failed tracker backs off exponentially:
//
//   retry delay = min(backoff_base * 2^(failures - 1), backoff_cap)
//
// and is skipped until the delay has passed; if every tracker is backing off,
// the next round starts when the first delay ends. Because each round starts
// at the top, a preferred tracker is used again as soon as it recovers.
//
// Events: a tracker gets "started" the first time we reach it, "completed"
// once after Complete() if it had seen "started" (a tracker first reached
// after completion gets "started" with left=0 instead), and on Stop() every
// tracker that saw "started" gets one "stopped" (sent in parallel, not
// retried).
//
// The owner drives it:
//
//   Multitracker mt(tiers, seed, options);
//   mt.Start(now);
//   for (const Multitracker::Announce& a : mt.Poll(now)) send(a);
//   ... on reply: mt.OnAnnounceSuccess(a.tracker, now, response) or
//   OnAnnounceFailure(...), then Poll again; sleep until NextWakeup().
#ifndef SHOAL_TRACKER_MULTITRACKER_H_
#define SHOAL_TRACKER_MULTITRACKER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tracker/announce.h"

namespace shoal::tracker {

using TrackerClock = std::chrono::steady_clock;
using TimePoint = TrackerClock::time_point;

// Identifies a tracker within one Multitracker (stable across reordering).
struct TrackerIndex {
  size_t value = 0;
  friend auto operator<=>(const TrackerIndex&, const TrackerIndex&) = default;
};

// A value type; defaults suit public trackers.
struct MultitrackerOptions {
  // Intervals from trackers are clamped into [min_interval, max_interval].
  std::chrono::seconds min_interval{60};
  std::chrono::seconds max_interval{24 * 3600};
  // Without a "min interval" from the tracker, an early (forced or
  // "completed") announce waits at least this long after the last one.
  std::chrono::seconds default_min_interval{60};
  // Exponential backoff after failures.
  std::chrono::seconds backoff_base{15};
  std::chrono::seconds backoff_cap{3600};
};

// What the state machine knows about one tracker. A value type.
struct TrackerState {
  std::string url;
  int tier = 0;
  // Consecutive failures; 0 after a success.
  int failures = 0;
  absl::Status last_error;
  // When the next announce to this tracker is due: last success + interval,
  // or last failure + backoff. Epoch if never announced.
  TimePoint next_announce{};
  // Earliest time a re-announce is allowed (min interval; backoff).
  TimePoint min_announce{};
  bool start_sent = false;
  bool complete_sent = false;
  bool in_flight = false;
  TrackerEvent in_flight_event = TrackerEvent::kNone;
  bool stop_pending = false;
  std::optional<std::string> tracker_id;
  std::optional<int64_t> complete;
  std::optional<int64_t> incomplete;
};

// Thread-compatible (owned by the network thread).
class Multitracker {
 public:
  enum class State : uint8_t { kIdle, kRunning, kStopping, kStopped };

  struct Announce {
    TrackerIndex tracker;
    TrackerEvent event = TrackerEvent::kNone;
  };

  // `tiers` lists announce URLs tier by tier (a .torrent's announce-list, or
  // one tier holding its "announce"). Empty tiers and repeated URLs are
  // dropped. Each tier is shuffled with a generator seeded by `shuffle_seed`.
  Multitracker(const std::vector<std::vector<std::string>>& tiers,
               uint64_t shuffle_seed, MultitrackerOptions options = {});

  Multitracker(const Multitracker&) = delete;
  Multitracker& operator=(const Multitracker&) = delete;

  size_t size() const { return trackers_.size(); }
  State state() const { return state_; }
  const TrackerState& tracker(TrackerIndex i) const {
    return trackers_[i.value];
  }
  // The current announce order, tier by tier.
  const std::vector<TrackerIndex>& order() const { return order_; }

  // Begins (or resumes after Stop) announcing; the first round is due now.
  void Start(TimePoint now);
  // The download has completed: trackers that saw "started" get "completed"
  // (the next round is due now, subject to the tracker's min interval).
  void Complete(TimePoint now);
  // Re-announce as soon as allowed (min interval), forgiving backoffs.
  void Reannounce(TimePoint now);
  // Stops announcing; queues one "stopped" for every tracker that saw
  // "started". state() becomes kStopped once they are answered or failed.
  void Stop(TimePoint now);

  // The announces to send now; marks them in flight. While running, at most
  // one announce is in flight; while stopping, one per tracker.
  std::vector<Announce> Poll(TimePoint now);

  // When Poll may next have work, or nullopt if only a reply (or a call to
  // Start, Complete, ...) can create some.
  std::optional<TimePoint> NextWakeup() const;

  // Reports the outcome of an announce returned by Poll.
  // REQUIRES: tracker(i).in_flight.
  void OnAnnounceSuccess(TrackerIndex i, TimePoint now,
                         const AnnounceResponse& response);
  void OnAnnounceFailure(TrackerIndex i, TimePoint now, absl::Status error);

  // The delay before retrying a tracker after `failures` consecutive
  // failures (>= 1).
  std::chrono::seconds BackoffDelay(int failures) const;

  // The tracker that answered the last successful announce, if any.
  std::optional<TrackerIndex> working() const { return working_; }

 private:
  bool BackingOff(const TrackerState& t, TimePoint now) const;
  void PromoteInTier(TrackerIndex i);
  void FinishStoppingIfDone();

  const MultitrackerOptions options_;
  std::vector<TrackerState> trackers_;
  std::vector<TrackerIndex> order_;
  State state_ = State::kIdle;
  // When the next round may start.
  TimePoint next_round_{};
  bool completed_pending_ = false;
  std::optional<TrackerIndex> working_;
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_MULTITRACKER_H_
