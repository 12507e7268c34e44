#include "base/peer_endpoint.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal {

PeerEndpoint PeerEndpoint::FromBytes(AddressFamily family,
                                     std::string_view bytes, uint16_t port) {
  PeerEndpoint e;
  e.family = family;
  std::memcpy(e.address.data(), bytes.data(),
              family == AddressFamily::kV4 ? 4 : 16);
  e.port = port;
  return e;
}

std::optional<PeerEndpoint> PeerEndpoint::FromIpString(std::string_view ip,
                                                       uint16_t port) {
  if (ip.empty() || ip.size() > 64) return std::nullopt;
  std::string s(ip);  // inet_pton needs a terminator
  PeerEndpoint e;
  e.port = port;
  if (inet_pton(AF_INET, s.c_str(), e.address.data()) == 1) {
    e.family = AddressFamily::kV4;
    return e;
  }
  if (inet_pton(AF_INET6, s.c_str(), e.address.data()) == 1) {
    e.family = AddressFamily::kV6;
    return e;
  }
  return std::nullopt;
}

std::string_view PeerEndpoint::AddressBytes() const {
  return {reinterpret_cast<const char*>(address.data()),
          family == AddressFamily::kV4 ? size_t{4} : size_t{16}};
}

std::string PeerEndpoint::IpString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == AddressFamily::kV4 ? AF_INET : AF_INET6, address.data(),
            buf, sizeof(buf));
  return buf;
}

std::string PeerEndpoint::ToString() const {
  if (family == AddressFamily::kV4) return absl::StrCat(IpString(), ":", port);
  return absl::StrCat("[", IpString(), "]:", port);
}

absl::StatusOr<std::vector<PeerEndpoint>> ParseCompactPeers(
    std::string_view bytes, AddressFamily family, size_t max_peers) {
  const size_t entry = CompactPeerSize(family);
  const size_t addr_len = entry - 2;
  if (bytes.size() % entry != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact peers: length ", bytes.size(),
                     " is not a multiple of ", entry));
  }
  std::vector<PeerEndpoint> peers;
  const size_t n = std::min(bytes.size() / entry, max_peers);
  peers.reserve(n);
  for (size_t i = 0; i < bytes.size() / entry && peers.size() < max_peers;
       ++i) {
    std::string_view e = bytes.substr(i * entry, entry);
    uint16_t port =
        static_cast<uint16_t>((static_cast<uint8_t>(e[addr_len]) << 8) |
                              static_cast<uint8_t>(e[addr_len + 1]));
    if (port == 0) continue;
    peers.push_back(
        PeerEndpoint::FromBytes(family, e.substr(0, addr_len), port));
  }
  return peers;
}

std::string EncodeCompactPeers(const std::vector<PeerEndpoint>& peers) {
  std::string out;
  for (const PeerEndpoint& p : peers) {
    out.append(p.AddressBytes());
    out.push_back(static_cast<char>(p.port >> 8));
    out.push_back(static_cast<char>(p.port & 0xff));
  }
  return out;
}

}  // namespace shoal
