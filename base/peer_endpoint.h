// The address of a peer, as trackers, PEX and the DHT report it: an IPv4 or
// IPv6 address and a port, decoded from BEP 23 compact strings (6 bytes per
// IPv4 peer), BEP 7 compact strings (18 bytes per IPv6 peer) or the "ip"/"port"
// of a BEP 3 dictionary peer.
//
//   absl::StatusOr<std::vector<PeerEndpoint>> peers =
//       ParseCompactPeers(bytes, AddressFamily::kV4, /*max_peers=*/200);
//   peers->front().ToString();  // "10.0.0.1:6881"
#ifndef SHOAL_BASE_PEER_ENDPOINT_H_
#define SHOAL_BASE_PEER_ENDPOINT_H_

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal {

enum class AddressFamily : uint8_t { kV4, kV6 };

// An IP address and port. A value type; ordered so it can key sets and maps.
struct PeerEndpoint {
  AddressFamily family = AddressFamily::kV4;
  // Network byte order. IPv4 uses the first 4 bytes; the rest are zero.
  std::array<uint8_t, 16> address{};
  uint16_t port = 0;

  // REQUIRES: for kV4, bytes.size() == 4; for kV6, bytes.size() == 16.
  static PeerEndpoint FromBytes(AddressFamily family, std::string_view bytes,
                                uint16_t port);
  // Parses a numeric address ("10.0.0.1", "::1"; no host names). nullopt if it
  // is not one.
  static std::optional<PeerEndpoint> FromIpString(std::string_view ip,
                                                  uint16_t port);

  // The address bytes: 4 for IPv4, 16 for IPv6.
  std::string_view AddressBytes() const;
  // "10.0.0.1" or "2001:db8::1".
  std::string IpString() const;
  // "10.0.0.1:6881" or "[2001:db8::1]:6881".
  std::string ToString() const;

  friend auto operator<=>(const PeerEndpoint&, const PeerEndpoint&) = default;
};

// Bytes per compact peer: 6 for IPv4 (BEP 23), 18 for IPv6 (BEP 7).
constexpr size_t CompactPeerSize(AddressFamily family) {
  return family == AddressFamily::kV4 ? 6 : 18;
}

// Decodes a compact peer list (address then big-endian port, repeated).
// Entries with port 0 are dropped. At most `max_peers` are returned; the rest
// are ignored. INVALID_ARGUMENT if the length is not a multiple of the entry
// size.
absl::StatusOr<std::vector<PeerEndpoint>> ParseCompactPeers(
    std::string_view bytes, AddressFamily family, size_t max_peers);

// The compact encoding of `peers` (all of one family). For tests and fake
// trackers.
std::string EncodeCompactPeers(const std::vector<PeerEndpoint>& peers);

}  // namespace shoal

#endif  // SHOAL_BASE_PEER_ENDPOINT_H_
