#include "node/events.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace shoal::node {

bool IsProgress(EventKind k) {
  return k == EventKind::kProgress || k == EventKind::kFetchProgress;
}

void EventBus::Publish(Event e) {
  absl::MutexLock lock(&mu_);
  e.seq = ++last_;
  e.time = absl::Now();
  if (IsProgress(e.kind)) {
    uint64_t& held = progress_[{e.kind, e.id}];
    if (Slot* old = FindLocked(held); old != nullptr && !old->replaced) {
      old->replaced = true;
      const uint64_t seq = old->event.seq;  // (kept: slots stay sorted)
      old->event = Event();                 // its strings' memory goes now
      old->event.seq = seq;
      ++replaced_;
    }
    held = e.seq;
  } else {
    ++held_other_;
  }
  slots_.push_back({std::move(e), false});
  // The oldest go first, whatever their kind, once other events exceed the
  // capacity or everything held exceeds twice it (progress of many items).
  while (!slots_.empty() && (held_other_ > kCapacity ||
                             slots_.size() - replaced_ > 2 * kCapacity)) {
    Slot& front = slots_.front();
    if (front.replaced) {
      --replaced_;
    } else {
      if (IsProgress(front.event.kind)) {
        auto it = progress_.find({front.event.kind, front.event.id});
        if (it != progress_.end() && it->second == front.event.seq)
          progress_.erase(it);
      } else {
        --held_other_;
      }
      ++dropped_;
      drops_.emplace_back(front.event.seq, dropped_);
      if (drops_.size() > kCapacity) drops_.pop_front();
    }
    slots_.pop_front();
  }
  if (replaced_ > kCapacity / 2) CompactLocked();
}

EventBus::Slot* EventBus::FindLocked(uint64_t seq) {
  auto it = std::lower_bound(
      slots_.begin(), slots_.end(), seq,
      [](const Slot& s, uint64_t v) { return s.event.seq < v; });
  return it != slots_.end() && it->event.seq == seq ? &*it : nullptr;
}

void EventBus::CompactLocked() {
  std::erase_if(slots_, [](const Slot& s) { return s.replaced; });
  replaced_ = 0;
}

uint64_t EventBus::last_seq() {
  absl::MutexLock lock(&mu_);
  return last_;
}

size_t EventBus::size() {
  absl::MutexLock lock(&mu_);
  return slots_.size() - replaced_;
}

std::vector<Event> EventBus::Wait(uint64_t after, absl::Duration timeout,
                                  uint64_t* missed) {
  absl::MutexLock lock(&mu_);
  auto newer = [this, after]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return last_ > after; };
  mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  // Drops after `after`: every drop, less those up to it.
  uint64_t before = 0;
  auto d =
      std::upper_bound(drops_.begin(), drops_.end(), after,
                       [](uint64_t v, const std::pair<uint64_t, uint64_t>& p) {
                         return v < p.first;
                       });
  if (d != drops_.begin()) {
    before = std::prev(d)->second;
  } else if (!drops_.empty()) {
    before = drops_.front().second - 1;  // older drops are forgotten
  } else {
    before = dropped_;
  }
  *missed = dropped_ - before;
  std::vector<Event> out;
  auto it = std::upper_bound(
      slots_.begin(), slots_.end(), after,
      [](uint64_t v, const Slot& s) { return v < s.event.seq; });
  for (; it != slots_.end(); ++it)
    if (!it->replaced) out.push_back(it->event);
  return out;
}

const char* EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kAdded:
      return "added";
    case EventKind::kMetadata:
      return "metadata";
    case EventKind::kState:
      return "state";
    case EventKind::kProgress:
      return "progress";
    case EventKind::kComplete:
      return "complete";
    case EventKind::kError:
      return "error";
    case EventKind::kRemoved:
      return "removed";
    case EventKind::kContentAdded:
      return "content_added";
    case EventKind::kContentRemoved:
      return "content_removed";
    case EventKind::kContentEvicted:
      return "content_evicted";
    case EventKind::kContentPinned:
      return "content_pinned";
    case EventKind::kContentUnpinned:
      return "content_unpinned";
    case EventKind::kFetchStarted:
      return "fetch_started";
    case EventKind::kFetchProgress:
      return "fetch_progress";
    case EventKind::kFetchCompleted:
      return "fetch_completed";
    case EventKind::kFetchFailed:
      return "fetch_failed";
    case EventKind::kPeerBanned:
      return "peer_banned";
    case EventKind::kDataLoss:
      return "data_loss";
    case EventKind::kDhtState:
      return "dht_state";
  }
  return "unknown";
}

}  // namespace shoal::node
