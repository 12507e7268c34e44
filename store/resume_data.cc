#include "store/resume_data.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chunk/piece_verifier.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::store {
namespace {

constexpr int64_t kVersion = 1;
constexpr char kKeyPrefix[] = "resume/";

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("resume data: ", std::string(what)));
}

absl::StatusOr<int64_t> NonNegativeInt(codec::BNode dict,
                                       std::string_view key) {
  std::optional<int64_t> v = dict.FindInt(key);
  if (!v || *v < 0) {
    return Invalid(absl::StrCat("'", std::string(key),
                                "' is missing or not a non-negative integer"));
  }
  return *v;
}

}  // namespace

std::string EncodeResumeData(const ResumeData& data) {
  namespace b = codec::bencode;
  b::Dict d;
  d["v"] = kVersion;
  d["pieces"] = static_cast<int64_t>(data.have.size());
  d["have"] = std::string(data.have.bytes());
  d["prio"] =
      std::string(data.file_priorities.begin(), data.file_priorities.end());
  b::List files;
  files.reserve(data.file_states.size());
  for (const FileState& f : data.file_states) {
    files.emplace_back(
        b::List{int64_t{f.exists}, static_cast<int64_t>(f.size), f.mtime_ns});
  }
  d["files"] = std::move(files);
  d["up"] = static_cast<int64_t>(data.uploaded);
  d["down"] = static_cast<int64_t>(data.downloaded);
  d["save path"] = data.save_path;
  d["added"] = data.added_time;
  d["paused"] = int64_t{data.paused};
  d["sequential"] = int64_t{data.sequential};
  if (!data.info_bytes.empty()) d["info"] = data.info_bytes;
  d["seeding"] = static_cast<int64_t>(data.seeding_seconds);
  // A ratio in thousandths: bencode has no floats.
  if (data.share_ratio_limit)
    d["ratio limit"] = std::llround(*data.share_ratio_limit * 1000);
  if (data.seed_time_limit)
    d["seed time limit"] = static_cast<int64_t>(*data.seed_time_limit);
  if (data.seed_limit_reached) d["seed limit reached"] = int64_t{1};
  if (data.super_seed) d["super seed"] = int64_t{1};
  return b::Encode(b::Value(std::move(d)));
}

absl::StatusOr<ResumeData> DecodeResumeData(std::string_view bytes,
                                            const ResumeDataLimits& limits) {
  if (bytes.size() > limits.max_size) {
    return Invalid(absl::StrCat(bytes.size(), " bytes exceed the limit of ",
                                limits.max_size));
  }
  codec::BdecodeOptions o;
  o.max_depth = 3;  // dict > files list > one file's list
  o.max_tokens = static_cast<int64_t>(limits.max_files) * 4 + 64;
  SHOAL_ASSIGN_OR_RETURN(codec::BDocument doc, codec::Bdecode(bytes, o));
  codec::BNode root = doc.root();
  if (!root.is_dict()) return Invalid("not a dictionary");
  if (root.FindInt("v") != kVersion) return Invalid("unknown version");

  ResumeData r;
  SHOAL_ASSIGN_OR_RETURN(int64_t pieces, NonNegativeInt(root, "pieces"));
  if (static_cast<uint64_t>(pieces) > limits.max_pieces) {
    return Invalid(absl::StrCat(pieces, " pieces exceed the limit"));
  }
  auto have = root.FindString("have");
  if (!have) return Invalid("'have' is missing");
  auto bitfield =
      chunk::Bitfield::FromBytes(*have, static_cast<uint32_t>(pieces));
  if (!bitfield) return Invalid("'have' does not fit 'pieces'");
  r.have = *std::move(bitfield);

  auto prio = root.FindString("prio");
  if (!prio || prio->size() > limits.max_files) {
    return Invalid("'prio' is missing or too long");
  }
  r.file_priorities.assign(prio->begin(), prio->end());

  codec::BNode files = root.FindList("files");
  if (!files) return Invalid("'files' is missing");
  for (codec::BNode f : files.children()) {
    if (r.file_states.size() >= limits.max_files) {
      return Invalid("too many files");
    }
    std::vector<codec::BNode> v = f.list_items();
    if (v.size() != 3 || !v[0].is_int() || !v[1].is_int() || !v[2].is_int() ||
        v[1].int_value() < 0) {
      return Invalid("a file state is not [exists, size, mtime]");
    }
    r.file_states.push_back({v[0].int_value() != 0,
                             static_cast<uint64_t>(v[1].int_value()),
                             v[2].int_value()});
  }

  SHOAL_ASSIGN_OR_RETURN(int64_t up, NonNegativeInt(root, "up"));
  SHOAL_ASSIGN_OR_RETURN(int64_t down, NonNegativeInt(root, "down"));
  r.uploaded = static_cast<uint64_t>(up);
  r.downloaded = static_cast<uint64_t>(down);
  auto save_path = root.FindString("save path");
  if (!save_path) return Invalid("'save path' is missing");
  r.save_path = std::string(*save_path);
  r.added_time = root.FindInt("added").value_or(0);
  r.paused = root.FindInt("paused").value_or(0) != 0;
  r.sequential = root.FindInt("sequential").value_or(0) != 0;
  r.info_bytes = std::string(root.FindString("info").value_or(""));
  r.seeding_seconds = static_cast<uint64_t>(
      std::max<int64_t>(0, root.FindInt("seeding").value_or(0)));
  if (auto ratio = root.FindInt("ratio limit"); ratio && *ratio >= 0)
    r.share_ratio_limit = static_cast<double>(*ratio) / 1000;
  if (auto t = root.FindInt("seed time limit"); t && *t >= 0)
    r.seed_time_limit = static_cast<uint64_t>(*t);
  r.seed_limit_reached = root.FindInt("seed limit reached").value_or(0) != 0;
  r.super_seed = root.FindInt("super seed").value_or(0) != 0;
  return r;
}

std::string ResumeDataKey(const chunk::InfoHashes& hashes) {
  return absl::StrCat(kKeyPrefix, hashes.BestHex());
}

absl::Status SaveResumeData(ChunkStore& store, const chunk::InfoHashes& hashes,
                            const ResumeData& data) {
  return store.PutState(ResumeDataKey(hashes), EncodeResumeData(data));
}

absl::StatusOr<ResumeData> LoadResumeData(ChunkStore& store,
                                          const chunk::InfoHashes& hashes) {
  const std::string key = ResumeDataKey(hashes);
  SHOAL_ASSIGN_OR_RETURN(std::string bytes, store.GetState(key));
  if (bytes.empty()) {
    return absl::NotFoundError(absl::StrCat("no resume data for ", key));
  }
  return DecodeResumeData(bytes);
}

absl::Status DeleteResumeData(ChunkStore& store,
                              const chunk::InfoHashes& hashes) {
  return store.PutState(ResumeDataKey(hashes), "");
}

chunk::Bitfield ValidateResumeData(const ResumeData& data,
                                   const chunk::Metainfo& m,
                                   const std::vector<FileState>& current) {
  chunk::Bitfield trusted(m.num_pieces);
  if (data.have.size() != m.num_pieces ||
      data.file_states.size() != m.files.size() ||
      current.size() != m.files.size()) {
    return trusted;
  }
  std::vector<bool> unchanged(m.files.size());
  bool all = true;
  for (size_t i = 0; i < m.files.size(); ++i) {
    unchanged[i] = m.files[i].pad_file || data.file_states[i] == current[i];
    all = all && unchanged[i];
  }
  if (all) return data.have;
  for (uint32_t p = 0; p < m.num_pieces; ++p) {
    if (!data.have.test(p)) continue;
    bool ok = true;
    for (const chunk::FileSlice& s : chunk::MapPiece(m, p)) {
      ok = ok && unchanged[s.file_index];
    }
    if (ok) trusted.set(p);
  }
  return trusted;
}

}  // namespace shoal::store
