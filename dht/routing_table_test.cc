#include "dht/routing_table.h"

#include <random>

#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

class RoutingTableTest : public ::testing::Test {
 protected:
  NodeInfo Node(int prefix, uint32_t addr) {
    return {NodeId::RandomWithPrefix(own_, prefix, random_),
            Endpoint::V4(addr, 6881)};
  }
  std::mt19937_64 rng_{42};
  std::function<uint64_t()> random_ = [this] { return rng_(); };
  NodeId own_ = NodeId::Random(random_);
};

// The bucket containing our own ID splits; far buckets keep k and cache the
// rest.
TEST_F(RoutingTableTest, SplitsOwnBucketOnly) {
  RoutingTable t(own_, 8);
  for (uint32_t i = 0; i < 20; ++i)
    t.Heard(Node(0, i + 1), 0, Contact::kResponded);
  EXPECT_EQ(t.num_buckets(), 2u);
  EXPECT_EQ(t.bucket_nodes(0).size(), 8u);
  EXPECT_EQ(t.replacement_size(), 8u);  // cache capped at k
  for (uint32_t i = 0; i < 9; ++i)
    t.Heard(Node(5, 100 + i), 0, Contact::kResponded);
  EXPECT_GE(t.num_buckets(), 6u);
  EXPECT_EQ(t.size(), 16u);  // the 9th deep node is cached
  for (size_t b = 0; b < t.num_buckets(); ++b)
    EXPECT_LE(t.bucket_nodes(b).size(), 8u);
}

// Our own ID and invalid endpoints are never added.
TEST_F(RoutingTableTest, RejectsSelf) {
  RoutingTable t(own_, 8);
  EXPECT_FALSE(t.Heard({own_, Endpoint::V4(1, 1)}, 0, Contact::kResponded));
  EXPECT_FALSE(t.Heard({NodeId(), Endpoint{}}, 0, Contact::kResponded));
  EXPECT_EQ(t.size(), 0u);
}

// Liveness: good after a reply, questionable after 15 minutes, bad after two
// failures.
TEST_F(RoutingTableTest, Liveness) {
  RoutingTable t(own_, 8);
  NodeInfo n = Node(0, 1);
  t.Heard(n, 1000, Contact::kResponded);
  EXPECT_EQ(t.StatusOf(*t.Find(n.id), 1000), NodeStatus::kGood);
  EXPECT_EQ(t.StatusOf(*t.Find(n.id), 1000 + RoutingTable::kGoodWindowMs),
            NodeStatus::kQuestionable);
  t.Heard(n, 2000 + RoutingTable::kGoodWindowMs, Contact::kQueried);
  EXPECT_EQ(t.StatusOf(*t.Find(n.id), 2000 + RoutingTable::kGoodWindowMs),
            NodeStatus::kGood);
  t.Failed(n.id, n.endpoint);
  t.Failed(n.id, n.endpoint);
  EXPECT_EQ(t.StatusOf(*t.Find(n.id), 0), NodeStatus::kBad);
  EXPECT_TRUE(t.Closest(n.id, 8).empty());
}

// A node that turns bad is replaced by a cached node; a new node takes a bad
// one's slot.
TEST_F(RoutingTableTest, EvictionAndReplacement) {
  RoutingTable t(own_, 2);
  NodeInfo a = Node(0, 1), b = Node(0, 2), c = Node(0, 3), d = Node(0, 4);
  t.Heard(a, 0, Contact::kResponded);
  t.Heard(b, 0, Contact::kResponded);
  t.Heard(Node(3, 50), 0, Contact::kResponded);      // forces a split
  EXPECT_FALSE(t.Heard(c, 0, Contact::kResponded));  // cached
  EXPECT_EQ(t.Find(c.id), nullptr);
  t.Failed(a.id, a.endpoint);  // a cached node is waiting: swapped at once
  EXPECT_EQ(t.Find(a.id), nullptr);
  ASSERT_NE(t.Find(c.id), nullptr);
  // No cache left: b goes bad and stays until a newcomer takes its place.
  t.Failed(b.id, b.endpoint);
  t.Failed(b.id, b.endpoint);
  EXPECT_TRUE(t.Heard(d, 0, Contact::kResponded));
  EXPECT_EQ(t.Find(b.id), nullptr);
  EXPECT_NE(t.Find(d.id), nullptr);
}

// Closest() returns nodes in XOR order from the target.
TEST_F(RoutingTableTest, ClosestIsSorted) {
  RoutingTable t(own_, 8);
  for (uint32_t i = 0; i < 200; ++i) {
    t.Heard({NodeId::Random(random_), Endpoint::V4(i + 1, 1)}, 0,
            Contact::kResponded);
  }
  NodeId target = NodeId::Random(random_);
  std::vector<NodeInfo> c = t.Closest(target, 8);
  ASSERT_EQ(c.size(), 8u);
  for (size_t i = 1; i < c.size(); ++i)
    EXPECT_TRUE(CloserTo(target, c[i - 1].id, c[i].id));
}

// Save() and ParseSaved() round-trip the nodes; garbage is INVALID_ARGUMENT.
TEST_F(RoutingTableTest, SaveLoad) {
  RoutingTable t(own_, 8);
  for (uint32_t i = 0; i < 50; ++i) {
    t.Heard({NodeId::Random(random_), Endpoint::V4(i + 1, 1)}, 0,
            Contact::kResponded);
  }
  absl::StatusOr<std::vector<NodeInfo>> nodes =
      RoutingTable::ParseSaved(t.Save());
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(nodes->size(), t.size() + t.replacement_size());
  RoutingTable u(own_, 8);
  for (const NodeInfo& n : *nodes) u.Heard(n, 0, Contact::kLoaded);
  EXPECT_EQ(u.size(), t.size());
  EXPECT_EQ(RoutingTable::ParseSaved("garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      RoutingTable::ParseSaved("d5:nodes3:abc6:nodes60:e").status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::dht
