#include "chunk/content_id.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/hex.h"
#include "chunk/merkle.h"
#include "codec/bencode.h"

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace bencode = codec::bencode;

std::string ContentId::Hex() const {
  return HexEncode(std::span<const uint8_t>(bytes));
}

absl::StatusOr<ContentId> ContentId::FromHex(std::string_view hex) {
  if (hex.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("content ID must be 64 hex characters, got ", hex.size()));
  }
  auto raw = HexDecode(hex);
  if (!raw)
    return absl::InvalidArgumentError("content ID holds a non-hex character");
  ContentId id;
  std::copy(raw->begin(), raw->end(), id.bytes.begin());
  return id;
}

ContentId ContentId::FromBytes(std::string_view raw) {
  ContentId id;
  std::memcpy(id.bytes.data(), raw.data(),
              std::min(raw.size(), id.bytes.size()));
  return id;
}

uint32_t CanonicalPieceLength(uint64_t length) {
  uint64_t want = NextPowerOfTwo((length + 1023) / 1024);
  return static_cast<uint32_t>(std::clamp<uint64_t>(
      want, kMinCanonicalPieceLength, kMaxCanonicalPieceLength));
}

uint32_t ContentLayout::piece_size(uint32_t index) const {
  uint64_t off = piece_offset(index);
  return static_cast<uint32_t>(std::min<uint64_t>(piece_length, length - off));
}

int ContentLayout::piece_tree_levels(uint32_t index) const {
  if (num_pieces() == 1)
    return std::countr_zero(NextPowerOfTwo(NumBlocks(piece_size(index))));
  return std::countr_zero(piece_length / kBlockSize);
}

Sha256Digest HashPiece(std::span<const uint8_t> data, int tree_levels) {
  return BlockTreeRoot(data, uint64_t{1} << tree_levels);
}

Sha256Digest PiecesRoot(const ContentLayout& layout,
                        std::span<const Sha256Digest> piece_layer) {
  if (layout.length == 0 || piece_layer.empty()) return Sha256Digest{};
  if (piece_layer.size() == 1) return piece_layer[0];
  return PiecesRootFromLayer(piece_layer, layout.piece_length);
}

std::string CanonicalInfoDict(const ContentLayout& layout,
                              const Sha256Digest& pieces_root) {
  std::string name = HexEncode(std::span<const uint8_t>(pieces_root));
  bencode::Dict file;
  file["length"] = static_cast<int64_t>(layout.length);
  if (layout.length > 0) {
    file["pieces root"] = std::string(
        reinterpret_cast<const char*>(pieces_root.data()), pieces_root.size());
  }
  bencode::Dict leaf;
  leaf[""] = std::move(file);
  bencode::Dict tree;
  tree[name] = std::move(leaf);
  bencode::Dict info;
  info["file tree"] = std::move(tree);
  info["meta version"] = int64_t{2};
  info["name"] = name;
  info["piece length"] = static_cast<int64_t>(layout.piece_length);
  return bencode::Encode(bencode::Value(std::move(info)));
}

ContentId ComputeContentId(const ContentLayout& layout,
                           const Sha256Digest& pieces_root) {
  return ContentId{Sha256::Hash(CanonicalInfoDict(layout, pieces_root))};
}

}  // namespace shoal::chunk
