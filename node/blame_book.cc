#include "node/blame_book.h"

#include <algorithm>
#include <cstdint>

namespace shoal::node {

BlameBook::CaseKey BlameBook::KeyOf(const wire::HashSpec& spec) {
  return {std::string(reinterpret_cast<const char*>(spec.pieces_root.data()),
                      spec.pieces_root.size()),
          spec.index};
}

std::optional<uint64_t> BlameBook::AskNext(
    Case&& c, const std::vector<Candidate>& candidates, uint64_t tick) {
  // Rank: a peer that sent nothing of the piece, else the one that sent the
  // most of it.
  auto rank = [&](uint64_t key) {
    const auto n =
        std::count(c.block_senders.begin(), c.block_senders.end(), key);
    return n == 0 ? INT64_MAX : static_cast<int64_t>(n);
  };
  std::optional<uint64_t> ask;
  for (const Candidate& q : candidates) {
    if (!q.can_answer ||
        std::find(c.tried.begin(), c.tried.end(), q.key) != c.tried.end())
      continue;
    if (!ask || rank(q.key) > rank(*ask)) ask = q.key;
  }
  if (!ask) return std::nullopt;
  c.asked = *ask;
  c.asked_tick = tick;
  c.tried.push_back(*ask);
  CaseKey key = KeyOf(c.spec);
  cases_[std::move(key)] = std::move(c);
  return ask;
}

std::optional<BlameBook::Case> BlameBook::TakeAnswer(
    uint64_t from, const wire::HashSpec& spec) {
  auto it = cases_.find(KeyOf(spec));
  if (it == cases_.end() || it->second.asked != from) return std::nullopt;
  Case c = std::move(it->second);
  cases_.erase(it);
  return c;
}

std::vector<BlameBook::Case> BlameBook::TakeExpired(uint64_t tick,
                                                    uint64_t answer_ticks) {
  std::vector<Case> late;
  for (auto it = cases_.begin(); it != cases_.end();) {
    if (tick >= it->second.asked_tick + answer_ticks) {
      late.push_back(std::move(it->second));
      it = cases_.erase(it);
    } else {
      ++it;
    }
  }
  return late;
}

std::vector<BlameBook::Case> BlameBook::TakeAskedOf(uint64_t key) {
  std::vector<Case> out;
  for (auto it = cases_.begin(); it != cases_.end();) {
    if (it->second.asked == key) {
      out.push_back(std::move(it->second));
      it = cases_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<uint64_t> BlameBook::Strike(const std::vector<uint64_t>& senders,
                                        int ban_after) {
  std::vector<uint64_t> ban;
  for (uint64_t key : senders) {
    if (++strikes_[key] >= ban_after || senders.size() == 1) ban.push_back(key);
  }
  return ban;
}

void BlameBook::Ban(const std::string& ip, uint64_t key) {
  banned_.insert(ip);
  banned_keys_.insert(key);
}

bool BlameBook::AnyBanned(const std::vector<uint64_t>& keys) const {
  return std::any_of(keys.begin(), keys.end(),
                     [&](uint64_t k) { return banned_keys_.contains(k); });
}

}  // namespace shoal::node
