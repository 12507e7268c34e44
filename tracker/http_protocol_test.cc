#include "tracker/http_protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::tracker {
namespace {

using std::string_literals::operator""s;

const std::string kHash =
    "\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56"
    "\x78\x9a";

AnnounceRequest Request() {
  AnnounceRequest r;
  r.info_hash = AnnounceHash::FromBytes(kHash);
  r.peer_id = PeerId::FromBytes("-SH0100-\x01\x02 abcdefghi");
  r.port = 6881;
  r.uploaded = 10;
  r.downloaded = 20;
  r.left = 30;
  r.key = 0xDEADBEEF;
  return r;
}

// Every parameter, in order, with raw bytes percent-encoded.
TEST(HttpProtocolTest, BuildsAnnounceUrl) {
  AnnounceRequest r = Request();
  r.event = TrackerEvent::kStarted;
  r.numwant = 50;
  r.tracker_id = "id 1";
  EXPECT_EQ(BuildAnnounceUrl("http://t.example/announce", r),
            "http://t.example/announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB"
            "%CD%EF%124Vx%9A&peer_id=-SH0100-%01%02%20abcdefghi&port=6881"
            "&uploaded=10&downloaded=20&left=30&corrupt=0&key=DEADBEEF"
            "&event=started&numwant=50&compact=1&trackerid=id%201");
}

// A dual-stack client names its addresses (BEP 7), percent-encoded.
TEST(HttpProtocolTest, AnnounceUrlCarriesBothAddresses) {
  AnnounceRequest r = Request();
  r.ipv4 = "192.0.2.1";
  r.ipv6 = "[2001:db8::1]:6882";
  const std::string url = BuildAnnounceUrl("http://t.example/announce", r);
  EXPECT_NE(url.find("&compact=1&ipv4=192.0.2.1&ipv6=%5B2001%3Adb8%3A%3A1%5D"
                     "%3A6882"),
            std::string::npos)
      << url;
  EXPECT_EQ(
      BuildAnnounceUrl("http://t.example/announce", Request()).find("ipv"),
      std::string::npos);
}

// No event for regular announces; an existing query is extended with '&'.
TEST(HttpProtocolTest, AnnounceUrlKeepsQueryAndOmitsNoneEvent) {
  std::string url =
      BuildAnnounceUrl("http://t.example/a.php?passkey=xyz#frag", Request());
  EXPECT_EQ(url.rfind("http://t.example/a.php?passkey=xyz&info_hash=", 0), 0u)
      << url;
  EXPECT_EQ(url.find("event="), std::string::npos);
  EXPECT_EQ(url.find("numwant="), std::string::npos);
  EXPECT_EQ(url.find('#'), std::string::npos);
  AnnounceRequest stopped = Request();
  stopped.event = TrackerEvent::kStopped;
  EXPECT_NE(
      BuildAnnounceUrl("http://t/announce", stopped).find("&event=stopped"),
      std::string::npos);
}

// One info_hash parameter per hash on the BEP 48 scrape URL.
TEST(HttpProtocolTest, BuildsScrapeUrl) {
  std::vector<AnnounceHash> hashes = {
      AnnounceHash::FromBytes(kHash),
      AnnounceHash::FromBytes(std::string(20, 'a'))};
  auto url = BuildScrapeUrl("http://t.example/announce?k=1", hashes);
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url,
            "http://t.example/scrape?k=1&info_hash=%124Vx%9A%BC%DE%F1%23Eg%89"
            "%AB%CD%EF%124Vx%9A&info_hash=aaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(BuildScrapeUrl("http://t.example/tracker", hashes).status().code(),
            absl::StatusCode::kUnimplemented);
}

// BEP 23 compact IPv4 peers plus BEP 7 compact IPv6 peers and every field.
TEST(HttpProtocolTest, ParsesCompactResponse) {
  std::string peers =
      "\x0a\x00\x00\x01\x1a\xe1"s
      "\x7f\x00\x00\x01\x00\x50"s;
  std::string peers6 = std::string("\x20\x01\x0d\xb8", 4) +
                       std::string(11, '\0') + "\x01\x1a\xe1"s;
  std::string body =
      "d8:completei5e10:incompletei7e8:intervali1800e"
      "12:min intervali60e5:peers" +
      std::to_string(peers.size()) + ":" + peers + "6:peers6" +
      std::to_string(peers6.size()) + ":" + peers6 +
      "10:tracker id3:abc15:warning message4:caree";
  auto r = ParseAnnounceResponse(body, TrackerLimits{});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(1800));
  EXPECT_EQ(r->min_interval, std::chrono::seconds(60));
  EXPECT_EQ(r->complete, 5);
  EXPECT_EQ(r->incomplete, 7);
  EXPECT_EQ(r->tracker_id, "abc");
  EXPECT_EQ(r->warning_message, "care");
  ASSERT_EQ(r->peers.size(), 3u);
  EXPECT_EQ(r->peers[0].ToString(), "10.0.0.1:6881");
  EXPECT_EQ(r->peers[1].ToString(), "127.0.0.1:80");
  EXPECT_EQ(r->peers[2].ToString(), "[2001:db8::1]:6881");
}

// BEP 3 dictionary peers; host names (unresolved) and port 0 are skipped.
TEST(HttpProtocolTest, ParsesDictionaryPeers) {
  std::string body =
      "d8:intervali900e5:peersl"
      "d2:ip8:10.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee"
      "d2:ip3:::14:porti51413ee"
      "d2:ip9:t.example4:porti1ee"
      "d2:ip8:10.0.0.34:porti0ee"
      "ee";
  auto r = ParseAnnounceResponse(body, TrackerLimits{});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(900));
  ASSERT_EQ(r->peers.size(), 2u);
  EXPECT_EQ(r->peers[0].ToString(), "10.0.0.2:6881");
  EXPECT_EQ(r->peers[1].ToString(), "[::1]:51413");
}

// "failure reason" wins over everything else and is FAILED_PRECONDITION.
TEST(HttpProtocolTest, FailureReasonIsAnError) {
  auto r = ParseAnnounceResponse(
      "d14:failure reason22:torrent not registered8:intervali5ee", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("torrent not registered"),
            absl::string_view::npos);
  auto s = ParseScrapeResponse("d14:failure reason3:nope5:filesdee", {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Hostile and malformed bodies give INVALID_ARGUMENT with a reason.
TEST(HttpProtocolTest, RejectsMalformedResponses) {
  const char* bad[] = {
      "",                               // empty
      "d8:intervali1800e5:peers6:abc",  // truncated
      "<html>502 Bad Gateway</html>",   // not bencode
      "li1ee",                          // not a dictionary
      "d8:interval4:1800e",             // wrong type
      "d8:intervali-5ee",               // negative
      "d8:completei-1ee",               // negative count
      "d5:peersi5ee",                   // peers is an integer
      "d5:peers5:abcdee",               // compact length not a multiple of 6
      "d6:peers6li1eee",                // peers6 not a string
      "d6:peers67:abcdefge",            // peers6 length not multiple of 18
      "d5:peersli1eee",                 // a dict peer that is not a dict
      "d5:peersld4:porti1eeee",         // a dict peer without ip
      "d10:tracker idi1ee",             // tracker id not a string
      "d8:intervali99999999999999999999999ee",  // integer overflow
  };
  for (const char* b : bad) {
    auto r = ParseAnnounceResponse(b, TrackerLimits{});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << b;
  }
}

// Limits: body size is RESOURCE_EXHAUSTED; peers beyond max_peers are
// dropped; absurd intervals are clamped; nesting is bounded.
TEST(HttpProtocolTest, EnforcesLimits) {
  TrackerLimits limits;
  limits.max_response_bytes = 64;
  EXPECT_EQ(ParseAnnounceResponse(std::string(65, 'x'), limits).status().code(),
            absl::StatusCode::kResourceExhausted);

  limits = TrackerLimits{};
  limits.max_peers = 3;
  std::string peers;
  for (int i = 0; i < 10; ++i) peers += "\x0a\x00\x00\x01\x1a\xe1"s;
  std::string peers6;
  for (int i = 0; i < 2; ++i) peers6 += std::string(15, '\0') + "\x01\x00\x01"s;
  auto r = ParseAnnounceResponse(
      "d5:peers60:" + peers + "6:peers636:" + peers6 + "e", limits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peers.size(), 3u);

  r = ParseAnnounceResponse("d8:intervali9000000000000ee", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(7 * 24 * 3600));

  std::string deep =
      "d1:x" + std::string(100, 'l') + std::string(100, 'e') + "e";
  EXPECT_EQ(ParseAnnounceResponse(deep, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A trailing newline after the dictionary is tolerated; unknown keys ignored.
TEST(HttpProtocolTest, ToleratesTrailingBytesAndUnknownKeys) {
  auto r = ParseAnnounceResponse("d8:intervali60e3:zzzli1ei2eee\n", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(60));
  EXPECT_TRUE(r->peers.empty());
}

// BEP 48 scrape responses, including entries with odd keys.
TEST(HttpProtocolTest, ParsesScrapeResponse) {
  std::string body =
      "d5:filesd20:" + kHash +
      "d8:completei3e10:downloadedi9e10:incompletei4ee"
      "3:abcd8:completei1eee5:flagsd20:min_request_intervali1eee";
  auto r = ParseScrapeResponse(body, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].info_hash, AnnounceHash::FromBytes(kHash));
  EXPECT_EQ((*r)[0].stats, (ScrapeStats{3, 9, 4}));

  EXPECT_EQ(ParseScrapeResponse("de", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScrapeResponse("d5:filesi1ee", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseScrapeResponse("d5:filesd20:" + kHash + "i1eee", {}).status().code(),
      absl::StatusCode::kInvalidArgument);
  TrackerLimits limits;
  limits.max_scrape_entries = 1;
  std::string two =
      "d5:filesd20:" + kHash + "de20:" + std::string(20, 'z') + "deee";
  EXPECT_EQ(ParseScrapeResponse(two, limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace shoal::tracker
