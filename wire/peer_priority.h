// BEP 40 canonical peer priority: a number both ends of a connection agree
// on, from their addresses, so that a swarm whose peers all have full
// connection lists still lets newcomers in, the same way everywhere:
//
//   priority = crc32-c(sort(masked own IP, masked peer IP))
//
// (the ports instead when the IPs are equal). The mask keeps the high bits of
// both addresses and every other bit below them (FF.FF.55.55), unmasking a
// byte more for each leading byte the two addresses share (same /16:
// FF.FF.FF.55; same /24: all of it); IPv6 likewise from
// FFFF:FFFF:FFFF:5555:... by the /48, /56, ... they share.
#ifndef SHOAL_WIRE_PEER_PRIORITY_H_
#define SHOAL_WIRE_PEER_PRIORITY_H_

#include <cstdint>
#include <string_view>

#include "base/peer_endpoint.h"

namespace shoal::wire {

// CRC-32C (Castagnoli), as BEP 40 specifies.
uint32_t Crc32c(std::string_view bytes);

// The priority of a connection between `self` (our address as the peer sees
// it) and `peer`; higher is kept first. Addresses of different families
// compare as they are.
uint32_t CanonicalPeerPriority(const PeerEndpoint& self,
                               const PeerEndpoint& peer);

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_PEER_PRIORITY_H_
