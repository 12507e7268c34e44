// The RocksDB chunk store: directories, removal and eviction, pins, state and
// torrent pieces.
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/chunk_store.h"
#include "store/internal/rocksdb_chunk_store.h"

namespace shoal::store::internal {

bool RocksDbChunkStore::IsOrphanLocked(const ContentEntry& e) const {
  return e.record.in_directory_only && !e.pinned &&
         !dir_refs_.contains(e.record.id);
}

ContentState RocksDbChunkStore::StateLocked(const ContentEntry& e) const {
  ContentState st = e.State();
  if (e.record.is_directory()) {
    for (const ContentId& f : e.record.directory->file_ids()) {
      auto c = contents_.find(f);
      if (c != contents_.end() &&
          c->second.pieces_local == c->second.have.size())
        ++st.files_local;
    }
  }
  return st;
}

absl::StatusOr<ContentState> RocksDbChunkStore::PutDirectory(
    std::shared_ptr<const chunk::Directory> directory, std::string name) {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  const ContentId id = directory->id();
  if (auto c = contents_.find(id); c != contents_.end())
    return StateLocked(c->second);
  ContentRecord record;
  record.id = id;
  record.length = directory->total_length();
  record.piece_length = directory->piece_length();
  record.name = std::move(name);
  record.added = record.last_access = options_.clock();
  record.directory = std::move(directory);
  SHOAL_RETURN_IF_ERROR(WriteRecordLocked(record));
  Notify({StoreEvent::Kind::kAdded, id, record.name, record.length});
  for (const ContentId& f : record.directory->file_ids()) ++dir_refs_[f];
  // Empty files have nothing to fetch: they are held at once.
  const auto& files = record.directory->files();
  for (size_t i = 0; i < files.size(); ++i) {
    const ContentId& fid = record.directory->file_id(i);
    if (files[i].length > 0 || contents_.contains(fid)) continue;
    ContentRecord empty;
    empty.id = fid;
    empty.piece_length = chunk::kMinCanonicalPieceLength;
    empty.added = empty.last_access = record.added;
    empty.in_directory_only = true;
    SHOAL_RETURN_IF_ERROR(WriteRecordLocked(empty));
    contents_[fid].record = std::move(empty);
    IndexLocked(fid);
  }
  IndexLocked(id);
  ContentEntry& e = contents_[id];
  e.record = std::move(record);
  return StateLocked(e);
}

absl::StatusOr<std::shared_ptr<const chunk::Directory>>
RocksDbChunkStore::GetDirectory(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end() || !c->second.record.is_directory())
    return absl::NotFoundError(absl::StrCat("no directory ", id.Hex()));
  return c->second.record.directory;
}

void RocksDbChunkStore::RemoveOrphans(const std::vector<ContentId>& ids) {
  absl::MutexLock lock(&mu_);
  for (const ContentId& id : ids) {
    auto c = contents_.find(id);
    if (c == contents_.end() || !IsOrphanLocked(c->second)) continue;
    if (absl::Status s = RemoveLocked(id); !s.ok())
      spdlog::warn("store: removing {}: {}", id.Hex(), s.ToString());
  }
}

void RocksDbChunkStore::ReleaseFilesLocked(const chunk::Directory& dir) {
  for (const ContentId& fid : dir.file_ids()) {
    auto r = dir_refs_.find(fid);
    if (r == dir_refs_.end()) continue;
    if (--r->second > 0) continue;
    dir_refs_.erase(r);
    auto c = contents_.find(fid);
    if (c == contents_.end() || !IsOrphanLocked(c->second)) continue;
    if (absl::Status s = RemoveLocked(fid); !s.ok()) {
      // Its record stays, an orphan that the next open removes.
      spdlog::warn("store: removing {} of directory {}: {}", fid.Hex(),
                   dir.id().Hex(), s.ToString());
    }
  }
}

absl::Status RocksDbChunkStore::RemoveContentLocked(const ContentId& id) {
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  if (c->second.record.is_directory()) {
    std::shared_ptr<const chunk::Directory> dir = c->second.record.directory;
    SHOAL_RETURN_IF_ERROR(RemoveLocked(id));
    ReleaseFilesLocked(*dir);
    return absl::OkStatus();
  }
  if (dir_refs_.contains(id)) {
    ContentEntry& e = c->second;
    if (e.record.in_directory_only) {
      for (const auto& [did, d] : contents_) {
        if (!d.record.is_directory()) continue;
        const chunk::Directory& dir = *d.record.directory;
        for (size_t i = 0; i < dir.files().size(); ++i) {
          if (dir.file_id(i) == id) {
            return absl::FailedPreconditionError(absl::StrCat(
                "content ", id.Hex(), " is file '", dir.files()[i].path,
                "' of directory ", did.Hex(), ": remove the directory"));
          }
        }
      }
    }
    // Added on its own as well: it stays, for the directories.
    e.record.in_directory_only = true;
    rocksdb::WriteBatch batch;
    batch.Put(contents(), id.AsStringView(), internal::EncodeRecord(e.record));
    batch.Delete(pins(), id.AsStringView());
    SHOAL_RETURN_IF_ERROR(
        FromRocks(db_->Write(write_options_, &batch), "removing content"));
    e.pinned = false;
    return absl::OkStatus();
  }
  return RemoveLocked(id);
}

absl::Status RocksDbChunkStore::WriteRecordLocked(const ContentRecord& record) {
  return FromRocks(
      db_->Put(write_options_, contents(), record.id.AsStringView(),
               internal::EncodeRecord(record)),
      "writing content record");
}

absl::Status RocksDbChunkStore::Touch(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  return TouchLocked(c->second);
}

absl::Status RocksDbChunkStore::TouchLocked(ContentEntry& e) {
  const absl::Time now = options_.clock();
  e.record.last_access = now;
  // Reads are frequent (a gateway serves thousands a second): the stored
  // record follows at most once a minute. Eviction order only needs minutes,
  // and after a crash an access is at most a minute older than it was.
  if (now - e.stored_access < absl::Minutes(1)) return absl::OkStatus();
  e.stored_access = now;
  return WriteRecordLocked(e.record);
}

std::optional<ContentBrief> RocksDbChunkStore::Brief(const ContentId& id,
                                                     bool touch) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end()) return std::nullopt;
  ContentEntry& e = c->second;
  ContentBrief b;
  b.length = e.record.length;
  b.piece_length = e.record.piece_length;
  b.directory = e.record.directory;
  b.complete = !b.directory && e.pieces_local == e.record.layout().num_pieces();
  if (touch) {
    if (absl::Status s = TouchLocked(e); !s.ok())
      spdlog::warn("store: recording an access to {}: {}", id.Hex(),
                   s.ToString());
  }
  return b;
}

absl::StatusOr<ContentState> RocksDbChunkStore::Stat(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  return StateLocked(c->second);
}

std::vector<ContentState> RocksDbChunkStore::List() {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  std::vector<ContentState> out;
  out.reserve(contents_.size());
  for (const auto& [id, e] : contents_) out.push_back(StateLocked(e));
  std::sort(out.begin(), out.end(),
            [](const ContentState& a, const ContentState& b) {
              return a.record.id < b.record.id;
            });
  return out;
}

absl::Status RocksDbChunkStore::SetPinned(const ContentId& id, bool pinned) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  rocksdb::WriteBatch batch;
  if (pinned) {
    batch.Put(pins(), id.AsStringView(), "");
    // Pinned on its own, a directory's file is held by more than directories.
    if (c->second.record.in_directory_only) {
      ContentRecord r = c->second.record;
      r.in_directory_only = false;
      batch.Put(contents(), id.AsStringView(), internal::EncodeRecord(r));
    }
  } else {
    batch.Delete(pins(), id.AsStringView());
  }
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "writing pin"));
  const bool changed = c->second.pinned != pinned;
  c->second.pinned = pinned;
  if (pinned) c->second.record.in_directory_only = false;
  if (changed) {
    Notify({pinned ? StoreEvent::Kind::kPinned : StoreEvent::Kind::kUnpinned,
            id, c->second.record.name, c->second.record.length});
  }
  return absl::OkStatus();
}

StoreStats RocksDbChunkStore::Stats() {
  absl::MutexLock lock(&mu_);
  StoreStats s;
  s.capacity_bytes = options_.capacity_bytes;
  s.used_bytes = used_bytes_;
  s.reserved_bytes = reserved_bytes_;
  s.num_contents = contents_.size();
  s.num_chunks = chunks_.size();
  s.data_loss_events = data_loss_events_;
  s.evictions = evictions_;
  return s;
}

absl::StatusOr<std::string> RocksDbChunkStore::GetState(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), state(), key, &value);
  if (s.IsNotFound())
    return absl::NotFoundError(absl::StrCat("no state ", std::string(key)));
  SHOAL_RETURN_IF_ERROR(FromRocks(s, "reading node state"));
  return value;
}

std::string TorrentPrefix(std::string_view torrent) {
  std::string k(1, static_cast<char>(torrent.size()));
  k.append(torrent);
  return k;
}

std::string TorrentPieceKey(std::string_view torrent, uint32_t index) {
  std::string k = TorrentPrefix(torrent);
  internal::AppendBE32(k, index);
  return k;
}

absl::Status RocksDbChunkStore::PutTorrentPiece(std::string_view torrent,
                                                uint32_t index,
                                                std::string_view data) {
  const std::string key = TorrentPieceKey(torrent, index);
  rocksdb::WriteBatch batch(data.size() + kBatchBytesBesidePiece);
  batch.Put(torrents(), key, data);
  batch.Put(haves(), std::string(1, kTorrentOwner) + key, "");
  return FromRocks(db_->Write(write_options_, &batch), "writing torrent piece");
}

absl::StatusOr<std::string> RocksDbChunkStore::ReadTorrentPiece(
    std::string_view torrent, uint32_t index) {
  std::string value;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  rocksdb::Status s =
      db_->Get(ro, torrents(), TorrentPieceKey(torrent, index), &value);
  if (s.IsNotFound()) {
    return absl::UnavailableError(
        absl::StrCat("piece ", index, " is not stored here"));
  }
  SHOAL_RETURN_IF_ERROR(FromRocks(s, absl::StrCat("reading piece ", index)));
  return value;
}

absl::StatusOr<std::vector<uint32_t>> RocksDbChunkStore::TorrentPieces(
    std::string_view torrent) {
  const std::string prefix = kTorrentOwner + TorrentPrefix(torrent);
  std::vector<uint32_t> out;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, haves()));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (key.size() != prefix.size() + 4 || !key.starts_with(prefix)) break;
    out.push_back(internal::ReadBE32(key.substr(prefix.size())));
  }
  SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "listing torrent pieces"));
  return out;
}

absl::Status RocksDbChunkStore::RemoveTorrentPieces(std::string_view torrent) {
  const std::string begin = TorrentPrefix(torrent);
  std::string end = begin;
  end.append(5, '\xff');  // past every 4-byte index
  rocksdb::WriteBatch batch;
  batch.DeleteRange(torrents(), begin, end);
  batch.DeleteRange(haves(), kTorrentOwner + begin, kTorrentOwner + end);
  return FromRocks(db_->Write(write_options_, &batch),
                   "removing torrent pieces");
}

absl::Status RocksDbChunkStore::PutState(std::string_view key,
                                         std::string_view value) {
  return FromRocks(db_->Put(write_options_, state(), key, value),
                   "writing node state");
}

absl::Status RocksDbChunkStore::CorruptChunkForTesting(const Sha256Digest& hash,
                                                       std::string_view bytes) {
  {
    // Bytes replaced behind the store's back, with a valid CRC: only the hash
    // check can tell, as for damage found at the first read after an open.
    absl::MutexLock lock(&mu_);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      info->second.verified = false;
  }
  return FromRocks(db_->Put(write_options_, chunks(), DigestView(hash), bytes),
                   "corrupting");
}

}  // namespace shoal::store::internal
