// BEP 14 Local Service Discovery: the announce a client multicasts on its LAN
// (239.192.152.143:6771, [ff15::efc0:988f]:6771) so that peers of the same
// torrents find each other without a tracker or the DHT. Sans-I/O: encoding
// and parsing only (node/lsd_service.h sends and receives).
//
//   BT-SEARCH * HTTP/1.1\r\n
//   Host: 239.192.152.143:6771\r\n
//   Port: 6881\r\n
//   Infohash: 0123456789abcdef0123456789abcdef01234567\r\n   (one or more)
//   cookie: 5f2d8a1c\r\n                                     (optional)
//   \r\n\r\n
#ifndef SHOAL_TRACKER_LSD_H_
#define SHOAL_TRACKER_LSD_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::tracker {

inline constexpr uint16_t kLsdPort = 6771;
inline constexpr char kLsdGroupV4[] = "239.192.152.143";
inline constexpr char kLsdGroupV6[] = "ff15::efc0:988f";
// Info-hashes read from one message, at most (the rest are ignored).
inline constexpr size_t kLsdMaxHashes = 64;

// A value type.
struct LsdAnnounce {
  uint16_t port = 0;  // the sender's peer port
  // 20-byte info-hashes (a v2 torrent's is its truncated SHA-256).
  std::vector<std::array<uint8_t, 20>> info_hashes;
  // Tells a node its own announces apart when the group loops back.
  std::string cookie;
};

// The datagram for `a`; its Host header names the IPv6 group if `v6`.
std::string EncodeLsdAnnounce(const LsdAnnounce& a, bool v6);

// INVALID_ARGUMENT for anything but a BT-SEARCH with a port in 1-65535 and
// at least one well-formed info-hash (40 hex digits, either case). Header
// names are case-insensitive; unknown headers are ignored.
absl::StatusOr<LsdAnnounce> ParseLsdAnnounce(std::string_view datagram);

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_LSD_H_
