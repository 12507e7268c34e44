#include "tracker/udp_protocol.h"

#include <string>

#include "base/hex.h"
#include "gtest/gtest.h"

namespace shoal::tracker::udp {
namespace {

using std::string_literals::operator""s;

std::string Hex(std::string_view s) { return HexEncode(s); }

// BEP 15's connect request: protocol id, action 0, transaction id.
TEST(UdpProtocolTest, EncodesConnectRequest) {
  EXPECT_EQ(Hex(EncodeConnectRequest(TransactionId{0x01020304})),
            "000004172710198000000000"
            "01020304");
}

// The 98-byte announce request, field by field, and its decoder.
TEST(UdpProtocolTest, EncodesAnnounceRequest) {
  AnnounceRequest r;
  r.info_hash = AnnounceHash::FromBytes(std::string(20, '\x11'));
  r.peer_id = PeerId::FromBytes(std::string(20, '\x22'));
  r.downloaded = 0x0102;
  r.left = 0x0304;
  r.uploaded = 0x0506;
  r.event = TrackerEvent::kStarted;
  r.key = 0xCAFEBABE;
  r.port = 6881;
  std::string p = EncodeAnnounceRequest(ConnectionId{0x1122334455667788},
                                        TransactionId{0xAABBCCDD}, r);
  ASSERT_EQ(p.size(), 98u);
  EXPECT_EQ(Hex(p),
            "1122334455667788"
            "00000001"
            "aabbccdd" +
                std::string(40, '1') + std::string(40, '2') +
                "0000000000000102"
                "0000000000000304"
                "0000000000000506"
                "00000002"
                "00000000"
                "cafebabe"
                "ffffffff"
                "1ae1");
  auto parsed = ParseAnnounceRequest(p);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->connection, ConnectionId{0x1122334455667788});
  EXPECT_EQ(parsed->transaction, TransactionId{0xAABBCCDD});
  EXPECT_EQ(parsed->request.event, TrackerEvent::kStarted);
  EXPECT_EQ(parsed->request.port, 6881);
  EXPECT_EQ(parsed->request.left, 0x0304);
  EXPECT_FALSE(parsed->request.numwant.has_value());

  r.event = TrackerEvent::kStopped;
  r.numwant = 0;
  p = EncodeAnnounceRequest(ConnectionId{1}, TransactionId{2}, r);
  EXPECT_EQ(Hex(p.substr(80, 4)), "00000003");
  EXPECT_EQ(Hex(p.substr(92, 4)), "00000000");
  r.event = TrackerEvent::kCompleted;
  EXPECT_EQ(Hex(EncodeAnnounceRequest({}, {}, r).substr(80, 4)), "00000001");
}

// Scrape request: header plus 20 bytes per hash.
TEST(UdpProtocolTest, EncodesScrapeRequest) {
  std::vector<AnnounceHash> hashes = {
      AnnounceHash::FromBytes(std::string(20, 'a')),
      AnnounceHash::FromBytes(std::string(20, 'b'))};
  std::string p =
      EncodeScrapeRequest(ConnectionId{7}, TransactionId{9}, hashes);
  EXPECT_EQ(p.size(), 56u);
  EXPECT_EQ(Hex(p.substr(0, 16)),
            "0000000000000007"
            "00000002"
            "00000009");
  EXPECT_EQ(p.substr(16), std::string(20, 'a') + std::string(20, 'b'));
}

// Connect, announce (IPv4 and IPv6), scrape and error replies.
TEST(UdpProtocolTest, ParsesResponses) {
  auto r = ParseResponse(
      EncodeConnectResponse(TransactionId{5}, ConnectionId{0x0102030405060708}),
      AddressFamily::kV4, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto* c = std::get_if<ConnectResponse>(&*r);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->connection.value, 0x0102030405060708u);
  EXPECT_EQ(TransactionOf(*r), TransactionId{5});

  std::string v4 =
      "\x00\x00\x00\x01"
      "\x00\x00\x00\x06"
      "\x00\x00\x07\x08"s
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x03"
      "\x0a\x00\x00\x01\x1a\xe1"
      "\xc0\xa8\x01\x02\x00\x50"s;
  r = ParseResponse(v4, AddressFamily::kV4, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto* a = std::get_if<AnnounceReply>(&*r);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->transaction, TransactionId{6});
  EXPECT_EQ(a->response.interval, std::chrono::seconds(0x0708));
  EXPECT_EQ(a->response.incomplete, 2);
  EXPECT_EQ(a->response.complete, 3);
  ASSERT_EQ(a->response.peers.size(), 2u);
  EXPECT_EQ(a->response.peers[0].ToString(), "10.0.0.1:6881");
  EXPECT_EQ(a->response.peers[1].ToString(), "192.168.1.2:80");

  auto v6peer = PeerEndpoint::FromIpString("2001:db8::5", 51413);
  ASSERT_TRUE(v6peer.has_value());
  std::string v6 = EncodeAnnounceReply(TransactionId{1}, 60, 0, 1, {*v6peer});
  EXPECT_EQ(v6.size(), 20u + 18u);
  r = ParseResponse(v6, AddressFamily::kV6, {});
  ASSERT_TRUE(r.ok()) << r.status();
  a = std::get_if<AnnounceReply>(&*r);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->response.peers.size(), 1u);
  EXPECT_EQ(a->response.peers[0].ToString(), "[2001:db8::5]:51413");
  // The socket's family decides: on an IPv4 socket the same 18 bytes are
  // three 6-byte entries, two of them with port 0 (dropped).
  r = ParseResponse(v6, AddressFamily::kV4, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(std::get<AnnounceReply>(*r).response.peers.size(), 1u);
  EXPECT_EQ(std::get<AnnounceReply>(*r).response.peers[0].ToString(),
            "0.0.0.5:51413");

  std::string scrape =
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x09"s
      "\x00\x00\x00\x01"
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x03"s;
  r = ParseResponse(scrape, AddressFamily::kV4, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto* s = std::get_if<ScrapeReply>(&*r);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->stats.size(), 1u);
  EXPECT_EQ(s->stats[0], (ScrapeStats{1, 2, 3}));

  r = ParseResponse(EncodeErrorReply(TransactionId{3}, "unregistered torrent"),
                    AddressFamily::kV4, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto* e = std::get_if<ErrorReply>(&*r);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->message, "unregistered torrent");
}

// Short, unknown and misaligned packets are INVALID_ARGUMENT; peers are
// capped at max_peers.
TEST(UdpProtocolTest, RejectsHostilePackets) {
  for (std::string bad :
       {""s, "\x00\x00\x00"s, "\x00\x00\x00\x00\x00\x00\x00\x01"s,
        "\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"s,
        "\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x05"s,
        "\x00\x00\x00\x09\x00\x00\x00\x01"s,
        "\xff\xff\xff\xff\x00\x00\x00\x01"s,
        "\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01"s,
        EncodeAnnounceReply({}, 1, 1, 1, {}) + "\x01\x02\x03"s}) {
    EXPECT_EQ(ParseResponse(bad, AddressFamily::kV4, {}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << Hex(bad);
  }
  std::vector<PeerEndpoint> many(500,
                                 *PeerEndpoint::FromIpString("1.2.3.4", 1));
  TrackerLimits limits;
  limits.max_peers = 10;
  auto r = ParseResponse(EncodeAnnounceReply({}, 1, 1, 1, many),
                         AddressFamily::kV4, limits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<AnnounceReply>(*r).response.peers.size(), 10u);
  EXPECT_FALSE(ParseAnnounceRequest(std::string(97, '\0')).ok());
}

}  // namespace
}  // namespace shoal::tracker::udp
