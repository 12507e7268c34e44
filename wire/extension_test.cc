#include "wire/extension.h"

#include "gtest/gtest.h"
#include "wire/handshake.h"

namespace shoal::wire {
namespace {

// The handshake's reserved bits land where BEP 5, 6, 10 and 52 put them.
TEST(HandshakeTest, ReservedBitsAndRoundTrip) {
  Handshake h;
  h.set_fast(true);
  h.set_extensions(true);
  h.set_dht(true);
  h.set_v2(true);
  EXPECT_EQ(h.reserved[5], 0x10);
  EXPECT_EQ(h.reserved[7], 0x15);
  h.info_hash.fill(0xab);
  h.peer_id.fill('p');
  std::string bytes = EncodeHandshake(h);
  ASSERT_EQ(bytes.size(), kHandshakeLength);
  EXPECT_EQ(bytes.substr(0, 20), std::string("\x13"
                                             "BitTorrent protocol"));
  auto back = ParseHandshake(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->fast() && back->extensions() && back->dht() && back->v2());
  EXPECT_EQ(back->info_hash, h.info_hash);
  EXPECT_EQ(back->peer_id, h.peer_id);
  bytes[3] = 'X';
  EXPECT_EQ(ParseHandshake(bytes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The extension handshake round-trips its fields and ignores what it does not
// know.
TEST(ExtensionTest, HandshakeRoundTrip) {
  ExtensionHandshake h;
  h.m["ut_metadata"] = 3;
  h.m["ut_pex"] = 1;
  h.client = "Shoal 0.1.0";
  h.listen_port = 6881;
  h.reqq = 500;
  h.yourip = std::string("\x7f\0\0\x01", 4);
  h.metadata_size = 31235;
  auto back = ParseExtensionHandshake(EncodeExtensionHandshake(h));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->IdOf("ut_metadata"), 3);
  EXPECT_EQ(back->IdOf("ut_pex"), 1);
  EXPECT_EQ(back->IdOf("lt_donthave"), 0);
  EXPECT_EQ(back->client, "Shoal 0.1.0");
  EXPECT_EQ(back->listen_port, 6881);
  EXPECT_EQ(back->reqq, 500);
  EXPECT_EQ(back->yourip.size(), 4u);
  EXPECT_EQ(back->metadata_size, 31235);

  auto odd = ParseExtensionHandshake(
      "d1:md11:ut_metadatai999e6:ut_pex3:abce1:pi-5e3:fooi1ee");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->IdOf("ut_metadata"), 0);
  EXPECT_FALSE(odd->listen_port.has_value());
  EXPECT_FALSE(ParseExtensionHandshake("i3e").ok());
  EXPECT_FALSE(ParseExtensionHandshake("d1:mi3ee").ok());
  EXPECT_FALSE(ParseExtensionHandshake("d1:m").ok());
}

// ut_metadata messages follow BEP 9's examples, and malformed ones are refused.
TEST(ExtensionTest, MetadataMessages) {
  EXPECT_EQ(EncodeMetadataMessage({MetadataMessageType::kRequest, 0, {}, {}}),
            "d8:msg_typei0e5:piecei0ee");
  MetadataMessage data{MetadataMessageType::kData, 1, 34256, "xxxx"};
  std::string enc = EncodeMetadataMessage(data);
  EXPECT_EQ(enc, "d8:msg_typei1e5:piecei1e10:total_sizei34256eexxxx");
  auto back = ParseMetadataMessage(enc);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->type, MetadataMessageType::kData);
  EXPECT_EQ(back->piece, 1u);
  EXPECT_EQ(back->total_size, 34256);
  EXPECT_EQ(back->data, "xxxx");
  EXPECT_FALSE(ParseMetadataMessage("d8:msg_typei7e5:piecei0ee").ok());
  EXPECT_FALSE(ParseMetadataMessage("d8:msg_typei0e5:piecei-1ee").ok());
  EXPECT_FALSE(
      ParseMetadataMessage("d8:msg_typei1e5:piecei0ee").ok());  // no total_size
  EXPECT_FALSE(ParseMetadataMessage("d8:msg_typei0e5:piecei0eeextra").ok());
  EXPECT_FALSE(ParseMetadataMessage("garbage").ok());
  std::string big =
      "d8:msg_typei1e5:piecei0e10:total_sizei99999ee" + std::string(16385, 'x');
  EXPECT_FALSE(ParseMetadataMessage(big).ok());
}

}  // namespace
}  // namespace shoal::wire
