// The piece picker: which blocks to request from which peer.
//
// Sans-I/O and single-threaded (it lives on the network thread): the swarm
// tells it what peers have, what we have, what was requested and what arrived;
// it answers with block requests. Randomness (tie-breaking, random mode) comes
// from an injected source, so tests are deterministic.
//
// Strategies: rarest-first (default; ties broken at random), sequential (lowest
// index first), or random. Piece priorities (0 = skip, 1..7; higher first, then
// the strategy). Deadlines: pieces with a deadline are picked before everything
// else, earliest deadline first (so a requested byte range arrives first and in
// order). Partially requested pieces are finished before new ones are started.
// Endgame: once every wanted block is requested, blocks already requested from
// one peer may be requested again from another, up to a small limit per block.
//
// The pick order, exactly: (1) pieces with a deadline, earliest first; (2) per
// priority, highest first: the partially requested pieces (those the asking
// peer was downloading first, then the ones nearest completion), then untouched
// pieces in strategy order; (3) in endgame, blocks others hold, fewest holders
// first. Within a piece, free blocks go lowest offset first.
//
// Cost: rarest-first keeps untouched pieces in availability buckets (one per
// priority), so Pick costs about O(blocks returned + pieces the peer lacks that
// it walks past), and a HAVE is O(1); a peer with few pieces is served from its
// own bitfield instead. Seeds are one counter.
//
//   PiecePicker picker({.total_length = len, .piece_length = pl}, random);
//   picker.PeerHasBitfield(peer_bits);
//   for (const Block& b : picker.Pick(peer, peer_bits, 64)) send Request(b)
//   ... on a block: if (picker.BlockReceived(peer, b)) hash the piece ...
#ifndef SHOAL_CHUNK_PIECE_PICKER_H_
#define SHOAL_CHUNK_PIECE_PICKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "chunk/bitfield.h"

namespace shoal::chunk {

enum class PickStrategy : uint8_t { kRarestFirst, kSequential, kRandom };

// Identifies a peer to the picker (the swarm's own handle for a connection).
using PeerKey = uint64_t;

// A block of a piece: BEP 3 requests are 16 KiB except the last block of the
// last piece.
struct Block {
  uint32_t piece = 0;
  uint32_t offset = 0;  // bytes from the start of the piece
  uint32_t length = 0;
  friend bool operator==(const Block&, const Block&) = default;
};

inline constexpr uint32_t kBlockLength = 16 * 1024;

struct PiecePickerOptions {
  uint64_t total_length = 0;
  uint32_t piece_length = 0;  // a multiple of 16 KiB; 0 means no pieces
  PickStrategy strategy = PickStrategy::kRarestFirst;
  // In endgame, how many peers may hold a request for the same block at once.
  int endgame_max_duplicates = 2;
};

// Not thread-safe: owned and called by one thread.
class PiecePicker {
 public:
  // `random` returns uniformly distributed 64-bit values.
  PiecePicker(const PiecePickerOptions& options,
              std::function<uint64_t()> random);
  ~PiecePicker();
  PiecePicker(const PiecePicker&) = delete;
  PiecePicker& operator=(const PiecePicker&) = delete;

  uint32_t num_pieces() const;
  // The length of piece `piece` and of its blocks.
  uint32_t piece_size(uint32_t piece) const;
  uint32_t blocks_in_piece(uint32_t piece) const;

  // --- Availability: what peers have.
  // -------------------------------------------------------
  void PeerHas(uint32_t piece);
  void PeerLost(uint32_t piece);  // rare: lt_donthave
  void PeerHasBitfield(const Bitfield& bits);
  void PeerLostBitfield(const Bitfield& bits);  // the peer disconnected
  void PeerHasAll();  // a seed (have all): counted without touching every piece
  void PeerLostAll();
  // How many connected peers have `piece`.
  uint32_t Availability(uint32_t piece) const;

  // --- Our side.
  // ------------------------------------------------------------------------------
  void SetStrategy(PickStrategy strategy);
  // 0 = do not download, 1..7 (larger values mean 7); default 4. Requests
  // already made for a piece set to 0 stay outstanding (the caller may cancel
  // them).
  void SetPriority(uint32_t piece, uint8_t priority);
  uint8_t Priority(uint32_t piece) const;
  // Orders this piece before every piece without a deadline, earlier deadlines
  // first. The unit is the caller's (e.g. milliseconds on its clock). Ignored
  // for a piece we have; a piece with priority 0 is still not picked.
  void SetDeadline(uint32_t piece, int64_t deadline);
  void ClearDeadline(uint32_t piece);
  // We have the piece (verified). Clears its requests and deadline.
  void SetHave(uint32_t piece);
  const Bitfield& have() const;
  // Every piece with priority > 0 is had.
  bool Complete() const;
  // Every wanted block is requested or received (and so endgame has begun), and
  // some wanted piece is not had yet. A wanted piece that no peer has keeps us
  // out of endgame.
  bool InEndgame() const;

  // --- Requests.
  // ------------------------------------------------------------------------------
  // Up to `max_blocks` blocks to request from `peer`, which has `peer_has` (or
  // everything, if `peer_has_all`), in pick order. The blocks are recorded as
  // requested by `peer`. Empty if `peer_has` has the wrong size. REQUIRES: the
  // availability calls above already count this peer's pieces (rarest-first
  // walks past pieces no connected peer has unless a seed is connected or
  // `peer_has_all`).
  std::vector<Block> Pick(PeerKey peer, const Bitfield& peer_has,
                          size_t max_blocks, bool peer_has_all = false);
  // Like Pick, limited to the pieces in `allowed` (BEP 6 allowed-fast pieces
  // while choked). REQUIRES: the peer has every piece in `allowed` (the caller
  // filters out the others).
  std::vector<Block> PickFrom(PeerKey peer,
                              const std::vector<uint32_t>& allowed,
                              size_t max_blocks);
  // A block arrived from `peer`. Returns true if it was the last missing block
  // of its piece (the caller then verifies the piece). Blocks that were not
  // requested from `peer` (including malformed ones) return false and change
  // nothing; a block already received from another peer (endgame) returns false
  // and only clears `peer`'s request. In endgame, the caller cancels the same
  // block at the other peers that hold it (RequestersOf, before or after this
  // call: their requests stay recorded until RequestFailed).
  bool BlockReceived(PeerKey peer, const Block& block);
  // Peers other than `except` with an outstanding request for `block`.
  std::vector<PeerKey> RequestersOf(const Block& block, PeerKey except) const;
  // A request was rejected, cancelled or timed out: the block may be picked
  // again (unless it was received meanwhile). No effect if `peer` holds no
  // request for `block`.
  void RequestFailed(PeerKey peer, const Block& block);
  // Forgets every request `peer` holds (it disconnected or choked us).
  void PeerGone(PeerKey peer);
  // The piece failed its hash check: all its blocks are wanted again. Returns
  // the peers that sent its blocks (each once, in block order), for the
  // caller's ban accounting. Requests still recorded for its blocks (endgame
  // duplicates) are forgotten too: the caller may cancel them, and a late copy
  // counts as unrequested. Empty, with no effect, for a piece we have or of
  // which nothing was received.
  std::vector<PeerKey> PieceFailed(uint32_t piece);
  // The peers that sent each block of `piece` so far (index = block number; 0
  // if none). With v2 merkle trees the caller can tell exactly which block was
  // bad.
  std::vector<PeerKey> BlockSenders(uint32_t piece) const;
  // BlockSenders(piece)[block], without building the vector (0 if none).
  PeerKey BlockSender(uint32_t piece, uint32_t block) const;
  // Outstanding requests held by `peer`.
  size_t RequestsOf(PeerKey peer) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_PIECE_PICKER_H_
