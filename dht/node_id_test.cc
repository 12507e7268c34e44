#include "dht/node_id.h"

#include <random>

#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

NodeId FromHex(std::string_view hex) {
  std::array<uint8_t, 20> b{};
  for (size_t i = 0; i < 20; ++i) {
    b[i] = static_cast<uint8_t>(
        std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  }
  return NodeId(b);
}

std::string Ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
          static_cast<char>(d)};
}

// XOR distance and prefix lengths follow the bits of the IDs.
TEST(NodeIdTest, DistanceAndPrefix) {
  NodeId zero;
  NodeId a = FromHex("8000000000000000000000000000000000000000");
  NodeId b = FromHex("0100000000000000000000000000000000000000");
  EXPECT_EQ(zero.LeadingZeros(), 160);
  EXPECT_EQ(CommonPrefixLength(zero, a), 0);
  EXPECT_EQ(CommonPrefixLength(zero, b), 7);
  EXPECT_TRUE(CloserTo(zero, b, a));
  EXPECT_FALSE(CloserTo(zero, a, b));
  EXPECT_EQ((a ^ a), zero);
}

// RandomWithPrefix shares exactly the requested number of bits.
TEST(NodeIdTest, RandomWithPrefix) {
  std::mt19937_64 rng(7);
  auto random = [&] { return rng(); };
  NodeId base = NodeId::Random(random);
  for (int p : {0, 1, 5, 8, 77, 159}) {
    EXPECT_EQ(
        CommonPrefixLength(base, NodeId::RandomWithPrefix(base, p, random)), p);
  }
}

// Compact endpoints round-trip and reject wrong sizes.
TEST(NodeIdTest, CompactEndpoint) {
  Endpoint e = Endpoint::V4(0x01020304, 6881);
  EXPECT_EQ(e.ToString(), "1.2.3.4:6881");
  EXPECT_EQ(e.Compact(), std::string("\x01\x02\x03\x04\x1a\xe1", 6));
  EXPECT_EQ(Endpoint::FromCompact(e.Compact()), e);
  EXPECT_FALSE(Endpoint::FromCompact("abc").has_value());
}

// CRC32C matches the standard check value.
TEST(NodeIdTest, Crc32cCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
}

// The BEP 42 test vectors validate, and a flipped prefix bit does not.
TEST(NodeIdTest, Bep42Vectors) {
  struct Vector {
    std::string ip;
    const char* id;
  } vectors[] = {
      {Ip(124, 31, 75, 21), "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
      {Ip(21, 75, 31, 124), "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
      {Ip(65, 23, 51, 170), "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
      {Ip(84, 124, 73, 14), "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
      {Ip(43, 213, 53, 83), "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
  };
  for (const Vector& v : vectors) {
    NodeId id = FromHex(v.id);
    EXPECT_TRUE(IsValidNodeIdForIp(id, v.ip)) << v.id;
    NodeId bad = id;
    bad.mutable_array()[0] ^= 0x01;
    EXPECT_FALSE(IsValidNodeIdForIp(bad, v.ip)) << v.id;
  }
}

// Generated IDs satisfy BEP 42; private addresses are exempt.
TEST(NodeIdTest, Bep42GenerateAndExempt) {
  std::mt19937_64 rng(1);
  auto random = [&] { return rng(); };
  NodeId id = NodeIdForIp(Ip(124, 31, 75, 21), 1, random);
  EXPECT_EQ(id.array()[0], 0x5f);
  EXPECT_EQ(id.array()[1], 0xbf);
  EXPECT_TRUE(IsValidNodeIdForIp(id, Ip(124, 31, 75, 21)));
  EXPECT_TRUE(IsValidNodeIdForIp(NodeId(), Ip(192, 168, 1, 1)));
  EXPECT_TRUE(IsValidNodeIdForIp(NodeId(), Ip(10, 0, 0, 1)));
  EXPECT_FALSE(IsValidNodeIdForIp(NodeId(), "xy"));
}

}  // namespace
}  // namespace shoal::dht
