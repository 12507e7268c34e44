// Resume data: what a torrent needs to restart without re-hashing its files.
//
// Saved in the chunk store's `state` column family under
// "resume/<info-hash hex>" (InfoHashes::BestHex(): v2 if the torrent has one),
// as a bencoded dictionary:
//
//   v           format version (1)
//   pieces      number of pieces
//   have        the verified pieces, as bitfield bytes (BEP 3 order)
//   prio        one priority byte per file
//   files       one [exists, size, mtime_ns] list per file
//   up, down    bytes uploaded and downloaded
//   save path   string
//   added       seconds since the epoch
//   paused, sequential   0 or 1
//   info        the info dict of a magnet that fetched it (omitted if empty)
//
// On restart, ValidateResumeData() compares the saved file states with
// FileStorage::FileStates(): pieces that lie only in unchanged files are
// trusted, the rest are rechecked.
//
//   SHOAL_ASSIGN_OR_RETURN(ResumeData r, LoadResumeData(store, hashes));
//   chunk::Bitfield trusted = ValidateResumeData(r, metainfo,
//                                                storage.FileStates());
//
// Deleting: ChunkStore has no delete for state keys, so DeleteResumeData()
// stores an empty value, which LoadResumeData() reports as NOT_FOUND.
#ifndef SHOAL_STORE_RESUME_DATA_H_
#define SHOAL_STORE_RESUME_DATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chunk/bitfield.h"
#include "chunk/info_hash.h"
#include "chunk/metainfo.h"
#include "store/chunk_store.h"
#include "store/file_storage.h"

namespace shoal::store {

// A value type.
struct ResumeData {
  chunk::Bitfield have;                  // verified pieces
  std::vector<uint8_t> file_priorities;  // per Metainfo::files entry
  std::vector<FileState> file_states;    // per file, when `have` was saved
  uint64_t uploaded = 0;
  uint64_t downloaded = 0;
  std::string save_path;
  int64_t added_time = 0;  // seconds since the epoch
  bool paused = false;
  bool sequential = false;
  // The info dict of a torrent added as a magnet, once fetched (BEP 9), so a
  // restart need not fetch it again. Empty otherwise.
  std::string info_bytes;
  // Seconds spent seeding, over the torrent's life.
  uint64_t seeding_seconds = 0;
  // The torrent's own seeding limits (unset: the node's): a share ratio
  // (0: none) and seconds of seeding (0: none).
  std::optional<double> share_ratio_limit;
  std::optional<uint64_t> seed_time_limit;
  // It stopped at a seeding limit (and a resume keeps it seeding).
  bool seed_limit_reached = false;
  // BEP 16 super-seeding is on (it takes effect while seeding).
  bool super_seed = false;

  friend bool operator==(const ResumeData&, const ResumeData&) = default;
};

// Limits for decoding untrusted (possibly corrupt) resume data.
struct ResumeDataLimits {
  uint64_t max_size = 96ull << 20;  // info dict (64 MiB) + bitfield + files
  uint64_t max_pieces = uint64_t{1} << 21;
  uint64_t max_files = uint64_t{1} << 20;
};

// The bencoded form.
std::string EncodeResumeData(const ResumeData& data);

// Parses EncodeResumeData()'s output. INVALID_ARGUMENT if it is malformed,
// exceeds `limits` or is of an unknown version.
absl::StatusOr<ResumeData> DecodeResumeData(
    std::string_view bytes, const ResumeDataLimits& limits = {});

// The state key: "resume/<hashes.BestHex()>".
std::string ResumeDataKey(const chunk::InfoHashes& hashes);

// Stores `data` for the torrent. Errors: the store's.
absl::Status SaveResumeData(ChunkStore& store, const chunk::InfoHashes& hashes,
                            const ResumeData& data);

// NOT_FOUND if nothing (or a deleted entry) is stored; INVALID_ARGUMENT if the
// stored bytes do not decode.
absl::StatusOr<ResumeData> LoadResumeData(ChunkStore& store,
                                          const chunk::InfoHashes& hashes);

// Marks the torrent's resume data deleted (an empty value; see above).
absl::Status DeleteResumeData(ChunkStore& store,
                              const chunk::InfoHashes& hashes);

// The pieces of `data.have` that can be trusted without hashing, given the
// files' states now (`current`, from FileStorage::FileStates()): all of them
// if every file's existence, size and mtime match what was saved, else only
// the pieces whose every (non-pad) file is unchanged. Nothing if `data` does
// not fit `m` (piece or file count). The result has m.num_pieces bits.
chunk::Bitfield ValidateResumeData(const ResumeData& data,
                                   const chunk::Metainfo& m,
                                   const std::vector<FileState>& current);

}  // namespace shoal::store

#endif  // SHOAL_STORE_RESUME_DATA_H_
