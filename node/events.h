// EventBus: what happens to the node's torrents and contents, for the events
// RPC (and `shoal watch`).
//
// The network thread publishes; readers on gRPC threads wait for events newer
// than the last one they saw. The bus keeps the most recent kCapacity events; a
// reader that falls further behind is told how many it missed. Thread-safe.
#ifndef SHOAL_NODE_EVENTS_H_
#define SHOAL_NODE_EVENTS_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace shoal::node {

enum class EventKind : uint8_t {
  kAdded,     // a torrent was added
  kMetadata,  // a magnet's metadata arrived
  kState,     // a torrent's state changed
  kProgress,  // periodic progress while downloading
  kComplete,  // every wanted piece is verified
  kError,     // a torrent stopped on an error
  kRemoved,   // a torrent was removed
};

const char* EventKindName(EventKind k);

// A value type.
struct Event {
  uint64_t seq = 0;  // assigned by the bus, from 1
  absl::Time time;
  EventKind kind = EventKind::kState;
  std::string id;  // the torrent's ID (v2 hex, else v1 hex)
  std::string name;
  std::string state;  // the state after the event
  double progress = 0;
  double download_rate = 0;
  double upload_rate = 0;
  uint32_t num_peers = 0;
  std::string message;                 // for errors
  std::optional<int64_t> eta_seconds;  // TorrentStatus::eta_seconds
};

class EventBus {
 public:
  static constexpr size_t kCapacity = 4096;

  void Publish(Event e) {
    absl::MutexLock lock(&mu_);
    e.seq = ++last_;
    e.time = absl::Now();
    events_.push_back(std::move(e));
    if (events_.size() > kCapacity) events_.pop_front();
  }

  // The sequence number of the latest event (0 if none).
  uint64_t last_seq() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

  // Events with seq > `after`, waiting up to `timeout` for one to arrive.
  // `missed` is set to the number of such events already dropped.
  std::vector<Event> Wait(uint64_t after, absl::Duration timeout,
                          uint64_t* missed) {
    absl::MutexLock lock(&mu_);
    auto newer = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return last_ > after;
    };
    mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
    std::vector<Event> out;
    const uint64_t first = events_.empty() ? last_ + 1 : events_.front().seq;
    *missed = first > after + 1 ? first - after - 1 : 0;
    for (const Event& e : events_)
      if (e.seq > after) out.push_back(e);
    return out;
  }

 private:
  absl::Mutex mu_;
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
};

inline const char* EventKindName(EventKind k) {
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
  }
  return "unknown";
}

}  // namespace shoal::node

#endif  // SHOAL_NODE_EVENTS_H_
