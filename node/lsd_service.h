// Local Service Discovery (BEP 14) on the node's LAN: announces the node's
// torrents to the IPv4 and IPv6 multicast groups (tracker/lsd.h) and reports
// the peers that announce the same torrents. Session decides what to
// announce (torrents, not CDN content, not private torrents; config `lsd`)
// and how often; this owns the sockets.
//
// Each family's socket binds port 6771 with SO_REUSEADDR (other clients on
// the host may listen too) and joins its group on the default interface; a
// family the host cannot use (no IPv6, no multicast route) is skipped with a
// log line. The node's own announces, looped back by the group, are told
// apart by a random cookie.
//
// Network thread only.
#ifndef SHOAL_NODE_LSD_SERVICE_H_
#define SHOAL_NODE_LSD_SERVICE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/peer_endpoint.h"
#include "node/asio.h"

namespace shoal::node {

class LsdService {
 public:
  using InfoHash = std::array<uint8_t, 20>;
  using OnPeer =
      std::function<void(const InfoHash& info_hash, const PeerEndpoint& peer)>;

  // `port`: our peer port, which the announces carry; `cookie`: random.
  LsdService(asio::io_context& io, uint16_t port, std::string cookie,
             OnPeer on_peer);
  ~LsdService();
  LsdService(const LsdService&) = delete;
  LsdService& operator=(const LsdService&) = delete;

  // Opens the sockets. UNAVAILABLE if neither family works.
  absl::Status Start();
  void Stop();
  // Multicasts one announce of `info_hashes` on each family that works.
  void Announce(const std::vector<InfoHash>& info_hashes);

  // Announces received from others, and how many were malformed.
  uint64_t received() const { return received_; }
  uint64_t malformed() const { return malformed_; }

 private:
  struct Group;
  void Receive(Group& g);

  asio::io_context& io_;
  const uint16_t port_;
  const std::string cookie_;
  OnPeer on_peer_;
  std::vector<std::unique_ptr<Group>> groups_;
  uint64_t received_ = 0;
  uint64_t malformed_ = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_LSD_SERVICE_H_
