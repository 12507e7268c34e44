#include "utp/packet.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::utp {
namespace {

TEST(PacketTest, RoundTripsHeaderSackAndPayload) {
  Header h;
  h.type = PacketType::kData;
  h.connection_id = 0xbeef;
  h.timestamp_us = 0x01020304;
  h.timestamp_diff_us = 0xa0b0c0d0;
  h.wnd_size = 1 << 20;
  h.seq_nr = 65535;
  h.ack_nr = 7;
  std::string out;
  AppendPacket(h, std::string("\x05\x00\x00\x80", 4), "hello", out);
  ASSERT_EQ(out.size(), kHeaderSize + 2 + 4 + 5);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 0x01);  // type 0, version 1
  EXPECT_EQ(out[1], 1);                           // a selective ack follows
  ASSERT_TRUE(LooksLikeUtp(out));
  absl::StatusOr<Packet> p = ParsePacket(out);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->header.type, PacketType::kData);
  EXPECT_EQ(p->header.connection_id, 0xbeef);
  EXPECT_EQ(p->header.timestamp_us, 0x01020304u);
  EXPECT_EQ(p->header.timestamp_diff_us, 0xa0b0c0d0u);
  EXPECT_EQ(p->header.wnd_size, 1u << 20);
  EXPECT_EQ(p->header.seq_nr, 65535);
  EXPECT_EQ(p->header.ack_nr, 7);
  EXPECT_EQ(p->sack, std::string("\x05\x00\x00\x80", 4));
  EXPECT_EQ(p->payload, "hello");
}

TEST(PacketTest, TheSynOfTheSpecEncodesAsBytes) {
  Header h;
  h.type = PacketType::kSyn;
  h.connection_id = 0x1234;
  h.seq_nr = 1;
  std::string out;
  AppendPacket(h, {}, {}, out);
  EXPECT_EQ(out, std::string("\x41\x00\x12\x34"
                             "\0\0\0\0"
                             "\0\0\0\0"
                             "\0\0\0\0"
                             "\x00\x01\x00\x00",
                             20));
}

TEST(PacketTest, SkipsUnknownExtensions) {
  // Extension 3 (libtorrent's close reason), then the selective ack.
  std::string d;
  Header h;
  h.type = PacketType::kState;
  AppendPacket(h, {}, {}, d);
  d[1] = 3;
  d += std::string("\x01\x02\xaa\xbb", 4);          // next: sack, 2 bytes
  d += std::string("\x00\x04\x01\x00\x00\x00", 6);  // sack, 4 bytes
  absl::StatusOr<Packet> p = ParsePacket(d);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->sack, std::string("\x01\x00\x00\x00", 4));
  EXPECT_TRUE(p->payload.empty());
}

TEST(PacketTest, RefusesMalformedDatagrams) {
  Header h;
  std::string good;
  AppendPacket(h, {}, {}, good);
  EXPECT_FALSE(ParsePacket(good.substr(0, 19)).ok());
  std::string v2 = good;
  v2[0] = 0x02;
  EXPECT_FALSE(ParsePacket(v2).ok());
  std::string type5 = good;
  type5[0] = 0x51;
  EXPECT_FALSE(ParsePacket(type5).ok());
  std::string truncated_ext = good;
  truncated_ext[1] = 1;
  truncated_ext += std::string("\x00\x08\x01", 3);  // says 8 bytes, has 1
  EXPECT_FALSE(ParsePacket(truncated_ext).ok());
  std::string state_payload;
  h.type = PacketType::kState;
  AppendPacket(h, {}, "x", state_payload);
  EXPECT_FALSE(ParsePacket(state_payload).ok());
}

// libtorrent's masks are as long as its reorder buffer spans, not a multiple
// of 4 bytes.
TEST(PacketTest, ReadsSelectiveAcksOfAnyLength) {
  Header h;
  h.type = PacketType::kState;
  std::string d;
  AppendPacket(h, {}, {}, d);
  d[1] = 1;
  d += std::string("\x00\x03\x01\x02\x03", 5);
  absl::StatusOr<Packet> p = ParsePacket(d);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->sack, std::string("\x01\x02\x03", 3));
}

TEST(PacketTest, TellsUtpFromKrpc) {
  EXPECT_FALSE(
      LooksLikeUtp("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"));
  EXPECT_FALSE(LooksLikeUtp("short"));
  Header h;
  for (auto t : {PacketType::kData, PacketType::kFin, PacketType::kState,
                 PacketType::kReset, PacketType::kSyn}) {
    h.type = t;
    std::string d;
    AppendPacket(h, {}, {}, d);
    EXPECT_TRUE(LooksLikeUtp(d));
  }
}

TEST(PacketTest, SequenceNumbersWrap) {
  EXPECT_TRUE(SeqLess(1, 2));
  EXPECT_FALSE(SeqLess(2, 1));
  EXPECT_TRUE(SeqLess(65535, 0));
  EXPECT_TRUE(SeqLess(65000, 100));
  EXPECT_FALSE(SeqLess(5, 5));
}

}  // namespace
}  // namespace shoal::utp
