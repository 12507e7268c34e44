// The allowed-fast set of BEP 6: the pieces a peer may request while it is
// choked, derived from its address and the info-hash so that every client
// computes the same set for it.
#ifndef SHOAL_WIRE_ALLOWED_FAST_H_
#define SHOAL_WIRE_ALLOWED_FAST_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace shoal::wire {

// BEP 6's canonical algorithm for an IPv4 peer: up to `k` distinct piece
// indexes (fewer only if the torrent has fewer pieces), in the order found.
std::vector<uint32_t> AllowedFastSet(const std::array<uint8_t, 4>& ipv4,
                                     const std::array<uint8_t, 20>& info_hash,
                                     uint32_t num_pieces, size_t k);

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_ALLOWED_FAST_H_
