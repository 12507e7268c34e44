#include "node/piece_cache.h"

#include <algorithm>

namespace shoal::node {

PieceCache::Piece PieceCache::Find(uint32_t piece) {
  auto hit = std::find_if(cached_.begin(), cached_.end(),
                          [&](const auto& e) { return e.first == piece; });
  if (hit == cached_.end()) return nullptr;
  cached_.splice(cached_.begin(), cached_, hit);
  return cached_.front().second;
}

bool PieceCache::Wait(uint32_t piece, Waiter w) {
  std::vector<Waiter>& waiters = reads_[piece];
  waiters.push_back(std::move(w));
  return waiters.size() == 1;
}

std::vector<PieceCache::Waiter> PieceCache::Done(uint32_t piece, Piece data) {
  std::vector<Waiter> waiters;
  if (auto it = reads_.find(piece); it != reads_.end()) {
    waiters = std::move(it->second);
    reads_.erase(it);
  }
  if (data && entries_ > 0) {
    cached_.emplace_front(piece, std::move(data));
    if (cached_.size() > entries_) cached_.pop_back();
  }
  return waiters;
}

}  // namespace shoal::node
