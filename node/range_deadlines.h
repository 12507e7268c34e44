// RangeDeadlines: the byte ranges readers wait on (Swarm::WantRange), turned
// into piece deadlines in the picker. Part of the swarm engine.
//
// A range covers pieces [first, end). With only seeds to fetch from, a reader
// is served best in order: every missing piece of the range gets a deadline
// (base + index, so earlier pieces come first). Once other fetchers are
// connected ("trading"), only a window of `window_bytes` (at least 4 pieces)
// ahead of the first missing piece does, and the rest follows the strategy
// (rarest first), so that nodes fetching the same content at once hold
// different pieces and trade instead of all waiting on the same next piece
// from the same seed. The window moves on as pieces arrive; a range whose
// pieces are all held is dropped.
//
// Pure bookkeeping over a PiecePicker: no I/O, no clock (the caller gives
// each range its base).
#ifndef SHOAL_NODE_RANGE_DEADLINES_H_
#define SHOAL_NODE_RANGE_DEADLINES_H_

#include <cstdint>
#include <vector>

#include "chunk/piece_picker.h"

namespace shoal::node {

class RangeDeadlines {
 public:
  // Small against the request pipeline (a fast peer has ~8 MiB in flight), so
  // that most requests follow the strategy.
  static constexpr uint64_t kWindowBytes = 1 << 20;

  explicit RangeDeadlines(uint64_t window_bytes = kWindowBytes)
      : window_bytes_(window_bytes) {}

  bool empty() const { return ranges_.empty(); }
  // Pieces [first, end) are wanted in order; `base` orders this range's
  // deadlines against others' (e.g. the time it was asked for, in ms, minus
  // `first`). Call Advance to apply.
  void Add(uint32_t first, uint32_t end, int64_t base);
  // Sets and clears deadlines in `picker` for what it holds now and whether
  // other fetchers are connected (`trading`).
  void Advance(chunk::PiecePicker& picker, uint32_t piece_length, bool trading);

 private:
  struct Range {
    uint32_t first = 0;
    uint32_t end = 0;
    int64_t base = 0;
    uint32_t marked_end = 0;  // pieces [first, marked_end) have deadlines
  };
  uint64_t window_bytes_;
  std::vector<Range> ranges_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_RANGE_DEADLINES_H_
