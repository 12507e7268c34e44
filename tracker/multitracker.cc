#include "tracker/multitracker.h"

#include <algorithm>
#include <random>
#include <set>

namespace shoal::tracker {

Multitracker::Multitracker(const std::vector<std::vector<std::string>>& tiers,
                           uint64_t shuffle_seed, MultitrackerOptions options)
    : options_(options) {
  std::mt19937_64 gen(shuffle_seed);
  std::set<std::string> seen;
  int tier_number = 0;
  for (const std::vector<std::string>& tier : tiers) {
    std::vector<TrackerIndex> in_tier;
    for (const std::string& url : tier) {
      if (url.empty() || !seen.insert(url).second) continue;
      TrackerState t;
      t.url = url;
      t.tier = tier_number;
      in_tier.push_back(TrackerIndex{trackers_.size()});
      trackers_.push_back(std::move(t));
    }
    if (in_tier.empty()) continue;
    // Fisher-Yates with our own draw, so the order does not depend on the
    // standard library's shuffle.
    for (size_t k = in_tier.size(); k > 1; --k) {
      std::swap(in_tier[k - 1], in_tier[gen() % k]);
    }
    order_.insert(order_.end(), in_tier.begin(), in_tier.end());
    ++tier_number;
  }
}

std::chrono::seconds Multitracker::BackoffDelay(int failures) const {
  int shift = std::clamp(failures - 1, 0, 30);
  int64_t base = options_.backoff_base.count();
  int64_t cap = options_.backoff_cap.count();
  if (base <= 0) return std::chrono::seconds(0);
  if (base > (cap >> shift)) return options_.backoff_cap;
  return std::chrono::seconds(base << shift);
}

bool Multitracker::BackingOff(const TrackerState& t, TimePoint now) const {
  return t.failures > 0 && now < t.next_announce;
}

void Multitracker::Start(TimePoint now) {
  if (state_ == State::kRunning) return;
  if (state_ != State::kIdle) {
    for (TrackerState& t : trackers_) {
      t.start_sent = false;
      t.complete_sent = false;
      t.stop_pending = false;
    }
  }
  state_ = State::kRunning;
  completed_pending_ = false;
  next_round_ = now;
}

void Multitracker::Complete(TimePoint now) {
  if (state_ != State::kRunning) return;
  completed_pending_ = true;
  next_round_ = std::min(next_round_, now);
}

void Multitracker::Reannounce(TimePoint now) {
  if (state_ != State::kRunning) return;
  for (TrackerState& t : trackers_) {
    if (t.failures > 0) t.next_announce = t.min_announce = now;
  }
  next_round_ = std::min(next_round_, now);
}

void Multitracker::Stop(TimePoint /*now*/) {
  if (state_ != State::kRunning) return;
  state_ = State::kStopping;
  for (TrackerState& t : trackers_) t.stop_pending = t.start_sent;
  FinishStoppingIfDone();
}

void Multitracker::FinishStoppingIfDone() {
  if (state_ != State::kStopping) return;
  for (const TrackerState& t : trackers_) {
    if (t.in_flight || t.stop_pending) return;
  }
  state_ = State::kStopped;
}

std::vector<Multitracker::Announce> Multitracker::Poll(TimePoint now) {
  std::vector<Announce> out;
  if (state_ == State::kStopping) {
    for (size_t i = 0; i < trackers_.size(); ++i) {
      TrackerState& t = trackers_[i];
      if (!t.stop_pending || t.in_flight) continue;
      t.stop_pending = false;
      t.in_flight = true;
      t.in_flight_event = TrackerEvent::kStopped;
      out.push_back(Announce{TrackerIndex{i}, TrackerEvent::kStopped});
    }
    return out;
  }
  if (state_ != State::kRunning || now < next_round_) return out;
  for (const TrackerState& t : trackers_) {
    if (t.in_flight) return out;
  }
  std::optional<TrackerIndex> pick;
  for (TrackerIndex i : order_) {
    if (!BackingOff(trackers_[i.value], now)) {
      pick = i;
      break;
    }
  }
  if (!pick) {
    // Everyone is backing off: the round resumes when the first may retry.
    std::optional<TimePoint> earliest;
    for (const TrackerState& t : trackers_) {
      if (!earliest || t.next_announce < *earliest) earliest = t.next_announce;
    }
    if (earliest) next_round_ = *earliest;
    return out;
  }
  TrackerState& t = trackers_[pick->value];
  if (now < t.min_announce) {
    next_round_ = t.min_announce;
    return out;
  }
  TrackerEvent event = TrackerEvent::kNone;
  if (!t.start_sent) {
    event = TrackerEvent::kStarted;
  } else if (completed_pending_ && !t.complete_sent) {
    event = TrackerEvent::kCompleted;
  }
  t.in_flight = true;
  t.in_flight_event = event;
  out.push_back(Announce{*pick, event});
  return out;
}

std::optional<TimePoint> Multitracker::NextWakeup() const {
  if (state_ == State::kStopping) {
    for (const TrackerState& t : trackers_) {
      if (t.stop_pending && !t.in_flight) return TimePoint{};
    }
    return std::nullopt;
  }
  if (state_ != State::kRunning || trackers_.empty()) return std::nullopt;
  for (const TrackerState& t : trackers_) {
    if (t.in_flight) return std::nullopt;
  }
  return next_round_;
}

void Multitracker::PromoteInTier(TrackerIndex i) {
  auto it = std::find(order_.begin(), order_.end(), i);
  int tier = trackers_[i.value].tier;
  auto first = std::find_if(order_.begin(), order_.end(), [&](TrackerIndex x) {
    return trackers_[x.value].tier == tier;
  });
  std::rotate(first, it, it + 1);
}

void Multitracker::OnAnnounceSuccess(TrackerIndex i, TimePoint now,
                                     const AnnounceResponse& r) {
  TrackerState& t = trackers_[i.value];
  t.in_flight = false;
  const TrackerEvent event = t.in_flight_event;
  t.failures = 0;
  t.last_error = absl::OkStatus();
  if (r.tracker_id) t.tracker_id = r.tracker_id;
  if (r.complete) t.complete = r.complete;
  if (r.incomplete) t.incomplete = r.incomplete;
  if (event == TrackerEvent::kStopped) {
    t.start_sent = false;
    FinishStoppingIfDone();
    return;
  }
  if (event == TrackerEvent::kStarted) {
    t.start_sent = true;
    // A tracker that first hears of us after completion learns it from
    // left=0; it gets no "completed".
    t.complete_sent = completed_pending_;
  } else if (event == TrackerEvent::kCompleted) {
    t.complete_sent = true;
  }
  const auto interval =
      std::clamp(r.interval, options_.min_interval, options_.max_interval);
  const auto min_interval =
      r.min_interval ? std::clamp(*r.min_interval, options_.min_interval,
                                  options_.max_interval)
                     : options_.default_min_interval;
  t.next_announce = now + interval;
  t.min_announce = now + std::min(min_interval, interval);
  working_ = i;
  PromoteInTier(i);
  if (state_ == State::kStopping) {
    // A "started" that was in flight when Stop() came: take it back.
    t.stop_pending = t.start_sent;
    return;
  }
  next_round_ = t.next_announce;
  if (completed_pending_ && !t.complete_sent) next_round_ = now;
}

void Multitracker::OnAnnounceFailure(TrackerIndex i, TimePoint now,
                                     absl::Status error) {
  TrackerState& t = trackers_[i.value];
  t.in_flight = false;
  t.last_error = std::move(error);
  if (t.in_flight_event == TrackerEvent::kStopped) {
    t.start_sent = false;
    FinishStoppingIfDone();
    return;
  }
  ++t.failures;
  t.next_announce = now + BackoffDelay(t.failures);
  t.min_announce = t.next_announce;
  if (working_ == i) working_.reset();
  FinishStoppingIfDone();
  // next_round_ is unchanged (<= now): the next Poll falls through to the
  // next tracker that is not backing off.
}

}  // namespace shoal::tracker
