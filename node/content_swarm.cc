#include "node/content_swarm.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

chunk::InfoHashes HashesOf(const chunk::ContentId& id) {
  chunk::InfoHashes h;
  h.v2 = chunk::InfoHashV2::FromBytes(id.AsStringView());
  return h;
}

// A content's pieces in the chunk store, seen as a torrent's: the torrent
// pads the last piece to the piece length with zeros, the store keeps it
// without them.
class ChunkStorePieces final : public store::PieceStorage {
 public:
  ChunkStorePieces(store::ChunkStore& store, const chunk::ContentId& id,
                   chunk::ContentLayout layout)
      : store_(store), id_(id), layout_(layout) {}

  absl::Status WritePiece(uint32_t piece, std::string_view data) override {
    if (piece >= layout_.num_pieces())
      return absl::OutOfRangeError("piece index past the content");
    data = data.substr(0, layout_.piece_size(piece));
    return store_.PutContentPiece(id_, piece, chunk::AsBytes(data));
  }
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override {
    auto data = store_.ReadPiece(id_, piece);
    if (!data.ok()) return data.status();
    if (uint64_t{offset} + length > layout_.piece_length)
      return absl::OutOfRangeError("block past the piece");
    data->resize(layout_.piece_length, '\0');
    return data->substr(offset, length);
  }
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override {
    return store_.ReadPiece(id_, piece);
  }

 private:
  store::ChunkStore& store_;
  const chunk::ContentId id_;
  const chunk::ContentLayout layout_;
};

}  // namespace

ContentSwarm::ContentSwarm(asio::io_context& io, store::ChunkStore& store,
                           ThreadPool& pool, const chunk::ContentId& id,
                           SwarmOptions options, std::string client_name,
                           uint16_t listen_port)
    : Swarm(io, pool, HashesOf(id), options, std::move(client_name),
            listen_port),
      store_(store),
      id_(id),
      events_(std::make_shared<PieceEvents>()) {}

void ContentSwarm::ReportFetch(FetchResult result) {
  if (!fetching_) return;
  fetching_ = false;
  NodeStats::Get().FetchFinished(
      result, std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                            fetch_started_)
                  .count());
}

void ContentSwarm::Init() {
  auto st = store_.Stat(id_);
  fetching_ = !(st.ok() && st->complete());
  if (!st.ok()) return;
  const store::ContentRecord& r = st->record;
  stored_ = true;
  if (r.length == 0) {  // nothing to fetch or serve
    events_->SetNumPieces(0);
    return;
  }
  auto m =
      chunk::ParseInfoDict(chunk::CanonicalInfoDict(r.layout(), r.pieces_root));
  if (!m.ok()) {
    events_->Fail(m.status());
    return;
  }
  m->piece_layers.assign(1, std::string());
  if (r.piece_layer.size() > 1) {
    for (const auto& h : r.piece_layer)
      m->piece_layers[0].append(reinterpret_cast<const char*>(h.data()), 32);
  }
  SetMetadata(std::make_shared<chunk::Metainfo>(*std::move(m)));
}

absl::StatusOr<chunk::Metainfo> ContentSwarm::ParseMetadata(
    const std::string& info_dict) {
  auto m = Swarm::ParseMetadata(info_dict);
  if (!m.ok()) return m.status();
  if (m->files.empty() || m->multi_file || m->files[0].pad_file ||
      !m->files[0].pieces_root) {
    return absl::InvalidArgumentError(
        "metadata is not a single-file v2 info dict");
  }
  // The only dict that names this content is the canonical one: rebuild and
  // compare.
  const auto layout = chunk::ContentLayout::ForLength(m->files[0].length);
  if (chunk::CanonicalInfoDict(layout, *m->files[0].pieces_root) != info_dict) {
    return absl::InvalidArgumentError(
        "metadata is not Shoal's canonical info dict");
  }
  return m;
}

void ContentSwarm::Prepare() {
  const chunk::Metainfo& m = *metainfo();
  const uint64_t length = m.files[0].length;
  const auto layout = chunk::ContentLayout::ForLength(length);
  if (!stored_) {
    store::ContentRecord record;
    record.id = id_;
    record.length = length;
    record.piece_length = layout.piece_length;
    record.pieces_root = *m.files[0].pieces_root;
    const std::string& layer = piece_layers()[0];
    record.piece_layer.resize(layer.size() / 32);
    for (size_t i = 0; i < record.piece_layer.size(); ++i)
      std::memcpy(record.piece_layer[i].data(), layer.data() + 32 * i, 32);
    auto st = store_.CreateContent(record);
    if (!st.ok()) {
      spdlog::warn("swarm {}: cannot store: {}", id_.Hex().substr(0, 12),
                   st.status().ToString());
      events_->Fail(st.status());
      ReportFetch(FetchResult::kFailed);
      Shutdown();
      return;
    }
    stored_ = true;
    if (on_started_) on_started_();
  }
  events_->SetNumPieces(layout.num_pieces());
  chunk::Bitfield have(layout.num_pieces());
  if (auto held = store_.PiecesHeld(id_); held.ok()) {
    for (uint32_t i = 0; i < held->size() && i < have.size(); ++i) {
      if ((*held)[i]) {
        have.set(i);
        events_->MarkHave(i);
      }
    }
  }
  StartDownloading(std::make_shared<ChunkStorePieces>(store_, id_, layout),
                   have);
}

void ContentSwarm::PostSync() {
  unsynced_ = false;
  pool().Post([&store = store_, id = id_] {
    if (absl::Status s = store.Sync(); !s.ok()) {
      spdlog::warn("swarm {}: flushing fetched pieces: {}",
                   id.Hex().substr(0, 12), s.ToString());
    }
  });
}

void ContentSwarm::OnComplete() {
  ReportFetch(FetchResult::kOk);
  PostSync();
  if (on_complete_) on_complete_();
}

void ContentSwarm::OnTick() {
  if (unsynced_) PostSync();
}

void ContentSwarm::OnNoPeers() {
  events_->Fail(absl::UnavailableError(
      "every peer disconnected before the content was complete"));
  ReportFetch(FetchResult::kFailed);
  if (on_failed_) on_failed_();
}

}  // namespace shoal::node
