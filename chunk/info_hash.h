// BitTorrent info-hashes: SHA-1 of the info dict (v1, BEP 3) and SHA-256 of
// the info dict (v2, BEP 52). A hybrid torrent has both, computed over the
// same bytes.
//
//   InfoHashes h;
//   h.v2 = InfoHashV2::Of(info_bytes);
//   std::string id = h.BestHex();  // v2 hex if present, else v1 hex
#ifndef SHOAL_CHUNK_INFO_HASH_H_
#define SHOAL_CHUNK_INFO_HASH_H_

#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha1Digest;
using codec::Sha256Digest;

// A v1 info-hash (20 bytes). A value type.
struct InfoHashV1 {
  Sha1Digest bytes{};

  // SHA-1 of `info_dict_bytes`.
  static InfoHashV1 Of(std::string_view info_dict_bytes);
  // 40 hex characters, either case. INVALID_ARGUMENT otherwise.
  static absl::StatusOr<InfoHashV1> FromHex(std::string_view hex);
  // REQUIRES: raw.size() == 20.
  static InfoHashV1 FromBytes(std::string_view raw);
  // 40 lowercase hex characters.
  std::string Hex() const;
  std::string_view AsStringView() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  friend auto operator<=>(const InfoHashV1&, const InfoHashV1&) = default;
};

// A v2 info-hash (32 bytes, SHA-256). A value type.
struct InfoHashV2 {
  Sha256Digest bytes{};

  static InfoHashV2 Of(std::string_view info_dict_bytes);
  // 64 hex characters, either case. INVALID_ARGUMENT otherwise.
  static absl::StatusOr<InfoHashV2> FromHex(std::string_view hex);
  // REQUIRES: raw.size() == 32.
  static InfoHashV2 FromBytes(std::string_view raw);
  std::string Hex() const;
  std::string_view AsStringView() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  // The first 20 bytes: what a v2 swarm uses in the DHT, trackers and the
  // peer-wire handshake (BEP 52).
  InfoHashV1 Truncated() const;
  friend auto operator<=>(const InfoHashV2&, const InfoHashV2&) = default;
};

// The info-hashes of one torrent: v1 only, v2 only or both (hybrid). A value
// type.
struct InfoHashes {
  std::optional<InfoHashV1> v1;
  std::optional<InfoHashV2> v2;

  bool empty() const { return !v1 && !v2; }
  // The v2 hex if there is a v2 hash, else the v1 hex, else "".
  std::string BestHex() const;
  friend bool operator==(const InfoHashes&, const InfoHashes&) = default;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_INFO_HASH_H_
