#include "tracker/lsd.h"

#include "gtest/gtest.h"

namespace shoal::tracker {
namespace {

std::array<uint8_t, 20> Hash(uint8_t first) {
  std::array<uint8_t, 20> h{};
  h[0] = first;
  h[19] = 0xAB;
  return h;
}

TEST(LsdTest, RoundTripsBothFamilies) {
  LsdAnnounce a;
  a.port = 6881;
  a.info_hashes = {Hash(1), Hash(0xFE)};
  a.cookie = "c00k1e";
  const std::string v4 = EncodeLsdAnnounce(a, false);
  EXPECT_EQ(v4.substr(0, 50),
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n");
  EXPECT_TRUE(v4.ends_with("\r\n\r\n\r\n"));
  EXPECT_NE(EncodeLsdAnnounce(a, true).find("Host: [ff15::efc0:988f]:6771"),
            std::string::npos);
  for (bool v6 : {false, true}) {
    auto got = ParseLsdAnnounce(EncodeLsdAnnounce(a, v6));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->port, 6881);
    EXPECT_EQ(got->info_hashes, a.info_hashes);
    EXPECT_EQ(got->cookie, "c00k1e");
  }
}

// As libtorrent and others write it: other case, bare \n, extra headers.
TEST(LsdTest, ParsesWhatOtherClientsSend) {
  auto got = ParseLsdAnnounce(
      "BT-SEARCH * HTTP/1.1\nhost: 239.192.152.143:6771\nPORT: 51413\n"
      "X-Other: 1\ninfohash: 0123456789ABCDEF0123456789abcdef01234567\n\n");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->port, 51413);
  ASSERT_EQ(got->info_hashes.size(), 1u);
  EXPECT_EQ(got->info_hashes[0][0], 0x01);
  EXPECT_EQ(got->info_hashes[0][19], 0x67);
  EXPECT_TRUE(got->cookie.empty());
}

TEST(LsdTest, RejectsJunk) {
  for (std::string_view bad : {
           "",
           "GET / HTTP/1.1\r\n\r\n",
           "BT-SEARCH * HTTP/1.1\r\nInfohash: "
           "0123456789abcdef0123456789abcdef01234567\r\n\r\n",  // no port
           "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: "
           "0123456789abcdef0123456789abcdef01234567\r\n\r\n",
           "BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\n\r\n",
           "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: xyz\r\n\r\n",
           "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: "
           "0123456789abcdef0123456789abcdef0123456Z\r\n\r\n",
       }) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseLsdAnnounce(bad).status())) << bad;
  }
}

}  // namespace
}  // namespace shoal::tracker
