#include "node/content_swarm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
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
    return store_.PutContentPiece(id_, piece, codec::AsBytes(data));
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

// A directory's pieces, read from its files' chunks. Each file starts at a
// piece boundary; a directory piece is a whole number of the file's own
// pieces (its piece length is at least the file's), the last one padded with
// zeros.
class DirectoryPieces final : public store::PieceStorage {
 public:
  DirectoryPieces(store::ChunkStore& store,
                  std::shared_ptr<const chunk::Directory> dir)
      : store_(store), dir_(std::move(dir)) {}

  absl::Status WritePiece(uint32_t, std::string_view) override {
    return absl::FailedPreconditionError(
        "a directory's files are fetched as contents of their own");
  }
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override {
    if (uint64_t{offset} + length > dir_->piece_length())
      return absl::OutOfRangeError("block past the piece");
    std::string out;
    out.reserve(length);
    SHOAL_RETURN_IF_ERROR(Append(piece, offset, length, out));
    return out;
  }
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override {
    std::string out;
    SHOAL_RETURN_IF_ERROR(Append(piece, 0, dir_->piece_length(), out, false));
    return out;
  }

 private:
  // Appends bytes [offset, offset + length) of directory piece `piece`; past
  // the file's end, zeros when `pad`.
  absl::Status Append(uint32_t piece, uint32_t offset, uint32_t length,
                      std::string& out, bool pad = true) {
    if (piece >= dir_->num_pieces())
      return absl::OutOfRangeError("piece index past the directory");
    const size_t f = dir_->FileOfPiece(piece);
    const chunk::DirectoryFile& file = dir_->files()[f];
    const chunk::ContentLayout own = file.layout();
    uint64_t pos =
        uint64_t{piece - dir_->first_piece(f)} * dir_->piece_length() + offset;
    uint64_t end = pos + length;
    while (pos < end && pos < file.length) {
      const uint32_t chunk = static_cast<uint32_t>(pos / own.piece_length);
      SHOAL_ASSIGN_OR_RETURN(std::string data,
                             store_.ReadPiece(dir_->file_id(f), chunk));
      const uint64_t in = pos - own.piece_offset(chunk);
      const uint64_t take = std::min<uint64_t>(end - pos, data.size() - in);
      out.append(data, in, take);
      pos += take;
    }
    if (pad && pos < end) out.append(end - pos, '\0');
    return absl::OkStatus();
  }

  store::ChunkStore& store_;
  const std::shared_ptr<const chunk::Directory> dir_;
};

}  // namespace

ContentSwarm::ContentSwarm(SwarmEnv& env, store::ChunkStore& store,
                           const chunk::ContentId& id, SwarmOptions options,
                           std::string client_name, uint16_t listen_port)
    : Swarm(env, HashesOf(id), options, std::move(client_name), listen_port),
      store_(store),
      id_(id),
      events_(std::make_shared<PieceEvents>()) {}

void ContentSwarm::ReportFetch(FetchResult result, std::string why) {
  if (!fetching_) return;
  fetching_ = false;
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - fetch_started_)
                             .count();
  NodeStats::Get().FetchFinished(result, seconds);
  if (bus_ == nullptr) return;
  Event e;
  e.id = id_.Hex();
  e.seconds = seconds;
  if (result == FetchResult::kOk) {
    e.kind = EventKind::kFetchCompleted;
    e.bytes = e.total_bytes = bytes_wanted();
    e.progress = 1;
    e.download_rate = seconds > 0 ? static_cast<double>(e.bytes) / seconds : 0;
    e.bytes_per_provider = BytesPerPeer();
  } else {
    e.kind = EventKind::kFetchFailed;
    e.message = why.empty() ? "failed" : std::move(why);
  }
  bus_->Publish(std::move(e));
}

void ContentSwarm::ReportStarted(uint64_t length) {
  if (started_reported_ || !fetching_ || bus_ == nullptr) return;
  started_reported_ = true;
  Event e;
  e.kind = EventKind::kFetchStarted;
  e.id = id_.Hex();
  e.providers = static_cast<uint32_t>(num_peers());
  e.total_bytes = length;
  bus_->Publish(std::move(e));
}

void ContentSwarm::Init() {
  auto st = store_.Stat(id_);
  fetching_ = !(st.ok() && st->complete());
  if (!st.ok()) return;
  const store::ContentRecord& r = st->record;
  stored_ = true;
  if (r.is_directory()) {
    InitDirectory(*st);
    return;
  }
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

void ContentSwarm::InitDirectory(const store::ContentState& st) {
  // Its files are fetched as contents of their own; the record stands for the
  // metadata.
  events_->SetNumPieces(0);
  if (!st.complete()) return;
  const auto& dir = st.record.directory;
  auto m = chunk::ParseInfoDict(dir->info_dict());
  if (!m.ok()) {
    events_->Fail(m.status());
    return;
  }
  m->piece_layers.assign(m->files.size(), std::string());
  size_t f = 0;
  for (size_t i = 0; i < m->files.size(); ++i) {
    if (m->files[i].pad_file) continue;
    const chunk::DirectoryFile& file = dir->files()[f];
    auto own = store_.Stat(dir->file_id(f));
    ++f;
    if (!own.ok()) return;  // removed meanwhile
    if (file.length <= dir->piece_length()) continue;
    for (const auto& h : chunk::DirectoryPieceLayer(
             file, own->record.piece_layer, dir->piece_length()))
      m->piece_layers[i].append(reinterpret_cast<const char*>(h.data()), 32);
  }
  SetMetadata(std::make_shared<chunk::Metainfo>(*std::move(m)));
}

absl::StatusOr<chunk::Metainfo> ContentSwarm::ParseMetadata(
    const std::string& info_dict) {
  auto m = Swarm::ParseMetadata(info_dict);
  if (!m.ok()) return m.status();
  // A directory (whose root may hold a single file: to the torrent parser
  // that is a single-file torrent).
  if (auto dir = chunk::Directory::Parse(info_dict); dir.ok()) {
    fetched_directory_ = *std::move(dir);
    return m;
  } else if (m->multi_file) {
    return dir.status();
  }
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
  if (fetched_directory_) {
    auto st = store_.PutDirectory(fetched_directory_, "");
    if (!st.ok()) {
      events_->Fail(st.status());
      ReportFetch(FetchResult::kFailed, std::string(st.status().message()));
      Shutdown();
      return;
    }
    fetched_directory_.reset();
    fetching_ = false;  // its files' fetches are counted
    events_->SetNumPieces(0);
    directory_peers_ = Peers();
    Shutdown();
    if (on_directory_) on_directory_();
    return;
  }
  if (stored_) {
    if (auto st = store_.Stat(id_); st.ok() && st->record.is_directory()) {
      StartDownloading(
          std::make_shared<DirectoryPieces>(store_, st->record.directory),
          chunk::Bitfield(metainfo()->num_pieces, true));
      return;
    }
  }
  const chunk::Metainfo& m = *metainfo();
  const uint64_t length = m.files[0].length;
  const auto layout = chunk::ContentLayout::ForLength(length);
  if (!stored_) {
    store::ContentRecord record;
    record.id = id_;
    record.length = length;
    record.piece_length = layout.piece_length;
    record.pieces_root = *m.files[0].pieces_root;
    record.piece_layer = codec::SplitDigests(piece_layers()[0]);
    auto st = store_.CreateContent(record);
    if (!st.ok()) {
      spdlog::warn("swarm {}: cannot store: {}", id_.Hex().substr(0, 12),
                   st.status().ToString());
      events_->Fail(st.status());
      ReportFetch(FetchResult::kFailed, std::string(st.status().message()));
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
  ReportStarted(length);
  StartDownloading(std::make_shared<ChunkStorePieces>(store_, id_, layout),
                   have);
}

void ContentSwarm::PostSync() {
  unsynced_ = false;
  env().Offload(
      [&store = store_, id = id_] {
        if (absl::Status s = store.Sync(); !s.ok()) {
          spdlog::warn("swarm {}: flushing fetched pieces: {}",
                       id.Hex().substr(0, 12), s.ToString());
        }
      },
      [] {});
}

void ContentSwarm::OnComplete() {
  ReportFetch(FetchResult::kOk);
  PostSync();
  if (on_complete_) on_complete_();
}

void ContentSwarm::OnTick() {
  if (unsynced_) PostSync();
  if (!fetching_ || !started_reported_ || bus_ == nullptr) return;
  Event e;
  e.kind = EventKind::kFetchProgress;
  e.id = id_.Hex();
  e.total_bytes = bytes_wanted();
  e.bytes = std::min(bytes_have(), e.total_bytes);
  e.progress = e.total_bytes > 0 ? static_cast<double>(e.bytes) /
                                       static_cast<double>(e.total_bytes)
                                 : 1;
  e.download_rate = download_rate();
  e.num_peers = static_cast<uint32_t>(num_peers());
  const uint64_t left = e.total_bytes - e.bytes;
  if (e.download_rate >= 1 && left > 0) {
    e.eta_seconds = static_cast<int64_t>(
        std::ceil(static_cast<double>(left) / e.download_rate));
  }
  bus_->Publish(std::move(e));
}

void ContentSwarm::OnNoPeers() {
  events_->Fail(absl::UnavailableError(
      "every peer disconnected before the content was complete"));
  ReportFetch(FetchResult::kFailed,
              "every peer disconnected before the content was complete");
  if (on_failed_) on_failed_();
}

}  // namespace shoal::node
