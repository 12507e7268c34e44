// Peer exchange (BEP 11, ut_pex): the message codec and the per-connection
// diff that decides what to send.
//
// A ut_pex message tells a peer which peers we connected to ("added", with a
// flag byte each) and disconnected from ("dropped") since the last message,
// as compact strings: 6 bytes per IPv4 peer, 18 per IPv6 peer.
//
//   PexTracker pex;  // one per connection that negotiated ut_pex
//   // on a timer:
//   if (std::optional<PexMessage> m = pex.Update(connected, now_ms))
//     send(EncodePex(*m));
//   absl::StatusOr<PexMessage> in = ParsePex(payload);
#ifndef SHOAL_WIRE_PEX_H_
#define SHOAL_WIRE_PEX_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::wire {

// Flag bits of "added.f" / "added6.f" (BEP 11).
inline constexpr uint8_t kPexPrefersEncryption = 0x01;
inline constexpr uint8_t kPexSeed = 0x02;  // seed or upload_only
inline constexpr uint8_t kPexSupportsUtp = 0x04;
inline constexpr uint8_t kPexHolepunch = 0x08;  // supports ut_holepunch
inline constexpr uint8_t kPexReachable = 0x10;  // we connected out to it

// One peer in a PEX message. A value type.
struct PexPeer {
  std::string ip;  // numeric: "10.0.0.1" or "2001:db8::1"
  uint16_t port = 0;
  uint8_t flags = 0;  // kPex* bits; meaningful in `added` only

  friend bool operator==(const PexPeer&, const PexPeer&) = default;
};

// The payload of a ut_pex message. IPv4 and IPv6 peers share each list; the
// codec sorts them into "added"/"added6" and "dropped"/"dropped6". A value
// type.
struct PexMessage {
  std::vector<PexPeer> added;
  std::vector<PexPeer> dropped;

  friend bool operator==(const PexMessage&, const PexMessage&) = default;
};

// Returns the bencoded payload. Peers whose ip is not a numeric IPv4 or IPv6
// address, or whose port is 0, are left out.
std::string EncodePex(const PexMessage& m);

// Decodes an untrusted payload. INVALID_ARGUMENT if it is not a bencoded
// dictionary, if one of the six PEX keys is not a string, if a compact peer
// string's length is not a multiple of 6 (18 for IPv6), or if added+added6 or
// dropped+dropped6 hold more than `max_peers` entries. A flags string shorter
// than its peer list leaves the remaining flags 0 (longer: the excess is
// ignored). Entries with port 0 are skipped. Unknown keys are ignored.
absl::StatusOr<PexMessage> ParsePex(std::string_view payload,
                                    size_t max_peers = 200);

// What one connection has been told about the swarm, and when: turns the
// swarm's current peer set into the next "added since / dropped since"
// message. Sans-I/O (the caller passes the time). Thread-compatible.
class PexTracker {
 public:
  // BEP 11: at most one message a minute.
  static constexpr int64_t kIntervalMs = 60'000;
  // BEP 11: at most 50 added and 50 dropped per message. Applied to the first
  // message too (BEP 11 exempts it), which only delays the rest a minute.
  static constexpr size_t kMaxAdded = 50;
  static constexpr size_t kMaxDropped = 50;

  // True if a message may be sent at `now_ms`: none has been sent yet, or the
  // last was at least kIntervalMs ago.
  bool Due(int64_t now_ms) const;

  // The diff between `connected` (the swarm's current peers; the caller leaves
  // out the peer this tracker sends to) and what this connection has been told,
  // or nullopt if there is none or the message is not Due(now_ms). A returned
  // message counts as sent at `now_ms`, so the caller must send it. Entries
  // with an ip that is not numeric or a port of 0 are ignored; a peer's flags
  // are those it had when it was added.
  std::optional<PexMessage> Update(const std::vector<PexPeer>& connected,
                                   int64_t now_ms);

 private:
  // (address bytes, port): bytes rather than text so that two spellings of one
  // IPv6 address are one peer.
  using Key = std::pair<std::string, uint16_t>;
  // The peers this connection has been told are connected.
  std::set<Key> told_;
  std::optional<int64_t> last_sent_ms_;
};

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_PEX_H_
