#include "wire/peer_priority.h"

#include "gtest/gtest.h"

namespace shoal::wire {
namespace {

PeerEndpoint Ep(const char* ip, uint16_t port = 6881) {
  return *PeerEndpoint::FromIpString(ip, port);
}

TEST(PeerPriorityTest, Crc32cCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // the standard check value
  EXPECT_EQ(Crc32c(""), 0u);
}

// BEP 40's examples, from both ends.
TEST(PeerPriorityTest, TheBepsVectors) {
  EXPECT_EQ(CanonicalPeerPriority(Ep("123.213.32.10"), Ep("98.76.54.32")),
            0xec2d7224u);
  EXPECT_EQ(CanonicalPeerPriority(Ep("98.76.54.32"), Ep("123.213.32.10")),
            0xec2d7224u);
  EXPECT_EQ(CanonicalPeerPriority(Ep("123.213.32.10"), Ep("123.213.32.234")),
            0x99568189u);
  EXPECT_EQ(CanonicalPeerPriority(Ep("123.213.32.234"), Ep("123.213.32.10")),
            0x99568189u);
}

TEST(PeerPriorityTest, SameAddressUsesThePorts) {
  const uint32_t p =
      CanonicalPeerPriority(Ep("10.0.0.1", 1000), Ep("10.0.0.1", 2000));
  EXPECT_EQ(p,
            CanonicalPeerPriority(Ep("10.0.0.1", 2000), Ep("10.0.0.1", 1000)));
  EXPECT_EQ(p, Crc32c(std::string("\x03\xE8\x07\xD0", 4)));
  EXPECT_NE(p,
            CanonicalPeerPriority(Ep("10.0.0.1", 1000), Ep("10.0.0.1", 2001)));
}

// The masks: a /16 neighbour keeps a third byte; IPv6 starts at /48.
TEST(PeerPriorityTest, MasksWidenWithTheSharedPrefix) {
  // Same /16: FF.FF.FF.55.
  EXPECT_EQ(CanonicalPeerPriority(Ep("1.2.3.4"), Ep("1.2.200.7")),
            Crc32c(std::string("\x01\x02\x03\x04\x01\x02\xC8\x05", 8)));
  // Bits masked out do not matter: 1.2.3.4 and 1.2.3.6 look alike to a
  // far peer.
  EXPECT_EQ(CanonicalPeerPriority(Ep("9.9.9.9"), Ep("1.2.3.4")),
            CanonicalPeerPriority(Ep("9.9.9.9"), Ep("1.2.1.6")));
  EXPECT_NE(CanonicalPeerPriority(Ep("2001:db8::1"), Ep("2001:db9::1")),
            CanonicalPeerPriority(Ep("2001:db8::1"), Ep("2001:dba::1")));
}

}  // namespace
}  // namespace shoal::wire
