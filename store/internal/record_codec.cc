#include "store/internal/record_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal::store::internal {
namespace {

constexpr uint8_t kVersion = 2;
constexpr uint8_t kFlagDirectoryOnly = 1;
constexpr uint8_t kFlagDirectory = 2;
constexpr size_t kFixedSize = 1 + 8 + 4 + 32 + 8 + 8 + 2;

}  // namespace

void AppendBE32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}

void AppendBE64(std::string& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}

uint32_t ReadBE32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t ReadBE64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
  return v;
}

std::string EncodeRecord(const ContentRecord& r) {
  std::string out;
  out.reserve(kFixedSize + r.name.size() + 4 + 32 * r.piece_layer.size());
  out.push_back(static_cast<char>(kVersion));
  AppendBE64(out, r.length);
  AppendBE32(out, r.piece_length);
  out.append(reinterpret_cast<const char*>(r.pieces_root.data()), 32);
  AppendBE64(out, static_cast<uint64_t>(absl::ToUnixMicros(r.added)));
  AppendBE64(out, static_cast<uint64_t>(absl::ToUnixMicros(r.last_access)));
  std::string_view name = std::string_view(r.name).substr(0, 0xffff);
  out.push_back(static_cast<char>(name.size() >> 8));
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  AppendBE32(out, static_cast<uint32_t>(r.piece_layer.size()));
  for (const auto& h : r.piece_layer)
    out.append(reinterpret_cast<const char*>(h.data()), 32);
  out.push_back(
      static_cast<char>((r.in_directory_only ? kFlagDirectoryOnly : 0) |
                        (r.directory ? kFlagDirectory : 0)));
  if (r.directory) {
    AppendBE32(out, static_cast<uint32_t>(r.directory->info_dict().size()));
    out.append(r.directory->info_dict());
  }
  return out;
}

absl::StatusOr<ContentRecord> DecodeRecord(std::string_view key,
                                           std::string_view v) {
  if (key.size() != 32)
    return absl::DataLossError("content key is not 32 bytes");
  const uint8_t version = v.empty() ? 0 : static_cast<uint8_t>(v[0]);
  if (v.size() < kFixedSize || version < 1 || version > kVersion) {
    return absl::DataLossError(
        "content record is truncated or of an unknown version");
  }
  ContentRecord r;
  r.id = chunk::ContentId::FromBytes(key);
  r.length = ReadBE64(v.substr(1));
  r.piece_length = ReadBE32(v.substr(9));
  std::memcpy(r.pieces_root.data(), v.data() + 13, 32);
  r.added = absl::FromUnixMicros(static_cast<int64_t>(ReadBE64(v.substr(45))));
  r.last_access =
      absl::FromUnixMicros(static_cast<int64_t>(ReadBE64(v.substr(53))));
  size_t name_len =
      static_cast<uint8_t>(v[61]) << 8 | static_cast<uint8_t>(v[62]);
  size_t pos = kFixedSize;
  if (v.size() < pos + name_len + 4)
    return absl::DataLossError("content record is truncated");
  r.name = std::string(v.substr(pos, name_len));
  pos += name_len;
  uint32_t n = ReadBE32(v.substr(pos));
  pos += 4;
  if (v.size() < pos + size_t{32} * n)
    return absl::DataLossError("content record is truncated");
  r.piece_layer.resize(n);
  for (uint32_t i = 0; i < n; ++i)
    std::memcpy(r.piece_layer[i].data(), v.data() + pos + 32 * i, 32);
  pos += size_t{32} * n;
  uint8_t flags = 0;
  if (version >= 2) {
    if (v.size() < pos + 1)
      return absl::DataLossError("content record is truncated");
    flags = static_cast<uint8_t>(v[pos++]);
  }
  r.in_directory_only = (flags & kFlagDirectoryOnly) != 0;
  if (flags & kFlagDirectory) {
    if (v.size() < pos + 4)
      return absl::DataLossError("content record is truncated");
    const uint32_t dict_len = ReadBE32(v.substr(pos));
    pos += 4;
    if (v.size() != pos + dict_len)
      return absl::DataLossError("directory record has the wrong size");
    auto dir = chunk::Directory::Parse(v.substr(pos, dict_len));
    if (!dir.ok()) {
      return absl::DataLossError(absl::StrCat(
          "directory record: ", std::string(dir.status().message())));
    }
    if ((*dir)->id() != r.id || n != 0)
      return absl::DataLossError("directory record does not match its ID");
    r.directory = *std::move(dir);
    return r;
  }
  if (v.size() != pos || n != r.layout().num_pieces() || r.piece_length == 0) {
    return absl::DataLossError(
        "content record's piece layer does not match its length");
  }
  return r;
}

}  // namespace shoal::store::internal
