#include "chunk/bitfield.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

// A new bitfield has the right size and count, with spare bits cleared.
TEST(BitfieldTest, ConstructsEmptyAndFull) {
  Bitfield empty(10);
  EXPECT_EQ(empty.size(), 10u);
  EXPECT_EQ(empty.count(), 0u);
  EXPECT_TRUE(empty.none());
  EXPECT_FALSE(empty.all());
  EXPECT_EQ(empty.bytes(), std::string("\x00\x00", 2));

  Bitfield full(10, true);
  EXPECT_EQ(full.count(), 10u);
  EXPECT_TRUE(full.all());
  EXPECT_EQ(full.bytes(), std::string("\xff\xc0", 2));
  for (uint32_t i = 0; i < 10; ++i) EXPECT_TRUE(full.test(i));

  Bitfield zero;
  EXPECT_EQ(zero.size(), 0u);
  EXPECT_TRUE(zero.all());
  EXPECT_TRUE(zero.none());
  EXPECT_TRUE(Bitfield(0, true).bytes().empty());
}

// Piece 0 is the high bit of the first byte (BEP 3), and set() keeps count().
TEST(BitfieldTest, SetAndTestUseWireBitOrder) {
  Bitfield b(12);
  b.set(0);
  b.set(9);
  b.set(9);  // setting twice counts once
  EXPECT_EQ(b.count(), 2u);
  EXPECT_EQ(b.bytes(), std::string("\x80\x40", 2));
  EXPECT_TRUE(b.test(0));
  EXPECT_FALSE(b.test(1));
  EXPECT_TRUE(b.test(9));
  b.set(0, false);
  b.set(0, false);
  EXPECT_EQ(b.count(), 1u);
  EXPECT_FALSE(b.test(0));
  b.SetAll();
  EXPECT_EQ(b.count(), 12u);
  EXPECT_EQ(b.bytes(), std::string("\xff\xf0", 2));
}

// FromBytes parses the wire form and rejects a wrong length or set spare bits.
TEST(BitfieldTest, FromBytesValidates) {
  auto b = Bitfield::FromBytes(std::string("\xa0\x80", 2), 9);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->count(), 3u);
  EXPECT_TRUE(b->test(0));
  EXPECT_TRUE(b->test(2));
  EXPECT_TRUE(b->test(8));
  EXPECT_FALSE(b->test(1));

  EXPECT_FALSE(Bitfield::FromBytes(std::string("\xa0", 1), 9).has_value());
  EXPECT_FALSE(
      Bitfield::FromBytes(std::string("\xa0\x80\x00", 3), 9).has_value());
  EXPECT_FALSE(Bitfield::FromBytes(std::string("\xa0\x40", 2), 9).has_value());
  EXPECT_TRUE(Bitfield::FromBytes(std::string("\xff", 1), 8).has_value());
  EXPECT_TRUE(Bitfield::FromBytes("", 0).has_value());
}

// Equality compares size and bits; a parsed bitfield equals a built one.
TEST(BitfieldTest, Equality) {
  Bitfield a(9);
  a.set(8);
  auto b = Bitfield::FromBytes(std::string("\x00\x80", 2), 9);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a, *b);
  EXPECT_FALSE(a == Bitfield(10));
  EXPECT_EQ(Bitfield(16, true), *Bitfield::FromBytes("\xff\xff", 16));
}

}  // namespace
}  // namespace shoal::chunk
