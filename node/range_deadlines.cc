#include "node/range_deadlines.h"

#include <algorithm>

namespace shoal::node {

void RangeDeadlines::Add(uint32_t first, uint32_t end, int64_t base) {
  if (first < end) ranges_.push_back(Range{first, end, base, 0});
}

void RangeDeadlines::Advance(chunk::PiecePicker& picker, uint32_t piece_length,
                             bool trading) {
  if (ranges_.empty()) return;
  const uint32_t window =
      trading && piece_length > 0
          ? std::max<uint32_t>(
                4, static_cast<uint32_t>(window_bytes_ / piece_length))
          : UINT32_MAX;
  const chunk::Bitfield& have = picker.have();
  for (Range& r : ranges_) {
    while (r.first < r.end && have.test(r.first)) ++r.first;
    const uint32_t stop = r.first + std::min(window, r.end - r.first);
    for (uint32_t i = std::max(r.first, r.marked_end); i < stop; ++i)
      if (!have.test(i)) picker.SetDeadline(i, r.base + i);
    for (uint32_t i = stop; i < r.marked_end; ++i) picker.ClearDeadline(i);
    r.marked_end = stop;
  }
  std::erase_if(ranges_, [](const Range& r) { return r.first >= r.end; });
}

}  // namespace shoal::node
