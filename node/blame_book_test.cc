#include "node/blame_book.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

BlameBook::Case MakeCase(uint32_t piece, std::vector<uint64_t> block_senders) {
  BlameBook::Case c;
  c.piece = piece;
  c.spec.pieces_root[0] = 0xab;
  c.spec.index = piece * 4;
  c.spec.length = 4;
  c.block_senders = block_senders;
  for (uint64_t k : block_senders)
    if (std::find(c.senders.begin(), c.senders.end(), k) == c.senders.end())
      c.senders.push_back(k);
  return c;
}

TEST(BlameBookTest, AsksAPeerThatSentNothingFirstThenTheBiggestSender) {
  BlameBook book;
  // Peer 1 sent three blocks, peer 2 one; peer 3 none; peer 4 can't answer.
  const std::vector<BlameBook::Candidate> all = {
      {1, true}, {2, true}, {3, true}, {4, false}};
  EXPECT_EQ(book.AskNext(MakeCase(5, {1, 1, 2, 1}), all, 10), 3u);
  EXPECT_EQ(book.open(), 1u);
  // Peer 3 does not answer in time: the case moves on to peer 1, then 2.
  EXPECT_TRUE(book.TakeExpired(14, 5).empty());
  std::vector<BlameBook::Case> late = book.TakeExpired(15, 5);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].tried, (std::vector<uint64_t>{3}));
  EXPECT_EQ(book.AskNext(std::move(late[0]), all, 15), 1u);
  std::vector<BlameBook::Case> gone = book.TakeAskedOf(1);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(book.AskNext(std::move(gone[0]), all, 16), 2u);
  // Nobody is left: the caller strikes.
  gone = book.TakeAskedOf(2);
  ASSERT_EQ(gone.size(), 1u);
  BlameBook::Case last = std::move(gone[0]);
  EXPECT_EQ(book.AskNext(std::move(last), all, 17), std::nullopt);
  EXPECT_EQ(book.open(), 0u);
  // ... with the case left to it, senders and all.
  EXPECT_EQ(last.piece, 5u);
  EXPECT_EQ(last.senders, (std::vector<uint64_t>{1, 2}));
}

TEST(BlameBookTest, OnlyTheAskedPeerSettlesACase) {
  BlameBook book;
  BlameBook::Case c = MakeCase(2, {1, 2});
  const wire::HashSpec spec = c.spec;
  ASSERT_EQ(book.AskNext(std::move(c), {{3, true}}, 0), 3u);
  EXPECT_FALSE(book.TakeAnswer(1, spec));  // not asked of it
  wire::HashSpec other = spec;
  other.index += 4;
  EXPECT_FALSE(book.TakeAnswer(3, other));  // not this case
  std::optional<BlameBook::Case> got = book.TakeAnswer(3, spec);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->piece, 2u);
  EXPECT_FALSE(book.TakeAnswer(3, spec));  // taken
}

TEST(BlameBookTest, OpenCasesAreBounded) {
  BlameBook book;
  for (uint32_t i = 0; i < BlameBook::kMaxOpen; ++i) {
    EXPECT_TRUE(book.CanOpen());
    book.AskNext(MakeCase(i, {1, 2}), {{3, true}}, 0);
  }
  EXPECT_FALSE(book.CanOpen());
}

TEST(BlameBookTest, StrikesBanASoleSenderAtOnceOthersAtTheLimit) {
  BlameBook book;
  EXPECT_EQ(book.Strike({7}, 3), (std::vector<uint64_t>{7}));
  EXPECT_TRUE(book.Strike({1, 2}, 3).empty());
  EXPECT_TRUE(book.Strike({1, 2}, 3).empty());
  EXPECT_EQ(book.Strike({2, 3}, 3), (std::vector<uint64_t>{2}));
  // A connection that left takes its strikes with it.
  book.Forget(1);
  EXPECT_TRUE(book.Strike({1, 4}, 3).empty());
}

TEST(BlameBookTest, BansByAddressAndByConnection) {
  BlameBook book;
  EXPECT_FALSE(book.IsBanned("10.0.0.1"));
  book.Ban("10.0.0.1", 42);
  EXPECT_TRUE(book.IsBanned("10.0.0.1"));
  EXPECT_FALSE(book.IsBanned("10.0.0.2"));
  EXPECT_TRUE(book.AnyBanned({1, 42}));
  EXPECT_FALSE(book.AnyBanned({1, 2}));
}

}  // namespace
}  // namespace shoal::node
