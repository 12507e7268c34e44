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
#include "node/request_queue.h"
#include "node/swarm.h"
#include "wire/pex.h"

namespace shoal::node {
namespace swarm_internal {

using codec::Sha256Digest;

inline constexpr uint8_t kOurMetadataId = 1;
inline constexpr uint8_t kOurPexId = 2;
inline constexpr uint32_t kMaxBlockRequest = 128 * 1024;
inline constexpr int kHashPeers = 4;
// Ticks (seconds) between rechokes.
inline constexpr uint64_t kRechokeTicks = 10;
// A peer silent this long is dropped; we send a keep-alive after half of it.
inline constexpr uint64_t kIdleTicks = 120;
// Seconds a peer has to answer a request for the block hashes under a bad
// piece before the next peer is asked.
inline constexpr uint64_t kBlameAnswerTicks = 5;

}  // namespace swarm_internal

struct Swarm::Peer {
  std::shared_ptr<PeerLink> conn;
  wire::Handshake handshake;
  bool incoming = false;
  bool fast = false;
  wire::ExtensionHandshake ext;
  bool got_ext = false;
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
  std::string listen_key;  // its listen address, if known
  // Rates, payload bytes.
  uint64_t downloaded = 0;
  uint64_t uploaded = 0;
  uint64_t last_downloaded = 0;
  uint64_t last_uploaded = 0;
  double download_rate = 0;
  double upload_rate = 0;
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
  // Super-seeding: pieces revealed to it, with the bytes of each not yet
  // sent to it, and their sum.
  std::map<uint32_t, uint64_t> revealed_left;
  uint64_t revealed_bytes_left = 0;

  double progress(uint32_t n) const {
    if (has_all) return 1;
    return n == 0 ? 0 : static_cast<double>(has.count()) / n;
  }
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SWARM_PEER_H_
