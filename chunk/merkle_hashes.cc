#include "chunk/merkle_hashes.h"

#include <bit>

#include "absl/strings/str_cat.h"
#include "chunk/merkle.h"

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace {

constexpr uint32_t kMaxHashesPerRequest = 8192;

Sha256Digest Pair(Sha256& h, const Sha256Digest& a, const Sha256Digest& b) {
  h.Update(std::span<const uint8_t>(a));
  h.Update(std::span<const uint8_t>(b));
  return h.Final();
}

int Log2(uint64_t v) { return std::countr_zero(v); }

// Number of uncle hashes an answer to `r` carries.
int UncleCount(const HashRange& r) {
  int implied = Log2(r.count) - 1;
  return std::max(0, static_cast<int>(r.proof_layers) - implied);
}

}  // namespace

absl::Status ValidateHashRange(const HashRange& r, uint64_t num_leaves) {
  const int height = Log2(num_leaves);
  if (r.count < 2 || !std::has_single_bit(r.count) ||
      r.count > kMaxHashesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hash request length ", r.count, " is not a power of two in 2..8192"));
  }
  if (static_cast<int>(r.base_layer) > height) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hash request base layer ", r.base_layer, " above the root"));
  }
  const uint64_t width = num_leaves >> r.base_layer;
  if (r.index % r.count != 0 || uint64_t{r.index} + r.count > width) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash request index ", r.index, " count ", r.count,
                     " outside a layer of ", width));
  }
  if (UncleCount(r) > 0 &&
      static_cast<int>(r.base_layer + r.proof_layers) >= height) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hash request asks for ", r.proof_layers, " proof layers above layer ",
        r.base_layer, " of a tree of height ", height));
  }
  return absl::OkStatus();
}

PieceLayerTree::PieceLayerTree(std::vector<Sha256Digest> piece_layer,
                               uint32_t piece_length, uint64_t num_blocks)
    : num_leaves_(NextPowerOfTwo(num_blocks)) {
  const uint64_t blocks_per_piece = piece_length / kBlockSize;
  if (piece_layer.size() <= 1) {
    // One piece: the file's tree is its own; the "piece layer" is the root.
    piece_levels_ = Log2(num_leaves_);
  } else {
    piece_levels_ = Log2(blocks_per_piece);
  }
  uint64_t width = num_leaves_ >> piece_levels_;
  std::vector<Sha256Digest> layer = std::move(piece_layer);
  layer.resize(width, ZeroSubtreeRoot(piece_levels_));
  layers_.push_back(std::move(layer));
  Sha256 hasher;
  while (layers_.back().size() > 1) {
    const auto& below = layers_.back();
    std::vector<Sha256Digest> up(below.size() / 2);
    for (size_t i = 0; i < up.size(); ++i)
      up[i] = Pair(hasher, below[2 * i], below[2 * i + 1]);
    layers_.push_back(std::move(up));
  }
}

Sha256Digest PieceLayerTree::Node(int h, uint64_t i) const {
  return layers_[h - piece_levels_][i];
}

absl::StatusOr<std::vector<Sha256Digest>> PieceLayerTree::GetHashes(
    const HashRange& r,
    const std::function<absl::StatusOr<std::vector<Sha256Digest>>(
        uint64_t, uint32_t)>& block_hashes) const {
  if (absl::Status s = ValidateHashRange(r, num_leaves_); !s.ok()) return s;
  const int base = static_cast<int>(r.base_layer);
  std::vector<Sha256Digest> out;
  out.reserve(r.count + r.proof_layers);
  // The base layer and, below the piece layer, the nodes needed on the way up
  // to it.
  std::vector<Sha256Digest> level;
  if (base >= piece_levels_) {
    for (uint32_t k = 0; k < r.count; ++k)
      out.push_back(Node(base, r.index + k));
  } else if (base == 0 && block_hashes) {
    auto leaves = block_hashes(r.index, r.count);
    if (!leaves.ok()) return leaves.status();
    if (leaves->size() != r.count)
      return absl::InternalError("block hashes of the wrong count");
    out = *std::move(leaves);
    level = out;
  } else {
    return absl::UnimplementedError(
        absl::StrCat("hash requests are served at the leaf layer or at or "
                     "above the piece layer (",
                     piece_levels_, "), not at layer ", base));
  }
  // Uncles: the sibling of the requested subtree's root, then of each of its
  // ancestors.
  const int subtree_top = base + Log2(r.count);
  uint64_t pos =
      r.index >> Log2(r.count);  // the subtree root's index in its layer
  Sha256 hasher;
  for (int k = 0; k < UncleCount(r); ++k) {
    const int layer = subtree_top + k;
    const uint64_t sibling = pos ^ 1;
    if (layer >= piece_levels_) {
      out.push_back(Node(layer, sibling));
    } else {
      // Below the piece layer: compute the sibling subtree from its leaves.
      const uint64_t span = uint64_t{1} << layer;
      auto leaves = block_hashes(sibling * span, static_cast<uint32_t>(span));
      if (!leaves.ok()) return leaves.status();
      std::vector<Sha256Digest> v = *std::move(leaves);
      while (v.size() > 1) {
        for (size_t i = 0; i < v.size() / 2; ++i)
          v[i] = Pair(hasher, v[2 * i], v[2 * i + 1]);
        v.resize(v.size() / 2);
      }
      out.push_back(v[0]);
    }
    pos >>= 1;
  }
  return out;
}

absl::StatusOr<std::vector<Sha256Digest>> VerifyHashes(
    const Sha256Digest& root, uint64_t num_leaves, const HashRange& r,
    std::span<const Sha256Digest> hashes) {
  if (absl::Status s = ValidateHashRange(r, num_leaves); !s.ok()) return s;
  const int uncles = UncleCount(r);
  if (hashes.size() != r.count + static_cast<size_t>(uncles)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hashes answer has ", hashes.size(), " hashes, want ",
                     r.count + uncles));
  }
  const int height = Log2(num_leaves);
  if (static_cast<int>(r.base_layer) + Log2(r.count) + uncles != height) {
    return absl::InvalidArgumentError("hashes answer does not reach the root");
  }
  Sha256 hasher;
  std::vector<Sha256Digest> v(hashes.begin(), hashes.begin() + r.count);
  while (v.size() > 1) {
    for (size_t i = 0; i < v.size() / 2; ++i)
      v[i] = Pair(hasher, v[2 * i], v[2 * i + 1]);
    v.resize(v.size() / 2);
  }
  Sha256Digest node = v[0];
  uint64_t pos = r.index >> Log2(r.count);
  for (int k = 0; k < uncles; ++k) {
    const Sha256Digest& uncle = hashes[r.count + k];
    node = (pos & 1) ? Pair(hasher, uncle, node) : Pair(hasher, node, uncle);
    pos >>= 1;
  }
  if (node != root)
    return absl::DataLossError(
        "hashes do not prove out against the pieces root");
  return std::vector<Sha256Digest>(hashes.begin(), hashes.begin() + r.count);
}

}  // namespace shoal::chunk
