// The swarm of one CDN content: fetches it from peers and serves it to them
// over the BitTorrent peer wire protocol, as a v2 torrent whose info-hash is
// the content ID.
//
// Fetching: ut_metadata (BEP 9) brings the canonical info dict, checked against
// the content ID and for canonical form; BEP 52 hash requests bring the piece
// layer, checked against the pieces root; then blocks are requested as the
// piece picker says, pieces are verified on the hashing pool and stored in the
// chunk store, and readers waiting on PieceEvents are woken. Serving: the same
// in reverse, reading verified pieces from the chunk store.
//
// Lives on the network thread: every method must be called there.
#ifndef SHOAL_NODE_CONTENT_SWARM_H_
#define SHOAL_NODE_CONTENT_SWARM_H_

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "base/thread_pool.h"
#include "chunk/bitfield.h"
#include "chunk/content_id.h"
#include "chunk/merkle_hashes.h"
#include "chunk/piece_picker.h"
#include "node/asio.h"
#include "node/peer_connection.h"
#include "node/piece_events.h"
#include "store/chunk_store.h"
#include "wire/extension.h"
#include "wire/handshake.h"

namespace shoal::node {

struct SwarmOptions {
  // Peers we keep connections to at most.
  int max_peers = 50;
  // Regular upload slots; trusted (cluster) mode unchokes every interested
  // peer.
  bool trusted_peers = true;
  // Requests outstanding to one peer: from this, growing with its measured
  // rate.
  int min_requests = 16;
  int max_requests = 500;
  // Pieces failed by a peer before it is banned.
  int ban_after_bad_pieces = 3;
  // Largest info dict we accept through ut_metadata.
  int64_t max_metadata_size = 1 << 20;
};

class ContentSwarm : public PeerConnection::Handler {
 public:
  ContentSwarm(asio::io_context& io, store::ChunkStore& store, ThreadPool& pool,
               const chunk::ContentId& id, SwarmOptions options,
               std::string client_name, uint16_t listen_port);
  ~ContentSwarm() override;

  // Loads what the store knows (a stored content's record and pieces). Call
  // once after construction.
  void Init();

  const chunk::ContentId& id() const { return id_; }
  // The 20-byte info-hash handshakes carry.
  std::array<uint8_t, 20> info_hash() const;
  bool complete() const;
  bool has_metadata() const { return layout_.has_value(); }
  std::shared_ptr<PieceEvents> events() const { return events_; }
  size_t num_peers() const { return peers_.size(); }
  bool IsBanned(const asio::ip::address& a) const {
    return banned_.contains(a.to_string());
  }

  // Takes a connection whose handshake (`theirs`) is done.
  void AddPeer(std::shared_ptr<PeerConnection> conn,
               const wire::Handshake& theirs);

  // Closes every connection (the content is removed or the node stops).
  void Shutdown();

  // PeerConnection::Handler
  void OnMessage(PeerConnection& conn, const wire::Message& message) override;
  void OnClose(PeerConnection& conn, const absl::Status& why) override;
  void OnWritable(PeerConnection& conn) override;

 private:
  struct Peer;
  struct PartialPiece {
    std::string data;
    std::vector<uint64_t> senders;  // each peer that sent a block, once
  };

  Peer* Find(PeerConnection& conn);
  void Drop(PeerConnection& conn, const absl::Status& why);
  void Ban(Peer& p, const std::string& why);

  // Metadata and hashes.
  void SetMetadata(std::string info_dict);
  absl::Status ParseCanonical(const std::string& dict);
  void MaybeRequestMetadata(Peer& p);
  void OnMetadataMessage(Peer& p, std::string_view payload);
  void MaybeRequestHashes(Peer& p);
  void OnHashes(Peer& p, const wire::Hashes& m);
  void OnLayerComplete();
  void StartDownloading();

  // Serving.
  void OnExtended(Peer& p, const wire::Extended& m);
  void OnRequest(Peer& p, const wire::BlockSpec& b);
  void OnHashRequest(Peer& p, const wire::HashRequest& m);
  void ServeQueued(Peer& p);
  void SendBlockFromPiece(Peer& p, const wire::BlockSpec& b,
                          const std::shared_ptr<const std::string>& piece);
  void UpdateChoke(Peer& p);

  // Downloading.
  void OnPeerHas(Peer& p);
  void UpdateInterest(Peer& p);
  void RequestMore(Peer& p);
  void OnPiece(Peer& p, const wire::Piece& m);
  void OnPieceVerified(uint32_t piece, std::vector<uint64_t> senders,
                       absl::Status status);
  void Complete();

  asio::io_context& io_;
  store::ChunkStore& store_;
  ThreadPool& pool_;
  const chunk::ContentId id_;
  const SwarmOptions options_;
  const std::string client_name_;
  const uint16_t listen_port_;
  std::shared_ptr<PieceEvents> events_;
  // Guards against callbacks from the pool arriving after destruction.
  std::shared_ptr<bool> alive_;

  // Known once the metadata arrives (or at once for stored content).
  std::string info_dict_;
  std::vector<std::string> metadata_pieces_;
  std::optional<chunk::ContentLayout> layout_;
  chunk::Sha256Digest pieces_root_{};
  std::vector<chunk::Sha256Digest> layer_;
  std::vector<bool> layer_known_;
  uint32_t layer_missing_ = 0;
  std::unique_ptr<chunk::PieceLayerTree> tree_;
  std::unique_ptr<chunk::PiecePicker> picker_;
  bool stored_ = false;  // the record exists in the store
  std::map<uint32_t, PartialPiece> partial_;
  uint32_t verifying_ = 0;
  // Pieces handed to the pool for verification: late blocks for them are
  // dropped.
  absl::flat_hash_set<uint32_t> verifying_pieces_;

  absl::flat_hash_map<uint64_t, std::unique_ptr<Peer>> peers_;
  absl::flat_hash_set<std::string> banned_;
  // Connections banned here: pieces they contributed to fail without blaming
  // the others.
  absl::flat_hash_set<uint64_t> banned_keys_;
  // Recently read, verified pieces, for serving blocks without reading a piece
  // per block.
  std::list<std::pair<uint32_t, std::shared_ptr<const std::string>>>
      piece_cache_;
  absl::flat_hash_map<uint32_t,
                      std::vector<std::pair<uint64_t, wire::BlockSpec>>>
      piece_reads_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_CONTENT_SWARM_H_
