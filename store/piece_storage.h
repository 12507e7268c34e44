// Where a swarm's pieces live: files under a save path (BitTorrent's way,
// FileStorage) or the chunk store (CDN content).
//
// The swarm verifies a piece in memory, then writes it whole; it reads blocks
// to serve peers and whole pieces to check existing data. Implementations are
// thread-safe: the hashing/disk pool calls them.
#ifndef SHOAL_STORE_PIECE_STORAGE_H_
#define SHOAL_STORE_PIECE_STORAGE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shoal::store {

class PieceStorage {
 public:
  virtual ~PieceStorage() = default;

  // Stores piece `piece`, which the caller has verified. `data` is the piece's
  // full length. Errors: the underlying I/O error (RESOURCE_EXHAUSTED when the
  // disk is full).
  virtual absl::Status WritePiece(uint32_t piece, std::string_view data) = 0;

  // Reads `length` bytes at `offset` within piece `piece`. UNAVAILABLE if the
  // piece is not stored; OUT_OF_RANGE past the piece's end; DATA_LOSS if stored
  // data is corrupt (the chunk store verifies; files are verified by the
  // caller's hash check).
  virtual absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                                uint32_t length) = 0;

  // Reads the whole piece (to check data found on disk).
  virtual absl::StatusOr<std::string> ReadPiece(uint32_t piece) = 0;
};

}  // namespace shoal::store

#endif  // SHOAL_STORE_PIECE_STORAGE_H_
