#include "base/hex.h"

#include "gtest/gtest.h"

namespace shoal {
namespace {

// Encoding is lowercase and decoding accepts either case.
TEST(HexTest, RoundTrip) {
  std::vector<uint8_t> bytes = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(bytes), "0001abff");
  auto decoded = HexDecode("0001ABff");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, bytes);
}

// Odd lengths and non-hex characters are rejected.
TEST(HexTest, RejectsMalformed) {
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
  EXPECT_TRUE(HexDecode("").has_value());
}

}  // namespace
}  // namespace shoal
