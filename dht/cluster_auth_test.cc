#include "dht/cluster_auth.h"

#include <random>

#include "dht/dht_node.h"
#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

ClusterKey Key(uint8_t fill) {
  ClusterKey k;
  k.fill(fill);
  return k;
}

KrpcMessage Ping() {
  std::mt19937_64 rng(7);
  std::function<uint64_t()> random = [&] { return rng(); };
  KrpcMessage q =
      KrpcMessage::Query(KrpcMethod::kPing, "tx", NodeId::Random(random));
  q.cluster = "shoal";
  return q;
}

TEST(ClusterKeyTest, Parse) {
  const std::string hex(64, 'a');
  auto k = ParseClusterKey(hex + "\n");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ((*k)[0], 0xaa);
  EXPECT_TRUE(ParseClusterKey(std::string(64, 'F')).ok());
  EXPECT_FALSE(ParseClusterKey(std::string(63, 'a')).ok());
  EXPECT_FALSE(ParseClusterKey(std::string(64, 'g')).ok());
  EXPECT_FALSE(ParseClusterKey("").ok());
}

TEST(ClusterAuthTest, SealedMessageVerifiesAndStaysKrpc) {
  const std::string sealed = SealKrpc(Ping(), Key(1), 1'700'000'000);
  EXPECT_TRUE(VerifyKrpc(sealed, Key(1), 1'700'000'000).ok());
  EXPECT_TRUE(VerifyKrpc(sealed, Key(1), 1'700'000'000 + 100).ok());
  // Still a KRPC message any decoder reads.
  auto m = DecodeKrpc(sealed);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->method, KrpcMethod::kPing);
  EXPECT_EQ(m->timestamp, 1'700'000'000);
  ASSERT_TRUE(m->mac.has_value());
  EXPECT_EQ(m->mac->size(), 32u);
}

TEST(ClusterAuthTest, Refusals) {
  const int64_t now = 1'700'000'000;
  const std::string sealed = SealKrpc(Ping(), Key(1), now);
  // Another key.
  EXPECT_EQ(VerifyKrpc(sealed, Key(2), now).code(),
            absl::StatusCode::kUnauthenticated);
  // Outside the window, either way.
  EXPECT_FALSE(
      VerifyKrpc(sealed, Key(1), now + kClusterMaxSkewSeconds + 1).ok());
  EXPECT_FALSE(
      VerifyKrpc(sealed, Key(1), now - kClusterMaxSkewSeconds - 1).ok());
  // Any byte changed.
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] ^= 0x01;
    EXPECT_FALSE(VerifyKrpc(t, Key(1), now).ok()) << "byte " << i;
  }
  // Unsealed, or sealed then stripped of its MAC.
  KrpcMessage plain = Ping();
  EXPECT_FALSE(VerifyKrpc(EncodeKrpc(plain), Key(1), now).ok());
  plain.timestamp = now;
  EXPECT_FALSE(VerifyKrpc(EncodeKrpc(plain), Key(1), now).ok());
  EXPECT_FALSE(VerifyKrpc("garbage", Key(1), now).ok());
}

// Two cluster nodes with the key talk; one with another key is dropped and
// counted, and never enters the routing table.
TEST(ClusterAuthTest, DhtNodesWithAndWithoutTheKey) {
  std::mt19937_64 rng(3);
  std::function<uint64_t()> random = [&] { return rng(); };
  int64_t now_ms = 5'000;
  std::vector<std::pair<Endpoint, std::string>> out;
  auto make = [&](std::optional<ClusterKey> key) {
    DhtOptions o;
    o.id = NodeId::Random(random);
    o.cluster_name = "shoal";
    o.cluster_key = key;
    o.unix_time = [] { return int64_t{1'700'000'000}; };
    auto n = DhtNode::Create(
        o, [&] { return now_ms; }, random,
        [&](const Endpoint& to, std::string b) {
          out.push_back({to, b});
        });
    EXPECT_TRUE(n.ok());
    return std::move(*n);
  };
  auto a = make(Key(9));
  auto b = make(Key(9));
  auto intruder = make(Key(8));
  auto keyless = make(std::nullopt);
  const Endpoint ea = Endpoint::V4(0x0a000001, 1),
                 eb = Endpoint::V4(0x0a000002, 2),
                 ei = Endpoint::V4(0x0a000003, 3),
                 ek = Endpoint::V4(0x0a000004, 4);
  auto deliver = [&](const Endpoint& from) {
    // Delivers what was sent, to whoever it was sent to, from `from`.
    auto batch = std::move(out);
    out.clear();
    for (auto& [to, bytes] : batch) {
      DhtNode* n = to == ea ? a.get() : to == eb ? b.get() : nullptr;
      if (n) n->OnPacket(from, bytes);
    }
  };
  b->Bootstrap({ea});
  deliver(eb);  // b's query reaches a
  deliver(ea);  // a's answer reaches b
  EXPECT_EQ(b->routing_table().size(), 1u);
  EXPECT_EQ(a->stats().unauthenticated, 0u);
  intruder->Bootstrap({ea});
  deliver(ei);
  keyless->Bootstrap({ea});
  deliver(ek);
  EXPECT_EQ(a->stats().unauthenticated, 2u);
  EXPECT_TRUE(out.empty());  // a answered neither
}

}  // namespace
}  // namespace shoal::dht
