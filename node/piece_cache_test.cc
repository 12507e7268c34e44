#include "node/piece_cache.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

PieceCache::Piece Data(const char* s) {
  return std::make_shared<const std::string>(s);
}

wire::BlockSpec Block(uint32_t piece, uint32_t begin) {
  return {piece, begin, 16384};
}

TEST(PieceCacheTest, OneReadForEveryoneWaitingOnAPiece) {
  PieceCache cache(4);
  EXPECT_EQ(cache.Find(3), nullptr);
  EXPECT_TRUE(cache.Wait(3, {1, Block(3, 0)}));       // starts the read
  EXPECT_FALSE(cache.Wait(3, {2, Block(3, 16384)}));  // waits on it
  EXPECT_TRUE(cache.Wait(4, {1, Block(4, 0)}));       // another piece
  std::vector<PieceCache::Waiter> w = cache.Done(3, Data("three"));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].first, 1u);
  EXPECT_EQ(w[1].first, 2u);
  EXPECT_EQ(w[1].second.begin, 16384u);
  ASSERT_NE(cache.Find(3), nullptr);
  EXPECT_EQ(*cache.Find(3), "three");
  // The next request for it after the read starts a new one only once it
  // has left the cache.
  EXPECT_TRUE(cache.Wait(3, {5, Block(3, 0)}));
}

TEST(PieceCacheTest, AFailedReadCachesNothing) {
  PieceCache cache(4);
  cache.Wait(7, {1, Block(7, 0)});
  EXPECT_EQ(cache.Done(7, nullptr).size(), 1u);
  EXPECT_EQ(cache.Find(7), nullptr);
  EXPECT_TRUE(cache.Wait(7, {1, Block(7, 0)}));  // tried again
}

TEST(PieceCacheTest, KeepsTheMostRecentlyUsed) {
  PieceCache cache(2);
  cache.Done(1, Data("1"));
  cache.Done(2, Data("2"));
  ASSERT_NE(cache.Find(1), nullptr);  // 1 is now the most recent
  cache.Done(3, Data("3"));           // 2 goes
  EXPECT_NE(cache.Find(1), nullptr);
  EXPECT_EQ(cache.Find(2), nullptr);
  EXPECT_NE(cache.Find(3), nullptr);
  cache.Clear();
  EXPECT_EQ(cache.Find(1), nullptr);
}

}  // namespace
}  // namespace shoal::node
