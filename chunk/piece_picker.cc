#include "chunk/piece_picker.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "chunk/picker_internal.h"

namespace shoal::chunk {
using namespace picker_internal;  // NOLINT: the picker's own types

class PiecePicker::Impl {
 public:
  Impl(const PiecePickerOptions& options, std::function<uint64_t()> random)
      : total_length_(options.total_length),
        piece_length_(options.piece_length),
        num_pieces_(options.piece_length == 0
                        ? 0
                        : static_cast<uint32_t>((options.total_length +
                                                 options.piece_length - 1) /
                                                options.piece_length)),
        stride_(static_cast<uint32_t>(
            std::clamp(options.endgame_max_duplicates, 1, 255))),
        strategy_(options.strategy),
        random_(std::move(random)),
        have_(num_pieces_),
        avail_(num_pieces_, 0),
        prio_(num_pieces_, kDefaultPriority),
        slot_(num_pieces_, Slot::kNone),
        has_deadline_(num_pieces_, 0),
        pos_(num_pieces_, kNoIndex),
        dl_(num_pieces_, kNoIndex),
        wanted_missing_(num_pieces_) {
    ResetFresh();
    for (uint32_t p = 0; p < num_pieces_; ++p) Index(p);
  }

  uint32_t num_pieces() const { return num_pieces_; }

  uint32_t piece_size(uint32_t piece) const {
    if (piece >= num_pieces_) return 0;
    if (piece + 1 < num_pieces_) return piece_length_;
    return static_cast<uint32_t>(total_length_ -
                                 uint64_t{piece_length_} * piece);
  }

  uint32_t blocks_in_piece(uint32_t piece) const {
    return (piece_size(piece) + kBlockLength - 1) / kBlockLength;
  }

  // --- Availability ---------------------------------------------------------

  void PeerHas(uint32_t piece) {
    if (piece >= num_pieces_) return;
    ChangeAvailability(piece, +1);
  }

  void PeerLost(uint32_t piece) {
    if (piece >= num_pieces_ || avail_[piece] == 0) return;
    ChangeAvailability(piece, -1);
  }

  void PeerHasBitfield(const Bitfield& bits) {
    if (bits.size() != num_pieces_) return;
    ForEachSetBit(bits, [&](uint32_t p) { ChangeAvailability(p, +1); });
  }

  void PeerLostBitfield(const Bitfield& bits) {
    if (bits.size() != num_pieces_) return;
    ForEachSetBit(bits, [&](uint32_t p) {
      if (avail_[p] > 0) ChangeAvailability(p, -1);
    });
  }

  void PeerHasAll() { ++seeds_; }
  void PeerLostAll() {
    if (seeds_ > 0) --seeds_;
  }

  uint32_t Availability(uint32_t piece) const {
    return piece < num_pieces_ ? avail_[piece] + seeds_ : 0;
  }

  // --- Our side -------------------------------------------------------------

  void SetStrategy(PickStrategy strategy) {
    if (strategy == strategy_) return;
    strategy_ = strategy;
    ResetFresh();
    for (uint32_t p = 0; p < num_pieces_; ++p) {
      if (slot_[p] == Slot::kFresh) FreshInsert(p);
    }
  }

  void SetPriority(uint32_t piece, uint8_t priority) {
    if (piece >= num_pieces_) return;
    priority = std::min(priority, kMaxPriority);
    if (priority == prio_[piece]) return;
    Unindex(piece);
    if (!have_.test(piece) && (prio_[piece] > 0) != (priority > 0)) {
      wanted_missing_ += priority > 0 ? 1 : -1;
    }
    prio_[piece] = priority;
    Index(piece);
  }

  uint8_t Priority(uint32_t piece) const {
    return piece < num_pieces_ ? prio_[piece] : 0;
  }

  void SetDeadline(uint32_t piece, int64_t deadline) {
    if (piece >= num_pieces_ || have_.test(piece)) return;
    Unindex(piece);
    has_deadline_[piece] = 1;
    deadlines_[piece] = deadline;
    Index(piece);
  }

  void ClearDeadline(uint32_t piece) {
    if (piece >= num_pieces_ || !has_deadline_[piece]) return;
    Unindex(piece);
    has_deadline_[piece] = 0;
    deadlines_.erase(piece);
    Index(piece);
  }

  void SetHave(uint32_t piece) {
    if (piece >= num_pieces_ || have_.test(piece)) return;
    Unindex(piece);
    have_.set(piece);
    if (prio_[piece] > 0) --wanted_missing_;
    if (dl_[piece] != kNoIndex) {
      Download& d = downloads_[dl_[piece]];
      for (uint32_t i = 0; i < d.blocks.size(); ++i) {
        for (uint32_t k = 0; k < d.blocks[i].requesters; ++k) {
          Released(d.holders[i * stride_ + k]);
        }
      }
      FreeDownload(piece);
    }
    has_deadline_[piece] = 0;
    deadlines_.erase(piece);
  }

  const Bitfield& have() const { return have_; }
  bool Complete() const { return wanted_missing_ == 0; }
  bool InEndgame() const { return open_count_ == 0 && wanted_missing_ > 0; }

  // --- Requests -------------------------------------------------------------

  std::vector<Block> Pick(PeerKey peer, const Bitfield& peer_has,
                          size_t max_blocks, bool peer_has_all) {
    std::vector<Block> out;
    if (max_blocks == 0) return out;
    if (!peer_has_all && peer_has.size() != num_pieces_) return out;

    // A peer with few pieces is cheaper to serve from its own bitfield than
    // by walking the availability order past everything it lacks: compare
    // the expected cost of both (the walk visits about open / count pieces
    // per piece picked).
    if (!peer_has_all && SparseIsCheaper(peer_has.count(), max_blocks)) {
      std::vector<uint32_t> candidates;
      candidates.reserve(peer_has.count());
      ForEachSetBit(peer_has, [&](uint32_t p) { candidates.push_back(p); });
      return PickAmong(peer, candidates, max_blocks);
    }

    auto has = [&](uint32_t p) { return peer_has_all || peer_has.test(p); };
    size_t remaining = max_blocks;
    std::vector<uint32_t> chosen;
    auto choose = [&](uint32_t p) {
      chosen.push_back(p);
      remaining -= std::min<size_t>(remaining, FreeBlocks(p));
    };

    // 1. Deadlines, earliest first.
    for (const auto& [deadline, p] : deadline_open_) {
      if (remaining == 0) break;
      if (has(p)) choose(p);
    }

    // 2. Per priority level, highest first: partial pieces, then fresh ones.
    if (remaining > 0) {
      std::vector<uint32_t> partials;
      for (uint32_t p : partials_) {
        if (has(p)) partials.push_back(p);
      }
      std::sort(partials.begin(), partials.end(), [&](uint32_t a, uint32_t b) {
        return PartialRank(peer, a) < PartialRank(peer, b);
      });
      size_t next_partial = 0;
      for (int level = kMaxPriority; level >= 1 && remaining > 0; --level) {
        while (next_partial < partials.size() && remaining > 0 &&
               prio_[partials[next_partial]] == level) {
          choose(partials[next_partial++]);
        }
        if (remaining == 0 || fresh_count_[level] == 0) continue;
        WalkFresh(level, peer_has_all, [&](uint32_t p) {
          if (has(p)) choose(p);
          return remaining > 0;
        });
      }
    }

    remaining = max_blocks;
    PeerRequests& requests = StartRequests(peer);
    out.reserve(max_blocks);
    for (uint32_t p : chosen) TakeFreeBlocks(requests, p, remaining, out);

    // 3. Endgame: duplicate requests for blocks others hold.
    if (remaining > 0 && InEndgame()) {
      std::vector<uint32_t> candidates;
      for (const Download& d : downloads_) {
        if (d.piece != kNoIndex && has(d.piece)) candidates.push_back(d.piece);
      }
      PickEndgame(requests, candidates, remaining, out);
    }
    FinishRequests(peer);
    return out;
  }

  std::vector<Block> PickFrom(PeerKey peer,
                              const std::vector<uint32_t>& allowed,
                              size_t max_blocks) {
    std::vector<uint32_t> candidates;
    for (uint32_t p : allowed) {
      if (p < num_pieces_) candidates.push_back(p);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()),
                     candidates.end());
    return PickAmong(peer, candidates, max_blocks);
  }

  bool BlockReceived(PeerKey peer, const Block& block) {
    std::optional<uint32_t> index = BlockIndex(block);
    if (!index || dl_[block.piece] == kNoIndex) return false;
    Download& d = downloads_[dl_[block.piece]];
    BlockState& b = d.blocks[*index];
    if (!RemoveHolder(d, *index, peer)) return false;  // not requested
    Released(peer);
    if (b.received) return false;  // a duplicate: only its request is cleared
    b.received = true;
    d.senders[*index] = peer;
    ++d.received;
    return d.received == d.blocks.size();
  }

  std::vector<PeerKey> RequestersOf(const Block& block, PeerKey except) const {
    std::vector<PeerKey> out;
    std::optional<uint32_t> index = BlockIndex(block);
    if (!index || dl_[block.piece] == kNoIndex) return out;
    const Download& d = downloads_[dl_[block.piece]];
    for (uint32_t k = 0; k < d.blocks[*index].requesters; ++k) {
      PeerKey p = d.holders[*index * stride_ + k];
      if (p != except) out.push_back(p);
    }
    return out;
  }

  void RequestFailed(PeerKey peer, const Block& block) {
    std::optional<uint32_t> index = BlockIndex(block);
    if (!index || dl_[block.piece] == kNoIndex) return;
    Download& d = downloads_[dl_[block.piece]];
    if (!RemoveHolder(d, *index, peer)) return;
    Released(peer);
    const BlockState& b = d.blocks[*index];
    if (!b.received && b.requesters == 0) ++d.free;
    Settle(block.piece);
  }

  void PeerGone(PeerKey peer) {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    std::vector<uint32_t> touched;
    for (uint64_t id : it->second.log) {
      uint32_t piece = static_cast<uint32_t>(id >> 32);
      uint32_t index = static_cast<uint32_t>(id);
      if (dl_[piece] == kNoIndex) continue;  // stale entry
      Download& d = downloads_[dl_[piece]];
      if (!RemoveHolder(d, index, peer)) continue;  // stale entry
      const BlockState& b = d.blocks[index];
      if (!b.received && b.requesters == 0) ++d.free;
      touched.push_back(piece);
    }
    peers_.erase(it);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint32_t piece : touched) Settle(piece);
  }

  std::vector<PeerKey> PieceFailed(uint32_t piece) {
    std::vector<PeerKey> senders;
    if (piece >= num_pieces_ || have_.test(piece) || dl_[piece] == kNoIndex ||
        downloads_[dl_[piece]].received == 0) {
      return senders;
    }
    // Start the piece over: forget what arrived and what is still requested
    // (endgame duplicates), so that no stale request can hold a block back.
    Download& d = downloads_[dl_[piece]];
    for (uint32_t i = 0; i < d.blocks.size(); ++i) {
      BlockState& b = d.blocks[i];
      for (uint32_t k = 0; k < b.requesters; ++k) {
        Released(d.holders[size_t{i} * stride_ + k]);
      }
      b.requesters = 0;
      if (!b.received) continue;
      if (std::find(senders.begin(), senders.end(), d.senders[i]) ==
          senders.end()) {
        senders.push_back(d.senders[i]);
      }
      b.received = false;
    }
    d.free = static_cast<uint32_t>(d.blocks.size());
    d.received = 0;
    Settle(piece);
    return senders;
  }

  std::vector<PeerKey> BlockSenders(uint32_t piece) const {
    std::vector<PeerKey> out(blocks_in_piece(piece), 0);
    if (piece < num_pieces_ && dl_[piece] != kNoIndex) {
      const Download& d = downloads_[dl_[piece]];
      for (uint32_t i = 0; i < d.blocks.size(); ++i) {
        if (d.blocks[i].received) out[i] = d.senders[i];
      }
    }
    return out;
  }

  PeerKey BlockSender(uint32_t piece, uint32_t block) const {
    if (piece >= num_pieces_ || dl_[piece] == kNoIndex) return 0;
    const Download& d = downloads_[dl_[piece]];
    return block < d.blocks.size() && d.blocks[block].received
               ? d.senders[block]
               : 0;
  }

  size_t RequestsOf(PeerKey peer) const {
    auto it = peers_.find(peer);
    return it == peers_.end() ? 0 : it->second.count;
  }

 private:
  // Orders partial pieces: higher priority, then ours, then nearest to done.
  std::tuple<int, int, uint32_t, uint32_t> PartialRank(PeerKey peer,
                                                       uint32_t p) const {
    const Download& d = downloads_[dl_[p]];
    return {-prio_[p], d.owner == peer ? 0 : 1, d.free, p};
  }

  bool SparseIsCheaper(uint64_t count, size_t max_blocks) const {
    uint64_t per_piece = std::max<uint64_t>(blocks_in_piece(0), 1);
    uint64_t pieces =
        std::min<uint64_t>(max_blocks / per_piece + 1, num_pieces_);
    uint64_t walk = pieces * open_count_ / std::max<uint64_t>(count, 1);
    uint64_t scan = num_pieces_ / 64 + 4 * count;
    return scan < walk;
  }

  // REQUIRES: has_deadline_[p].
  int64_t Deadline(uint32_t p) const { return deadlines_.find(p)->second; }

  uint32_t FreeBlocks(uint32_t p) const {
    return dl_[p] == kNoIndex ? blocks_in_piece(p) : downloads_[dl_[p]].free;
  }

  std::optional<uint32_t> BlockIndex(const Block& block) const {
    if (block.piece >= num_pieces_ || block.offset % kBlockLength != 0) {
      return std::nullopt;
    }
    uint32_t size = piece_size(block.piece);
    if (block.offset >= size) return std::nullopt;
    if (block.length != std::min(kBlockLength, size - block.offset)) {
      return std::nullopt;
    }
    return block.offset / kBlockLength;
  }

  Block MakeBlock(uint32_t piece, uint32_t index) const {
    uint32_t offset = index * kBlockLength;
    return Block{piece, offset,
                 std::min(kBlockLength, piece_size(piece) - offset)};
  }

  // --- Fresh pieces: availability buckets, or bitsets when sequential. ------

  uint32_t FreshKey(uint32_t p) const {
    return strategy_ == PickStrategy::kRarestFirst ? avail_[p] : 0;
  }

  void ResetFresh() {
    fresh_count_.fill(0);
    for (auto& level : buckets_) level.clear();
    for (auto& level : seq_bits_) level.clear();
    if (strategy_ == PickStrategy::kSequential) {
      for (auto& level : seq_bits_) level.assign((num_pieces_ + 63) / 64, 0);
    }
  }

  void FreshInsert(uint32_t p) {
    uint8_t level = prio_[p];
    ++fresh_count_[level];
    if (strategy_ == PickStrategy::kSequential) {
      seq_bits_[level][p / 64] |= uint64_t{1} << (p % 64);
      return;
    }
    auto& buckets = buckets_[level];
    uint32_t key = FreshKey(p);
    if (buckets.size() <= key) buckets.resize(key + 1);
    pos_[p] = static_cast<uint32_t>(buckets[key].size());
    buckets[key].push_back(p);
  }

  void FreshErase(uint32_t p) {
    uint8_t level = prio_[p];
    --fresh_count_[level];
    if (strategy_ == PickStrategy::kSequential) {
      seq_bits_[level][p / 64] &= ~(uint64_t{1} << (p % 64));
      return;
    }
    std::vector<uint32_t>& bucket = buckets_[level][FreshKey(p)];
    uint32_t last = bucket.back();
    bucket[pos_[p]] = last;
    pos_[last] = pos_[p];
    bucket.pop_back();
    pos_[p] = kNoIndex;
  }

  // Calls visit(p) for the fresh pieces of `level` in strategy order until it
  // returns false. Rarest-first: by availability, ties from a random starting
  // point in each bucket; random: from a random starting point; sequential:
  // by index. Must not change the fresh pieces while walking.
  template <typename F>
  void WalkFresh(int level, bool peer_has_all, F visit) {
    if (strategy_ == PickStrategy::kSequential) {
      const std::vector<uint64_t>& words = seq_bits_[level];
      for (size_t w = 0; w < words.size(); ++w) {
        uint64_t bits = words[w];
        while (bits != 0) {
          uint32_t p = static_cast<uint32_t>(w * 64 + std::countr_zero(bits));
          if (!visit(p)) return;
          bits &= bits - 1;
        }
      }
      return;
    }
    const auto& buckets = buckets_[level];
    for (size_t key = 0; key < buckets.size(); ++key) {
      // Rarest-first: pieces no peer has are only reachable through a seed.
      if (key == 0 && strategy_ == PickStrategy::kRarestFirst && seeds_ == 0 &&
          !peer_has_all) {
        continue;
      }
      const std::vector<uint32_t>& bucket = buckets[key];
      if (bucket.empty()) continue;
      size_t n = bucket.size();
      size_t start = n == 1 ? 0 : random_() % n;
      for (size_t i = 0; i < n; ++i) {
        size_t at = start + i;
        if (at >= n) at -= n;
        if (!visit(bucket[at])) return;
      }
    }
  }

  // --- Slots ----------------------------------------------------------------

  Slot Classify(uint32_t p) const {
    if (have_.test(p) || prio_[p] == 0) return Slot::kNone;
    if (dl_[p] != kNoIndex && downloads_[dl_[p]].free == 0) return Slot::kNone;
    if (has_deadline_[p]) return Slot::kDeadline;
    return dl_[p] == kNoIndex ? Slot::kFresh : Slot::kPartial;
  }

  void Unindex(uint32_t p) {
    switch (slot_[p]) {
      case Slot::kNone:
        return;
      case Slot::kFresh:
        FreshErase(p);
        break;
      case Slot::kPartial: {
        uint32_t last = partials_.back();
        partials_[pos_[p]] = last;
        pos_[last] = pos_[p];
        partials_.pop_back();
        pos_[p] = kNoIndex;
        break;
      }
      case Slot::kDeadline:
        deadline_open_.erase({Deadline(p), p});
        break;
    }
    slot_[p] = Slot::kNone;
    --open_count_;
  }

  void Index(uint32_t p) {
    assert(slot_[p] == Slot::kNone);
    Slot slot = Classify(p);
    switch (slot) {
      case Slot::kNone:
        return;
      case Slot::kFresh:
        FreshInsert(p);
        break;
      case Slot::kPartial:
        pos_[p] = static_cast<uint32_t>(partials_.size());
        partials_.push_back(p);
        break;
      case Slot::kDeadline:
        deadline_open_.insert({Deadline(p), p});
        break;
    }
    slot_[p] = slot;
    ++open_count_;
  }

  // After a change to a piece's request state: frees an untouched download
  // and moves the piece to the right structure.
  void Settle(uint32_t p) {
    if (dl_[p] != kNoIndex && downloads_[dl_[p]].free == blocks_in_piece(p)) {
      Unindex(p);
      FreeDownload(p);
    }
    if (Classify(p) != slot_[p]) {
      Unindex(p);
      Index(p);
    }
  }

  void ChangeAvailability(uint32_t p, int delta) {
    bool move =
        slot_[p] == Slot::kFresh && strategy_ == PickStrategy::kRarestFirst;
    if (move) FreshErase(p);
    avail_[p] += delta;
    if (move) FreshInsert(p);
  }

  // --- Downloads ------------------------------------------------------------

  Download& EnsureDownload(uint32_t p) {
    if (dl_[p] != kNoIndex) return downloads_[dl_[p]];
    uint32_t slot;
    if (!free_downloads_.empty()) {
      slot = free_downloads_.back();
      free_downloads_.pop_back();
    } else {
      slot = static_cast<uint32_t>(downloads_.size());
      downloads_.emplace_back();
    }
    dl_[p] = slot;
    Download& d = downloads_[slot];
    uint32_t n = blocks_in_piece(p);
    d.piece = p;
    d.free = n;
    d.received = 0;
    d.owner = 0;
    d.blocks.assign(n, BlockState{});
    d.holders.assign(size_t{n} * stride_, 0);
    d.senders.assign(n, 0);
    return d;
  }

  void FreeDownload(uint32_t p) {
    downloads_[dl_[p]].piece = kNoIndex;
    free_downloads_.push_back(dl_[p]);
    dl_[p] = kNoIndex;
  }

  // Removes `peer` from the holders of block `index`; false if it held none.
  bool RemoveHolder(Download& d, uint32_t index, PeerKey peer) {
    BlockState& b = d.blocks[index];
    PeerKey* h = &d.holders[size_t{index} * stride_];
    for (uint32_t k = 0; k < b.requesters; ++k) {
      if (h[k] == peer) {
        h[k] = h[b.requesters - 1];
        --b.requesters;
        return true;
      }
    }
    return false;
  }

  bool Holds(const Download& d, uint32_t index, PeerKey peer) const {
    const PeerKey* h = &d.holders[size_t{index} * stride_];
    for (uint32_t k = 0; k < d.blocks[index].requesters; ++k) {
      if (h[k] == peer) return true;
    }
    return false;
  }

  // Records a request for block `index` of `d` by `requests`' peer.
  void AddRequest(PeerRequests& requests, Download& d, uint32_t index,
                  std::vector<Block>& out) {
    BlockState& b = d.blocks[index];
    d.holders[size_t{index} * stride_ + b.requesters] = requests.peer;
    ++b.requesters;
    ++requests.count;
    requests.log.push_back(BlockId(d.piece, index));
    if (requests.log.size() > 2 * requests.count + 64) Compact(requests);
    out.push_back(MakeBlock(d.piece, index));
  }

  // Drops the stale entries of a request log.
  void Compact(PeerRequests& requests) {
    std::vector<uint64_t>& log = requests.log;
    std::sort(log.begin(), log.end());
    log.erase(std::unique(log.begin(), log.end()), log.end());
    std::erase_if(log, [&](uint64_t id) {
      uint32_t piece = static_cast<uint32_t>(id >> 32);
      return dl_[piece] == kNoIndex ||
             !Holds(downloads_[dl_[piece]], static_cast<uint32_t>(id),
                    requests.peer);
    });
    assert(log.size() == requests.count);
  }

  // `peer` no longer holds one of its requests (its holder entry is gone).
  void Released(PeerKey peer) {
    auto it = peers_.find(peer);
    assert(it != peers_.end());
    if (it == peers_.end()) return;
    if (--it->second.count == 0) peers_.erase(it);
  }

  // The peer's entry for a batch of AddRequest calls; FinishRequests after.
  PeerRequests& StartRequests(PeerKey peer) {
    PeerRequests& requests = peers_[peer];
    requests.peer = peer;
    return requests;
  }
  void FinishRequests(PeerKey peer) {
    auto it = peers_.find(peer);
    if (it != peers_.end() && it->second.count == 0) peers_.erase(it);
  }

  // Requests up to `remaining` free blocks of open piece `p` from `peer`,
  // lowest offset first.
  void TakeFreeBlocks(PeerRequests& requests, uint32_t p, size_t& remaining,
                      std::vector<Block>& out) {
    if (remaining == 0) return;
    Download& d = EnsureDownload(p);
    d.owner = requests.peer;
    for (uint32_t i = 0; i < d.blocks.size() && remaining > 0 && d.free > 0;
         ++i) {
      const BlockState& b = d.blocks[i];
      if (b.received || b.requesters > 0) continue;
      AddRequest(requests, d, i, out);
      --d.free;
      --remaining;
    }
    Settle(p);
  }

  // Endgame: requests blocks of `candidates` (pieces with downloads) that
  // other peers hold, fewest holders first, up to stride_ holders per block.
  void PickEndgame(PeerRequests& requests, std::vector<uint32_t>& candidates,
                   size_t& remaining, std::vector<Block>& out) {
    const PeerKey peer = requests.peer;
    std::erase_if(candidates, [&](uint32_t p) {
      return have_.test(p) || prio_[p] == 0 || dl_[p] == kNoIndex;
    });
    std::sort(
        candidates.begin(), candidates.end(), [&](uint32_t a, uint32_t b) {
          auto key = [&](uint32_t p) {
            int64_t deadline = has_deadline_[p]
                                   ? Deadline(p)
                                   : std::numeric_limits<int64_t>::max();
            return std::tuple(has_deadline_[p] ? 0 : 1, deadline, -prio_[p], p);
          };
          return key(a) < key(b);
        });
    for (uint32_t holders = 0; holders < stride_ && remaining > 0; ++holders) {
      for (uint32_t p : candidates) {
        Download& d = downloads_[dl_[p]];
        bool took = false;
        for (uint32_t i = 0; i < d.blocks.size() && remaining > 0; ++i) {
          const BlockState& b = d.blocks[i];
          if (b.received || b.requesters != holders || Holds(d, i, peer)) {
            continue;
          }
          if (b.requesters == 0) --d.free;
          AddRequest(requests, d, i, out);
          --remaining;
          took = true;
        }
        if (took) Settle(p);
        if (remaining == 0) break;
      }
    }
  }

  // The ranking of Pick, computed piece by piece over `candidates` (which
  // the peer has). Used for allowed-fast sets and peers with few pieces.
  std::vector<Block> PickAmong(PeerKey peer, std::vector<uint32_t> candidates,
                               size_t max_blocks) {
    std::vector<Block> out;
    if (max_blocks == 0) return out;
    struct Ranked {
      int group;  // 0: deadline, 1: others
      int64_t deadline;
      int neg_priority;
      int fresh;  // 0: partial, 1: fresh
      uint32_t own;
      uint64_t key1;
      uint64_t key2;
      uint32_t piece;
      auto Tie() const {
        return std::tie(group, deadline, neg_priority, fresh, own, key1, key2);
      }
    };
    std::vector<Ranked> ranked;
    for (uint32_t p : candidates) {
      Slot slot = slot_[p];
      if (slot == Slot::kNone) continue;
      Ranked r{};
      r.piece = p;
      if (slot == Slot::kDeadline) {
        r.group = 0;
        r.deadline = Deadline(p);
        r.key1 = p;
      } else {
        r.group = 1;
        r.neg_priority = -prio_[p];
        if (slot == Slot::kPartial) {
          auto [neg_prio, own, free, piece] = PartialRank(peer, p);
          r.fresh = 0;
          r.own = static_cast<uint32_t>(own);
          r.key1 = free;
          r.key2 = piece;
        } else {
          r.fresh = 1;
          switch (strategy_) {
            case PickStrategy::kRarestFirst:
              r.key1 = avail_[p];
              r.key2 = random_();
              break;
            case PickStrategy::kSequential:
              r.key1 = p;
              break;
            case PickStrategy::kRandom:
              r.key1 = random_();
              break;
          }
        }
      }
      ranked.push_back(r);
    }
    std::sort(
        ranked.begin(), ranked.end(),
        [](const Ranked& a, const Ranked& b) { return a.Tie() < b.Tie(); });
    size_t remaining = max_blocks;
    PeerRequests& requests = StartRequests(peer);
    for (const Ranked& r : ranked) {
      if (remaining == 0) break;
      TakeFreeBlocks(requests, r.piece, remaining, out);
    }
    if (remaining > 0 && InEndgame()) {
      std::erase_if(candidates, [&](uint32_t p) { return dl_[p] == kNoIndex; });
      PickEndgame(requests, candidates, remaining, out);
    }
    FinishRequests(peer);
    return out;
  }

  // Constant after construction.
  const uint64_t total_length_;
  const uint32_t piece_length_;
  const uint32_t num_pieces_;
  const uint32_t stride_;  // holders allowed per block (endgame duplicates)

  PickStrategy strategy_;
  std::function<uint64_t()> random_;

  // Per piece.
  Bitfield have_;
  std::vector<uint32_t> avail_;  // peers with it, not counting seeds_
  std::vector<uint8_t> prio_;
  std::vector<Slot> slot_;
  std::vector<uint8_t> has_deadline_;
  std::vector<uint32_t> pos_;  // index in its bucket or in partials_
  std::vector<uint32_t> dl_;   // index in downloads_, or kNoIndex

  uint32_t seeds_ = 0;
  uint32_t wanted_missing_;  // priority > 0 and not had
  uint32_t open_count_ = 0;  // pieces with slot_ != kNone

  // Fresh pieces per priority level: buckets_[level][availability] (rarest
  // first; random mode uses bucket 0 only), or seq_bits_[level] (sequential).
  std::array<std::vector<std::vector<uint32_t>>, kMaxPriority + 1> buckets_;
  std::array<std::vector<uint64_t>, kMaxPriority + 1> seq_bits_;
  std::array<uint32_t, kMaxPriority + 1> fresh_count_{};
  std::vector<uint32_t> partials_;
  std::set<std::pair<int64_t, uint32_t>> deadline_open_;
  absl::flat_hash_map<uint32_t, int64_t> deadlines_;

  std::vector<Download> downloads_;  // a pool, see Download::piece
  std::vector<uint32_t> free_downloads_;
  // Outstanding requests per peer (the holders in downloads_ are the truth).
  absl::flat_hash_map<PeerKey, PeerRequests> peers_;
};

PiecePicker::PiecePicker(const PiecePickerOptions& options,
                         std::function<uint64_t()> random)
    : impl_(std::make_unique<Impl>(options, std::move(random))) {}
PiecePicker::~PiecePicker() = default;

uint32_t PiecePicker::num_pieces() const { return impl_->num_pieces(); }
uint32_t PiecePicker::piece_size(uint32_t piece) const {
  return impl_->piece_size(piece);
}
uint32_t PiecePicker::blocks_in_piece(uint32_t piece) const {
  return impl_->blocks_in_piece(piece);
}
void PiecePicker::PeerHas(uint32_t piece) { impl_->PeerHas(piece); }
void PiecePicker::PeerLost(uint32_t piece) { impl_->PeerLost(piece); }
void PiecePicker::PeerHasBitfield(const Bitfield& bits) {
  impl_->PeerHasBitfield(bits);
}
void PiecePicker::PeerLostBitfield(const Bitfield& bits) {
  impl_->PeerLostBitfield(bits);
}
void PiecePicker::PeerHasAll() { impl_->PeerHasAll(); }
void PiecePicker::PeerLostAll() { impl_->PeerLostAll(); }
uint32_t PiecePicker::Availability(uint32_t piece) const {
  return impl_->Availability(piece);
}
void PiecePicker::SetStrategy(PickStrategy strategy) {
  impl_->SetStrategy(strategy);
}
void PiecePicker::SetPriority(uint32_t piece, uint8_t priority) {
  impl_->SetPriority(piece, priority);
}
uint8_t PiecePicker::Priority(uint32_t piece) const {
  return impl_->Priority(piece);
}
void PiecePicker::SetDeadline(uint32_t piece, int64_t deadline) {
  impl_->SetDeadline(piece, deadline);
}
void PiecePicker::ClearDeadline(uint32_t piece) { impl_->ClearDeadline(piece); }
void PiecePicker::SetHave(uint32_t piece) { impl_->SetHave(piece); }
const Bitfield& PiecePicker::have() const { return impl_->have(); }
bool PiecePicker::Complete() const { return impl_->Complete(); }
bool PiecePicker::InEndgame() const { return impl_->InEndgame(); }
std::vector<Block> PiecePicker::Pick(PeerKey peer, const Bitfield& peer_has,
                                     size_t max_blocks, bool peer_has_all) {
  return impl_->Pick(peer, peer_has, max_blocks, peer_has_all);
}
std::vector<Block> PiecePicker::PickFrom(PeerKey peer,
                                         const std::vector<uint32_t>& allowed,
                                         size_t max_blocks) {
  return impl_->PickFrom(peer, allowed, max_blocks);
}
bool PiecePicker::BlockReceived(PeerKey peer, const Block& block) {
  return impl_->BlockReceived(peer, block);
}
std::vector<PeerKey> PiecePicker::RequestersOf(const Block& block,
                                               PeerKey except) const {
  return impl_->RequestersOf(block, except);
}
void PiecePicker::RequestFailed(PeerKey peer, const Block& block) {
  impl_->RequestFailed(peer, block);
}
void PiecePicker::PeerGone(PeerKey peer) { impl_->PeerGone(peer); }
std::vector<PeerKey> PiecePicker::PieceFailed(uint32_t piece) {
  return impl_->PieceFailed(piece);
}
std::vector<PeerKey> PiecePicker::BlockSenders(uint32_t piece) const {
  return impl_->BlockSenders(piece);
}
PeerKey PiecePicker::BlockSender(uint32_t piece, uint32_t block) const {
  return impl_->BlockSender(piece, block);
}
size_t PiecePicker::RequestsOf(PeerKey peer) const {
  return impl_->RequestsOf(peer);
}

}  // namespace shoal::chunk
