// The piece picker's constants and bookkeeping types (chunk/piece_picker.h is
// the interface), kept apart from its algorithms in piece_picker.cc. Not for
// use outside it.
#ifndef SHOAL_CHUNK_PICKER_INTERNAL_H_
#define SHOAL_CHUNK_PICKER_INTERNAL_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "chunk/bitfield.h"
#include "chunk/piece_picker.h"

namespace shoal::chunk::picker_internal {

inline constexpr uint8_t kDefaultPriority = 4;
inline constexpr uint8_t kMaxPriority = 7;
inline constexpr uint32_t kNoIndex = std::numeric_limits<uint32_t>::max();

// Where a piece sits among the pick structures. A piece is "open" (pickable
// without endgame) when it is wanted, not had, and has a free block: one
// neither received nor requested from anyone.
enum class Slot : uint8_t {
  kNone,      // not open
  kFresh,     // open, nothing requested or received yet, no deadline
  kPartial,   // open, some block requested or received, no deadline
  kDeadline,  // open, has a deadline
};

inline uint64_t BlockId(uint32_t piece, uint32_t index) {
  return (uint64_t{piece} << 32) | index;
}

// Calls f(i) for every set bit i of `bits`, in ascending order, skipping zero
// bytes.
template <typename F>
void ForEachSetBit(const Bitfield& bits, F f) {
  std::string_view bytes = bits.bytes();
  for (size_t i = 0; i < bytes.size(); ++i) {
    unsigned b = static_cast<uint8_t>(bytes[i]);
    while (b != 0) {
      int lead = std::countl_zero(static_cast<uint8_t>(b));
      f(static_cast<uint32_t>(i * 8 + lead));
      b &= ~(0x80u >> lead);
    }
  }
}

struct BlockState {
  bool received = false;
  uint8_t requesters = 0;  // peers holding a request for it, <= stride_
};

// A peer's outstanding requests: a count, and a log of BlockId()s that
// may hold stale entries (released requests), compacted as it grows.
struct PeerRequests {
  PeerKey peer = 0;
  size_t count = 0;
  std::vector<uint64_t> log;
};

// A piece with at least one block requested or received.
struct Download {
  uint32_t piece = kNoIndex;  // kNoIndex: this pool entry is unused
  uint32_t free = 0;          // blocks neither received nor requested
  uint32_t received = 0;
  PeerKey owner = 0;  // the last peer that picked from it
  std::vector<BlockState> blocks;
  std::vector<PeerKey> holders;  // stride_ per block; first `requesters`
  std::vector<PeerKey> senders;  // per block; valid if received
};

}  // namespace shoal::chunk::picker_internal

#endif  // SHOAL_CHUNK_PICKER_INTERNAL_H_
