#include "chunk/piece_verifier.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chunk/merkle.h"

namespace shoal::chunk {

using codec::AsBytes;
using codec::Sha1;
using codec::Sha1Digest;
using codec::Sha256;
using codec::Sha256Digest;
namespace {

bool AllZero(std::string_view s) {
  static constexpr char kZeros[4096] = {};
  while (!s.empty()) {
    size_t n = std::min(s.size(), sizeof(kZeros));
    if (std::memcmp(s.data(), kZeros, n) != 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::span<const uint8_t> Bytes(std::string_view s) { return AsBytes(s); }

}  // namespace

uint32_t PieceSize(const Metainfo& m, uint32_t piece) {
  const uint64_t start = uint64_t{piece} * m.piece_length;
  return static_cast<uint32_t>(
      std::min<uint64_t>(m.piece_length, m.total_size - start));
}

std::vector<FileSlice> MapRange(const Metainfo& m, uint64_t start,
                                uint32_t length) {
  const uint64_t end = start + length;
  std::vector<FileSlice> out;
  // File ends never decrease along the stream, so the first file that ends
  // after `start` is found by bisection.
  auto it = std::partition_point(
      m.files.begin(), m.files.end(),
      [start](const FileEntry& f) { return f.offset + f.length <= start; });
  for (; it != m.files.end() && it->offset < end; ++it) {
    if (it->length == 0) continue;
    const uint64_t from = std::max(start, it->offset);
    const uint64_t to = std::min(end, it->offset + it->length);
    if (from >= to) continue;
    out.push_back({static_cast<size_t>(it - m.files.begin()), from - it->offset,
                   static_cast<uint32_t>(from - start),
                   static_cast<uint32_t>(to - from)});
  }
  return out;
}

std::vector<FileSlice> MapPiece(const Metainfo& m, uint32_t piece) {
  return MapRange(m, uint64_t{piece} * m.piece_length, PieceSize(m, piece));
}

PieceRange FilePieces(const Metainfo& m, size_t file_index) {
  const FileEntry& f = m.files[file_index];
  if (f.length == 0) return {};
  return {
      static_cast<uint32_t>(f.offset / m.piece_length),
      static_cast<uint32_t>((f.offset + f.length - 1) / m.piece_length + 1)};
}

PieceVerifier::PieceVerifier(const Metainfo& m)
    : m_(m), layers_(m.piece_layers) {
  layers_.resize(m.files.size());
}

absl::Status PieceVerifier::Verify(uint32_t piece,
                                   std::string_view data) const {
  if (m_.info_hashes.v1) SHOAL_RETURN_IF_ERROR(VerifyV1(piece, data));
  if (m_.info_hashes.v2) SHOAL_RETURN_IF_ERROR(VerifyV2(piece, data));
  return absl::OkStatus();
}

absl::Status PieceVerifier::VerifyV1(uint32_t piece,
                                     std::string_view data) const {
  if (!m_.info_hashes.v1) {
    return absl::FailedPreconditionError("a v2-only torrent has no v1 hashes");
  }
  if (piece >= m_.num_pieces) {
    return absl::OutOfRangeError(absl::StrCat(
        "piece ", piece, " of ", m_.num_pieces, " is out of range"));
  }
  if (data.size() != PieceSize(m_, piece)) {
    return absl::InvalidArgumentError(
        absl::StrCat("piece ", piece, " has ", PieceSize(m_, piece),
                     " bytes, not ", data.size()));
  }
  const Sha1Digest got = Sha1::Hash(data);
  if (std::memcmp(got.data(), m_.v1_piece_hashes().data() + size_t{piece} * 20,
                  20) != 0) {
    return absl::DataLossError(
        absl::StrCat("piece ", piece, " fails its SHA-1 hash"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PieceVerifier::V2Piece> PieceVerifier::LocateV2(
    uint32_t piece, size_t data_size) const {
  if (!m_.info_hashes.v2) {
    return absl::FailedPreconditionError("a v1-only torrent has no v2 hashes");
  }
  if (piece >= m_.num_pieces) {
    return absl::OutOfRangeError(absl::StrCat(
        "piece ", piece, " of ", m_.num_pieces, " is out of range"));
  }
  if (data_size != SIZE_MAX && data_size != PieceSize(m_, piece)) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", piece, " has ",
                                                   PieceSize(m_, piece),
                                                   " bytes, not ", data_size));
  }
  // Aligned layout: the first non-pad slice is the piece's file and starts
  // at the piece's first byte.
  for (const FileSlice& s : MapPiece(m_, piece)) {
    const FileEntry& f = m_.files[s.file_index];
    if (f.pad_file || !f.pieces_root) continue;
    if (s.piece_offset != 0 || s.file_offset % m_.piece_length != 0) break;
    V2Piece p;
    p.file_index = s.file_index;
    p.piece_in_file = static_cast<uint32_t>(s.file_offset / m_.piece_length);
    p.file_bytes = s.length;
    p.leaves = f.length > m_.piece_length ? m_.piece_length / kBlockSize
                                          : NextPowerOfTwo(NumBlocks(f.length));
    return p;
  }
  // ParseMetainfo() lays v2 files out aligned, so only a hand-built Metainfo
  // gets here.
  return absl::InternalError(
      absl::StrCat("piece ", piece, " does not start a v2 file's piece"));
}

absl::StatusOr<Sha256Digest> PieceVerifier::ExpectedHash(
    const V2Piece& p) const {
  const FileEntry& f = m_.files[p.file_index];
  if (f.length <= m_.piece_length) return *f.pieces_root;
  std::shared_lock lock(mu_);
  const std::string& layer = layers_[p.file_index];
  if (layer.empty()) {
    return absl::UnavailableError(
        absl::StrCat("the piece layer of file ", p.file_index, " is unknown"));
  }
  Sha256Digest d;
  std::memcpy(d.data(), layer.data() + size_t{p.piece_in_file} * 32, 32);
  return d;
}

absl::Status PieceVerifier::VerifyV2(uint32_t piece,
                                     std::string_view data) const {
  SHOAL_ASSIGN_OR_RETURN(V2Piece p, LocateV2(piece, data.size()));
  SHOAL_ASSIGN_OR_RETURN(Sha256Digest want, ExpectedHash(p));
  if (!AllZero(data.substr(p.file_bytes))) {
    return absl::DataLossError(
        absl::StrCat("piece ", piece, " has non-zero pad bytes"));
  }
  if (BlockTreeRoot(Bytes(data.substr(0, p.file_bytes)), p.leaves) != want) {
    return absl::DataLossError(
        absl::StrCat("piece ", piece, " fails its SHA-256 merkle hash"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Sha256Digest> PieceVerifier::ExpectedV2Hash(
    uint32_t piece) const {
  SHOAL_ASSIGN_OR_RETURN(V2Piece p, LocateV2(piece, SIZE_MAX));
  return ExpectedHash(p);
}

bool PieceVerifier::HasPieceLayer(size_t file_index) const {
  if (!m_.info_hashes.v2 || file_index >= m_.files.size()) return false;
  const FileEntry& f = m_.files[file_index];
  if (!f.pieces_root) return false;
  if (f.length <= m_.piece_length) return true;
  std::shared_lock lock(mu_);
  return !layers_[file_index].empty();
}

absl::Status PieceVerifier::AddPieceLayer(size_t file_index,
                                          std::string_view layer) {
  if (file_index >= m_.files.size() || !m_.files[file_index].pieces_root) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", file_index, " has no pieces root"));
  }
  const FileEntry& f = m_.files[file_index];
  const uint64_t pieces = (f.length + m_.piece_length - 1) / m_.piece_length;
  if (layer.size() != pieces * 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", file_index, " has ", pieces,
                     " pieces; a layer of ", layer.size(), " bytes is wrong"));
  }
  std::vector<Sha256Digest> hashes(pieces);
  std::memcpy(hashes.data(), layer.data(), layer.size());
  if (PiecesRootFromLayer(hashes, m_.piece_length) != *f.pieces_root) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the piece layer does not hash to file ", file_index, "'s root"));
  }
  if (f.length <= m_.piece_length) return absl::OkStatus();  // needs none
  std::unique_lock lock(mu_);
  if (layers_[file_index].empty()) layers_[file_index] = std::string(layer);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Sha256Digest>> PieceVerifier::BlockHashes(
    uint32_t piece, std::string_view data) const {
  SHOAL_ASSIGN_OR_RETURN(V2Piece p, LocateV2(piece, data.size()));
  std::vector<Sha256Digest> out(NumBlocks(p.file_bytes));
  Sha256 hasher;
  for (size_t i = 0; i < out.size(); ++i) {
    hasher.Update(data.substr(
        i * kBlockSize,
        std::min<size_t>(kBlockSize, p.file_bytes - i * kBlockSize)));
    out[i] = hasher.Final();
  }
  return out;
}

absl::StatusOr<std::vector<uint32_t>> PieceVerifier::FindBadBlocks(
    uint32_t piece, std::string_view data,
    std::span<const Sha256Digest> block_hashes) const {
  SHOAL_ASSIGN_OR_RETURN(V2Piece p, LocateV2(piece, data.size()));
  SHOAL_ASSIGN_OR_RETURN(Sha256Digest want, ExpectedHash(p));
  const uint64_t blocks = NumBlocks(p.file_bytes);
  if (block_hashes.size() < blocks || block_hashes.size() > p.leaves) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", piece, " has ",
                                                   blocks, " blocks, not ",
                                                   block_hashes.size()));
  }
  for (size_t i = blocks; i < block_hashes.size(); ++i) {
    if (block_hashes[i] != Sha256Digest{}) {
      return absl::InvalidArgumentError(
          "block hashes past the file's end must be zero");
    }
  }
  if (MerkleRoot(block_hashes.first(blocks), p.leaves) != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("the block hashes do not match piece ", piece, "'s hash"));
  }
  SHOAL_ASSIGN_OR_RETURN(std::vector<Sha256Digest> got,
                         BlockHashes(piece, data));
  std::vector<uint32_t> bad;
  for (size_t i = 0; i < blocks; ++i) {
    if (got[i] != block_hashes[i]) bad.push_back(static_cast<uint32_t>(i));
  }
  return bad;
}

}  // namespace shoal::chunk
