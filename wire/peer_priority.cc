#include "wire/peer_priority.h"

#include <algorithm>
#include <array>
#include <string>

namespace shoal::wire {

// Written out: Debian 12 has no C++ CRC-32C library (RocksDB has one inside,
// which the peer wire must not depend on), and it is a loop over a table.
uint32_t Crc32c(std::string_view bytes) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : bytes)
    crc = kTable[(crc ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t CanonicalPeerPriority(const PeerEndpoint& self,
                               const PeerEndpoint& peer) {
  std::string a(self.AddressBytes());
  std::string b(peer.AddressBytes());
  if (a == b) {
    // The same address: the ports, big-endian.
    std::string x{static_cast<char>(self.port >> 8),
                  static_cast<char>(self.port & 0xFF)};
    std::string y{static_cast<char>(peer.port >> 8),
                  static_cast<char>(peer.port & 0xFF)};
    if (y < x) std::swap(x, y);
    return Crc32c(x + y);
  }
  if (a.size() == b.size()) {
    // Whole bytes the addresses share at the start, beyond the always-kept
    // prefix (2 bytes for IPv4, 6 for IPv6), unmask one more byte each.
    const size_t kept = a.size() == 4 ? 2 : 6;
    size_t same = 0;
    while (same < a.size() && a[same] == b[same]) ++same;
    const size_t full = std::max(kept, std::min(a.size(), same + 1));
    for (size_t i = full; i < a.size(); ++i) {
      a[i] = static_cast<char>(a[i] & 0x55);
      b[i] = static_cast<char>(b[i] & 0x55);
    }
  }
  if (b < a) std::swap(a, b);
  return Crc32c(a + b);
}

}  // namespace shoal::wire
