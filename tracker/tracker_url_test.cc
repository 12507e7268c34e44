#include "tracker/tracker_url.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::tracker {
namespace {

// Default ports, explicit ports and the target of http(s) URLs.
TEST(TrackerUrlTest, ParsesHttpAndHttps) {
  auto u = ParseTrackerUrl("http://t.example/announce?a=1#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, TrackerUrl::Scheme::kHttp);
  EXPECT_EQ(u->host, "t.example");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/announce?a=1");

  u = ParseTrackerUrl("HTTPS://t.example:8443");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, TrackerUrl::Scheme::kHttps);
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/");

  u = ParseTrackerUrl("https://t.example?x");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/?x");
}

// udp URLs need a port; IPv6 literals need brackets.
TEST(TrackerUrlTest, ParsesUdpAndIpv6) {
  auto u = ParseTrackerUrl("udp://127.0.0.1:6969/announce");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, TrackerUrl::Scheme::kUdp);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6969);

  u = ParseTrackerUrl("http://[2001:db8::1]:8080/announce");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->port, 8080);

  EXPECT_EQ(ParseTrackerUrl("udp://t.example/announce").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTrackerUrl("http://2001:db8::1/announce").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Unsupported or malformed URLs are INVALID_ARGUMENT, never a crash.
TEST(TrackerUrlTest, RejectsBadUrls) {
  for (const char* bad :
       {"", "ftp://t.example/announce", "http://", "http:///announce",
        "http://user:pw@t.example/announce", "http://t.example:0/",
        "http://t.example:65536/", "http://t.example:12a/",
        "http://t.example:/", "http://t .example/", "http://[::1/announce",
        "http://[::1]x/", "t.example/announce", "wss://t.example/"}) {
    EXPECT_EQ(ParseTrackerUrl(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  std::string with_nul = "http://t.example/a";
  with_nul += '\0';
  EXPECT_FALSE(ParseTrackerUrl(with_nul).ok());
}

// The classic BEP 3 wiki vector, and every byte class.
TEST(TrackerUrlTest, PercentEncodesRawBytes) {
  const std::string hash =
      "\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34"
      "\x56\x78\x9a";
  EXPECT_EQ(PercentEncode(hash),
            "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A");
  EXPECT_EQ(PercentEncode(std::string("a-._~ /?&=%+\0\xff", 14)),
            "a-._~%20%2F%3F%26%3D%25%2B%00%FF");
  EXPECT_EQ(PercentEncode("-SH0100-AbCdEf012345"), "-SH0100-AbCdEf012345");
}

// BEP 48's examples, verbatim.
TEST(TrackerUrlTest, ScrapeUrlFollowsBep48) {
  struct Case {
    const char* announce;
    const char* scrape;  // nullptr: not supported
  } cases[] = {
      {"http://example.com/announce", "http://example.com/scrape"},
      {"http://example.com/x/announce", "http://example.com/x/scrape"},
      {"http://example.com/announce.php", "http://example.com/scrape.php"},
      {"http://example.com/a", nullptr},
      {"http://example.com/announce?x2%0644",
       "http://example.com/scrape?x2%0644"},
      {"http://example.com/announce?x=2/4", "http://example.com/scrape?x=2/4"},
      {"http://example.com/x%064announce", nullptr},
      {"http://example.com", nullptr},
      {"udp://example.com:80/announce", "udp://example.com:80/announce"},
  };
  for (const Case& c : cases) {
    auto s = ScrapeUrlFromAnnounce(c.announce);
    if (c.scrape == nullptr) {
      EXPECT_EQ(s.status().code(), absl::StatusCode::kUnimplemented)
          << c.announce;
    } else {
      ASSERT_TRUE(s.ok()) << c.announce << ": " << s.status();
      EXPECT_EQ(*s, c.scrape);
    }
  }
}

}  // namespace
}  // namespace shoal::tracker
