// The choker: which peers we upload to.
//
// Sans-I/O: the swarm calls Rechoke() every 10 s with a snapshot of its peers
// and applies the answer. Leeching, it is tit-for-tat: the peers that upload to
// us fastest get the regular slots. Seeding, the peers that download from us
// fastest get them, and slots rotate so every peer gets a turn. Every third
// rechoke (30 s) one extra, interested, choked peer is unchoked at random
// (optimistic unchoke), with new peers three times as likely. Trusted peers
// (the cluster's own nodes) are never choked and take no slot.
//
// Details: only interested peers get a slot; snubbed peers get no regular slot
// while leeching (they can still win the optimistic unchoke). Leeching, equal
// rates keep the peers already unchoked. Seeding is round-robin: a peer keeps
// its slot for `seed_rotation_rounds` rechokes, then the peers that have waited
// longest take over; among equals, and among current holders, the fastest
// downloaders from us go first. The optimistic unchoke is replaced early if it
// leaves, loses interest or earns a regular slot. All randomness comes from
// `random`.
#ifndef SHOAL_CHUNK_CHOKER_H_
#define SHOAL_CHUNK_CHOKER_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "chunk/piece_picker.h"

namespace shoal::chunk {

struct ChokerOptions {
  // Regular upload slots (optimistic unchoke not included); < 0: unlimited.
  int slots = 4;
  // Rechokes between optimistic unchoke changes.
  int optimistic_every = 3;
  // Seeding: rechokes a peer keeps a regular slot before it goes behind the
  // peers still waiting for one (rotation).
  int seed_rotation_rounds = 3;
};

// One peer as the swarm sees it at a rechoke. A value type.
struct ChokePeer {
  PeerKey key = 0;
  bool interested = false;   // the peer wants our data
  bool choked = true;        // we currently choke it
  bool trusted = false;      // never choke
  bool snubbed = false;      // sent us nothing for a long time while unchoked;
                             // no regular slot while leeching (ignored seeding)
  double download_rate = 0;  // bytes/s we receive from it
  double upload_rate = 0;    // bytes/s we send to it
  int64_t connected_for_ms =
      0;  // "new" peers (< 60 s) weigh more for optimistic unchoke
};

// Not thread-safe: owned and called by one thread.
class Choker {
 public:
  Choker(const ChokerOptions& options, std::function<uint64_t()> random);

  // Returns the peers to unchoke (every other peer is choked), each once: the
  // trusted peers, then the regular slots (interested peers only, best first),
  // then the optimistic unchoke if any. `seeding`: we have every piece. `peers`
  // holds each key at most once.
  std::vector<PeerKey> Rechoke(const std::vector<ChokePeer>& peers,
                               bool seeding);

  // The current optimistic unchoke; 0 if none.
  PeerKey optimistic() const { return optimistic_; }

 private:
  ChokerOptions options_;
  std::function<uint64_t()> random_;
  int round_ = 0;
  PeerKey optimistic_ = 0;
  bool has_optimistic_ = false;
  // Seeding rotation, sorted by key: rounds each interested peer has held a
  // regular slot (> 0) or waited for one (< 0) in a row.
  std::vector<std::pair<PeerKey, int>> seed_turns_;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_CHOKER_H_
