// PieceCache: the pieces a swarm serves from, read once for many requests.
// Part of the swarm engine's uploads (node/swarm_upload.cc).
//
// Peers ask for 16 KiB blocks; storage reads whole pieces (verified, for v2,
// against the piece layer). So the few pieces read last are kept (an LRU of
// `entries`), and requests for a piece whose read is under way wait on it
// instead of starting another: one read per piece however many peers ask
// for it at once (a fan-out's seed serves the same piece to many).
//
// Pure bookkeeping: the caller reads, on its pool, and reports back.
#ifndef SHOAL_NODE_PIECE_CACHE_H_
#define SHOAL_NODE_PIECE_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "wire/message.h"

namespace shoal::node {

class PieceCache {
 public:
  using Piece = std::shared_ptr<const std::string>;
  // A request waiting on a read: the peer's key and the block.
  using Waiter = std::pair<uint64_t, wire::BlockSpec>;

  explicit PieceCache(size_t entries) : entries_(entries) {}

  // The piece, if cached (it becomes the most recently used); else null.
  Piece Find(uint32_t piece);
  // Files `w` to be served when `piece` has been read. True if the caller
  // must start the read (nobody was waiting on it yet).
  bool Wait(uint32_t piece, Waiter w);
  // The read of `piece` is done: `data` (null if it failed) is cached and
  // the requests that waited on it are returned, in order.
  std::vector<Waiter> Done(uint32_t piece, Piece data);
  // Forgets every cached piece (storage changed). Reads under way still
  // report through Done.
  void Clear() { cached_.clear(); }

 private:
  const size_t entries_;
  std::list<std::pair<uint32_t, Piece>> cached_;  // most recent first
  absl::flat_hash_map<uint32_t, std::vector<Waiter>> reads_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_PIECE_CACHE_H_
