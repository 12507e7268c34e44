// BlameBook: who is to blame for a piece that failed its hash check, and who
// is banned. Part of the swarm engine (node/swarm_download.cc does the I/O).
//
// A failed piece with one sender: that sender is banned. With several:
//   - a sender banned already explains it (its blocks were the bad ones);
//   - for v2 content, a peer is asked for the block hashes under the piece
//     (BEP 52, base layer 0): those prove which blocks were bad, and exactly
//     their senders are banned. The peer asked is one that has the piece and
//     can answer, and was not asked before for this piece: a peer that sent
//     none of it first, else the sender of the most of its blocks (a liar sends
//     what it must, an honest peer the rest). One that rejects the request,
//     does not answer within a few ticks, or leaves, passes the case on to the
//     next; when nobody is left,
//   - each sender takes a strike, and is banned at `ban_after` strikes.
// Bans are by address (a banned address cannot connect again) and by
// connection (pieces a banned connection contributed to fail without blame).
//
// Pure bookkeeping by peer key: no I/O, no clock (ticks come in).
#ifndef SHOAL_NODE_BLAME_BOOK_H_
#define SHOAL_NODE_BLAME_BOOK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "wire/message.h"

namespace shoal::node {

class BlameBook {
 public:
  // Open cases at most: beyond, failures fall back to strikes.
  static constexpr size_t kMaxOpen = 16;

  // A corrupt v2 piece waiting for the block hashes that tell who sent the
  // bad block.
  struct Case {
    uint32_t piece = 0;
    std::shared_ptr<char[]> data;
    size_t bytes = 0;
    std::vector<uint64_t> block_senders;  // per block
    std::vector<uint64_t> senders;        // each once
    wire::HashSpec spec;                  // the request for its block hashes
    uint64_t asked = 0;                   // the peer asked, when filed
    uint64_t asked_tick = 0;
    std::vector<uint64_t> tried;  // peers asked before, who failed to answer
  };
  // A peer that might be asked.
  struct Candidate {
    uint64_t key = 0;
    bool can_answer = false;  // has the piece and speaks v2 on this swarm
  };

  bool CanOpen() const { return cases_.size() < kMaxOpen; }
  size_t open() const { return cases_.size(); }

  // Files `c` (moved from) under the next peer to ask (see above) among
  // `candidates`, asked at `tick`, and returns that peer; nullopt when nobody
  // is left (then `c` is left as it was, for the caller to strike its
  // senders).
  std::optional<uint64_t> AskNext(Case&& c,
                                  const std::vector<Candidate>& candidates,
                                  uint64_t tick);
  // The open case answered by `from` for `spec`, taken out; nullopt if there
  // is none, or it was asked of someone else.
  std::optional<Case> TakeAnswer(uint64_t from, const wire::HashSpec& spec);
  // Cases whose peer has not answered within `answer_ticks`, taken out (to be
  // asked of the next).
  std::vector<Case> TakeExpired(uint64_t tick, uint64_t answer_ticks);
  // Cases asked of `key` (it left), taken out.
  std::vector<Case> TakeAskedOf(uint64_t key);

  // Each of `senders` takes a strike; returns those to ban now: a sole sender
  // at once, others at `ban_after` strikes.
  std::vector<uint64_t> Strike(const std::vector<uint64_t>& senders,
                               int ban_after);
  void Ban(const std::string& ip, uint64_t key);
  bool IsBanned(const std::string& ip) const { return banned_.contains(ip); }
  // Whether any of `keys` is a connection banned here.
  bool AnyBanned(const std::vector<uint64_t>& keys) const;
  // The connection `key` is gone: its strikes go with it.
  void Forget(uint64_t key) { strikes_.erase(key); }

 private:
  using CaseKey = std::pair<std::string, uint32_t>;  // pieces root, index
  static CaseKey KeyOf(const wire::HashSpec& spec);

  std::map<CaseKey, Case> cases_;
  absl::flat_hash_map<uint64_t, int> strikes_;
  absl::flat_hash_set<std::string> banned_;
  absl::flat_hash_set<uint64_t> banned_keys_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_BLAME_BOOK_H_
