#include "chunk/magnet.h"

#include "chunk/metainfo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kV1Hex[] = "c0fda1edafdbdbb96443424e0b3899af7159d10e";
constexpr char kV2Hex[] =
    "ee87fd27c23ad6ef1992b46ebee21b4a164e205c35bba38667ee1f79721a9f21";

std::string Error(std::string_view uri) {
  auto m = ParseMagnetUri(uri);
  EXPECT_FALSE(m.ok()) << uri;
  if (m.ok()) return "";
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(m.status().message());
}

// A v1 magnet with every parameter Shoal understands.
TEST(MagnetTest, ParsesV1WithAllParameters) {
  auto m = ParseMagnetUri(
      std::string("magnet:?xt=urn:btih:") + kV1Hex +
      "&dn=My+File%20%C3%A9&tr=http%3A%2F%2Ft%2Fa&tr.1=udp://u:80&tr=udp://u:80"
      "&ws=http://w/&x.pe=1.2.3.4:6881&x.pe=[::1]:7000&so=0,2,4-6&foo=bar");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hashes.v1->Hex(), kV1Hex);
  EXPECT_FALSE(m->info_hashes.v2);
  EXPECT_EQ(m->display_name, "My File é");
  EXPECT_THAT(m->trackers, ElementsAre("http://t/a", "udp://u:80"));
  EXPECT_THAT(m->web_seeds, ElementsAre("http://w/"));
  EXPECT_THAT(m->peers, ElementsAre("1.2.3.4:6881", "[::1]:7000"));
  EXPECT_THAT(m->select_only,
              ElementsAre(FileIndexRange{0, 0}, FileIndexRange{2, 2},
                          FileIndexRange{4, 6}));
}

// Base32 btih (BEP 9) decodes to the same hash as hex.
TEST(MagnetTest, Base32Btih) {
  auto m =
      ParseMagnetUri("magnet:?xt=urn:btih:YD62D3NP3PN3SZCDIJHAWOEZV5YVTUIO");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hashes.v1->Hex(), kV1Hex);
}

// v2 (btmh) and hybrid magnets.
TEST(MagnetTest, V2AndHybrid) {
  auto v2 = ParseMagnetUri(std::string("magnet:?xt=urn:btmh:1220") + kV2Hex);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->info_hashes.v2->Hex(), kV2Hex);
  EXPECT_FALSE(v2->info_hashes.v1);
  auto hybrid = ParseMagnetUri(std::string("magnet:?xt=urn:btih:") + kV1Hex +
                               "&xt=urn:btmh:1220" + kV2Hex + "&dn=x");
  ASSERT_TRUE(hybrid.ok());
  EXPECT_TRUE(hybrid->info_hashes.v1 && hybrid->info_hashes.v2);
}

// Emitting and parsing again gives the same value.
TEST(MagnetTest, RoundTrip) {
  MagnetUri m;
  m.info_hashes.v1 = *InfoHashV1::FromHex(kV1Hex);
  m.info_hashes.v2 = *InfoHashV2::FromHex(kV2Hex);
  m.display_name = "a & b = c + d/é";
  m.trackers = {"http://t/a?x=1&y=2", "udp://u:80"};
  m.web_seeds = {"http://w/ s/"};
  m.peers = {"[2001:db8::1]:6881", "host.example:1"};
  m.select_only = {{1, 1}, {3, 9}};
  std::string uri = ToMagnetUri(m);
  EXPECT_THAT(uri, HasSubstr(std::string("xt=urn:btih:") + kV1Hex));
  EXPECT_THAT(uri, HasSubstr(std::string("xt=urn:btmh:1220") + kV2Hex));
  EXPECT_THAT(uri, HasSubstr("so=1,3-9"));
  auto back = ParseMagnetUri(uri);
  ASSERT_TRUE(back.ok()) << back.status() << " " << uri;
  EXPECT_EQ(*back, m);
}

// Malformed magnets get an error naming the problem.
TEST(MagnetTest, Errors) {
  EXPECT_THAT(Error("http://x"), HasSubstr("not a magnet URI"));
  EXPECT_THAT(Error("magnet:"), HasSubstr("no query"));
  EXPECT_THAT(Error("magnet:?dn=x"), HasSubstr("no BitTorrent info-hash"));
  EXPECT_THAT(Error("magnet:?xt=urn:btih:abc"),
              HasSubstr("40 hex or 32 base32 characters, got 3"));
  EXPECT_THAT(Error("magnet:?xt=urn:btih:" + std::string(40, 'g')),
              HasSubstr("non-hex"));
  EXPECT_THAT(Error("magnet:?xt=urn:btih:" + std::string(32, '1')),
              HasSubstr("not valid base32"));
  EXPECT_THAT(Error("magnet:?xt=urn:btmh:1114" + std::string(40, 'a')),
              HasSubstr("not SHA-256"));
  EXPECT_THAT(Error("magnet:?xt=urn:btmh:1220abcd"),
              HasSubstr("64 hex characters"));
  EXPECT_THAT(Error(std::string("magnet:?xt=urn:btih:") + kV1Hex + "&dn=%4"),
              HasSubstr("invalid percent-escape in 'dn'"));
  EXPECT_THAT(
      Error(std::string("magnet:?xt=urn:btih:") + kV1Hex + "&x.pe=1.2.3.4"),
      HasSubstr("not host:port"));
  EXPECT_THAT(
      Error(std::string("magnet:?xt=urn:btih:") + kV1Hex + "&x.pe=h:70000"),
      HasSubstr("outside 1-65535"));
  EXPECT_THAT(Error(std::string("magnet:?xt=urn:btih:") + kV1Hex + "&so=5-2"),
              HasSubstr("runs backwards"));
  EXPECT_THAT(Error(std::string("magnet:?xt=urn:btih:") + kV1Hex + "&so=a"),
              HasSubstr("not a number"));
  EXPECT_THAT(Error(std::string("magnet:?xt=urn:btih:") + kV1Hex +
                    "&xt=urn:btih:" + std::string(40, '0')),
              HasSubstr("two different btih"));
  EXPECT_THAT(Error("magnet:?" + std::string(kMaxMagnetUriLength, 'a')),
              HasSubstr("longer than the limit"));
}

// Unknown parameters and foreign URNs are ignored, not errors.
TEST(MagnetTest, IgnoresUnknown) {
  auto m = ParseMagnetUri(std::string("MAGNET:?xt=urn:ed2k:abc&xt=urn:btih:") +
                          kV1Hex + "&kt=a+b&&xl=10#frag");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hashes.v1->Hex(), kV1Hex);
}

}  // namespace
}  // namespace shoal::chunk
