#include "chunk/info_hash.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/hex.h"

namespace shoal::chunk {

using codec::Sha1;
using codec::Sha256;
namespace {

template <size_t N>
absl::Status DecodeHashHex(std::string_view hex, const char* what,
                           std::array<uint8_t, N>& out) {
  if (hex.size() != 2 * N) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be ", 2 * N, " hex characters, got ", hex.size()));
  }
  auto raw = HexDecode(hex);
  if (!raw) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds a non-hex character"));
  }
  std::copy(raw->begin(), raw->end(), out.begin());
  return absl::OkStatus();
}

}  // namespace

InfoHashV1 InfoHashV1::Of(std::string_view info_dict_bytes) {
  return {Sha1::Hash(info_dict_bytes)};
}

absl::StatusOr<InfoHashV1> InfoHashV1::FromHex(std::string_view hex) {
  InfoHashV1 h;
  absl::Status s = DecodeHashHex(hex, "v1 info-hash", h.bytes);
  if (!s.ok()) return s;
  return h;
}

InfoHashV1 InfoHashV1::FromBytes(std::string_view raw) {
  InfoHashV1 h;
  std::memcpy(h.bytes.data(), raw.data(), std::min(raw.size(), h.bytes.size()));
  return h;
}

std::string InfoHashV1::Hex() const {
  return HexEncode(std::span<const uint8_t>(bytes));
}

InfoHashV2 InfoHashV2::Of(std::string_view info_dict_bytes) {
  return {Sha256::Hash(info_dict_bytes)};
}

absl::StatusOr<InfoHashV2> InfoHashV2::FromHex(std::string_view hex) {
  InfoHashV2 h;
  absl::Status s = DecodeHashHex(hex, "v2 info-hash", h.bytes);
  if (!s.ok()) return s;
  return h;
}

InfoHashV2 InfoHashV2::FromBytes(std::string_view raw) {
  InfoHashV2 h;
  std::memcpy(h.bytes.data(), raw.data(), std::min(raw.size(), h.bytes.size()));
  return h;
}

std::string InfoHashV2::Hex() const {
  return HexEncode(std::span<const uint8_t>(bytes));
}

InfoHashV1 InfoHashV2::Truncated() const {
  return InfoHashV1::FromBytes(AsStringView().substr(0, 20));
}

std::string InfoHashes::BestHex() const {
  if (v2) return v2->Hex();
  if (v1) return v1->Hex();
  return "";
}

}  // namespace shoal::chunk
