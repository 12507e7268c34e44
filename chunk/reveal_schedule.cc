#include "chunk/reveal_schedule.h"

#include <algorithm>

namespace shoal::chunk {

RevealSchedule::RevealSchedule(uint32_t num_pieces,
                               const std::function<uint64_t()>& random)
    : count_(num_pieces, 0), order_(num_pieces), at_round_(num_pieces) {
  for (uint32_t i = 0; i < num_pieces; ++i) order_[i] = i;
  for (uint32_t i = num_pieces; i > 1; --i)
    std::swap(order_[i - 1], order_[random() % i]);
}

std::optional<uint32_t> RevealSchedule::Next(
    const std::function<bool(uint32_t)>& skip) {
  const size_t n = order_.size();
  std::optional<size_t> best;
  for (size_t k = 0; k < n; ++k) {
    const size_t at = (cursor_ + k) % n;
    const uint32_t i = order_[at];
    if (skip(i)) continue;
    if (!best || count_[i] < count_[order_[*best]]) best = at;
    if (count_[i] == round_) break;  // nothing is revealed fewer times
  }
  if (!best) return std::nullopt;
  const uint32_t piece = order_[*best];
  cursor_ = (*best + 1) % n;
  Record(piece);
  return piece;
}

std::optional<uint32_t> RevealSchedule::NextUncopied(
    const std::function<bool(uint32_t)>& skip,
    const std::function<uint32_t(uint32_t)>& copies) {
  std::optional<uint32_t> best;
  for (uint32_t i : order_) {
    if (best && count_[i] >= count_[*best]) continue;
    if (skip(i) || copies(i) > 0) continue;
    best = i;
    if (count_[i] == round_) break;
  }
  if (best) Record(*best);
  return best;
}

std::optional<uint32_t> RevealSchedule::NextInIndexOrder(
    const std::function<bool(uint32_t)>& skip) {
  const auto n = static_cast<uint32_t>(count_.size());
  while (index_cursor_ < n && count_[index_cursor_] > round_) ++index_cursor_;
  for (uint32_t i = index_cursor_; i < n; ++i) {
    if (count_[i] != round_ || skip(i)) continue;
    Record(i);
    return i;
  }
  return Next(skip);  // every piece at the round is skipped: fewest reveals
}

void RevealSchedule::Record(uint32_t piece) {
  if (count_[piece]++ == round_ && --at_round_ == 0) Recount();
}

void RevealSchedule::Unreveal(uint32_t piece) {
  if (count_[piece] == 0) return;
  index_cursor_ = std::min(index_cursor_, piece);
  if (--count_[piece] < round_) {
    Recount();
  } else if (count_[piece] == round_) {
    ++at_round_;
  }
}

void RevealSchedule::Recount() {
  index_cursor_ = 0;
  if (count_.empty()) return;
  round_ = *std::min_element(count_.begin(), count_.end());
  at_round_ =
      static_cast<size_t>(std::count(count_.begin(), count_.end(), round_));
}

}  // namespace shoal::chunk
