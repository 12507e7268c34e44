// Piece layout and piece verification for torrents (v1, v2 and hybrid).
//
// A torrent's files form one byte stream (Metainfo::files, pad files
// included); piece i is bytes [i * piece_length, min((i + 1) * piece_length,
// total_size)) of it. MapPiece() turns a piece into the file slices it covers,
// which is all storage needs. In a v2 or hybrid torrent every non-empty file
// starts on a piece boundary, so a piece holds bytes of exactly one file,
// followed by pad bytes when it is the file's last piece.
//
// PieceVerifier checks a whole piece:
//   v1      SHA-1 of the piece against the info dict's `pieces`;
//   v2      the SHA-256 merkle root of the piece's 16 KiB blocks against the
//           file's piece layer entry (the file's last piece padded with zero
//           leaves to piece_length / 16 KiB); a file of at most one piece has
//           no layer and verifies against its pieces root, with the tree
//           padded to the next power of two of its block count. The piece's
//           pad bytes must be zero;
//   hybrid  both.
//
//   PieceVerifier verifier(metainfo);
//   absl::Status s = verifier.Verify(piece, bytes);
//   if (absl::IsDataLoss(s)) ...            // corrupt: download again
//   if (absl::IsUnavailable(s)) ...         // v2 layer unknown: fetch it
//
// Blame for a failed piece. With v1, and with v2 given only the piece layer,
// the verifier can only say the piece is bad. Which 16 KiB blocks are bad
// needs the block hashes under the piece, which the swarm fetches from a peer
// with a BEP 52 hash request (base layer 0); FindBadBlocks() checks those
// hashes against the piece's expected hash and returns the blocks whose data
// differs. BlockHashes() lets the swarm remember the hashes of a failed
// attempt and compare them with the good data once the piece verifies.
#ifndef SHOAL_CHUNK_PIECE_VERIFIER_H_
#define SHOAL_CHUNK_PIECE_VERIFIER_H_

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chunk/metainfo.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

// A run of one file's bytes inside a piece. A value type.
struct FileSlice {
  size_t file_index = 0;      // into Metainfo::files (may be a pad file)
  uint64_t file_offset = 0;   // where the run starts in the file
  uint32_t piece_offset = 0;  // where the run starts in the piece
  uint32_t length = 0;
  friend bool operator==(const FileSlice&, const FileSlice&) = default;
};

// Pieces [first, end). A value type.
struct PieceRange {
  uint32_t first = 0;
  uint32_t end = 0;
  bool empty() const { return first >= end; }
  friend bool operator==(const PieceRange&, const PieceRange&) = default;
};

// The length of piece `piece` (pad bytes included): piece_length, except for
// a shorter last piece. REQUIRES: piece < m.num_pieces.
uint32_t PieceSize(const Metainfo& m, uint32_t piece);

// The slices of files that piece `piece` covers, in stream order. Pad files
// are included (check Metainfo::files[i].pad_file); zero-length files are
// not. O(log files + slices). REQUIRES: piece < m.num_pieces.
std::vector<FileSlice> MapPiece(const Metainfo& m, uint32_t piece);

// The slices of files that bytes [start, start + length) of the torrent's
// stream cover, in stream order, each piece_offset counted from `start`. Pad
// files are included; zero-length files are not; bytes between files (a v2
// file's tail padding) are in no slice.
std::vector<FileSlice> MapRange(const Metainfo& m, uint64_t start,
                                uint32_t length);

// The pieces that hold bytes of file `file_index`; empty for a zero-length
// file. REQUIRES: file_index < m.files.size().
PieceRange FilePieces(const Metainfo& m, size_t file_index);

// Thread-safe: every method may be called concurrently.
class PieceVerifier {
 public:
  // Takes the v2 piece layers that `m` carries. `m` must outlive the
  // verifier.
  explicit PieceVerifier(const Metainfo& m);

  PieceVerifier(const PieceVerifier&) = delete;
  PieceVerifier& operator=(const PieceVerifier&) = delete;

  // OK if `data` is piece `piece`: every hash the torrent has must pass (v1,
  // v2, or both for a hybrid; a hybrid piece whose v2 layer is unknown fails
  // with UNAVAILABLE even when its v1 hash passes: call VerifyV1() to accept
  // it on v1 alone). Errors: OUT_OF_RANGE for a bad index; INVALID_ARGUMENT if
  // data.size() != PieceSize(); DATA_LOSS on a hash mismatch (or non-zero pad
  // bytes); UNAVAILABLE if the file's v2 piece layer is not known yet (fetch it
  // and call AddPieceLayer()).
  absl::Status Verify(uint32_t piece, std::string_view data) const;

  // Only the v1 (SHA-1) check. FAILED_PRECONDITION for a v2-only torrent;
  // otherwise as Verify().
  absl::Status VerifyV1(uint32_t piece, std::string_view data) const;

  // Only the v2 (merkle) check. FAILED_PRECONDITION for a v1-only torrent;
  // otherwise as Verify().
  absl::Status VerifyV2(uint32_t piece, std::string_view data) const;

  // v2: the hash piece `piece` must have (its piece layer entry, or the file's
  // pieces root for a file of one piece). FAILED_PRECONDITION for a v1-only
  // torrent, OUT_OF_RANGE for a bad index, UNAVAILABLE if the layer is
  // unknown.
  absl::StatusOr<Sha256Digest> ExpectedV2Hash(uint32_t piece) const;

  // True if v2 pieces of file `file_index` can be verified now (a layer is
  // known, or the file needs none). False for v1-only torrents and pad files.
  bool HasPieceLayer(size_t file_index) const;

  // Installs the piece layer of file `file_index` (32 bytes per piece of the
  // file), e.g. one received with BEP 52 hash requests. INVALID_ARGUMENT if
  // the file has no pieces root, the size is wrong, or the layer does not hash
  // to the file's pieces root. Installing a layer again is a no-op.
  absl::Status AddPieceLayer(size_t file_index, std::string_view layer);

  // v2: the SHA-256 of each 16 KiB block of piece `piece`'s file bytes (pad
  // bytes excluded), in order. OUT_OF_RANGE / INVALID_ARGUMENT /
  // FAILED_PRECONDITION as VerifyV2().
  absl::StatusOr<std::vector<Sha256Digest>> BlockHashes(
      uint32_t piece, std::string_view data) const;

  // v2: which 16 KiB blocks of `data` (piece `piece`) are bad, given the
  // block hashes under the piece as a peer sent them (BEP 52 hashes for base
  // layer 0: one per block of the file in this piece, optionally followed by
  // zero hashes up to the piece's leaf count). The hashes are first checked
  // against ExpectedV2Hash(): INVALID_ARGUMENT if they do not match it or
  // their count is wrong (the peer lied, not the data). Returns the block
  // indexes within the piece whose data does not hash to its block hash
  // (empty if the piece is good). Other errors as ExpectedV2Hash().
  absl::StatusOr<std::vector<uint32_t>> FindBadBlocks(
      uint32_t piece, std::string_view data,
      std::span<const Sha256Digest> block_hashes) const;

 private:
  // Where a v2 piece's bytes sit.
  struct V2Piece {
    size_t file_index;
    uint32_t piece_in_file;
    uint32_t file_bytes;  // bytes of the file in the piece; the rest is pad
    uint64_t leaves;      // leaves of the tree the piece hash is a root of
  };
  absl::StatusOr<V2Piece> LocateV2(uint32_t piece, size_t data_size) const;
  absl::StatusOr<Sha256Digest> ExpectedHash(const V2Piece& p) const;

  // Constant after construction.
  const Metainfo& m_;

  mutable std::shared_mutex mu_;
  // Per file: its piece layer (32 bytes per piece) or empty. Guarded by mu_.
  std::vector<std::string> layers_;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_PIECE_VERIFIER_H_
