#include "chunk/piece_picker.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint32_t kPiece = 4 * kBlockLength;  // 4 blocks per piece

std::function<uint64_t()> Rng(uint64_t seed) {
  return [rng = std::mt19937_64(seed)]() mutable { return rng(); };
}

PiecePickerOptions Options(uint32_t pieces,
                           PickStrategy strategy = PickStrategy::kRarestFirst,
                           int duplicates = 2) {
  return {.total_length = uint64_t{pieces} * kPiece,
          .piece_length = kPiece,
          .strategy = strategy,
          .endgame_max_duplicates = duplicates};
}

Bitfield Bits(uint32_t size, std::initializer_list<uint32_t> set) {
  Bitfield b(size);
  for (uint32_t i : set) b.set(i);
  return b;
}

// The pieces of `blocks`, in order of first appearance.
std::vector<uint32_t> Pieces(const std::vector<Block>& blocks) {
  std::vector<uint32_t> out;
  for (const Block& b : blocks) {
    if (out.empty() || out.back() != b.piece) out.push_back(b.piece);
  }
  return out;
}

Block B(uint32_t piece, uint32_t index) {
  return {piece, index * kBlockLength, kBlockLength};
}

// Receives every block of `piece` from `peer`; true if the last completed it.
bool ReceivePiece(PiecePicker& picker, PeerKey peer, uint32_t piece) {
  bool done = false;
  for (uint32_t i = 0; i < picker.blocks_in_piece(piece); ++i) {
    done = picker.BlockReceived(peer, B(piece, i));
  }
  return done;
}

// Pieces count from the total length; the last piece and its last block are
// shorter, and picks and receipts use those lengths.
TEST(PiecePickerTest, GeometryWithShortLastPiece) {
  PiecePicker picker(
      {.total_length = 3 * kPiece + 20000, .piece_length = kPiece}, Rng(1));
  EXPECT_EQ(picker.num_pieces(), 4u);
  EXPECT_EQ(picker.piece_size(0), kPiece);
  EXPECT_EQ(picker.piece_size(3), 20000u);
  EXPECT_EQ(picker.blocks_in_piece(0), 4u);
  EXPECT_EQ(picker.blocks_in_piece(3), 2u);
  EXPECT_EQ(picker.piece_size(4), 0u);  // out of range

  picker.SetPriority(0, 0);
  picker.SetPriority(1, 0);
  picker.SetPriority(2, 0);
  picker.PeerHasBitfield(Bitfield(4, true));
  std::vector<Block> got = picker.Pick(1, Bitfield(4, true), 10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got, ElementsAre(Block{3, 0, kBlockLength},
                               Block{3, kBlockLength, 20000 - kBlockLength}));
  // A block with the wrong length is not ours.
  EXPECT_FALSE(picker.BlockReceived(1, Block{3, kBlockLength, kBlockLength}));
  EXPECT_FALSE(picker.BlockReceived(1, got[0]));
  EXPECT_TRUE(picker.BlockReceived(1, got[1]));

  PiecePicker exact({.total_length = 2 * kPiece, .piece_length = kPiece},
                    Rng(1));
  EXPECT_EQ(exact.num_pieces(), 2u);
  EXPECT_EQ(exact.piece_size(1), kPiece);
  PiecePicker empty({.total_length = 0, .piece_length = kPiece}, Rng(1));
  EXPECT_EQ(empty.num_pieces(), 0u);
  EXPECT_TRUE(empty.Complete());
}

// Rarest-first with availability {3,1,2,1}: pieces 1 and 3 first, in an order
// that depends on the random source (both orders seen), then 2, then 0.
TEST(PiecePickerTest, RarestFirstFromControlledAvailability) {
  std::set<std::vector<uint32_t>> orders;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    PiecePicker picker(Options(4), Rng(seed));
    picker.PeerHasBitfield(Bits(4, {0, 1, 2, 3}));
    picker.PeerHasBitfield(Bits(4, {0, 2}));
    picker.PeerHasBitfield(Bits(4, {0}));
    ASSERT_EQ(picker.Availability(0), 3u);
    ASSERT_EQ(picker.Availability(1), 1u);
    std::vector<uint32_t> order;
    for (int i = 0; i < 4; ++i) {
      // One piece per pick, each from a different peer.
      std::vector<Block> got = picker.Pick(10 + i, Bitfield(4, true), 4);
      ASSERT_EQ(got.size(), 4u);
      order.push_back(got[0].piece);
    }
    EXPECT_TRUE(order == std::vector<uint32_t>({1, 3, 2, 0}) ||
                order == std::vector<uint32_t>({3, 1, 2, 0}))
        << seed;
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 2u);
}

// Seeds (have-all) raise every availability without changing the order, and
// leaving peers lower it again.
TEST(PiecePickerTest, AvailabilityCountsSeedsSeparately) {
  PiecePicker picker(Options(4), Rng(2));
  picker.PeerHasAll();
  picker.PeerHasAll();
  picker.PeerHas(2);
  picker.PeerHasBitfield(Bits(4, {0, 2}));
  EXPECT_EQ(picker.Availability(0), 3u);
  EXPECT_EQ(picker.Availability(1), 2u);
  EXPECT_EQ(picker.Availability(2), 4u);
  // Pieces 1 and 3 are rarest; a seed can serve them.
  EXPECT_THAT(Pieces(picker.Pick(1, Bitfield(), 8, /*peer_has_all=*/true)),
              UnorderedElementsAre(1, 3));
  picker.PeerLostAll();
  picker.PeerLost(2);
  picker.PeerLostBitfield(Bits(4, {0, 2}));
  EXPECT_EQ(picker.Availability(0), 1u);
  EXPECT_EQ(picker.Availability(2), 1u);
  picker.PeerLostAll();
  picker.PeerLostAll();  // more than were added: ignored
  picker.PeerLost(2);    // below zero: ignored
  EXPECT_EQ(picker.Availability(2), 0u);
}

// A peer is only asked for pieces it has; with no peer having a piece and no
// seed, nothing is picked.
TEST(PiecePickerTest, PicksOnlyWhatThePeerHas) {
  PiecePicker picker(Options(8), Rng(3));
  Bitfield peer = Bits(8, {5, 6});
  picker.PeerHasBitfield(peer);
  EXPECT_THAT(Pieces(picker.Pick(1, peer, 100)), UnorderedElementsAre(5, 6));
  EXPECT_THAT(picker.Pick(2, Bitfield(8), 100), IsEmpty());
  EXPECT_THAT(picker.Pick(2, Bitfield(7, true), 100), IsEmpty());  // bad size
  EXPECT_THAT(picker.Pick(2, Bitfield(8, true), 0), IsEmpty());
}

// Sequential mode picks the lowest index first, skipping pieces we have or
// the peer lacks, block by block in order.
TEST(PiecePickerTest, SequentialOrder) {
  PiecePicker picker(Options(6, PickStrategy::kSequential), Rng(4));
  Bitfield peer = Bits(6, {0, 1, 2, 4, 5});
  picker.PeerHasBitfield(peer);
  picker.PeerHas(3);
  picker.SetHave(1);
  std::vector<Block> got = picker.Pick(1, peer, 6);
  EXPECT_THAT(
      got, ElementsAre(B(0, 0), B(0, 1), B(0, 2), B(0, 3), B(2, 0), B(2, 1)));
  EXPECT_THAT(Pieces(picker.Pick(2, peer, 100)), ElementsAre(2, 4, 5));
  // Switching strategy keeps the state.
  picker.SetStrategy(PickStrategy::kRarestFirst);
  EXPECT_THAT(picker.Pick(3, Bitfield(6, true), 4),
              ElementsAre(B(3, 0), B(3, 1), B(3, 2), B(3, 3)));
}

// Random mode eventually starts with every piece, and one big pick covers
// every piece exactly once.
TEST(PiecePickerTest, RandomCoversAll) {
  std::set<uint32_t> first;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    PiecePicker picker(Options(10, PickStrategy::kRandom), Rng(seed));
    picker.PeerHasAll();
    std::vector<Block> got = picker.Pick(1, Bitfield(), 1000, true);
    ASSERT_EQ(got.size(), 40u);
    std::vector<uint32_t> pieces = Pieces(got);
    first.insert(pieces[0]);
    std::sort(pieces.begin(), pieces.end());
    EXPECT_THAT(pieces, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
  }
  EXPECT_EQ(first.size(), 10u);
}

// Priority 0 pieces are never picked and do not block completion; higher
// priorities come first whatever the availability.
TEST(PiecePickerTest, PrioritiesSkipAndOrder) {
  PiecePicker picker(Options(5), Rng(5));
  picker.PeerHasAll();
  picker.PeerHas(0);  // piece 0 becomes the most common
  picker.SetPriority(0, 7);
  picker.SetPriority(1, 0);
  picker.SetPriority(2, 1);
  picker.SetPriority(4, 200);  // clamped to 7
  EXPECT_EQ(picker.Priority(1), 0);
  EXPECT_EQ(picker.Priority(3), 4);
  EXPECT_EQ(picker.Priority(4), 7);
  std::vector<uint32_t> pieces = Pieces(picker.Pick(1, Bitfield(), 100, true));
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0], 4u);  // priority 7, rarer than piece 0
  EXPECT_EQ(pieces[1], 0u);
  EXPECT_EQ(pieces[2], 3u);
  EXPECT_EQ(pieces[3], 2u);
  for (uint32_t p : {0, 2, 3, 4}) {
    ReceivePiece(picker, 1, p);
    picker.SetHave(p);
  }
  EXPECT_TRUE(picker.Complete());
  picker.SetPriority(1, 4);
  EXPECT_FALSE(picker.Complete());
}

// Deadline pieces come before everything else, earliest first, and in block
// order; clearing a deadline returns the piece to the normal order.
TEST(PiecePickerTest, DeadlinesFirstAndInOrder) {
  PiecePicker picker(Options(8, PickStrategy::kSequential), Rng(6));
  picker.PeerHasAll();
  picker.SetPriority(0, 7);
  picker.SetDeadline(6, 300);
  picker.SetDeadline(4, 100);
  picker.SetDeadline(5, 200);
  picker.SetDeadline(7, 50);
  picker.ClearDeadline(7);
  std::vector<Block> got = picker.Pick(1, Bitfield(), 9, true);
  EXPECT_THAT(got, ElementsAre(B(4, 0), B(4, 1), B(4, 2), B(4, 3), B(5, 0),
                               B(5, 1), B(5, 2), B(5, 3), B(6, 0)));
  // A partial deadline piece is still first for the next peer, then priority
  // 7, then the sequential order.
  EXPECT_THAT(Pieces(picker.Pick(2, Bitfield(), 8, true)),
              ElementsAre(6, 0, 1));
  picker.SetHave(3);
  picker.SetDeadline(3, 1);  // ignored: we have it
  EXPECT_THAT(Pieces(picker.Pick(3, Bitfield(), 8, true)),
              ElementsAre(1, 2, 7));
}

// A partially requested piece is finished before a new one is started,
// preferring pieces the same peer was already downloading.
TEST(PiecePickerTest, PartialPiecesFinishedFirst) {
  PiecePicker picker(Options(10), Rng(7));
  picker.PeerHasAll();
  // Peer 1 starts piece 0, peer 2 piece 1 (the only pieces they have).
  EXPECT_THAT(picker.Pick(1, Bits(10, {0}), 2), ElementsAre(B(0, 0), B(0, 1)));
  EXPECT_THAT(picker.Pick(2, Bits(10, {1}), 2), ElementsAre(B(1, 0), B(1, 1)));
  // With every piece on offer, peer 2 finishes its own piece, then peer 1's,
  // and only then starts a new one.
  std::vector<Block> next = picker.Pick(2, Bitfield(), 5, true);
  EXPECT_THAT(next,
              ElementsAre(B(1, 2), B(1, 3), B(0, 2), B(0, 3), testing::_));
  EXPECT_GT(next[4].piece, 1u);
  // A block freed by a failed request makes its piece partial again, and the
  // piece nearest completion goes first.
  picker.RequestFailed(2, B(1, 0));
  EXPECT_THAT(picker.Pick(3, Bitfield(), 1, true), ElementsAre(B(1, 0)));
  EXPECT_EQ(picker.Pick(3, Bitfield(), 3, true)[0].piece, next[4].piece);
}

// Endgame starts only once every wanted block is requested; then a block may
// be requested again from another peer, up to the duplicate limit, and
// RequestersOf names the other holders.
TEST(PiecePickerTest, EndgameDuplicatesUpToLimit) {
  PiecePicker picker(Options(3), Rng(8));
  picker.PeerHasAll();
  picker.SetPriority(2, 0);
  EXPECT_FALSE(picker.InEndgame());
  std::vector<Block> a = picker.Pick(1, Bitfield(), 7, true);
  ASSERT_EQ(a.size(), 7u);
  EXPECT_FALSE(picker.InEndgame());
  std::vector<Block> b = picker.Pick(2, Bitfield(), 1, true);
  ASSERT_EQ(b.size(), 1u);  // the last free block
  EXPECT_TRUE(picker.InEndgame());
  // Peer 2 now asks for duplicates of peer 1's blocks, never its own.
  std::vector<Block> dup = picker.Pick(2, Bitfield(), 100, true);
  EXPECT_EQ(dup.size(), 7u);
  for (const Block& blk : dup) {
    EXPECT_NE(blk, b[0]);
    EXPECT_THAT(picker.RequestersOf(blk, 2), ElementsAre(1));
  }
  // Peer 3 may duplicate only peer 2's single block: the others hit the limit.
  EXPECT_THAT(picker.Pick(3, Bitfield(), 100, true), ElementsAre(b[0]));
  EXPECT_THAT(picker.Pick(3, Bitfield(), 100, true), IsEmpty());
  EXPECT_EQ(picker.RequestsOf(1), 7u);
  EXPECT_EQ(picker.RequestsOf(2), 8u);
  EXPECT_EQ(picker.RequestsOf(3), 1u);

  // Peer 2 delivers a block: peer 1 still holds it until the caller cancels.
  EXPECT_FALSE(picker.BlockReceived(2, dup[0]));
  EXPECT_THAT(picker.RequestersOf(dup[0], 2), ElementsAre(1));
  picker.RequestFailed(1, dup[0]);  // cancelled
  EXPECT_THAT(picker.RequestersOf(dup[0], 2), IsEmpty());
  EXPECT_EQ(picker.RequestsOf(1), 6u);
  EXPECT_FALSE(picker.BlockReceived(1, dup[0]));  // no longer requested
  EXPECT_THAT(picker.Pick(4, Bitfield(), 100, true), IsEmpty());
}

// Endgame is not entered while a wanted piece is still unrequested, even if
// this peer cannot provide it; with a limit of 1 there are no duplicates.
TEST(PiecePickerTest, NoEndgameBeforeEverythingIsRequested) {
  PiecePicker picker(Options(2), Rng(9));
  Bitfield only0 = Bits(2, {0});
  picker.PeerHasBitfield(only0);
  EXPECT_EQ(picker.Pick(1, only0, 100).size(), 4u);
  EXPECT_FALSE(picker.InEndgame());
  EXPECT_THAT(picker.Pick(2, only0, 100), IsEmpty());

  PiecePicker single(Options(1, PickStrategy::kRarestFirst, 1), Rng(9));
  single.PeerHasAll();
  EXPECT_EQ(single.Pick(1, Bitfield(), 100, true).size(), 4u);
  EXPECT_TRUE(single.InEndgame());
  EXPECT_THAT(single.Pick(2, Bitfield(), 100, true), IsEmpty());
}

// PeerGone releases all of a peer's requests and RequestFailed one; released
// blocks are picked again.
TEST(PiecePickerTest, PeerGoneAndRequestFailedReturnBlocks) {
  PiecePicker picker(Options(2), Rng(10));
  picker.PeerHasAll();
  std::vector<Block> a = picker.Pick(1, Bitfield(), 6, true);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(picker.RequestsOf(1), 6u);
  EXPECT_TRUE(picker.BlockReceived(1, a[0]) == false);
  EXPECT_EQ(picker.RequestsOf(1), 5u);
  picker.RequestFailed(1, a[1]);
  picker.RequestFailed(1, a[1]);  // twice: no effect
  picker.RequestFailed(7, a[2]);  // not its request: no effect
  EXPECT_EQ(picker.RequestsOf(1), 4u);
  EXPECT_THAT(picker.RequestersOf(a[2], 0), ElementsAre(1));
  std::vector<Block> b = picker.Pick(2, Bitfield(), 1, true);
  EXPECT_THAT(b, ElementsAre(a[1]));
  picker.PeerGone(1);
  EXPECT_EQ(picker.RequestsOf(1), 0u);
  EXPECT_THAT(picker.RequestersOf(a[2], 0), IsEmpty());
  // Everything but the received block and peer 2's block is free again.
  std::vector<Block> c = picker.Pick(3, Bitfield(), 6, true);
  EXPECT_EQ(c.size(), 6u);
  EXPECT_EQ(std::count(c.begin(), c.end(), a[0]), 0);
  EXPECT_EQ(std::count(c.begin(), c.end(), a[1]), 0);
  picker.PeerGone(99);  // unknown: no effect
}

// Long churn of requests by a peer that never drains keeps its bookkeeping
// exact (the request log is compacted), and PeerGone still frees everything.
TEST(PiecePickerTest, RequestChurnKeepsCountsExact) {
  PiecePicker picker(Options(4), Rng(15));
  picker.PeerHasAll();
  std::vector<Block> kept = picker.Pick(1, Bitfield(), 3, true);
  ASSERT_EQ(kept.size(), 3u);
  for (int i = 0; i < 1000; ++i) {
    std::vector<Block> got = picker.Pick(1, Bitfield(), 2, true);
    ASSERT_EQ(got.size(), 2u);
    picker.RequestFailed(1, got[0]);
    if (i % 2 == 0) {
      picker.RequestFailed(1, got[1]);
    } else {
      picker.PeerGone(2);  // unrelated
      picker.RequestFailed(1, got[1]);
    }
    ASSERT_EQ(picker.RequestsOf(1), 3u);
  }
  EXPECT_FALSE(picker.BlockReceived(1, kept[0]));
  EXPECT_EQ(picker.RequestsOf(1), 2u);
  picker.PeerGone(1);
  EXPECT_EQ(picker.RequestsOf(1), 0u);
  EXPECT_EQ(picker.Pick(2, Bitfield(), 100, true).size(), 15u);
  EXPECT_TRUE(picker.InEndgame());
}

// A piece that fails its hash is wanted again, and the distinct senders of
// its blocks are reported; BlockSenders names the sender of each block.
TEST(PiecePickerTest, PieceFailedResetsAndReportsSenders) {
  PiecePicker picker(Options(1), Rng(11));
  picker.PeerHasAll();
  std::vector<Block> a = picker.Pick(5, Bitfield(), 2, true);
  std::vector<Block> b = picker.Pick(6, Bitfield(), 2, true);
  ASSERT_EQ(a.size() + b.size(), 4u);
  EXPECT_FALSE(picker.BlockReceived(6, b[1]));
  EXPECT_FALSE(picker.BlockReceived(5, a[0]));
  EXPECT_FALSE(picker.BlockReceived(6, b[0]));
  EXPECT_THAT(picker.BlockSenders(0), ElementsAre(5, 0, 6, 6));
  EXPECT_EQ(picker.BlockSender(0, 0), 5u);
  EXPECT_EQ(picker.BlockSender(0, 1), 0u);
  EXPECT_EQ(picker.BlockSender(0, 3), 6u);
  EXPECT_EQ(picker.BlockSender(0, 99), 0u);
  // An endgame duplicate of the last block is outstanding at peer 8.
  EXPECT_TRUE(picker.InEndgame());
  EXPECT_THAT(picker.Pick(8, Bitfield(), 100, true), ElementsAre(a[1]));
  EXPECT_TRUE(picker.BlockReceived(5, a[1]));
  EXPECT_THAT(picker.BlockSenders(0), ElementsAre(5, 5, 6, 6));
  EXPECT_THAT(picker.PieceFailed(0), ElementsAre(5, 6));
  EXPECT_THAT(picker.BlockSenders(0), ElementsAre(0, 0, 0, 0));
  EXPECT_FALSE(picker.InEndgame());
  // Peer 8's request was forgotten with the piece.
  EXPECT_EQ(picker.RequestsOf(8), 0u);
  EXPECT_FALSE(picker.BlockReceived(8, a[1]));
  EXPECT_EQ(picker.Pick(7, Bitfield(), 100, true).size(), 4u);
  EXPECT_TRUE(ReceivePiece(picker, 7, 0));
  picker.SetHave(0);
  EXPECT_TRUE(picker.Complete());
  EXPECT_THAT(picker.PieceFailed(0), IsEmpty());  // had: ignored
}

// BlockReceived of unrequested, duplicate or malformed blocks returns false
// and changes nothing.
TEST(PiecePickerTest, BlockReceivedIgnoresUnrequestedAndDuplicates) {
  PiecePicker picker(Options(2), Rng(12));
  picker.PeerHasAll();
  EXPECT_FALSE(picker.BlockReceived(1, B(0, 0)));  // nothing requested
  std::vector<Block> a = picker.Pick(1, Bitfield(), 4, true);
  ASSERT_EQ(Pieces(a).size(), 1u);
  uint32_t p = a[0].piece;
  EXPECT_FALSE(picker.BlockReceived(2, a[0]));  // requested from someone else
  EXPECT_FALSE(picker.BlockReceived(1, Block{p, 1, kBlockLength}));
  EXPECT_FALSE(picker.BlockReceived(1, Block{p, 0, 100}));
  EXPECT_FALSE(picker.BlockReceived(1, Block{9, 0, kBlockLength}));
  EXPECT_FALSE(picker.BlockReceived(1, Block{p, 4 * kBlockLength, 1}));
  EXPECT_EQ(picker.RequestsOf(1), 4u);
  EXPECT_FALSE(picker.BlockReceived(1, a[0]));
  EXPECT_FALSE(picker.BlockReceived(1, a[0]));  // duplicate
  EXPECT_THAT(picker.BlockSenders(p), ElementsAre(1, 0, 0, 0));
  EXPECT_EQ(picker.RequestsOf(1), 3u);
  EXPECT_FALSE(picker.BlockReceived(1, a[1]));
  EXPECT_FALSE(picker.BlockReceived(1, a[2]));
  EXPECT_TRUE(picker.BlockReceived(1, a[3]));
  EXPECT_FALSE(picker.BlockReceived(1, a[3]));
}

// SetHave drops the piece's outstanding requests and it is never picked.
TEST(PiecePickerTest, SetHaveClearsRequests) {
  PiecePicker picker(Options(2), Rng(13));
  picker.PeerHasAll();
  std::vector<Block> a = picker.Pick(1, Bitfield(), 8, true);
  ASSERT_EQ(a.size(), 8u);
  EXPECT_TRUE(picker.InEndgame());
  picker.SetHave(a[0].piece);
  EXPECT_EQ(picker.RequestsOf(1), 4u);
  EXPECT_THAT(picker.RequestersOf(a[0], 0), IsEmpty());
  EXPECT_FALSE(picker.BlockReceived(1, a[0]));
  EXPECT_TRUE(picker.have().test(a[0].piece));
  EXPECT_EQ(picker.have().count(), 1u);
  picker.SetHave(a[4].piece);
  EXPECT_TRUE(picker.Complete());
  EXPECT_FALSE(picker.InEndgame());
  EXPECT_EQ(picker.RequestsOf(1), 0u);
  EXPECT_THAT(picker.Pick(1, Bitfield(), 8, true), IsEmpty());
}

// PickFrom picks only from the allowed set, in the usual order.
TEST(PiecePickerTest, PickFromAllowedFast) {
  PiecePicker picker(Options(8, PickStrategy::kSequential), Rng(14));
  picker.PeerHasAll();
  EXPECT_THAT(Pieces(picker.PickFrom(1, {6, 2, 99, 2}, 100)),
              ElementsAre(2, 6));
  EXPECT_THAT(picker.PickFrom(1, {6, 2}, 100), IsEmpty());
  EXPECT_THAT(Pieces(picker.Pick(2, Bitfield(), 8, true)), ElementsAre(0, 1));
}

// --- Randomized differential test against a brute-force model. ------------

// A simple model of the picker's documented behaviour.
class Model {
 public:
  Model(uint32_t pieces, uint32_t blocks, int duplicates)
      : blocks_(blocks),
        dups_(duplicates),
        avail_(pieces),
        prio_(pieces, 4),
        have_(pieces),
        owner_(pieces),
        deadline_(pieces),
        holders_(pieces, std::vector<std::vector<PeerKey>>(blocks)),
        sender_(pieces, std::vector<std::optional<PeerKey>>(blocks)) {}

  uint32_t n() const { return static_cast<uint32_t>(avail_.size()); }
  bool Received(uint32_t p, uint32_t i) const {
    return sender_[p][i].has_value();
  }
  bool Free(uint32_t p, uint32_t i) const {
    return !Received(p, i) && holders_[p][i].empty();
  }
  uint32_t FreeCount(uint32_t p) const {
    uint32_t n = 0;
    for (uint32_t i = 0; i < blocks_; ++i) n += Free(p, i);
    return n;
  }
  bool Touched(uint32_t p) const { return FreeCount(p) < blocks_; }
  bool Open(uint32_t p) const {
    return !have_[p] && prio_[p] > 0 && FreeCount(p) > 0;
  }
  bool Endgame() const {
    bool wanted = false;
    for (uint32_t p = 0; p < n(); ++p) {
      if (Open(p)) return false;
      wanted |= !have_[p] && prio_[p] > 0;
    }
    return wanted;
  }
  void Untouch(uint32_t p) {
    if (!Touched(p)) owner_[p].reset();
  }

  // The documented rank of an open piece for `peer` (lower first; ties are
  // left to the random source).
  std::vector<int64_t> Rank(uint32_t p, PeerKey peer,
                            PickStrategy strategy) const {
    if (deadline_[p]) return {0, *deadline_[p], p};
    if (Touched(p)) {
      return {1, -prio_[p], 0, owner_[p] == peer ? 0 : 1, FreeCount(p), p};
    }
    switch (strategy) {
      case PickStrategy::kRarestFirst:
        return {1, -prio_[p], 1, avail_[p]};
      case PickStrategy::kSequential:
        return {1, -prio_[p], 1, p};
      case PickStrategy::kRandom:
        return {1, -prio_[p], 1};
    }
    return {};
  }

  uint32_t blocks_;
  int dups_;
  std::vector<uint32_t> avail_;
  std::vector<uint8_t> prio_;
  std::vector<bool> have_;
  std::vector<std::optional<PeerKey>> owner_;
  std::vector<std::optional<int64_t>> deadline_;
  std::vector<std::vector<std::vector<PeerKey>>> holders_;
  std::vector<std::vector<std::optional<PeerKey>>> sender_;
};

struct Outcome {
  int picks = 0;
  int endgame_blocks = 0;
  int sparse_picks = 0;
  int completed = 0;
};

// One random run: `steps` random operations applied to the picker and the
// model, checking every answer.
void RunDifferential(uint64_t seed, PickStrategy strategy, Outcome& outcome) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  const uint32_t n = static_cast<uint32_t>(seed % 4 == 3 ? 150 + uniform(150)
                                                         : 1 + uniform(60));
  const uint32_t blocks = 1 + static_cast<uint32_t>(uniform(4));
  const int dups = 1 + static_cast<int>(uniform(3));
  PiecePicker picker({.total_length = uint64_t{n} * blocks * kBlockLength,
                      .piece_length = blocks * kBlockLength,
                      .strategy = strategy,
                      .endgame_max_duplicates = dups},
                     Rng(seed ^ 0x9e3779b97f4a7c15ULL));
  Model model(n, blocks, dups);
  constexpr int kPeers = 6;
  std::vector<Bitfield> bits(kPeers + 1);
  std::vector<bool> seed_peer(kPeers + 1), connected(kPeers + 1);
  auto connect = [&](PeerKey peer) {
    connected[peer] = true;
    seed_peer[peer] = uniform(5) == 0;
    if (seed_peer[peer]) {
      picker.PeerHasAll();
      return;
    }
    // Densities from very sparse (the per-bitfield path) to full.
    uint64_t density = uniform(4) == 0 ? 1 + uniform(2) : 20 + uniform(81);
    bits[peer] = Bitfield(n);
    for (uint32_t p = 0; p < n; ++p) {
      if (uniform(100) < density) bits[peer].set(p);
    }
    picker.PeerHasBitfield(bits[peer]);
    for (uint32_t p = 0; p < n; ++p) model.avail_[p] += bits[peer].test(p);
  };
  auto held_by = [&](PeerKey peer) {
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (uint32_t p = 0; p < n; ++p) {
      for (uint32_t i = 0; i < blocks; ++i) {
        const auto& h = model.holders_[p][i];
        if (std::find(h.begin(), h.end(), peer) != h.end())
          out.push_back({p, i});
      }
    }
    return out;
  };
  auto drop = [&](PeerKey peer, uint32_t p, uint32_t i) {
    auto& h = model.holders_[p][i];
    h.erase(std::find(h.begin(), h.end(), peer));
  };
  for (PeerKey peer = 1; peer <= kPeers; ++peer) connect(peer);

  for (int step = 0; step < 300; ++step) {
    PeerKey peer = 1 + uniform(kPeers);
    uint64_t op = uniform(100);
    SCOPED_TRACE(testing::Message() << "seed " << seed << " step " << step
                                    << " op " << op << " peer " << peer);
    if (!connected[peer]) {
      connect(peer);
    } else if (op < 35) {
      // Pick: compare with the model's ranking.
      size_t max = 1 + uniform(3 * blocks + 2);
      const bool all = seed_peer[peer];
      auto has = [&](uint32_t p) { return all || bits[peer].test(p); };
      std::vector<std::vector<int64_t>> expected;
      uint32_t free_total = 0;
      uint32_t open = 0;
      for (uint32_t p = 0; p < n; ++p) {
        open += model.Open(p);
        if (model.Open(p) && has(p)) {
          expected.push_back(model.Rank(p, peer, strategy));
          free_total += model.FreeCount(p);
        }
      }
      std::sort(expected.begin(), expected.end());
      std::vector<Block> got = all ? picker.Pick(peer, Bitfield(), max, true)
                                   : picker.Pick(peer, bits[peer], max);
      ++outcome.picks;
      // The picker serves peers with few pieces from their bitfield (a
      // different code path); count how often that should have happened.
      uint64_t count = all ? 0 : bits[peer].count();
      uint64_t walk = std::min<uint64_t>(max / blocks + 1, n) * open /
                      std::max<uint64_t>(count, 1);
      if (!all && n / 64 + 4 * count < walk) ++outcome.sparse_picks;
      ASSERT_LE(got.size(), max);
      size_t normal = std::min<size_t>(max, free_total);
      ASSERT_GE(got.size(), normal);
      // The normal part: whole pieces in rank order, lowest free blocks first.
      size_t k = 0;
      size_t rank_index = 0;
      while (k < normal) {
        uint32_t p = got[k].piece;
        ASSERT_LT(rank_index, expected.size());
        ASSERT_EQ(model.Rank(p, peer, strategy), expected[rank_index++]);
        uint32_t take = std::min<uint32_t>(model.FreeCount(p), normal - k);
        uint32_t i = 0;
        for (uint32_t t = 0; t < take; ++t, ++k) {
          while (!model.Free(p, i)) ++i;
          ASSERT_EQ(got[k], B(p, i)) << "block " << k;
          ++i;
        }
        for (uint32_t t = k - take; t < k; ++t) {
          model.holders_[p][got[t].offset / kBlockLength].push_back(peer);
        }
        model.owner_[p] = peer;
      }
      // The rest: endgame duplicates.
      if (got.size() > normal) {
        ASSERT_TRUE(model.Endgame());
        ASSERT_TRUE(picker.InEndgame());
      }
      for (; k < got.size(); ++k) {
        const Block& b = got[k];
        uint32_t i = b.offset / kBlockLength;
        ASSERT_EQ(b, B(b.piece, i));
        ASSERT_TRUE(has(b.piece));
        ASSERT_FALSE(model.have_[b.piece]);
        ASSERT_GT(model.prio_[b.piece], 0);
        ASSERT_FALSE(model.Received(b.piece, i));
        auto& h = model.holders_[b.piece][i];
        ASSERT_EQ(std::count(h.begin(), h.end(), peer), 0);
        ASSERT_LT(h.size(), static_cast<size_t>(dups));
        h.push_back(peer);
        ++outcome.endgame_blocks;
      }
      if (got.size() < max && model.Endgame()) {
        // Endgame took every block it could.
        for (uint32_t p = 0; p < n; ++p) {
          if (model.have_[p] || model.prio_[p] == 0 || !has(p)) continue;
          for (uint32_t i = 0; i < blocks; ++i) {
            const auto& h = model.holders_[p][i];
            ASSERT_TRUE(model.Received(p, i) || h.size() >= size_t(dups) ||
                        std::count(h.begin(), h.end(), peer) > 0);
          }
        }
      }
    } else if (op < 60) {
      // A held block arrives.
      auto held = held_by(peer);
      if (held.empty()) continue;
      auto [p, i] = held[uniform(held.size())];
      bool dup = model.Received(p, i);
      drop(peer, p, i);
      if (!dup) model.sender_[p][i] = peer;
      bool complete = true;
      for (uint32_t j = 0; j < blocks; ++j) complete &= model.Received(p, j);
      ASSERT_EQ(picker.BlockReceived(peer, B(p, i)), !dup && complete);
      if (!dup && complete) {
        ++outcome.completed;
        if (uniform(4) == 0) {
          std::vector<PeerKey> senders;
          for (uint32_t j = 0; j < blocks; ++j) {
            PeerKey s = *model.sender_[p][j];
            if (std::find(senders.begin(), senders.end(), s) == senders.end()) {
              senders.push_back(s);
            }
            model.sender_[p][j].reset();
            model.holders_[p][j].clear();
          }
          ASSERT_EQ(picker.PieceFailed(p), senders);
          model.Untouch(p);
        } else {
          picker.SetHave(p);
          model.have_[p] = true;
          model.deadline_[p].reset();
          for (uint32_t j = 0; j < blocks; ++j) {
            model.holders_[p][j].clear();
            model.sender_[p][j].reset();
          }
          model.owner_[p].reset();
        }
      }
    } else if (op < 65) {
      // An unrequested block arrives: ignored.
      uint32_t p = uniform(n), i = uniform(blocks);
      const auto& h = model.holders_[p][i];
      if (std::count(h.begin(), h.end(), peer) > 0) continue;
      ASSERT_FALSE(picker.BlockReceived(peer, B(p, i)));
    } else if (op < 75) {
      auto held = held_by(peer);
      if (held.empty()) continue;
      auto [p, i] = held[uniform(held.size())];
      picker.RequestFailed(peer, B(p, i));
      drop(peer, p, i);
      model.Untouch(p);
    } else if (op < 78) {
      // The peer disconnects.
      for (auto [p, i] : held_by(peer)) drop(peer, p, i);
      for (uint32_t p = 0; p < n; ++p) model.Untouch(p);
      picker.PeerGone(peer);
      if (seed_peer[peer]) {
        picker.PeerLostAll();
      } else {
        picker.PeerLostBitfield(bits[peer]);
        for (uint32_t p = 0; p < n; ++p) model.avail_[p] -= bits[peer].test(p);
      }
      connected[peer] = false;
    } else if (op < 80) {
      // Choked: requests dropped, still connected.
      for (auto [p, i] : held_by(peer)) drop(peer, p, i);
      for (uint32_t p = 0; p < n; ++p) model.Untouch(p);
      picker.PeerGone(peer);
    } else if (op < 86) {
      uint32_t p = uniform(n);
      uint8_t prio = static_cast<uint8_t>(uniform(4) == 0 ? 0 : uniform(8));
      picker.SetPriority(p, prio);
      model.prio_[p] = prio;
    } else if (op < 90) {
      uint32_t p = uniform(n);
      if (uniform(2) == 0) {
        int64_t d = static_cast<int64_t>(uniform(1000));
        picker.SetDeadline(p, d);
        if (!model.have_[p]) model.deadline_[p] = d;
      } else {
        picker.ClearDeadline(p);
        model.deadline_[p].reset();
      }
    } else if (op < 97) {
      // Have / lost for one piece.
      if (seed_peer[peer]) continue;
      uint32_t p = uniform(n);
      if (!bits[peer].test(p)) {
        bits[peer].set(p);
        picker.PeerHas(p);
        ++model.avail_[p];
      } else {
        bits[peer].set(p, false);
        picker.PeerLost(p);
        --model.avail_[p];
        // Requests already sent for it stay outstanding.
      }
    } else {
      // We got a piece some other way (e.g. a hash check of existing data).
      uint32_t p = uniform(n);
      if (model.have_[p]) continue;
      bool done = true;
      for (uint32_t j = 0; j < blocks; ++j) done &= model.Received(p, j);
      if (done) continue;  // awaiting verification
      picker.SetHave(p);
      model.have_[p] = true;
      model.deadline_[p].reset();
      for (uint32_t j = 0; j < blocks; ++j) {
        model.holders_[p][j].clear();
        model.sender_[p][j].reset();
      }
      model.owner_[p].reset();
    }
    // Cross-checks after every step.
    ASSERT_EQ(picker.InEndgame(), model.Endgame());
    bool complete = true;
    for (uint32_t p = 0; p < n; ++p) {
      complete &= model.have_[p] || model.prio_[p] == 0;
      uint32_t seeds = 0;
      for (PeerKey q = 1; q <= kPeers; ++q)
        seeds += connected[q] && seed_peer[q];
      ASSERT_EQ(picker.Availability(p), model.avail_[p] + seeds);
    }
    ASSERT_EQ(picker.Complete(), complete);
    for (PeerKey q = 1; q <= kPeers; ++q) {
      ASSERT_EQ(picker.RequestsOf(q), held_by(q).size());
    }
    uint32_t p = uniform(n), i = uniform(blocks);
    std::vector<PeerKey> holders = picker.RequestersOf(B(p, i), 0);
    std::vector<PeerKey> want = model.holders_[p][i];
    std::sort(holders.begin(), holders.end());
    std::sort(want.begin(), want.end());
    ASSERT_EQ(holders, want);
    std::vector<PeerKey> senders = picker.BlockSenders(p);
    for (uint32_t j = 0; j < blocks; ++j) {
      ASSERT_EQ(senders[j], model.sender_[p][j].value_or(0));
    }
  }
}

// Over many random swarms, every pick matches the brute-force model: pieces
// in the documented rank order (deadline, priority, partial, strategy), free
// blocks lowest first, and endgame duplicates only when allowed.
TEST(PiecePickerTest, DifferentialAgainstBruteForce) {
  Outcome outcome;
  for (uint64_t seed = 0; seed < 90; ++seed) {
    PickStrategy strategy = static_cast<PickStrategy>(seed % 3);
    RunDifferential(seed, strategy, outcome);
    if (HasFatalFailure()) return;
  }
  // The run covered the interesting paths.
  EXPECT_GT(outcome.picks, 5000);
  EXPECT_GT(outcome.endgame_blocks, 100);
  EXPECT_GT(outcome.sparse_picks, 100);
  EXPECT_GT(outcome.completed, 500);
}

}  // namespace
}  // namespace shoal::chunk
