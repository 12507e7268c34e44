// The swarm engine's per-peer state and constants, shared by its source
// files (node/swarm.cc: peers, ticks, choking and message dispatch;
// swarm_metadata.cc: ut_metadata, PEX and piece-layer exchange;
// swarm_download.cc: the request pipeline, verification and blame;
// swarm_upload.cc: serving blocks and super-seeding). Not for use outside
// them.
#ifndef SHOAL_NODE_SWARM_PEER_H_
#define SHOAL_NODE_SWARM_PEER_H_

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/sha.h"
#include "node/rate_meter.h"
#include "node/request_queue.h"
#include "node/swarm.h"
#include "wire/pex.h"

namespace shoal::node {
namespace swarm_internal {

using codec::Sha256Digest;

inline constexpr uint8_t kOurMetadataId = 1;
inline constexpr uint8_t kOurPexId = 2;
inline constexpr uint8_t kOurUploadOnlyId = 3;
inline constexpr uint32_t kMaxBlockRequest = 128 * 1024;
inline constexpr int kHashPeers = 4;
// With SwarmOptions::upload_backlog_bytes: what a link may leave unsent in
// the kernel, beyond what queued_bytes() counts.
inline constexpr size_t kUnsentPerLink = 64 << 10;
// Ticks (seconds) between rechokes.
inline constexpr uint64_t kRechokeTicks = 10;
// A peer not dialed, or refused, for reasons of ours (a connection limit, a
// duplicate connection) is tried again after this long.
inline constexpr uint64_t kBusyRetryTicks = 30;
// A peer silent this long is dropped; we send a keep-alive after half of it.
inline constexpr uint64_t kIdleTicks = 120;
// Seconds a peer has to answer a request for the block hashes under a bad
// piece before the next peer is asked.
inline constexpr uint64_t kBlameAnswerTicks = 5;

}  // namespace swarm_internal

// One connected peer: what the swarm knows of it and owes it. Owned by the
// swarm (peers_, by connection key) from AddPeer until the deferred erase
// after OnClose; `gone` is set at OnClose, and a gone peer is skipped by
// every loop (LivePeers) and sent nothing. The fields are grouped by the
// concern that writes them:
//   - the connection: conn, handshake, ext (BEP 10), incoming, fast (BEP 6);
//   - choking and interest, both ways (swarm.cc);
//   - what it has: has (sized once the metadata is known; before that the
//     raw bitfield and haves wait in raw_bitfield and early_haves), has_all,
//     registered (its pieces are counted in the picker's availability);
//   - what it asked of us (requests_in, swarm_upload.cc) and what we asked of
//     it (requests, a RequestQueue);
//   - traffic: payload meters, silence counters (swarm.cc's Tick);
//   - metadata and hash requests made of it, PEX, BEP 6 sets.
struct Swarm::Peer {
  std::shared_ptr<PeerLink> conn;
  wire::Handshake handshake;
  bool incoming = false;
  bool fast = false;
  wire::ExtensionHandshake ext;
  bool got_ext = false;
  // BEP 21: it wants nothing (a seed or a partial seed), by its extension
  // handshake or its latest upload_only message; and what we last told it of
  // ourselves.
  bool upload_only = false;
  bool told_upload_only = false;
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool has_all = false;
  std::string raw_bitfield;           // before the metadata is known
  std::vector<uint32_t> early_haves;  // likewise
  chunk::Bitfield has;
  bool registered = false;  // its availability is in the picker
  // Our hello went out before our pieces were known (metadata or check
  // pending): it said "none", so what the check finds follows as haves.
  bool hello_unchecked = false;
  std::deque<wire::BlockSpec> requests_in;
  // What we asked it for (set up in AddPeer from the options).
  RequestQueue requests{RequestQueue::Options{}};
  bool metadata_requested = false;
  bool hashes_requested = false;
  bool gone = false;
  // Its listen address, if known: the one we dialed, or the address it came
  // from with the listen port its extension handshake gave.
  std::optional<PeerEndpoint> listen;
  // Payload bytes from it and to it, with their rates.
  RateMeter down;
  RateMeter up;
  // Link bytes (payload and protocol) at the last tick, and ticks since they
  // last moved: a silent peer is dropped, a keep-alive keeps us from being.
  uint64_t last_bytes_in = 0;
  uint64_t last_bytes_out = 0;
  uint64_t idle_in = 0;
  uint64_t idle_out = 0;
  uint64_t connected_ticks = 0;
  uint64_t last_pex_in = 0;
  std::unique_ptr<wire::PexTracker> pex;
  // BEP 6: pieces it lets us request while it chokes us, and the pieces we
  // let it request while we choke it.
  std::vector<uint32_t> allowed_in;
  std::vector<uint32_t> allowed_out;
  // BEP 6 suggest: pieces it would rather serve (cached, say), tried first.
  std::vector<uint32_t> suggested;
  // Pieces it rejected our requests for, with the tick: asked of others
  // until the next tick.
  std::vector<std::pair<uint32_t, uint64_t>> rejected;

  // Whether it has `piece` (false before its bitfield is known).
  bool Has(uint32_t piece) const {
    return has_all || (has.size() > piece && has.test(piece));
  }
  // Whether it has every piece.
  bool IsSeed() const { return has_all || (has.size() > 0 && has.all()); }

  double progress(uint32_t n) const {
    if (has_all) return 1;
    return n == 0 ? 0 : static_cast<double>(has.count()) / n;
  }
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SWARM_PEER_H_
