// The swarm of one CDN content: the engine (node/swarm.h) over the chunk
// store, for a canonical v2 torrent whose info-hash is the content ID.
//
// Metadata that arrives through ut_metadata must be Shoal's canonical info
// dict for the content (not just any dict with that hash, which cannot exist,
// but also not a dict the store could not describe). Once the piece layer is
// known the content record is created in the store; verified pieces go into
// it, and readers waiting on PieceEvents are woken.
//
// A directory (chunk/directory.h) is fetched differently: the swarm fetches
// its dict, stores the directory's record, reports the metadata known (with
// no pieces) and stops; its files are fetched as contents of their own. A
// directory whose files are all held is served as the multi-file v2 torrent it
// is, reading each piece from the file's chunks.
//
// Lives on the network thread: every method must be called there.
#ifndef SHOAL_NODE_CONTENT_SWARM_H_
#define SHOAL_NODE_CONTENT_SWARM_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "chunk/content_id.h"
#include "node/piece_events.h"
#include "node/swarm.h"
#include "store/chunk_store.h"

namespace shoal::node {

class ContentSwarm final : public Swarm {
 public:
  // Sans-I/O like Swarm: everything outside comes through `env`.
  ContentSwarm(SwarmEnv& env, store::ChunkStore& store,
               const chunk::ContentId& id, SwarmOptions options,
               std::string client_name, uint16_t listen_port);

  // Loads what the store knows (a stored content's record and pieces). Call
  // once after construction.
  void Init();

  const chunk::ContentId& id() const { return id_; }
  std::shared_ptr<PieceEvents> events() const { return events_; }
  // Runs when every piece is held (the node then provides the content).
  void set_on_complete(std::function<void()> f) { on_complete_ = std::move(f); }
  // Runs when a fetch has verified the metadata and starts on the pieces.
  void set_on_started(std::function<void()> f) { on_started_ = std::move(f); }
  // Runs when the fetch fails (the node then stops providing it).
  void set_on_failed(std::function<void()> f) { on_failed_ = std::move(f); }
  // The peers connected when a directory's dict arrived (they hold it).
  const std::vector<PeerInfo>& directory_peers() const {
    return directory_peers_;
  }
  // Runs when a fetched dict turned out to be a directory's, now stored: the
  // swarm has nothing more to do.
  void set_on_directory(std::function<void()> f) {
    on_directory_ = std::move(f);
  }

 protected:
  absl::StatusOr<chunk::Metainfo> ParseMetadata(
      const std::string& info_dict) override;
  void Prepare() override;
  void OnPieceHave(uint32_t piece) override {
    events_->MarkHave(piece);
    unsynced_ = true;
  }
  void OnError(const absl::Status& status) override {
    events_->Fail(status);
    ReportFetch(FetchResult::kFailed, std::string(status.message()));
    if (on_failed_) on_failed_();
  }
  void OnNoPeers() override;
  void OnComplete() override;
  void OnTick() override;

 private:
  store::ChunkStore& store_;
  const chunk::ContentId id_;
  std::shared_ptr<PieceEvents> events_;
  bool stored_ = false;  // the record exists in the store
  // Pieces arrived since the last Sync() (the store counts them as held once
  // they are durable).
  bool unsynced_ = false;
  void PostSync();
  // Counts the fetch's outcome in NodeStats and publishes it, once.
  void ReportFetch(FetchResult result, std::string why = "");
  // fetch_started, once the fetch knows the content's layout.
  void ReportStarted(uint64_t length);
  bool started_reported_ = false;
  // The content was not complete here when the swarm started.
  bool fetching_ = false;
  const std::chrono::steady_clock::time_point fetch_started_ =
      std::chrono::steady_clock::now();
  std::function<void()> on_started_;
  std::function<void()> on_complete_;
  std::function<void()> on_failed_;
  std::function<void()> on_directory_;
  // A directory's dict received with ut_metadata, kept for Prepare().
  std::shared_ptr<const chunk::Directory> fetched_directory_;
  std::vector<PeerInfo> directory_peers_;
  // Serves a stored, complete directory.
  void InitDirectory(const store::ContentState& st);
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_CONTENT_SWARM_H_
