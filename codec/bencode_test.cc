#include "codec/bencode.h"

#include "gtest/gtest.h"

namespace shoal::codec::bencode {
namespace {

// Every kind of value encodes as BEP 3 says, negative integers and empty
// strings included.
TEST(BencodeTest, EncodesScalars) {
  EXPECT_EQ(Encode(Value(int64_t{42})), "i42e");
  EXPECT_EQ(Encode(Value(int64_t{-7})), "i-7e");
  EXPECT_EQ(Encode(Value(int64_t{0})), "i0e");
  EXPECT_EQ(Encode(Value("spam")), "4:spam");
  EXPECT_EQ(Encode(Value("")), "0:");
  EXPECT_EQ(Encode(Value(List{Value("a"), Value(int64_t{1})})), "l1:ai1ee");
}

// Dictionary keys come out sorted as raw bytes, high bytes after ASCII.
TEST(BencodeTest, DictKeysSortedAsBytes) {
  Dict d;
  d["\xff"] = int64_t{1};
  d["b"] = int64_t{2};
  d["a"] = int64_t{3};
  d[""] = int64_t{4};
  EXPECT_EQ(Encode(Value(std::move(d))), "d0:i4e1:ai3e1:bi2e1:\xffi1ee");
}

}  // namespace
}  // namespace shoal::codec::bencode
