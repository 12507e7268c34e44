// Which piece an origin reveals next when it super-seeds (node/swarm.h,
// SwarmOptions::super_seed): every piece is revealed once before any is
// revealed twice, in a random order fixed at the start, and a peer is never
// shown a piece it has or was shown. Sans-I/O and peer-agnostic: the caller
// says, per call, which pieces the peer in question can't take.
//
//   RevealSchedule s(num_pieces, random);
//   std::optional<uint32_t> piece = s.Next([&](uint32_t i) {
//     return peer_has(i) || shown_to_peer(i);
//   });
//   ...
//   s.Unreveal(piece);  // its peer left before any of it was sent
//
// Next() looks from where the last search stopped and stops at the first
// piece revealed as few times as any: a round over n pieces costs O(n) when
// peers take what they are offered.
#ifndef SHOAL_CHUNK_REVEAL_SCHEDULE_H_
#define SHOAL_CHUNK_REVEAL_SCHEDULE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace shoal::chunk {

class RevealSchedule {
 public:
  // `random` returns uniformly distributed 64-bit values (the order).
  RevealSchedule(uint32_t num_pieces, const std::function<uint64_t()>& random);

  // The next piece to reveal to a peer for which `skip(i)` is true of the
  // pieces it can't take (counted as revealed), or nullopt if it can take
  // none.
  std::optional<uint32_t> Next(const std::function<bool(uint32_t)>& skip);
  // After the first round, what an origin that sends each piece about once
  // reveals: the piece of which no peer holds a copy or is being sent one
  // (`copies(i)` == 0; the caller counts among its peers), fewest reveals
  // first, that `skip` allows; nullopt if there is none (every piece left is
  // on its way through the swarm already). Recorded as a reveal, like Next.
  std::optional<uint32_t> NextUncopied(
      const std::function<bool(uint32_t)>& skip,
      const std::function<uint32_t(uint32_t)>& copies);
  // Like Next, but the lowest-numbered such piece rather than the next in the
  // random order: what an origin with a single peer reveals, so that a reader
  // streaming the content on that peer gets its pieces in order. Amortised
  // O(1) per piece over a round while the peer takes what it is shown.
  std::optional<uint32_t> NextInIndexOrder(
      const std::function<bool(uint32_t)>& skip);
  // A piece revealed but never sent (its peer left): it counts one reveal
  // less.
  void Unreveal(uint32_t piece);

  uint32_t times_revealed(uint32_t piece) const { return count_[piece]; }
  // The fewest times any piece was revealed.
  uint32_t round() const { return round_; }

 private:
  void Record(uint32_t piece);
  void Recount();

  std::vector<uint32_t> count_;
  std::vector<uint32_t> order_;  // a random permutation of the pieces
  size_t cursor_ = 0;            // where in order_ the next search starts
  uint32_t round_ = 0;           // min of count_
  size_t at_round_ = 0;          // pieces with count_ == round_
  // NextInIndexOrder: every piece below it is revealed more than round_ times.
  uint32_t index_cursor_ = 0;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_REVEAL_SCHEDULE_H_
