// The RocksDB chunk store: opening, recovery, adds and reads.
#include "store/chunk_store.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/internal/rocksdb_chunk_store.h"

namespace shoal::store::internal {

rocksdb::DBOptions StoreDbOptions() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Two flushes may run at once: a flush is mostly waiting on the disk (one
  // blob file, two small tables and their syncs per 4 MiB memtable), and one
  // at a time left writes stopped behind it (docs/ARCHITECTURE.md, "The data
  // path": a 1 GiB fetch took 20-25% less time).
  db_options.max_background_flushes = 2;
  db_options.max_background_compactions = 1;
  db_options.bytes_per_sync = 1 << 20;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.keep_log_file_num = 3;
  // Large piece values fill the WAL quickly; bound it so recovery stays short.
  db_options.max_total_wal_size = 256 << 20;
  // Large adds skip the WAL (see kWalLessAddBytes); flushing every column
  // family at one sequence number keeps a chunk and the have that references it
  // on the same side of a crash.
  db_options.atomic_flush = true;
  return db_options;
}

rocksdb::ColumnFamilyOptions SmallCfOptions() {
  rocksdb::ColumnFamilyOptions small;
  // With atomic_flush every flush of a blob memtable also switches the small
  // column families' memtables, however little they hold: at RocksDB's
  // default of two, `haves` stopped all writes about once per flush.
  small.max_write_buffer_number = 3;
  return small;
}

rocksdb::ColumnFamilyOptions BlobCfOptions() {
  rocksdb::ColumnFamilyOptions blobs;
  blobs.enable_blob_files = true;
  blobs.min_blob_size = 4096;
  blobs.blob_file_size = 256 << 20;
  // No blob garbage collection: it rewrites live chunks during compaction
  // (and Debian's RocksDB checksums them with its portable, slow CRC32C). A
  // blob file is deleted once every chunk in it is gone; an add writes its
  // chunks side by side, so removing or evicting content frees whole files.
  blobs.enable_blob_garbage_collection = false;
  // Memtables hold piece bytes until a flush: keep them small (peak RSS).
  blobs.write_buffer_size = kBlobMemtableBytes;
  blobs.max_write_buffer_number = 3;
  return blobs;
}

absl::Status RocksDbChunkStore::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(
        "cannot create ", options_.dir.string(), ": ", ec.message()));
  }

  rocksdb::DBOptions db_options = StoreDbOptions();
  db_options.listeners.push_back(std::make_shared<FlushListener>(flushed_seq_));
  const rocksdb::ColumnFamilyOptions small = SmallCfOptions();
  const rocksdb::ColumnFamilyOptions blobs = BlobCfOptions();

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, small},
      {kChunksCf, blobs},
      {kContentsCf, small},
      {kHavesCf, small},
      {kPinsCf, small},
      {kStateCf, small},
      {kTorrentsCf, blobs},
  };
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options_.dir.string(), cfs,
                                        &handles_, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::UnavailableError(
          absl::StrCat("chunk store ", options_.dir.string(),
                       " is in use by another process"));
    }
    return FromRocks(
        s, absl::StrCat("opening chunk store ", options_.dir.string()));
  }
  db_.reset(raw);
  wal_less_options_.disableWAL = true;
  return Recover();
}

absl::Status RocksDbChunkStore::Recover() {
  absl::MutexLock lock(&mu_);
  rocksdb::ReadOptions ro;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, contents()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto record = internal::DecodeRecord(it->key().ToStringView(),
                                           it->value().ToStringView());
      if (!record.ok()) {
        spdlog::error("store: dropping unreadable content record {}: {}",
                      HexEncode(it->key().ToStringView()),
                      record.status().ToString());
        continue;
      }
      ContentEntry entry;
      if (!record->is_directory())
        entry.have.assign(record->layout().num_pieces(), false);
      entry.record = *std::move(record);
      if (entry.record.is_directory()) {
        for (const ContentId& f : entry.record.directory->file_ids())
          ++dir_refs_[f];
      }
      IndexLocked(entry.record.id);
      contents_[entry.record.id] = std::move(entry);
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading content records"));
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, pins()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto c = contents_.find(ContentId::FromBytes(it->key().ToStringView()));
      if (c != contents_.end()) c->second.pinned = true;
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading pins"));
  }
  rocksdb::WriteBatch cleanup;
  std::vector<Sha256Digest> upload_hashes;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, haves()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (!key.empty() && key[0] == kTorrentOwner) continue;
      std::string_view value = it->value().ToStringView();
      if (key.size() < 5 || value.size() != 37) {
        cleanup.Delete(haves(), it->key());
        continue;
      }
      Sha256Digest hash = DigestFrom(value.substr(0, 32));
      uint32_t size = internal::ReadBE32(value.substr(33));
      if (key[0] == kUploadOwner) {
        // An add that a crash interrupted: roll it back.
        cleanup.Delete(haves(), it->key());
        upload_hashes.push_back(hash);
        continue;
      }
      uint32_t index = internal::ReadBE32(key.substr(key.size() - 4));
      auto c = contents_.find(ContentId::FromBytes(key.substr(1, 32)));
      if (key[0] != kContentOwner || key.size() != 37 || c == contents_.end() ||
          index >= c->second.have.size() ||
          c->second.record.piece_layer[index] != hash) {
        cleanup.Delete(haves(), it->key());
        upload_hashes.push_back(hash);
        continue;
      }
      if (!c->second.have[index]) {
        c->second.have[index] = true;
        ++c->second.pieces_local;
      }
      ChunkInfo& info = chunks_[hash];
      ++info.refs;
      info.size = size;
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading piece index"));
  }
  for (const Sha256Digest& h : upload_hashes) {
    if (!chunks_.contains(h)) cleanup.Delete(chunks(), DigestView(h));
  }
  if (cleanup.Count() > 0) {
    spdlog::info("store: rolled back {} piece entries of interrupted adds",
                 upload_hashes.size());
    SHOAL_RETURN_IF_ERROR(
        FromRocks(db_->Write(write_options_, &cleanup), "rolling back adds"));
  }
  for (const auto& [hash, info] : chunks_) used_bytes_ += info.size;
  // Files of a directory add that a crash interrupted.
  std::vector<ContentId> orphans;
  for (const auto& [id, e] : contents_)
    if (IsOrphanLocked(e)) orphans.push_back(id);
  for (const ContentId& id : orphans) SHOAL_RETURN_IF_ERROR(RemoveLocked(id));
  if (!orphans.empty()) {
    spdlog::info("store: removed {} files of an interrupted directory add",
                 orphans.size());
  }
  return absl::OkStatus();
}

absl::StatusOr<UploadId> RocksDbChunkStore::BeginUpload(uint64_t length) {
  absl::MutexLock lock(&mu_);
  if (options_.capacity_bytes > 0)
    SHOAL_RETURN_IF_ERROR(EvictForLocked(length));
  UploadId id;
  do {
    randombytes_buf(id.bytes.data(), id.bytes.size());
  } while (uploads_.contains(id));
  UploadEntry& up = uploads_[id];
  up.length = length;
  up.reserved = length;
  up.wal_less = length >= kWalLessAddBytes;
  if (up.wal_less) CountLargeAddLocked(+1);
  reserved_bytes_ += length;
  return id;
}

uint64_t RocksDbChunkStore::ChunkMemtableBytesForTesting() {
  return db_->GetOptions(chunks()).write_buffer_size;
}

void RocksDbChunkStore::CountLargeAddLocked(int delta) {
  const bool was = large_adds_ > 0;
  large_adds_ += delta;
  if (was == (large_adds_ > 0)) return;
  const uint64_t bytes =
      large_adds_ > 0 ? kLargeAddMemtableBytes : kBlobMemtableBytes;
  rocksdb::Status s =
      db_->SetOptions(chunks(), {{"write_buffer_size", std::to_string(bytes)}});
  // Only speed and memory depend on it.
  if (!s.ok()) spdlog::warn("store: memtable size: {}", s.ToString());
}

absl::Status RocksDbChunkStore::EvictForLocked(uint64_t length) {
  const uint64_t cap = options_.capacity_bytes;
  auto fits = [&] { return used_bytes_ + reserved_bytes_ + length <= cap; };
  if (fits()) return absl::OkStatus();
  // Check first that evicting every unpinned content could make room, so a
  // hopeless add evicts nothing.
  uint64_t pinned_bytes = 0;
  absl::flat_hash_set<ContentId> kept;  // files of pinned directories
  for (const auto& [id, e] : contents_) {
    if (!e.pinned || !e.record.is_directory()) continue;
    for (const ContentId& f : e.record.directory->file_ids()) kept.insert(f);
  }
  for (const auto& [id, e] : contents_)
    if (e.pinned || kept.contains(id)) pinned_bytes += e.LocalBytes();
  if (pinned_bytes + reserved_bytes_ + length > cap) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "store capacity exceeded: ", length, " bytes needed, capacity ", cap,
        ", ", pinned_bytes, " bytes pinned, ", reserved_bytes_,
        " reserved by adds in progress"));
  }
  while (!fits()) {
    const ContentEntry* victim = nullptr;
    for (const auto& [id, e] : contents_) {
      // Files that directories hold go with their directories.
      if (e.pinned || dir_refs_.contains(id)) continue;
      if (victim == nullptr ||
          e.record.last_access < victim->record.last_access ||
          (e.record.last_access == victim->record.last_access &&
           id < victim->record.id)) {
        victim = &e;
      }
    }
    if (victim == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "store capacity exceeded: ", length, " bytes needed, ",
          cap - std::min(cap, used_bytes_), " free and nothing left to evict"));
    }
    ContentId id = victim->record.id;
    spdlog::info("store: evicting {} ({} bytes, last access {})", id.Hex(),
                 victim->record.length,
                 absl::FormatTime(victim->record.last_access));
    StoreEvent e{StoreEvent::Kind::kEvicted, id, victim->record.name,
                 victim->record.length};
    e.reason = absl::StrCat("capacity: ", length,
                            " bytes needed; least recently used (last access ",
                            absl::FormatTime(victim->record.last_access), ")");
    SHOAL_RETURN_IF_ERROR(RemoveContentLocked(id));
    ++evictions_;
    Notify(std::move(e));
  }
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::WritePieceLocked(const std::string& have_key,
                                                 const Sha256Digest& hash,
                                                 int tree_levels,
                                                 std::span<const uint8_t> data,
                                                 bool wal_less) {
  const uint32_t size = static_cast<uint32_t>(data.size());
  auto c = chunks_.find(hash);
  // A chunk written without the WAL may not survive a crash: a WAL-logged write
  // that relies on it writes it again.
  const bool write_value = c == chunks_.end() || c->second.lost ||
                           (c->second.volatile_value && !wal_less);
  // A stored chunk (dedup) needs only the index entry: no room for the piece.
  rocksdb::WriteBatch batch((write_value ? data.size() : 0) +
                            kBatchBytesBesidePiece);
  if (write_value) {
    const char levels = static_cast<char>(tree_levels);
    rocksdb::Slice key(DigestView(hash));
    rocksdb::Slice parts[2] = {
        rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size()),
        rocksdb::Slice(&levels, 1)};
    batch.Put(chunks(), rocksdb::SliceParts(&key, 1),
              rocksdb::SliceParts(parts, 2));
  }
  batch.Put(haves(), have_key, HaveValue(hash, tree_levels, size));
  SHOAL_RETURN_IF_ERROR(FromRocks(
      db_->Write(wal_less ? wal_less_options_ : write_options_, &batch),
      "writing piece"));
  ChunkInfo& info = chunks_[hash];
  ++info.refs;
  info.size = size;
  if (write_value) {
    if (info.refs == 1 || info.lost) used_bytes_ += size;
    info.lost = false;
    info.volatile_value = wal_less;
    info.verified = true;
  }
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::PutUploadPiece(const UploadId& upload,
                                               uint32_t index,
                                               const Sha256Digest& hash,
                                               int tree_levels,
                                               std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
  UploadEntry& up = u->second;
  if (up.pieces.contains(index)) return absl::OkStatus();
  const uint32_t size = static_cast<uint32_t>(data.size());

  SHOAL_RETURN_IF_ERROR(
      WritePieceLocked(HaveKey(kUploadOwner, UploadView(upload), index), hash,
                       tree_levels, data, up.wal_less));
  up.pieces[index] = {hash, size};
  uint64_t release = std::min<uint64_t>(up.reserved, size);
  up.reserved -= release;
  reserved_bytes_ -= release;
  return absl::OkStatus();
}

absl::StatusOr<ContentState> RocksDbChunkStore::CommitUpload(
    const UploadId& upload, ContentRecord record) {
  bool flushed = false;
  {
    absl::MutexLock lock(&mu_);
    auto u = uploads_.find(upload);
    if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
    flushed = u->second.wal_less;
  }
  if (flushed) {
    // The pieces were written without the WAL: make them durable before the
    // record that refers to them. Outside the lock, as a flush takes a while.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    SHOAL_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_), "flushing add"));
  }
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
  UploadEntry& up = u->second;
  const uint32_t n = record.layout().num_pieces();
  if (record.piece_layer.size() != n || up.pieces.size() != n) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload has ", up.pieces.size(), " of ", n, " pieces"));
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto p = up.pieces.find(i);
    if (p == up.pieces.end() || p->second.first != record.piece_layer[i]) {
      return absl::FailedPreconditionError(
          absl::StrCat("upload piece ", i, " is missing"));
    }
  }

  auto existing = contents_.find(record.id);
  ContentEntry fresh;
  ContentEntry& entry = existing != contents_.end() ? existing->second : fresh;
  const absl::Time now = options_.clock();
  if (existing == contents_.end()) {
    record.added = now;
    record.last_access = now;
    entry.record = std::move(record);
    entry.have.assign(n, false);
  } else {
    entry.record.last_access = now;
    if (!record.in_directory_only) entry.record.in_directory_only = false;
  }

  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  std::vector<uint32_t> gained;
  std::vector<uint32_t> made_durable;
  for (const auto& [index, piece] : up.pieces) {
    batch.Delete(haves(), HaveKey(kUploadOwner, UploadView(upload), index));
    // A fetched piece not yet flushed: the add's chunk is durable, so its have
    // is logged now. It already holds the chunk's reference, like a held one.
    const bool pending = entry.IsPending(index);
    if (entry.have[index]) freed += DropRefLocked(piece.first, batch, dropped);
    if (pending || !entry.have[index]) {
      batch.Put(
          haves(),
          HaveKey(kContentOwner, entry.record.id.AsStringView(), index),
          HaveValue(piece.first, entry.record.layout().piece_tree_levels(index),
                    piece.second));
      (pending ? made_durable : gained).push_back(index);
    }
  }
  batch.Put(contents(), entry.record.id.AsStringView(),
            internal::EncodeRecord(entry.record));
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "committing add"));

  ApplyDroppedRefsLocked(dropped);
  used_bytes_ -= freed;
  if (flushed) {
    for (const auto& [index, piece] : up.pieces) {
      auto c = chunks_.find(piece.first);
      if (c != chunks_.end()) c->second.volatile_value = false;
    }
  }
  for (uint32_t i : gained) entry.have[i] = true;
  entry.pieces_local += gained.size();
  for (uint32_t i : made_durable) entry.pending[i] = false;
  entry.pieces_local += made_durable.size();
  reserved_bytes_ -= up.reserved;
  if (up.wal_less) CountLargeAddLocked(-1);
  uploads_.erase(u);
  if (existing == contents_.end()) {
    IndexLocked(entry.record.id);
    contents_[entry.record.id] = std::move(fresh);
  }
  const ContentEntry& added = contents_[entry.record.id];
  Notify({StoreEvent::Kind::kAdded, added.record.id, added.record.name,
          added.record.length});
  return added.State();
}

void RocksDbChunkStore::AbortUpload(const UploadId& upload) {
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return;
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  for (const auto& [index, piece] : u->second.pieces) {
    batch.Delete(haves(), HaveKey(kUploadOwner, UploadView(upload), index));
    freed += DropRefLocked(piece.first, batch, dropped);
  }
  rocksdb::Status s = db_->Write(write_options_, &batch);
  if (!s.ok()) {
    // The haves stay behind; the next open rolls them back.
    spdlog::warn("store: aborting add: {}", s.ToString());
  } else {
    ApplyDroppedRefsLocked(dropped);
    used_bytes_ -= freed;
  }
  reserved_bytes_ -= u->second.reserved;
  if (u->second.wal_less) CountLargeAddLocked(-1);
  uploads_.erase(u);
}

uint64_t RocksDbChunkStore::DropRefLocked(
    const Sha256Digest& hash, rocksdb::WriteBatch& batch,
    absl::flat_hash_map<Sha256Digest, uint32_t>& pending) {
  auto c = chunks_.find(hash);
  if (c == chunks_.end()) return 0;
  uint32_t& dropped = pending[hash];
  ++dropped;
  if (dropped < c->second.refs) return 0;
  batch.Delete(chunks(), DigestView(hash));
  return c->second.lost ? 0 : c->second.size;
}

void RocksDbChunkStore::ApplyDroppedRefsLocked(
    const absl::flat_hash_map<Sha256Digest, uint32_t>& pending) {
  for (const auto& [hash, n] : pending) {
    auto c = chunks_.find(hash);
    if (c == chunks_.end()) continue;
    if (n >= c->second.refs) {
      chunks_.erase(c);
    } else {
      c->second.refs -= n;
    }
  }
}

absl::Status RocksDbChunkStore::RemoveLocked(const ContentId& id) {
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  ContentEntry& e = c->second;
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  for (uint32_t i = 0; i < e.have.size(); ++i) {
    if (!e.have[i]) continue;
    batch.Delete(haves(), HaveKey(kContentOwner, id.AsStringView(), i));
    freed += DropRefLocked(e.record.piece_layer[i], batch, dropped);
  }
  batch.Delete(contents(), id.AsStringView());
  batch.Delete(pins(), id.AsStringView());
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "removing content"));
  ApplyDroppedRefsLocked(dropped);
  used_bytes_ -= freed;
  by_prefix_.erase(std::string(id.AsStringView().substr(0, 20)));
  contents_.erase(c);
  return absl::OkStatus();
}

absl::StatusOr<ContentState> RocksDbChunkStore::CreateContent(
    ContentRecord record) {
  absl::MutexLock lock(&mu_);
  if (auto c = contents_.find(record.id); c != contents_.end()) {
    return c->second.State();
  }
  const uint32_t n = record.layout().num_pieces();
  if (record.piece_layer.size() != n) {
    return absl::InvalidArgumentError("piece layer does not match the length");
  }
  if (options_.capacity_bytes > 0) {
    SHOAL_RETURN_IF_ERROR(EvictForLocked(record.length));
  }
  const absl::Time now = options_.clock();
  record.added = now;
  record.last_access = now;
  record.in_directory_only = dir_refs_.contains(record.id);
  SHOAL_RETURN_IF_ERROR(WriteRecordLocked(record));
  ContentEntry entry;
  entry.have.assign(n, false);
  entry.record = std::move(record);
  ContentId id = entry.record.id;
  IndexLocked(id);
  auto& e = contents_[id] = std::move(entry);
  return e.State();
}

absl::Status RocksDbChunkStore::PutContentPiece(const ContentId& id,
                                                uint32_t index,
                                                std::span<const uint8_t> data) {
  bool last = false;
  {
    absl::MutexLock lock(&mu_);
    SHOAL_RETURN_IF_ERROR(PutContentPieceLocked(id, index, data));
    // The content's last missing piece: make the whole of it durable before
    // the caller reports it complete.
    const ContentEntry& e = contents_.find(id)->second;
    last = std::find(e.have.begin(), e.have.end(), false) == e.have.end();
  }
  return last ? Sync() : absl::OkStatus();
}

absl::Status RocksDbChunkStore::PutContentPieceLocked(
    const ContentId& id, uint32_t index, std::span<const uint8_t> data) {
  auto c = contents_.find(id);
  if (c == contents_.end()) {
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  }
  ContentEntry& e = c->second;
  if (index >= e.have.size()) {
    return absl::OutOfRangeError(
        absl::StrCat("piece ", index, " out of range"));
  }
  const chunk::ContentLayout layout = e.record.layout();
  if (data.size() != layout.piece_size(index)) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", index, " has ",
                                                   data.size(), " bytes, want ",
                                                   layout.piece_size(index)));
  }
  if (e.have[index]) return absl::OkStatus();
  const Sha256Digest& hash = e.record.piece_layer[index];
  const int levels = layout.piece_tree_levels(index);
  SHOAL_RETURN_IF_ERROR(
      WritePieceLocked(HaveKey(kContentOwner, id.AsStringView(), index), hash,
                       levels, data, /*wal_less=*/true));
  e.have[index] = true;
  if (e.pending.empty()) e.pending.assign(e.have.size(), false);
  e.pending[index] = true;
  unsynced_.push_back({db_->GetLatestSequenceNumber(), id, index});
  MarkDurableLocked(flushed_seq_->load());
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::Sync() {
  rocksdb::SequenceNumber target;
  {
    absl::MutexLock lock(&mu_);
    MarkDurableLocked(flushed_seq_->load());
    if (unsynced_.empty()) return absl::OkStatus();
    target = unsynced_.back().seq;
  }
  // Every piece recorded so far was written before this flush began, so the
  // flush makes it durable (with its have: all column families flush
  // atomically).
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Flush(fo, handles_), "flushing fetched pieces"));
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(std::max(target, flushed_seq_->load()));
  return absl::OkStatus();
}

void RocksDbChunkStore::MarkDurableLocked(rocksdb::SequenceNumber seq) {
  while (!unsynced_.empty() && unsynced_.front().seq <= seq) {
    const Unsynced u = unsynced_.front();
    unsynced_.pop_front();
    auto c = contents_.find(u.id);
    if (c == contents_.end() || !c->second.IsPending(u.index)) continue;
    ContentEntry& e = c->second;
    e.pending[u.index] = false;
    ++e.pieces_local;
    if (auto info = chunks_.find(e.record.piece_layer[u.index]);
        info != chunks_.end()) {
      info->second.volatile_value = false;
    }
  }
}

absl::StatusOr<std::vector<bool>> RocksDbChunkStore::PiecesHeld(
    const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end()) {
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  }
  return c->second.have;
}

std::vector<std::string> RocksDbChunkStore::TruncatedIds() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  out.reserve(by_prefix_.size());
  for (const auto& [prefix, id] : by_prefix_) out.push_back(prefix);
  return out;
}

absl::StatusOr<ContentId> RocksDbChunkStore::FindByTruncatedId(
    std::string_view prefix20) {
  absl::MutexLock lock(&mu_);
  if (prefix20.size() != 20) return absl::InvalidArgumentError("need 20 bytes");
  auto it = by_prefix_.find(std::string(prefix20));
  if (it == by_prefix_.end())
    return absl::NotFoundError("no content with that info-hash");
  return it->second;
}

absl::Status RocksDbChunkStore::Remove(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  StoreEvent e{StoreEvent::Kind::kRemoved, id};
  if (auto c = contents_.find(id); c != contents_.end()) {
    e.name = c->second.record.name;
    e.length = c->second.record.length;
  }
  SHOAL_RETURN_IF_ERROR(RemoveContentLocked(id));
  Notify(std::move(e));
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbChunkStore::ReadPiece(const ContentId& id,
                                                         uint32_t index) {
  Sha256Digest hash;
  int levels;
  uint32_t size;
  bool verified = false;
  {
    absl::MutexLock lock(&mu_);
    auto c = contents_.find(id);
    if (c == contents_.end())
      return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
    const ContentEntry& e = c->second;
    if (index >= e.have.size()) {
      return absl::OutOfRangeError(absl::StrCat(
          "piece ", index, " is past the last piece ", e.have.size()));
    }
    if (!e.have[index]) {
      return absl::UnavailableError(absl::StrCat(
          "piece ", index, " of ", id.Hex(), " is not stored here"));
    }
    hash = e.record.piece_layer[index];
    levels = e.record.layout().piece_tree_levels(index);
    size = e.record.layout().piece_size(index);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      verified = info->second.verified;
  }
  std::string value;
  rocksdb::ReadOptions ro;
  // RocksDB checks the CRC32C of every blob record it reads (with ISA-L's
  // CRC32C, see internal/fast_crc32c.h), which catches bytes damaged on disk;
  // the piece's hash is checked at its first read since the store opened.
  ro.verify_checksums = true;
  rocksdb::Status s = db_->Get(ro, chunks(), DigestView(hash), &value);
  if (s.IsNotFound()) return HandleBadChunk(id, index, hash, "chunk missing");
  if (s.IsCorruption()) return HandleBadChunk(id, index, hash, s.ToString());
  SHOAL_RETURN_IF_ERROR(FromRocks(s, "reading chunk"));
  if (value.size() != size + 1 ||
      static_cast<int>(static_cast<uint8_t>(value.back())) != levels) {
    return HandleBadChunk(id, index, hash, "chunk has the wrong size");
  }
  value.pop_back();  // the tree height, stored last so that dropping it is free
  if (!verified) {
    if (chunk::HashPiece(codec::AsBytes(value), levels) != hash) {
      return HandleBadChunk(id, index, hash, "chunk fails its hash");
    }
    absl::MutexLock lock(&mu_);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      info->second.verified = true;
  }
  return value;
}

absl::Status RocksDbChunkStore::HandleBadChunk(const ContentId& id,
                                               uint32_t index,
                                               const Sha256Digest& hash,
                                               std::string_view why) {
  absl::MutexLock lock(&mu_);
  ++data_loss_events_;
  spdlog::error("store: DATA LOSS: piece {} of {} (chunk {}): {}; dropped",
                index, id.Hex(), HexEncode(DigestView(hash)), why);
  {
    StoreEvent e{StoreEvent::Kind::kDataLoss, id};
    e.piece = index;
    e.reason = std::string(why);
    if (auto c = contents_.find(id); c != contents_.end())
      e.name = c->second.record.name;
    Notify(std::move(e));
  }
  auto c = contents_.find(id);
  auto info = chunks_.find(hash);
  if (c != contents_.end() && index < c->second.have.size() &&
      c->second.have[index] && info != chunks_.end()) {
    rocksdb::WriteBatch batch;
    batch.Delete(haves(), HaveKey(kContentOwner, id.AsStringView(), index));
    batch.Delete(chunks(), DigestView(hash));
    rocksdb::Status s = db_->Write(write_options_, &batch);
    if (s.ok()) {
      c->second.have[index] = false;
      if (c->second.IsPending(index)) {
        c->second.pending[index] = false;
      } else {
        --c->second.pieces_local;
      }
      if (!info->second.lost) used_bytes_ -= info->second.size;
      info->second.lost = true;
      if (--info->second.refs == 0) chunks_.erase(info);
    } else {
      spdlog::error("store: dropping bad chunk: {}", s.ToString());
    }
  }
  return absl::DataLossError(absl::StrCat(
      "piece ", index, " of ", id.Hex(), " was corrupt on disk (",
      std::string(why), "); it was dropped and the content is incomplete"));
}

}  // namespace shoal::store::internal

namespace shoal::store {

using internal::RocksDbChunkStore;

absl::StatusOr<std::unique_ptr<ChunkStore>> ChunkStore::Open(
    StoreOptions options) {
  if (sodium_init() < 0)
    return absl::InternalError("libsodium failed to initialize");
  static const bool fast_crc = [] {
    bool active = internal::FastCrc32cActive();
    if (!active)
      spdlog::warn("store: RocksDB is using its slow portable CRC32C");
    return active;
  }();
  (void)fast_crc;
  auto store = std::make_unique<RocksDbChunkStore>(std::move(options));
  SHOAL_RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace shoal::store
