#include "dht/dht_node.h"

#include <algorithm>
#include <deque>
#include <random>
#include <utility>

#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

// One node under test; datagrams it sends are captured in `sent`.
class DhtNodeTest : public ::testing::Test {
 protected:
  std::unique_ptr<DhtNode> Make(DhtOptions options = {}) {
    if (options.id == NodeId()) options.id = NodeId::Random(random_);
    auto node = DhtNode::Create(
        options, [this] { return now_; }, random_,
        [this](const Endpoint& to, std::string bytes) {
          sent_.push_back({to, std::move(bytes)});
        });
    EXPECT_TRUE(node.ok());
    return std::move(*node);
  }
  // The last datagram sent, decoded.
  KrpcMessage LastSent() {
    EXPECT_FALSE(sent_.empty());
    absl::StatusOr<KrpcMessage> m = DecodeKrpc(sent_.back().second);
    EXPECT_TRUE(m.ok());
    return *m;
  }
  std::string Query(KrpcMethod method, const NodeId& id,
                    std::optional<std::string> cn = std::nullopt) {
    KrpcMessage q = KrpcMessage::Query(method, "tx", id);
    q.cluster = std::move(cn);
    return EncodeKrpc(q);
  }
  std::string GetPeers(const NodeId& from, const NodeId& ih) {
    KrpcMessage q = KrpcMessage::Query(KrpcMethod::kGetPeers, "gp", from);
    q.info_hash = ih;
    return EncodeKrpc(q);
  }
  std::string AnnouncePeer(const NodeId& from, const NodeId& ih,
                           std::string token, uint16_t port,
                           bool implied = false) {
    KrpcMessage q = KrpcMessage::Query(KrpcMethod::kAnnouncePeer, "ap", from);
    q.info_hash = ih;
    q.token = std::move(token);
    q.port = port;
    q.implied_port = implied;
    return EncodeKrpc(q);
  }

  int64_t now_ = 1'000'000;
  std::mt19937_64 rng_{99};
  std::function<uint64_t()> random_ = [this] { return rng_(); };
  std::vector<std::pair<Endpoint, std::string>> sent_;
  Endpoint peer_ = Endpoint::V4(0x0a000001, 7000);
  NodeId peer_id_ = NodeId::Random(random_);
};

// Bad options are INVALID_ARGUMENT.
TEST_F(DhtNodeTest, ValidatesOptions) {
  DhtOptions o;
  o.k = 0;
  EXPECT_EQ(DhtNode::Create(
                o, [] { return 0; }, [] { return 1; },
                [](const Endpoint&, std::string) {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// A ping gets a response with our ID and the requester's address (BEP 42 ip).
TEST_F(DhtNodeTest, AnswersPing) {
  auto node = Make();
  node->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].first, peer_);
  KrpcMessage r = LastSent();
  EXPECT_EQ(r.type, KrpcType::kResponse);
  EXPECT_EQ(r.transaction_id, "tx");
  EXPECT_EQ(r.id, node->id());
  EXPECT_EQ(r.ip, peer_);
  EXPECT_EQ(node->routing_table().size(), 1u);  // the querier was added
}

// Cluster and public instances never answer each other's queries.
TEST_F(DhtNodeTest, ClusterNameSeparatesNetworks) {
  DhtOptions o;
  o.cluster_name = "shoal";
  auto cluster = Make(o);
  auto pub = Make();
  cluster->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_));
  pub->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_, "shoal"));
  cluster->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_, "other"));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(cluster->stats().wrong_network, 2u);
  cluster->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_, "shoal"));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(LastSent().cluster, "shoal");
  EXPECT_EQ(cluster->routing_table().size(), 1u);
  EXPECT_EQ(pub->routing_table().size(), 0u);
}

// Two instances behind one socket: replies go to the one that asked.
TEST_F(DhtNodeTest, ExpectsReplyRoutesResponses) {
  DhtOptions o;
  o.cluster_name = "shoal";
  auto cluster = Make(o);
  auto pub = Make();
  cluster->Bootstrap({peer_});
  KrpcMessage q = LastSent();
  EXPECT_TRUE(cluster->ExpectsReply(peer_, q.transaction_id));
  EXPECT_FALSE(pub->ExpectsReply(peer_, q.transaction_id));
  EXPECT_FALSE(cluster->ExpectsReply(Endpoint::V4(1, 1), q.transaction_id));
  cluster->OnPacket(
      peer_, EncodeKrpc(KrpcMessage::Response(q.transaction_id, peer_id_)));
  EXPECT_FALSE(cluster->ExpectsReply(peer_, q.transaction_id));
  EXPECT_EQ(cluster->routing_table().size(), 1u);
}

// Announce with the token from get_peers stores the peer; a bad token is error
// 203.
TEST_F(DhtNodeTest, TokensGateAnnounce) {
  auto node = Make();
  NodeId ih = NodeId::Random(random_);
  node->OnPacket(peer_, GetPeers(peer_id_, ih));
  std::string token = LastSent().token;
  EXPECT_EQ(token, node->TokenFor(peer_.address));
  node->OnPacket(peer_, AnnouncePeer(peer_id_, ih, "nope", 6881));
  EXPECT_EQ(LastSent().type, KrpcType::kError);
  EXPECT_EQ(LastSent().error_code, kErrorProtocol);
  EXPECT_TRUE(node->StoredPeers(ih).empty());
  // A token from another address does not work either.
  Endpoint other = Endpoint::V4(0x0a000002, 7000);
  node->OnPacket(other, AnnouncePeer(peer_id_, ih, token, 6881));
  EXPECT_EQ(LastSent().type, KrpcType::kError);
  node->OnPacket(peer_, AnnouncePeer(peer_id_, ih, token, 6881));
  EXPECT_EQ(LastSent().type, KrpcType::kResponse);
  ASSERT_EQ(node->StoredPeers(ih).size(), 1u);
  EXPECT_EQ(node->StoredPeers(ih)[0], Endpoint::V4(0x0a000001, 6881));
  // get_peers now returns it.
  node->OnPacket(peer_, GetPeers(peer_id_, ih));
  ASSERT_EQ(LastSent().values.size(), 1u);
}

// A token survives one rotation (5 minutes) and dies at the second.
TEST_F(DhtNodeTest, TokenRotation) {
  auto node = Make();
  NodeId ih = NodeId::Random(random_);
  std::string token = node->TokenFor(peer_.address);
  now_ += 5 * 60 * 1000;
  node->Tick();
  EXPECT_NE(node->TokenFor(peer_.address), token);
  node->OnPacket(peer_, AnnouncePeer(peer_id_, ih, token, 1));
  EXPECT_EQ(LastSent().type, KrpcType::kResponse);
  now_ += 5 * 60 * 1000;
  node->Tick();
  node->OnPacket(peer_, AnnouncePeer(peer_id_, ih, token, 1));
  EXPECT_EQ(LastSent().type, KrpcType::kError);
}

// implied_port stores the UDP source port instead of the port argument.
TEST_F(DhtNodeTest, ImpliedPort) {
  auto node = Make();
  NodeId ih = NodeId::Random(random_);
  node->OnPacket(peer_, AnnouncePeer(peer_id_, ih,
                                     node->TokenFor(peer_.address), 1, true));
  ASSERT_EQ(node->StoredPeers(ih).size(), 1u);
  EXPECT_EQ(node->StoredPeers(ih)[0].port, 7000);
}

// Stored peers expire after 30 minutes.
TEST_F(DhtNodeTest, PeersExpire) {
  auto node = Make();
  NodeId ih = NodeId::Random(random_);
  node->OnPacket(peer_,
                 AnnouncePeer(peer_id_, ih, node->TokenFor(peer_.address), 1));
  EXPECT_EQ(node->stored_peer_count(), 1u);
  now_ += 29 * 60 * 1000;
  node->Tick();
  EXPECT_EQ(node->stored_peer_count(), 1u);
  now_ += 60 * 1000;
  node->Tick();
  EXPECT_EQ(node->stored_peer_count(), 0u);
  EXPECT_TRUE(node->StoredPeers(ih).empty());
}

// Per-key and total peer limits hold.
TEST_F(DhtNodeTest, PeerLimits) {
  DhtOptions o;
  o.max_peers_per_key = 3;
  o.max_peers_total = 5;
  o.query_burst_per_source = 1000;
  auto node = Make(o);
  NodeId a = NodeId::Random(random_), b = NodeId::Random(random_);
  for (uint32_t i = 0; i < 10; ++i) {
    Endpoint from = Endpoint::V4(0x0b000000 + i, 9);
    node->OnPacket(from,
                   AnnouncePeer(peer_id_, a, node->TokenFor(from.address), 1));
    node->OnPacket(from,
                   AnnouncePeer(peer_id_, b, node->TokenFor(from.address), 1));
  }
  EXPECT_EQ(node->StoredPeers(a).size(), 3u);
  EXPECT_EQ(node->StoredPeers(b).size(), 2u);
  EXPECT_EQ(node->stored_peer_count(), 5u);
}

// A get_peers response carries at most max_values_per_response peers, plus
// nodes.
TEST_F(DhtNodeTest, ValuesCappedPerResponse) {
  DhtOptions o;
  o.max_values_per_response = 4;
  o.query_burst_per_source = 1000;
  auto node = Make(o);
  NodeId ih = NodeId::Random(random_);
  for (uint32_t i = 0; i < 10; ++i) {
    Endpoint from = Endpoint::V4(0x0b000000 + i, 9);
    node->OnPacket(from, AnnouncePeer(NodeId::Random(random_), ih,
                                      node->TokenFor(from.address), 1));
  }
  node->OnPacket(peer_, GetPeers(peer_id_, ih));
  KrpcMessage r = LastSent();
  EXPECT_EQ(r.values.size(), 4u);
  EXPECT_FALSE(r.nodes.empty());
  EXPECT_FALSE(r.token.empty());
}

// BEP 32: find_node answers in the querier's family unless "want" asks
// otherwise.
TEST_F(DhtNodeTest, Nodes6AndWant) {
  DhtOptions o;
  o.query_burst_per_source = 1000;
  auto node = Make(o);
  Endpoint v6;
  v6.address = std::string(15, '\0') + "\x01";
  v6.port = 6881;
  for (uint32_t i = 0; i < 4; ++i) {
    node->OnPacket(Endpoint::V4(0x0b000000 + i, 9),
                   Query(KrpcMethod::kPing, NodeId::Random(random_)));
    Endpoint e = v6;
    e.address[0] = static_cast<char>(0x20 + i);
    node->OnPacket(e, Query(KrpcMethod::kPing, NodeId::Random(random_)));
  }
  KrpcMessage q = KrpcMessage::Query(KrpcMethod::kFindNode, "fn", peer_id_);
  q.target = NodeId::Random(random_);
  node->OnPacket(v6, EncodeKrpc(q));
  EXPECT_TRUE(LastSent().nodes.empty());
  EXPECT_EQ(LastSent().nodes6.size(), 5u);  // the 4 pingers and the querier
  node->OnPacket(peer_, EncodeKrpc(q));
  EXPECT_EQ(LastSent().nodes.size(), 4u);
  EXPECT_TRUE(LastSent().nodes6.empty());
  q.want_v4 = q.want_v6 = true;
  node->OnPacket(peer_, EncodeKrpc(q));
  EXPECT_FALSE(LastSent().nodes.empty());
  EXPECT_FALSE(LastSent().nodes6.empty());
}

// Random garbage and mutated queries from many sources never crash the node.
TEST_F(DhtNodeTest, SurvivesGarbage) {
  auto node = Make();
  std::string base = GetPeers(peer_id_, NodeId::Random(random_));
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    for (int e = 0; e < 3; ++e)
      s[rng_() % s.size()] = static_cast<char>(rng_());
    node->OnPacket(Endpoint::V4(0x0c000000 + (rng_() % 1000), 1), s);
    node->OnPacket(peer_, std::string(rng_() % 64, static_cast<char>(rng_())));
  }
  now_ += 60'000;
  node->Tick();
  EXPECT_GT(node->stats().malformed, 0u);
}

// Queries beyond the per-source burst are dropped, then allowed again later.
TEST_F(DhtNodeTest, RateLimitPerSource) {
  DhtOptions o;
  o.query_burst_per_source = 10;
  o.queries_per_second_per_source = 5;
  auto node = Make(o);
  for (int i = 0; i < 20; ++i)
    node->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_));
  EXPECT_EQ(sent_.size(), 10u);
  EXPECT_EQ(node->stats().rate_limited, 10u);
  // Another source is unaffected.
  node->OnPacket(Endpoint::V4(0x0a000009, 1),
                 Query(KrpcMethod::kPing, peer_id_));
  EXPECT_EQ(sent_.size(), 11u);
  now_ += 1000;
  node->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_));
  EXPECT_EQ(sent_.size(), 12u);
}

// Unknown methods get error 204; garbage is counted and dropped.
TEST_F(DhtNodeTest, UnknownAndMalformed) {
  auto node = Make();
  KrpcMessage q = KrpcMessage::Query(KrpcMethod::kUnknown, "tx", peer_id_);
  q.method_name = "vote";
  node->OnPacket(peer_, EncodeKrpc(q));
  EXPECT_EQ(LastSent().error_code, kErrorMethodUnknown);
  size_t before = sent_.size();
  for (std::string junk :
       {std::string("xyz"), std::string("d1:y1:re"), std::string(3000, 'd')}) {
    node->OnPacket(peer_, junk);
  }
  EXPECT_EQ(sent_.size(), before);
  EXPECT_EQ(node->stats().malformed, 3u);
}

// With BEP 42 enforced, a public address with a non-conforming ID is served but
// not added.
TEST_F(DhtNodeTest, Bep42Enforcement) {
  DhtOptions o;
  o.enforce_bep42 = true;
  auto node = Make(o);
  Endpoint pub = Endpoint::V4(0x7c1f4b15, 1);  // 124.31.75.21
  node->OnPacket(pub, Query(KrpcMethod::kPing, peer_id_));
  EXPECT_EQ(sent_.size(), 1u);
  EXPECT_EQ(node->routing_table().size(), 0u);
  NodeId good = NodeIdForIp(pub.address, 1, random_);
  node->OnPacket(pub, Query(KrpcMethod::kPing, good));
  EXPECT_EQ(node->routing_table().size(), 1u);
}

// BEP 42 for ourselves: once 5 nodes report the same public address, for which
// our random ID is not valid, the node takes an ID valid for it and keeps the
// nodes it knew; private addresses change nothing.
TEST_F(DhtNodeTest, TakesBep42IdForReportedAddress) {
  for (const bool is_public : {true, false}) {
    sent_.clear();
    auto node = Make();
    const NodeId before = node->id();
    Endpoint ours = is_public ? Endpoint::V4(0x7c1f4bc8, 6881)  // 124.31.75.200
                              : Endpoint::V4(0x0a000063, 6881);  // 10.0.0.99
    ASSERT_EQ(IsValidNodeIdForIp(before, ours.address), !is_public);
    std::vector<Endpoint> routers;
    for (uint32_t i = 0; i < 5; ++i)
      routers.push_back(Endpoint::V4(0x7c1f4b15 + i, 6881));
    node->Bootstrap(routers);
    ASSERT_EQ(sent_.size(), 5u);
    const auto queries = sent_;
    for (size_t i = 0; i < queries.size(); ++i) {
      absl::StatusOr<KrpcMessage> q = DecodeKrpc(queries[i].second);
      ASSERT_TRUE(q.ok());
      KrpcMessage r =
          KrpcMessage::Response(q->transaction_id, NodeId::Random(random_));
      r.ip = ours;
      node->OnPacket(queries[i].first, EncodeKrpc(r));
      // The ID holds until the fifth vote.
      if (i < 4) EXPECT_EQ(node->id(), before);
    }
    if (is_public) {
      EXPECT_NE(node->id(), before);
      EXPECT_TRUE(IsValidNodeIdForIp(node->id(), ours.address));
      EXPECT_EQ(node->stats().id_changes, 1u);
      EXPECT_EQ(node->routing_table().own_id(), node->id());
      EXPECT_EQ(node->routing_table().size(), 5u);
    } else {
      EXPECT_EQ(node->id(), before);
      EXPECT_EQ(node->stats().id_changes, 0u);
    }
  }
}

// A node whose routers never answer bootstraps again while its table is empty.
TEST_F(DhtNodeTest, RebootstrapsWhileTableEmpty) {
  auto node = Make();
  node->Bootstrap({peer_});
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(LastSent().method, KrpcMethod::kFindNode);
  for (int i = 0; i < 10; ++i) {  // 2 retransmissions, then the query fails
    now_ += 2000;
    node->Tick();
  }
  EXPECT_EQ(sent_.size(), 3u);
  now_ += 30'000;
  node->Tick();
  ASSERT_EQ(sent_.size(), 4u);
  EXPECT_EQ(sent_.back().first, peer_);
  EXPECT_EQ(LastSent().target, node->id());
}

// Tick() pings questionable nodes; an answer makes them good.
TEST_F(DhtNodeTest, PingsQuestionableNodes) {
  auto node = Make();
  node->OnPacket(peer_,
                 Query(KrpcMethod::kPing, peer_id_));  // added, never answered
  const RoutingEntry* e = node->routing_table().Find(peer_id_);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(node->routing_table().StatusOf(*e, now_),
            NodeStatus::kQuestionable);
  sent_.clear();
  now_ += 10'000;
  node->Tick();
  ASSERT_EQ(sent_.size(), 1u);
  KrpcMessage ping = LastSent();
  EXPECT_EQ(ping.method, KrpcMethod::kPing);
  node->OnPacket(
      peer_, EncodeKrpc(KrpcMessage::Response(ping.transaction_id, peer_id_)));
  EXPECT_EQ(node->routing_table().StatusOf(
                *node->routing_table().Find(peer_id_), now_),
            NodeStatus::kGood);
  // A reply from the wrong address or with an unknown transaction is ignored.
  node->OnPacket(
      Endpoint::V4(0x0a0000ff, 1),
      EncodeKrpc(KrpcMessage::Response(ping.transaction_id, peer_id_)));
  EXPECT_EQ(node->routing_table().size(), 1u);
}

// A bucket idle for 15 minutes is refreshed with a find_node lookup.
TEST_F(DhtNodeTest, RefreshesIdleBuckets) {
  auto node = Make();
  node->OnPacket(peer_, Query(KrpcMethod::kPing, peer_id_));
  now_ += 10'000;
  node->Tick();  // pings
  KrpcMessage ping = LastSent();
  node->OnPacket(
      peer_, EncodeKrpc(KrpcMessage::Response(ping.transaction_id, peer_id_)));
  sent_.clear();
  now_ += 10'000;
  node->Tick();
  EXPECT_TRUE(sent_.empty());
  now_ += 15 * 60 * 1000;
  node->Tick();
  bool find_node = false;
  for (const auto& [to, bytes] : sent_) {
    absl::StatusOr<KrpcMessage> m = DecodeKrpc(bytes);
    ASSERT_TRUE(m.ok());
    find_node |= to == peer_ && m->method == KrpcMethod::kFindNode;
  }
  EXPECT_TRUE(find_node);
}

// A small synchronous network: lookups, announce and get_peers, save/load.
class DhtNetworkTest : public ::testing::Test {
 protected:
  void Build(int n) {
    for (int i = 0; i < n; ++i) {
      DhtOptions o;
      o.id = NodeId::Random(random_);
      Endpoint e = Endpoint::V4(0x0a000000 + i + 1, 6881);
      auto node = DhtNode::Create(
          o, [this] { return now_; }, random_,
          [this, e](const Endpoint& to, std::string bytes) {
            queue_.push_back({e, to, std::move(bytes)});
          });
      ASSERT_TRUE(node.ok());
      endpoints_.push_back(e);
      nodes_.push_back(std::move(*node));
    }
    for (int i = 1; i < n; ++i) {
      nodes_[i]->Bootstrap({endpoints_[0]});
      Run();
    }
  }
  void Run() {
    while (!queue_.empty()) {
      auto [from, to, bytes] = std::move(queue_.front());
      queue_.pop_front();
      now_ += 1;
      uint32_t index = (static_cast<uint8_t>(to.address[2]) << 8 |
                        static_cast<uint8_t>(to.address[3])) -
                       1;
      if (index < nodes_.size()) nodes_[index]->OnPacket(from, bytes);
    }
  }
  int64_t now_ = 0;
  std::mt19937_64 rng_{5};
  std::function<uint64_t()> random_ = [this] { return rng_(); };
  std::deque<std::tuple<Endpoint, Endpoint, std::string>> queue_;
  std::vector<Endpoint> endpoints_;
  std::vector<std::unique_ptr<DhtNode>> nodes_;
};

// find_node on a lossless network returns exactly the true 8 closest nodes.
TEST_F(DhtNetworkTest, FindNodeFindsTrueClosest) {
  Build(60);
  for (int trial = 0; trial < 10; ++trial) {
    NodeId target = NodeId::Random(random_);
    std::vector<NodeId> truth;
    for (int i = 1; i < 60; ++i) truth.push_back(nodes_[i]->id());
    truth.push_back(nodes_[0]->id());
    std::sort(truth.begin(), truth.end(),
              [&](const NodeId& a, const NodeId& b) {
                return CloserTo(target, a, b);
              });
    // Node 7 looks up: it never returns itself.
    std::erase(truth, nodes_[7]->id());
    truth.resize(8);
    std::vector<NodeInfo> got;
    bool done = false;
    nodes_[7]->FindNode(
        target, [&](const std::vector<NodeInfo>& c, const LookupStats&) {
          got = c;
          done = true;
        });
    Run();
    ASSERT_TRUE(done);
    ASSERT_EQ(got.size(), 8u);
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(got[i].id, truth[i]);
  }
}

// Announce stores the peer at the closest nodes; get_peers elsewhere finds it.
TEST_F(DhtNetworkTest, AnnounceThenGetPeers) {
  Build(40);
  NodeId ih = NodeId::Random(random_);
  int acked = -1;
  nodes_[3]->Announce(ih, 5555, false, [&](int n) { acked = n; });
  Run();
  EXPECT_EQ(acked, 8);
  std::vector<Endpoint> peers;
  std::vector<NodeWithToken> closest;
  nodes_[20]->GetPeers(
      ih, [&](const std::vector<Endpoint>& p,
              const std::vector<NodeWithToken>& c, const LookupStats&) {
        peers = p;
        closest = c;
      });
  Run();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0], Endpoint::V4(0x0a000004, 5555));
  ASSERT_FALSE(closest.empty());
  EXPECT_FALSE(closest[0].token.empty());
}

// Peers reach `found` as soon as a node names them, while the lookup still
// waits on nodes that are gone.
TEST_F(DhtNetworkTest, GetPeersReportsPeersBeforeTheLookupEnds) {
  Build(40);
  NodeId ih = NodeId::Random(random_);
  nodes_[3]->Announce(ih, 5555, false, [](int) {});
  Run();
  // Every node but 3 and the ones holding the peer stops answering... and
  // those that are far from the key: node 20's lookup asks some of them.
  std::vector<Endpoint> found;
  bool done = false;
  nodes_[20]->GetPeers(
      ih,
      [&](const std::vector<Endpoint>&, const std::vector<NodeWithToken>&,
          const LookupStats&) { done = true; },
      [&](const std::vector<Endpoint>& p) {
        found.insert(found.end(), p.begin(), p.end());
      });
  // Deliver only the packets to and from the first nodes asked; drop the
  // rest (gone nodes), so the lookup cannot end without timeouts.
  int delivered = 0;
  while (!queue_.empty()) {
    auto [from, to, bytes] = std::move(queue_.front());
    queue_.pop_front();
    if (++delivered > 12) continue;
    const uint32_t index = (static_cast<uint8_t>(to.address[2]) << 8 |
                            static_cast<uint8_t>(to.address[3])) -
                           1;
    if (index < nodes_.size()) nodes_[index]->OnPacket(from, bytes);
  }
  EXPECT_FALSE(done);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], Endpoint::V4(0x0a000004, 5555));
  for (int i = 0; i < 100 && !done; ++i) {
    queue_.clear();
    now_ += 1000;
    nodes_[20]->Tick();
  }
  EXPECT_TRUE(done);
}

// A saved routing table restores into a fresh node, which can bootstrap from it
// alone.
TEST_F(DhtNetworkTest, SaveLoadRoutingTable) {
  Build(30);
  std::string saved = nodes_[5]->SaveState();
  size_t before = nodes_[5]->routing_table().size();
  ASSERT_GT(before, 0u);
  DhtOptions o;
  o.id = nodes_[5]->id();
  auto fresh = DhtNode::Create(
      o, [this] { return now_; }, random_, [](const Endpoint&, std::string) {});
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE((*fresh)->LoadState(saved).ok());
  EXPECT_EQ((*fresh)->routing_table().size(), before);
  EXPECT_EQ((*fresh)->LoadState("junk").code(),
            absl::StatusCode::kInvalidArgument);
}

// Unanswered queries time out in Tick() and the lookup still completes.
TEST_F(DhtNetworkTest, TimeoutsEndLookups) {
  Build(20);
  // Drop everything: node 2's lookup must end through timeouts.
  bool done = false;
  nodes_[2]->FindNode(NodeId::Random(random_),
                      [&](const std::vector<NodeInfo>& c, const LookupStats&) {
                        done = true;
                        EXPECT_TRUE(c.empty());
                      });
  for (int i = 0; i < 200 && !done; ++i) {
    queue_.clear();
    now_ += 1000;
    nodes_[2]->Tick();
  }
  EXPECT_TRUE(done);
}

// A search for peers stops waiting for a node that answers neither its query
// nor the retransmission: it ends about 1 s after the retransmission, not
// after every retry has timed out (6 s).
TEST_F(DhtNodeTest, PeerSearchStopsWaitingForASilentNode) {
  auto node = Make();
  const Endpoint a = Endpoint::V4(0x0a000002, 7001);
  const Endpoint b = Endpoint::V4(0x0a000003, 7002);
  const NodeId ia = NodeId::Random(random_), ib = NodeId::Random(random_);
  node->OnPacket(a, Query(KrpcMethod::kPing, ia));
  node->OnPacket(b, Query(KrpcMethod::kPing, ib));
  ASSERT_EQ(node->routing_table().size(), 2u);
  sent_.clear();
  bool done = false;
  int64_t done_at = 0;
  const int64_t start = now_;
  node->GetPeers(NodeId::Random(random_),
                 [&](const std::vector<Endpoint>&,
                     const std::vector<NodeWithToken>&, const LookupStats&) {
                   done = true;
                   done_at = now_;
                 });
  for (int step = 0; step < 30 && !done; ++step) {
    auto out = std::exchange(sent_, {});
    for (auto& [to, bytes] : out) {
      if (!(to == a)) continue;  // b is silent
      auto q = DecodeKrpc(bytes);
      ASSERT_TRUE(q.ok());
      if (q->type != KrpcType::kQuery) continue;
      KrpcMessage r = KrpcMessage::Response(q->transaction_id, ia);
      r.token = "tok";
      node->OnPacket(a, EncodeKrpc(r));
    }
    now_ += 250;
    node->Tick();
  }
  ASSERT_TRUE(done);
  EXPECT_LE(done_at - start, 3'500);
}

}  // namespace
}  // namespace shoal::dht

namespace shoal::dht {
namespace {

// sh_preheat: a cluster node answers with its handler's state; the asking side
// gets the answer, or nullopt when the node never answers. The public DHT and
// a node without a handler answer "method unknown".
TEST_F(DhtNodeTest, Preheat) {
  DhtOptions o;
  o.cluster_name = "shoal";
  auto node = Make(o);
  std::string asked;
  node->set_preheat_handler([&](std::string_view content) {
    asked = std::string(content);
    return PreheatAnswer{"fetching", 3, 10};
  });
  KrpcMessage q = KrpcMessage::Query(KrpcMethod::kPreheat, "ph", peer_id_);
  q.cluster = "shoal";
  q.content = std::string(32, 'c');
  node->OnPacket(peer_, EncodeKrpc(q));
  EXPECT_EQ(asked, std::string(32, 'c'));
  KrpcMessage r = LastSent();
  EXPECT_EQ(r.type, KrpcType::kResponse);
  EXPECT_EQ(r.state, "fetching");
  EXPECT_EQ(r.done, 3);
  EXPECT_EQ(r.total, 10);

  auto plain = Make();  // public DHT: no such method
  plain->set_preheat_handler([](std::string_view) { return PreheatAnswer{}; });
  q.cluster.reset();
  plain->OnPacket(peer_, EncodeKrpc(q));
  EXPECT_EQ(LastSent().type, KrpcType::kError);

  // Asking: the answer arrives through the callback.
  std::optional<PreheatAnswer> got;
  bool called = false;
  node->Preheat(peer_, peer_id_, std::string(32, 'd'),
                [&](const std::optional<PreheatAnswer>& a) {
                  called = true;
                  got = a;
                });
  KrpcMessage sent = LastSent();
  EXPECT_EQ(sent.method, KrpcMethod::kPreheat);
  EXPECT_EQ(sent.content, std::string(32, 'd'));
  KrpcMessage answer = KrpcMessage::Response(sent.transaction_id, peer_id_);
  answer.cluster = "shoal";
  answer.state = "complete";
  answer.done = answer.total = 7;
  node->OnPacket(peer_, EncodeKrpc(answer));
  ASSERT_TRUE(called && got);
  EXPECT_EQ(got->state, "complete");
  EXPECT_EQ(got->done, 7);

  // No answer at all: nullopt once the retries time out.
  called = false;
  node->Preheat(peer_, peer_id_, std::string(32, 'e'),
                [&](const std::optional<PreheatAnswer>& a) {
                  called = true;
                  got = a;
                });
  for (int i = 0; i < 20 && !called; ++i) {
    now_ += 5'000;
    node->Tick();
  }
  EXPECT_TRUE(called);
  EXPECT_FALSE(got);
}

}  // namespace
}  // namespace shoal::dht
