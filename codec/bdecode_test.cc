#include "codec/bdecode.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::codec {
namespace {

using ::testing::HasSubstr;

// Scalars, lists and dictionaries decode to views into the input buffer.
TEST(BdecodeTest, DecodesAllTypesAsViews) {
  const std::string in = "d3:agei-42e4:listli1e1:xe4:name4:spame";
  auto doc = Bdecode(in);
  ASSERT_TRUE(doc.ok()) << doc.status();
  BNode root = doc->root();
  ASSERT_TRUE(root.is_dict());
  EXPECT_EQ(root.size(), 3u);
  EXPECT_EQ(root.FindInt("age"), -42);
  EXPECT_EQ(root.FindString("name"), "spam");
  EXPECT_EQ(root.FindString("name")->data(), in.data() + in.find("spam"));
  std::vector<BNode> items = root.FindList("list").list_items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].int_value(), 1);
  EXPECT_EQ(items[1].string_value(), "x");
  EXPECT_FALSE(root.Find("missing"));
  EXPECT_FALSE(root.FindString("age"));  // wrong type: none
  EXPECT_EQ(root.raw(), in);
}

// raw() of a nested dict is exactly its original bytes (what info-hashes are
// computed over), even when they are not canonical.
TEST(BdecodeTest, RawIsOriginalBytes) {
  const std::string info = "d1:bi01e1:ai2ee";  // unsorted, leading zero
  const std::string in = "d4:info" + info + "e";
  auto doc = Bdecode(in);
  ASSERT_TRUE(doc.ok());
  BNode node = doc->root().Find("info");
  EXPECT_EQ(node.raw(), info);
  EXPECT_EQ(node.offset(), 7u);
  auto nc = doc->FirstNonCanonicalIn(node);
  ASSERT_TRUE(nc.has_value());
  EXPECT_THAT(*nc, HasSubstr("leading zero at byte 11"));
  EXPECT_EQ(node.FindInt("b"), 1);
}

// Non-canonical forms are recorded, not rejected; canonical input has none.
TEST(BdecodeTest, RecordsNonCanonicalForms) {
  auto check = [](const std::string& in, const std::string& what) {
    auto doc = Bdecode(in);
    ASSERT_TRUE(doc.ok()) << in;
    auto nc = doc->FirstNonCanonicalIn(doc->root());
    ASSERT_TRUE(nc.has_value()) << in;
    EXPECT_THAT(*nc, HasSubstr(what)) << in;
  };
  check("i-0e", "negative zero");
  check("i007e", "leading zero");
  check("03:abc", "string length with a leading zero");
  check("d1:bi1e1:ai1ee", "out of order");
  check("d1:ai1e1:ai2ee", "repeated");
  auto doc = Bdecode("d1:ai1e1:bli0ei-5eee");
  ASSERT_TRUE(doc.ok());
  EXPECT_FALSE(doc->FirstNonCanonicalIn(doc->root()).has_value());
}

// Malformed input fails with INVALID_ARGUMENT naming the problem and offset.
TEST(BdecodeTest, ErrorsSayWhatAndWhere) {
  struct Case {
    std::string in;
    std::string message;
  } cases[] = {
      {"", "empty input at byte 0"},
      {"i12", "unterminated integer at byte 0"},
      {"i1x2e", "expected 'e' to end integer, found 'x' at byte 2"},
      {"ie", "expected a digit in integer, found 'e' at byte 1"},
      {"i99999999999999999999e", "integer does not fit in 64 bits at byte 0"},
      {"5:abc",
       "string of 5 bytes runs past the end of input (3 bytes left) "
       "at byte 0"},
      {"3abc", "expected ':' after string length, found 'a' at byte 1"},
      {"l1:a",
       "unexpected end of input inside the list opened at byte 0 at "
       "byte 4"},
      {"di1ei2ee", "dictionary key must be a string, found 'i' at byte 1"},
      {"d1:ae", "dictionary key without a value at byte 4"},
      {"x", "unexpected 'x', expected a value at byte 0"},
      {"i1ei2e", "3 trailing bytes after the top-level value at byte 3"},
      {"e", "unexpected 'e', expected a value at byte 0"},
  };
  for (const Case& c : cases) {
    auto doc = Bdecode(c.in);
    ASSERT_FALSE(doc.ok()) << c.in;
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(doc.status().message(), "bencode: " + c.message) << c.in;
  }
}

// Integer extremes decode exactly.
TEST(BdecodeTest, Int64Extremes) {
  auto max = Bdecode("i9223372036854775807e");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->root().int_value(), INT64_MAX);
  auto min = Bdecode("i-9223372036854775808e");
  ASSERT_TRUE(min.ok());
  EXPECT_EQ(min->root().int_value(), INT64_MIN);
  EXPECT_FALSE(Bdecode("i9223372036854775808e").ok());
  EXPECT_FALSE(Bdecode("i-9223372036854775809e").ok());
}

// Depth, token and string-length limits are enforced with clear errors, and
// deep nesting cannot exhaust the stack (no recursion).
TEST(BdecodeTest, Limits) {
  BdecodeOptions o;
  o.max_depth = 3;
  EXPECT_TRUE(Bdecode("lllee"
                      "e",
                      o)
                  .ok());
  auto deep = Bdecode(
      "llllee"
      "ee",
      o);
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(std::string(deep.status().message()),
              HasSubstr("nesting deeper than 3 (the limit) at byte 3"));

  BdecodeOptions t;
  t.max_tokens = 3;
  EXPECT_TRUE(Bdecode("li1ei2ee", t).ok());
  auto many = Bdecode("li1ei2ei3ee", t);
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(std::string(many.status().message()),
              HasSubstr("more than 3 tokens"));

  BdecodeOptions s;
  s.max_string_length = 4;
  EXPECT_FALSE(Bdecode("5:abcde", s).ok());

  // A million nested lists: rejected by the default depth limit, no crash.
  std::string bomb(1'000'000, 'l');
  auto b = Bdecode(bomb);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("nesting deeper"));
  // And with no depth limit it fails cleanly at the end of input.
  BdecodeOptions unlimited;
  unlimited.max_depth = 2'000'000;
  EXPECT_FALSE(Bdecode(bomb, unlimited).ok());
}

// Trailing bytes are refused unless allowed; consumed() says where the value
// ended.
TEST(BdecodeTest, TrailingBytes) {
  BdecodeOptions o;
  o.allow_trailing_bytes = true;
  auto doc = Bdecode("de-garbage", o);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->consumed(), 2u);
  EXPECT_EQ(doc->root().size(), 0u);
}

// dict_items() walks entries in encoded order with key offsets.
TEST(BdecodeTest, DictItems) {
  auto doc = Bdecode("d1:ai1e2:bbli2eee");
  ASSERT_TRUE(doc.ok());
  auto items = doc->root().dict_items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].key, "a");
  EXPECT_EQ(items[0].key_offset, 1u);
  EXPECT_EQ(items[1].key, "bb");
  EXPECT_TRUE(items[1].value.is_list());
  EXPECT_EQ(items[1].value.size(), 1u);
}

}  // namespace
}  // namespace shoal::codec
