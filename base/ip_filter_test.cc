#include "base/ip_filter.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace shoal {
namespace {

PeerEndpoint Ip(const char* s) { return *PeerEndpoint::FromIpString(s, 6881); }

TEST(IpFilterTest, EmuleFormatWithLevelsAndLeadingZeros) {
  IpFilter::ParseReport r;
  IpFilter f = IpFilter::Parse(
      "# a comment\n"
      "// another\n"
      "\n"
      "001.009.096.105 - 001.009.096.110 , 000 , Some name, with a comma\n"
      "010.000.000.000 - 010.255.255.255 , 200 , allowed: level above 127\n"
      "  192.168.001.001-192.168.001.001,127,one address\n",
      &r);
  EXPECT_EQ(r.ranges, 2u);
  EXPECT_EQ(r.malformed, 0u) << r.first_malformed;
  EXPECT_TRUE(f.Blocked(Ip("1.9.96.105")));
  EXPECT_TRUE(f.Blocked(Ip("1.9.96.110")));
  EXPECT_FALSE(f.Blocked(Ip("1.9.96.111")));
  EXPECT_FALSE(f.Blocked(Ip("1.9.96.104")));
  EXPECT_FALSE(f.Blocked(Ip("10.1.2.3")));
  EXPECT_TRUE(f.Blocked(Ip("192.168.1.1")));
  EXPECT_FALSE(f.Blocked(Ip("192.168.1.2")));
}

TEST(IpFilterTest, PeerGuardianFormatAndIpv6) {
  IpFilter f = IpFilter::Parse(
      "Bad: people, inc.:1.2.3.0-1.2.3.255\n"
      "v6 range:2001:db8::-2001:db8::ffff\n");
  EXPECT_TRUE(f.Blocked(Ip("1.2.3.77")));
  EXPECT_FALSE(f.Blocked(Ip("1.2.4.0")));
  EXPECT_TRUE(f.Blocked(Ip("2001:db8::1234")));
  EXPECT_FALSE(f.Blocked(Ip("2001:db8::1:0")));
  // An IPv4 peer on an IPv6 socket obeys the IPv4 rules.
  EXPECT_TRUE(f.Blocked(Ip("::ffff:1.2.3.4")));
  EXPECT_FALSE(f.Blocked(Ip("::1")));
}

TEST(IpFilterTest, OverlappingAndAdjacentRangesMerge) {
  IpFilter f = IpFilter::Parse(
      "a:1.0.0.0-1.0.0.10\nb:1.0.0.5-1.0.0.20\nc:1.0.0.21-1.0.0.30\n"
      "d:255.255.255.0-255.255.255.255\n");
  EXPECT_EQ(f.size(), 2u);
  EXPECT_TRUE(f.Blocked(Ip("1.0.0.25")));
  EXPECT_FALSE(f.Blocked(Ip("1.0.0.31")));
  EXPECT_TRUE(f.Blocked(Ip("255.255.255.255")));
}

// Malformed lines are skipped and counted; the first is named.
TEST(IpFilterTest, MalformedLinesAreSkippedAndReported) {
  IpFilter::ParseReport r;
  IpFilter f = IpFilter::Parse(
      "good:1.1.1.1-1.1.1.1\n"
      "no range here\n"
      "256.1.1.1 - 256.1.1.2 , 0 , octet too big\n"
      "backwards:1.1.1.9-1.1.1.2\n"
      "mixed:1.1.1.1-::1\n"
      "1.1.1.1 - 1.1.1.2 , high , level not a number\n"
      "truncated:1.2.3\n"
      "\xff\xfe garbage\n",
      &r);
  EXPECT_EQ(r.ranges, 1u);
  EXPECT_EQ(r.malformed, 7u);
  EXPECT_EQ(r.first_malformed.rfind("line 2: ", 0), 0u) << r.first_malformed;
  EXPECT_TRUE(f.Blocked(Ip("1.1.1.1")));
  EXPECT_FALSE(f.Blocked(Ip("1.1.1.5")));
  EXPECT_TRUE(IpFilter::Parse("").empty());
}

TEST(IpFilterTest, LoadErrorsNameTheFile) {
  auto missing = IpFilter::Load("/nonexistent/shoal/filter.dat");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/shoal/filter.dat"),
            std::string::npos);
  const std::string path = ::testing::TempDir() + "/ip_filter_test.dat";
  { std::ofstream(path) << "nothing useful\nat all\n"; }
  auto junk = IpFilter::Load(path);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kInvalidArgument);
  { std::ofstream(path) << "x:9.9.9.9-9.9.9.9\n"; }
  auto ok = IpFilter::Load(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->Blocked(Ip("9.9.9.9")));
}

}  // namespace
}  // namespace shoal
