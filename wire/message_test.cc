#include "wire/message.h"

#include <vector>

#include "gtest/gtest.h"

namespace shoal::wire {
namespace {

std::vector<Message> AllKinds() {
  HashSpec spec;
  spec.pieces_root.fill(7);
  spec.base_layer = 1;
  spec.index = 2;
  spec.length = 4;
  spec.proof_layers = 3;
  static const std::string hashes(64, 'h');
  return {KeepAlive{},
          Choke{},
          Unchoke{},
          Interested{},
          NotInterested{},
          Have{123456},
          Bitfield{"\xff\x80"},
          Request{{1, 16384, 16384}},
          Piece{9, 32768, "block-bytes"},
          Cancel{{1, 0, 16384}},
          Port{6881},
          Suggest{5},
          HaveAll{},
          HaveNone{},
          Reject{{2, 0, 16384}},
          AllowedFast{77},
          Extended{3, "d1:ai1ee"},
          HashRequest{spec},
          Hashes{spec, hashes},
          HashReject{spec}};
}

bool SameFields(const Message& a, const Message& b) {
  std::string ea, eb;
  AppendMessage(a, ea);
  AppendMessage(b, eb);
  return a.index() == b.index() && ea == eb;
}

// Every message encodes and parses back to itself, also when many share one
// buffer.
TEST(MessageTest, RoundTripsEveryKind) {
  std::string wire;
  auto all = AllKinds();
  for (const Message& m : all) AppendMessage(m, wire);
  std::string_view rest = wire;
  for (const Message& want : all) {
    auto got = ParseMessage(rest);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << MessageName(want);
    EXPECT_TRUE(SameFields(**got, want)) << MessageName(want);
  }
  EXPECT_TRUE(rest.empty());
}

// A message cut anywhere is "need more bytes", and the buffer is left
// untouched.
TEST(MessageTest, PartialMessagesWait) {
  std::string wire;
  AppendMessage(Piece{1, 0, std::string(100, 'x')}, wire);
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    std::string_view part(wire.data(), cut);
    auto got = ParseMessage(part);
    ASSERT_TRUE(got.ok());
    EXPECT_FALSE(got->has_value());
    EXPECT_EQ(part.size(), cut);
  }
}

// Lengths that do not fit the message type, and messages over the limit, are
// errors.
TEST(MessageTest, RejectsBadLengths) {
  auto parse = [](std::string bytes) {
    std::string_view v = bytes;
    return ParseMessage(v, ParseLimits{1000}).status().code();
  };
  using std::string;
  EXPECT_EQ(parse(string("\0\0\0\x02\x04\x01", 6)),
            absl::StatusCode::kInvalidArgument);  // have
  EXPECT_EQ(parse(string("\0\0\0\x02\x00\x01", 6)),
            absl::StatusCode::kInvalidArgument);  // choke+1
  EXPECT_EQ(parse(string("\0\0\0\x05\x06\0\0\0\0", 9)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parse(string("\0\0\0\x05\x07\0\0\0\0", 9)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parse(string("\0\0\0\x01\x14", 5)),
            absl::StatusCode::kInvalidArgument);  // extended
  EXPECT_EQ(parse(string("\0\0\x10\x00\x05", 5)),
            absl::StatusCode::kInvalidArgument);  // 4096 > 1000
  std::string hashes("\0\0\0\x32\x16", 5);  // 49 + 1 byte: not a multiple of 32
  hashes += std::string(49, 'x');
  EXPECT_EQ(parse(hashes), absl::StatusCode::kInvalidArgument);
}

// Unknown IDs are skipped, as BEP 3 asks, and parsing goes on after them.
TEST(MessageTest, UnknownIdsAreSkipped) {
  std::string wire("\0\0\0\x03\x63xy", 7);
  AppendMessage(Interested{}, wire);
  std::string_view rest = wire;
  auto a = ParseMessage(rest);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_TRUE(std::holds_alternative<Unknown>(**a));
  EXPECT_EQ(std::get<Unknown>(**a).id, 0x63);
  auto b = ParseMessage(rest);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_TRUE(std::holds_alternative<Interested>(**b));
}

// The piece header alone, followed by the data, is a whole piece message.
TEST(MessageTest, PieceHeaderThenData) {
  std::string wire;
  AppendPieceHeader(4, 16384, 5, wire);
  wire += "hello";
  std::string_view rest = wire;
  auto m = ParseMessage(rest);
  ASSERT_TRUE(m.ok() && m->has_value());
  const auto& p = std::get<Piece>(**m);
  EXPECT_EQ(p.piece, 4u);
  EXPECT_EQ(p.begin, 16384u);
  EXPECT_EQ(p.data, "hello");
}

}  // namespace
}  // namespace shoal::wire
