// EventBus: what happens on the node (torrents, contents, fetches by ID,
// banned peers, data loss, the DHTs), for the events RPC and `shoal watch`.
//
// Publishers (the network thread, the store, gRPC handlers) publish; readers
// on gRPC threads wait for events newer than the last one they saw. The bus
// keeps the most recent events, bounded by kind:
// - a progress event (torrent or fetch) replaces the unread progress event of
//   the same item, so an item has at most one progress event held: a slow
//   reader loses old progress, and progress never crowds out other events;
// - the other kinds are held, kCapacity at most; past that the oldest goes
//   and a reader that had not read it is told how many it missed.
// Thread-safe.
#ifndef SHOAL_NODE_EVENTS_H_
#define SHOAL_NODE_EVENTS_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace shoal::node {

enum class EventKind : uint8_t {
  // Torrents.
  kAdded,     // a torrent was added
  kMetadata,  // a magnet's metadata arrived
  kState,     // a torrent's state changed
  kProgress,  // periodic progress while downloading
  kComplete,  // every wanted piece is verified
  kError,     // a torrent stopped on an error
  kRemoved,   // a torrent was removed
  // Contents in the store.
  kContentAdded,
  kContentRemoved,
  kContentEvicted,  // message: why
  kContentPinned,
  kContentUnpinned,
  // Fetches by ID.
  kFetchStarted,    // providers: how many were known
  kFetchProgress,   // bytes, total_bytes, download_rate, num_peers, eta
  kFetchCompleted,  // bytes, seconds, bytes_per_provider
  kFetchFailed,     // message: why
  kPeerBanned,      // address, message: why
  kDataLoss,        // piece, message: what failed
  kDhtState,        // network, state, nodes
};

const char* EventKindName(EventKind k);
// Progress kinds: a newer one replaces an unread one of the same item.
bool IsProgress(EventKind k);

// A value type. Which fields a kind fills is listed with it.
struct Event {
  uint64_t seq = 0;  // assigned by the bus, from 1
  absl::Time time;
  EventKind kind = EventKind::kState;
  std::string id;  // the torrent's ID (v2 hex, else v1 hex), or content ID
  std::string name;
  std::string state;  // a torrent's state after the event; a DHT's state
  double progress = 0;
  double download_rate = 0;
  double upload_rate = 0;
  uint32_t num_peers = 0;
  std::string message;                 // errors, reasons
  std::optional<int64_t> eta_seconds;  // TorrentStatus::eta_seconds
  uint64_t bytes = 0;
  uint64_t total_bytes = 0;
  uint32_t providers = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, uint64_t>> bytes_per_provider;
  std::string address;
  uint32_t piece = 0;
  std::string network;
  uint32_t nodes = 0;
};

class EventBus {
 public:
  // Events other than progress held at most (progress adds one per item).
  static constexpr size_t kCapacity = 4096;

  void Publish(Event e);

  // The sequence number of the latest event (0 if none).
  uint64_t last_seq();

  // Events with seq > `after`, waiting up to `timeout` for one to arrive.
  // `missed` is set to the number of such events (not counting replaced
  // progress) already dropped.
  std::vector<Event> Wait(uint64_t after, absl::Duration timeout,
                          uint64_t* missed);

  // Events held, replaced progress events not counted (for tests).
  size_t size();

 private:
  struct Slot {
    Event event;
    bool replaced = false;
  };
  // The slot of `seq`, or null if it is not held.
  Slot* FindLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;
  // In seq order; replaced slots are removed by CompactLocked.
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);
  size_t replaced_ ABSL_GUARDED_BY(mu_) = 0;
  size_t held_other_ ABSL_GUARDED_BY(mu_) = 0;  // non-progress events held
  // The seq of each item's held progress event, by kind and ID.
  absl::flat_hash_map<std::pair<EventKind, std::string>, uint64_t> progress_
      ABSL_GUARDED_BY(mu_);
  // Events dropped for capacity (never replaced progress), and the highest
  // seq dropped.
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_up_to_ ABSL_GUARDED_BY(mu_) = 0;
  // (seq, dropped_ after dropping it), for the drops readers may still ask
  // about: bounded by kCapacity entries.
  std::deque<std::pair<uint64_t, uint64_t>> drops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_EVENTS_H_
