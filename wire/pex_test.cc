#include "wire/pex.h"

#include <ostream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace shoal::wire {

// Readable failures.
void PrintTo(const PexPeer& p, std::ostream* os) {
  *os << p.ip << " port " << p.port << " flags " << int{p.flags};
}

namespace {

using ::absl::StatusCode;

PexPeer Peer(std::string ip, uint16_t port, uint8_t flags = 0) {
  return PexPeer{std::move(ip), port, flags};
}

// `n` distinct IPv4 peers 10.0.x.y:6881.
std::vector<PexPeer> V4Peers(int n, int first = 0) {
  std::vector<PexPeer> out;
  for (int i = first; i < first + n; ++i) {
    out.push_back(Peer(absl::StrCat("10.0.", i / 256, ".", i % 256), 6881));
  }
  return out;
}

// n compact IPv4 entries (6 bytes each) with port 1.
std::string CompactV4(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += std::string("\x0a\x00", 2);
    out.push_back(static_cast<char>(i >> 8));
    out.push_back(static_cast<char>(i));
    out += std::string("\x00\x01", 2);
  }
  return out;
}

std::string Bstr(const std::string& s) {
  return absl::StrCat(s.size(), ":", s);
}

// The encoding is BEP 11's: compact strings and one flag byte per added peer.
TEST(PexTest, EncodesCompactStrings) {
  PexMessage m;
  m.added = {Peer("10.0.0.1", 6881, kPexSeed | kPexReachable)};
  m.dropped = {Peer("::1", 80)};
  std::string ipv6_loopback(15, '\0');
  ipv6_loopback += std::string("\x01\x00\x50", 3);
  EXPECT_EQ(
      EncodePex(m),
      absl::StrCat("d5:added6:", std::string("\x0a\0\0\x01\x1a\xe1", 6),
                   "7:added.f1:\x12", "8:dropped618:", ipv6_loopback, "e"));
}

// IPv4 and IPv6 peers, their flags and drops survive a round trip.
TEST(PexTest, RoundTripV4AndV6) {
  PexMessage m;
  m.added = {Peer("10.0.0.1", 6881, kPexPrefersEncryption),
             Peer("192.168.1.200", 51413, kPexSeed | kPexSupportsUtp),
             Peer("2001:db8::1", 6881, kPexHolepunch | kPexReachable),
             Peer("fe80::abcd:1", 1, 0xff)};
  m.dropped = {Peer("1.2.3.4", 65535), Peer("2001:db8::2", 443)};
  std::string bytes = EncodePex(m);
  for (const char* key : {"5:added", "7:added.f", "6:added6", "8:added6.f",
                          "7:dropped", "8:dropped6"}) {
    EXPECT_NE(bytes.find(key), std::string::npos) << key;
  }
  auto back = ParsePex(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
}

// Empty lists are left out; a message with no peers is an empty dictionary.
TEST(PexTest, EmptyListsAreOmitted) {
  PexMessage m;
  m.dropped = {Peer("10.0.0.9", 1)};
  EXPECT_EQ(EncodePex(m),
            absl::StrCat("d7:dropped",
                         Bstr(std::string("\x0a\0\0\x09\0\x01", 6)), "e"));
  EXPECT_EQ(EncodePex(PexMessage{}), "de");
  auto empty = ParsePex("de");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, PexMessage{});
}

// The encoder skips what cannot go in a compact string; the parser skips port
// 0, which no peer listens on.
TEST(PexTest, SkipsPortZeroAndNonNumericAddresses) {
  PexMessage m;
  m.added = {Peer("10.0.0.1", 0), Peer("example.com", 80), Peer("", 80),
             Peer("10.0.0.2", 80)};
  auto back = ParsePex(EncodePex(m));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->added.size(), 1u);
  EXPECT_EQ(back->added[0].ip, "10.0.0.2");

  std::string payload = absl::StrCat(
      "d5:added", Bstr(std::string("\x0a\0\0\x01\0\0\x0a\0\0\x02\0\x07", 12)),
      "e");
  auto parsed = ParsePex(payload);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->added.size(), 1u);
  EXPECT_EQ(parsed->added[0], Peer("10.0.0.2", 7));
}

// A flags string shorter than its peer list leaves the rest 0; a longer one is
// cut to the list.
TEST(PexTest, ShortOrLongFlagsAreTolerated) {
  std::string payload = absl::StrCat("d5:added", Bstr(CompactV4(3)),
                                     "7:added.f", Bstr("\x02"), "e");
  auto m = ParsePex(payload);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->added.size(), 3u);
  EXPECT_EQ(m->added[0].flags, kPexSeed);
  EXPECT_EQ(m->added[1].flags, 0);
  EXPECT_EQ(m->added[2].flags, 0);

  payload = absl::StrCat("d5:added", Bstr(CompactV4(1)), "7:added.f",
                         Bstr("\x04\x04\x04"), "e");
  m = ParsePex(payload);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->added.size(), 1u);
  EXPECT_EQ(m->added[0].flags, kPexSupportsUtp);
}

// Unknown keys are ignored, as BEP 10 asks of extension messages.
TEST(PexTest, IgnoresUnknownKeys) {
  auto m = ParsePex(
      absl::StrCat("d5:added", Bstr(CompactV4(1)), "3:fooli1ee5:zzzzzi7ee"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->added.size(), 1u);
}

// Malformed payloads are INVALID_ARGUMENT, not crashes or partial results.
TEST(PexTest, RejectsMalformedPayloads) {
  const std::string cases[] = {
      "",
      "d5:added",                                          // truncated
      "li1ee",                                             // not a dictionary
      "i42e",                                              //
      absl::StrCat("d5:added", Bstr(CompactV4(1)), "ex"),  // trailing bytes
      absl::StrCat("d5:added", Bstr(std::string(7, 'a')), "e"),
      absl::StrCat("d6:added6", Bstr(std::string(17, 'a')), "e"),
      absl::StrCat("d7:dropped", Bstr(std::string(5, 'a')), "e"),
      absl::StrCat("d8:dropped6", Bstr(std::string(36 + 6, 'a')), "e"),
      "d5:addedi1ee",            // not a string
      "d7:added.fle5:added0:e",  // flags not a string
      "d8:dropped6de",           // not a string
  };
  for (const std::string& payload : cases) {
    EXPECT_EQ(ParsePex(payload).status().code(), StatusCode::kInvalidArgument)
        << payload;
  }
}

// Too many peers in either direction is an error; the limit counts both
// families together.
TEST(PexTest, EnforcesPeerLimit) {
  auto at_limit = ParsePex(absl::StrCat("d5:added", Bstr(CompactV4(200)), "e"));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->added.size(), 200u);
  EXPECT_EQ(ParsePex(absl::StrCat("d5:added", Bstr(CompactV4(201)), "e"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePex(absl::StrCat("d7:dropped", Bstr(CompactV4(3)), "e"),
                     /*max_peers=*/2)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  std::string mixed = absl::StrCat("d5:added", Bstr(CompactV4(190)), "6:added6",
                                   Bstr(std::string(18 * 11, '\x01')), "e");
  EXPECT_EQ(ParsePex(mixed).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParsePex(mixed, /*max_peers=*/201).ok());
}

// The first update tells a connection about every peer; later ones send the
// difference, once a minute at most.
TEST(PexTrackerTest, SendsDiffsOncePerMinute) {
  PexTracker pex;
  EXPECT_TRUE(pex.Due(0));
  EXPECT_FALSE(pex.Update({}, 0).has_value());  // nothing to say
  EXPECT_TRUE(pex.Due(0));

  auto first =
      pex.Update({Peer("10.0.0.1", 1, kPexSeed), Peer("::1", 2)}, 1000);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->added.size(), 2u);
  EXPECT_TRUE(first->dropped.empty());
  // Ordered by address bytes: IPv6 ::1 sorts before 10.0.0.1.
  EXPECT_EQ(first->added, (std::vector<PexPeer>{
                              Peer("::1", 2), Peer("10.0.0.1", 1, kPexSeed)}));

  // Within the minute nothing goes out, whatever changes.
  EXPECT_FALSE(pex.Due(60'999));
  EXPECT_FALSE(pex.Update({Peer("10.0.0.3", 3)}, 60'999).has_value());

  EXPECT_TRUE(pex.Due(61'000));
  auto second = pex.Update({Peer("10.0.0.1", 1), Peer("10.0.0.3", 3)}, 61'000);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->added, std::vector<PexPeer>{Peer("10.0.0.3", 3)});
  EXPECT_EQ(second->dropped, std::vector<PexPeer>{Peer("::1", 2)});

  // Unchanged: no message, and the clock is not reset.
  EXPECT_FALSE(pex.Update({Peer("10.0.0.1", 1), Peer("10.0.0.3", 3)}, 200'000)
                   .has_value());
  EXPECT_TRUE(pex.Due(200'000));
}

// At most 50 added and 50 dropped per message; the rest follows in later
// messages, and what was sent is never sent again.
TEST(PexTrackerTest, LimitsEachMessageAndCarriesOver) {
  PexTracker pex;
  int64_t now = 0;
  std::set<std::string> told;
  std::vector<PexPeer> swarm = V4Peers(120);
  for (int round = 0; round < 3; ++round, now += PexTracker::kIntervalMs) {
    auto m = pex.Update(swarm, now);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->added.size(), round < 2 ? 50u : 20u);
    for (const PexPeer& p : m->added) EXPECT_TRUE(told.insert(p.ip).second);
  }
  EXPECT_EQ(told.size(), 120u);
  EXPECT_FALSE(pex.Update(swarm, now).has_value());

  // Everyone leaves, 60 others arrive: 50 added + 50 dropped, then 10 + 50,
  // then 0 + 20.
  std::vector<PexPeer> next = V4Peers(60, 1000);
  auto m = pex.Update(next, now);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->added.size(), 50u);
  EXPECT_EQ(m->dropped.size(), 50u);
  now += PexTracker::kIntervalMs;
  m = pex.Update(next, now);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->added.size(), 10u);
  EXPECT_EQ(m->dropped.size(), 50u);
  now += PexTracker::kIntervalMs;
  m = pex.Update(next, now);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->added.empty());
  EXPECT_EQ(m->dropped.size(), 20u);
  // The message is one BEP 11 accepts at the default limit.
  EXPECT_TRUE(ParsePex(EncodePex(*m)).ok());
}

// Duplicates, unparsable entries and two spellings of one IPv6 address count
// once; the same address on two ports is two peers.
TEST(PexTrackerTest, NormalizesPeers) {
  PexTracker pex;
  auto m = pex.Update(
      {Peer("2001:db8::1", 80), Peer("2001:0db8:0:0::0001", 80),
       Peer("2001:db8::1", 81), Peer("not an ip", 80), Peer("10.0.0.1", 0),
       Peer("10.0.0.1", 80), Peer("10.0.0.1", 80)},
      0);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->added,
            (std::vector<PexPeer>{Peer("10.0.0.1", 80), Peer("2001:db8::1", 80),
                                  Peer("2001:db8::1", 81)}));
  // The other spelling of a told peer is no news.
  EXPECT_FALSE(pex.Update({Peer("2001:DB8::1", 80), Peer("2001:db8::1", 81),
                           Peer("10.0.0.1", 80)},
                          PexTracker::kIntervalMs)
                   .has_value());
}

}  // namespace
}  // namespace shoal::wire
