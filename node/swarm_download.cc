// The swarm engine: the request pipeline, verification, blame and bans.
#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "chunk/merkle.h"
#include "codec/sha.h"
#include "node/swarm.h"
#include "node/swarm_peer.h"
#include "spdlog/spdlog.h"
#include "wire/allowed_fast.h"
#include "wire/pex.h"

namespace shoal::node {

using namespace swarm_internal;  // NOLINT: the engine's own constants

// --- Downloading
// ----------------------------------------------------------------------

void Swarm::StartDownloading(std::shared_ptr<store::PieceStorage> storage,
                             const chunk::Bitfield& have) {
  preparing_ = false;
  storage_ = std::move(storage);
  chunk::PiecePickerOptions po;
  po.total_length = m_->total_size;
  po.piece_length = m_->piece_length;
  po.strategy = strategy_;
  picker_ = std::make_unique<chunk::PiecePicker>(po, random_);
  if (priorities_.size() == m_->num_pieces) {
    for (uint32_t i = 0; i < m_->num_pieces; ++i)
      picker_->SetPriority(i, priorities_[i]);
  }
  for (uint32_t i = 0; i < have.size() && i < m_->num_pieces; ++i)
    if (have.test(i)) picker_->SetHave(i);
  if (wanted_range_) {
    auto [offset, length] = *wanted_range_;
    wanted_range_.reset();
    WantRange(offset, length);
  }
  seeder_.reset();
  MaybeSuperSeed();
  // Peers that connected while we were checking were told we had nothing.
  std::string haves;
  bool haves_built = false;
  for (Peer* q : LivePeers()) {
    if (seeder_) {
      SendReveals(*q);
    } else if (q->hello_unchecked && !q->has_all) {
      if (!haves_built) {
        haves_built = true;
        for (uint32_t i = 0; i < m_->num_pieces; ++i)
          if (picker_->have().test(i))
            wire::AppendMessage(wire::Have{i}, haves);
      }
      if (!haves.empty()) q->conn->Send(haves);
    }
    q->hello_unchecked = false;
    q->registered = false;
    SyncUploadOnly(*q);  // a recheck may have found less
    OnPeerHas(*q);
  }
  if (complete()) Complete();
}

void Swarm::SetStrategy(chunk::PickStrategy s) {
  strategy_ = s;
  if (picker_) picker_->SetStrategy(s);
}

void Swarm::SetPiecePriorities(std::vector<uint8_t> priorities) {
  priorities_ = std::move(priorities);
  if (!picker_ || priorities_.size() != m_->num_pieces) return;
  const bool was_complete = complete();
  for (uint32_t i = 0; i < m_->num_pieces; ++i)
    picker_->SetPriority(i, priorities_[i]);
  for (Peer* q : LivePeers()) {
    UpdateInterest(*q);
    SyncUploadOnly(*q);  // wanting more again
    RequestMore(*q);
  }
  if (!was_complete && complete()) Complete();
}

void Swarm::WantRange(uint64_t offset, uint64_t length) {
  if (!picker_) {
    wanted_range_ = {offset, length};
    return;
  }
  if (length == 0 || m_->piece_length == 0) return;
  const uint64_t end = std::min(offset + length, m_->total_size);
  if (offset >= end) return;
  const auto first = static_cast<uint32_t>(offset / m_->piece_length);
  ranges_.Add(first,
              std::min(m_->num_pieces,
                       static_cast<uint32_t>((end - 1) / m_->piece_length + 1)),
              static_cast<int64_t>(ticks_) * 1000 - first);
  AdvanceDeadlines();
  RequestMoreAll();
}

void Swarm::AdvanceDeadlines() {
  // Trading: other fetchers are connected (node/range_deadlines.h).
  if (picker_)
    ranges_.Advance(*picker_, m_->piece_length, num_peers() > num_seeds());
}

void Swarm::OnPeerHas(Peer& p) {
  if (!picker_) {
    MaybeRequestHashes(p);
    return;
  }
  const uint32_t n = m_->num_pieces;
  if (!p.registered) {
    if (!p.has_all) {
      if (p.has.size() != n) {
        if (!p.raw_bitfield.empty()) {
          auto bits = chunk::Bitfield::FromBytes(p.raw_bitfield, n);
          if (!bits)
            return Drop(*p.conn, absl::InvalidArgumentError(
                                     "bitfield of the wrong size"));
          p.has = *bits;
        } else {
          p.has = chunk::Bitfield(n);
        }
        p.raw_bitfield.clear();
      }
      for (uint32_t i : p.early_haves)
        if (i < n) p.has.set(i);
      p.early_haves.clear();
      picker_->PeerHasBitfield(p.has);
    } else {
      picker_->PeerHasAll();
    }
    p.registered = true;
  } else if (p.has_all && p.has.size() == n && p.has.count() > 0 &&
             !p.has.all()) {
    // have-all after a bitfield: count it as a seed.
    picker_->PeerLostBitfield(p.has);
    p.has = chunk::Bitfield(n);
    picker_->PeerHasAll();
  }
  UpdateInterest(p);
  RequestMore(p);
}

void Swarm::UpdateInterest(Peer& p) {
  if (!picker_ || p.gone) return;
  bool want = false;
  if (!complete()) {
    const chunk::Bitfield& have = picker_->have();
    if (p.has_all) {
      want = true;
    } else {
      for (uint32_t i = 0; i < p.has.size() && !want; ++i)
        want = p.has.test(i) && !have.test(i) && picker_->Priority(i) > 0;
    }
  }
  if (want != p.am_interested) {
    spdlog::debug("swarm {}: {} in {}", hashes_.BestHex().substr(0, 12),
                  want ? "interested" : "not interested",
                  p.conn->remote().ToString());
    p.am_interested = want;
    p.conn->Send(want ? wire::Message(wire::Interested{})
                      : wire::Message(wire::NotInterested{}));
  }
}

void Swarm::RequestMoreAll() {
  for (Peer* q : LivePeers()) RequestMore(*q);
}

void Swarm::RequestMore(Peer& p) {
  if (!picker_ || p.gone || !p.am_interested || complete()) return;
  if (p.requests.room() == 0) return;
  // The write-back bound: the disk must catch up first.
  if (WriteBackFull()) return;
  const uint32_t room = RequestRoom(p);
  if (room == 0) return;
  std::vector<chunk::Block> blocks;
  if (p.peer_choking) {
    // Choked: only its allowed-fast pieces (BEP 6) that it has; not in
    // sequential mode, where they would complete out of order.
    if (strategy_ == chunk::PickStrategy::kSequential) return;
    std::vector<uint32_t> allowed;
    for (uint32_t i : p.allowed_in)
      if (i < m_->num_pieces && p.Has(i)) allowed.push_back(i);
    if (allowed.empty()) return;
    blocks = picker_->PickFrom(p.conn->key(), allowed, room);
  } else {
    // Its suggested pieces first (rarest-first and random only: in order, or
    // with deadlines, what comes next matters more than what it has cached).
    if (!p.suggested.empty()) {
      std::erase_if(p.suggested, [&](uint32_t i) {
        return picker_->have().test(i) || !p.Has(i);
      });
      if (strategy_ != chunk::PickStrategy::kSequential && ranges_.empty())
        blocks = picker_->PickFrom(p.conn->key(), p.suggested, room);
    }
    const size_t rest = room - blocks.size();
    std::erase_if(p.rejected, [&](const auto& r) { return r.second < ticks_; });
    if (rest > 0 && !p.rejected.empty()) {
      chunk::Bitfield has =
          p.has_all ? chunk::Bitfield(m_->num_pieces, true) : p.has;
      for (const auto& r : p.rejected)
        if (r.first < has.size()) has.set(r.first, false);
      std::vector<chunk::Block> more =
          picker_->Pick(p.conn->key(), has, rest, false);
      blocks.insert(blocks.end(), more.begin(), more.end());
    } else if (rest > 0 && blocks.empty()) {
      blocks = picker_->Pick(p.conn->key(), p.has, rest, p.has_all);
    } else if (rest > 0) {
      std::vector<chunk::Block> more =
          picker_->Pick(p.conn->key(), p.has, rest, p.has_all);
      blocks.insert(blocks.end(), more.begin(), more.end());
    }
  }
  if (blocks.empty()) return;
  std::string out;
  for (const chunk::Block& b : blocks) {
    wire::AppendMessage(wire::Request{{b.piece, b.offset, b.length}}, out);
    p.requests.Sent(b, ticks_);
  }
  p.conn->Send(std::move(out));
  // RequestRoom synced the charge; what changed since is these requests.
  if (DownloadBudget* budget = options_.download_budget.get())
    budget->Charge(budget_charge_,
                   budget_charge_ + blocks.size() * chunk::kBlockLength);
}

bool Swarm::WriteBackFull() const {
  // Two pieces at least, so that one is received while one is written.
  const size_t bound = std::max<size_t>(options_.max_write_back_bytes,
                                        m_ ? 2 * size_t{m_->piece_length} : 0);
  return write_back_bytes_ >= bound;
}

uint32_t Swarm::RequestRoom(Peer& p) {
  const uint32_t room = p.requests.room();
  DownloadBudget* budget = options_.download_budget.get();
  if (!budget) return room;
  SyncBudget();
  size_t bytes = budget->available();
  // A swarm holding nothing may always ask for a piece: each makes progress.
  if (budget_charge_ == 0) bytes = std::max<size_t>(bytes, m_->piece_length);
  const size_t blocks = bytes / chunk::kBlockLength;
  if (blocks == 0 && !budget_waiting_) {
    budget_waiting_ = true;
    budget->WaitForRoom([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      // Not from inside another swarm's call: on our own turn.
      env_.Defer([this, alive] {
        if (alive.expired()) return;
        budget_waiting_ = false;
        RequestMoreAll();
      });
    });
  }
  return static_cast<uint32_t>(std::min<size_t>(room, blocks));
}

void Swarm::SyncBudget() {
  DownloadBudget* budget = options_.download_budget.get();
  if (!budget) return;
  size_t blocks = 0;
  for (const auto& [key, q] : peers_)
    if (!q->gone) blocks += q->requests.outstanding();
  budget->Charge(budget_charge_, write_back_bytes_ + partial_bytes_ +
                                     blocks * chunk::kBlockLength);
}

void Swarm::OnPiece(Peer& p, const wire::Piece& m) {
  if (!picker_ || m.piece >= m_->num_pieces) return;
  const uint32_t size = chunk::PieceSize(*m_, m.piece);
  if (m.data.empty() || uint64_t{m.begin} + m.data.size() > size) {
    return Drop(*p.conn,
                absl::InvalidArgumentError("piece message outside its piece"));
  }
  const chunk::Block block{m.piece, m.begin,
                           static_cast<uint32_t>(m.data.size())};
  const uint64_t key = p.conn->key();
  p.requests.Arrived(block);
  p.down.Add(m.data.size());
  down_.Add(m.data.size());
  Add(NodeStats::Get().kind(options_.kind).bytes_received, m.data.size());
  // A late copy (endgame, or a block cancelled too late) of a piece already
  // complete must not start a new buffer that nothing would ever free.
  if (picker_->have().test(m.piece) || verifying_pieces_.contains(m.piece)) {
    picker_->BlockReceived(key, block);
    RequestMore(p);
    return;
  }
  const bool whole = picker_->BlockReceived(key, block);
  // Only a block the picker recorded as this peer's goes into the buffer: an
  // unrequested one must neither overwrite good data nor open a buffer.
  const uint32_t index = m.begin / chunk::kBlockLength;
  if (m.begin % chunk::kBlockLength != 0 ||
      picker_->BlockSender(m.piece, index) != key) {
    RequestMore(p);
    return;
  }
  auto pit = partial_.find(m.piece);
  if (pit == partial_.end()) {
    pit = partial_.emplace(m.piece, PartialPiece{}).first;
    pit->second.data.reset(new char[size]);
    pit->second.size = size;
    partial_bytes_ += size;
  }
  PartialPiece& partial = pit->second;
  std::memcpy(partial.data.get() + m.begin, m.data.data(), m.data.size());
  if (std::find(partial.senders.begin(), partial.senders.end(), key) ==
      partial.senders.end()) {
    partial.senders.push_back(key);
  }
  // Endgame: the same block may be on its way from others.
  for (uint64_t other : picker_->RequestersOf(block, key)) {
    auto it = peers_.find(other);
    if (it != peers_.end() && !it->second->gone) {
      it->second->conn->Send(
          wire::Cancel{{block.piece, block.offset, block.length}});
      it->second->requests.Forget(block);
    }
    picker_->RequestFailed(other, block);
  }
  if (whole) {
    std::shared_ptr<char[]> data(std::move(partial.data));
    const size_t bytes = partial.size;
    std::vector<uint64_t> senders = std::move(partial.senders);
    partial_.erase(pit);
    partial_bytes_ -= bytes;
    verifying_pieces_.insert(m.piece);
    const uint32_t piece = m.piece;
    write_back_bytes_ += bytes;
    // The job must not touch `this`: the swarm may be gone by the time it runs.
    struct Job {
      std::shared_ptr<char[]> data;
      std::vector<uint64_t> senders;
      absl::Status status;
    };
    auto job = std::make_shared<Job>(Job{data, std::move(senders), {}});
    env_.Offload(
        [job, verifier = verifier_, storage = storage_, write_mu = write_mu_,
         piece, bytes] {
          const std::string_view view(job->data.get(), bytes);
          absl::Status s = verifier->Verify(piece, view);
          if (s.ok()) {
            std::lock_guard<std::mutex> lock(*write_mu);
            s = storage->WritePiece(piece, view);
          }
          // A corrupt piece's bytes go back: with v2 they show which block
          // was bad.
          if (!absl::IsDataLoss(s)) job->data.reset();
          job->status = std::move(s);
        },
        [this, alive = std::weak_ptr<bool>(alive_), job, piece, bytes] {
          if (alive.expired()) return;
          OnPieceVerified(piece, std::move(job->senders), bytes, job->status,
                          std::move(job->data));
        });
  }
  RequestMore(p);
}

void Swarm::OnPieceVerified(uint32_t piece, std::vector<uint64_t> senders,
                            size_t bytes, absl::Status status,
                            std::shared_ptr<char[]> data) {
  verifying_pieces_.erase(piece);
  const bool was_full = WriteBackFull();
  write_back_bytes_ -= std::min(write_back_bytes_, bytes);
  SyncBudget();
  if (!picker_) return;
  if (status.code() == absl::StatusCode::kDataLoss) {
    std::vector<uint64_t> block_senders = picker_->BlockSenders(piece);
    picker_->PieceFailed(piece);
    Add(NodeStats::Get().kind(options_.kind).hash_failures, 1);
    spdlog::warn("swarm {}: piece {} failed its hash check",
                 hashes_.BestHex().substr(0, 12), piece);
    // Blame: a peer banned already explains the failure; a sole sender is
    // certainly guilty; with v2 the block hashes under the piece tell which
    // sender's block was bad; otherwise each sender takes a strike.
    const bool explained = blame_.AnyBanned(senders);
    if (!explained && !(senders.size() > 1 &&
                        AskBlockHashes(piece, std::move(data), bytes,
                                       std::move(block_senders), senders))) {
      Strike(piece, senders);
    }
    RequestMoreAll();
    return;
  }
  if (!status.ok()) {
    spdlog::error("swarm {}: storing piece {}: {}",
                  hashes_.BestHex().substr(0, 12), piece, status.ToString());
    Shutdown();
    OnError(status);
    return;
  }
  picker_->SetHave(piece);
  Add(NodeStats::Get().kind(options_.kind).pieces_verified, 1);
  AdvanceDeadlines();
  OnPieceHave(piece);
  std::string have;
  wire::AppendMessage(wire::Have{piece}, have);
  const bool now_complete = picker_->Complete();
  for (Peer* q : LivePeers()) {
    if (q->has_all) continue;
    q->conn->Send(have);
    // It may have been the last piece this peer had for us: say so, or it
    // keeps an upload slot for a peer that asks for nothing (the scan stops
    // at the first piece still wanted; Complete() tells everyone).
    if (!now_complete && q->am_interested && piece < q->has.size() &&
        q->has.test(piece))
      UpdateInterest(*q);
  }
  if (now_complete) {
    Complete();
  } else if (was_full) {
    RequestMoreAll();
  }
}

void Swarm::Strike(uint32_t piece, const std::vector<uint64_t>& senders) {
  for (uint64_t key : blame_.Strike(senders, options_.ban_after_bad_pieces)) {
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->gone) continue;
    Ban(*it->second, absl::StrCat("sent corrupt data for piece ", piece));
  }
}

bool Swarm::AskBlockHashes(uint32_t piece, std::shared_ptr<char[]> data,
                           size_t bytes, std::vector<uint64_t> block_senders,
                           const std::vector<uint64_t>& senders) {
  if (!data || !hashes_.v2 || !m_ || !blame_.CanOpen()) return false;
  const uint32_t per_piece = m_->piece_length / chunk::kBlockSize;
  if (per_piece < 2) return false;
  // The v2 file the piece belongs to (a v2 piece holds one file's bytes).
  size_t file = m_->files.size();
  for (const chunk::FileSlice& sl : chunk::MapPiece(*m_, piece)) {
    if (!m_->files[sl.file_index].pad_file) {
      file = sl.file_index;
      break;
    }
  }
  if (file == m_->files.size() || !m_->files[file].pieces_root) return false;
  BlameBook::Case b;
  b.spec.pieces_root = *m_->files[file].pieces_root;
  b.spec.base_layer = 0;
  b.spec.index = (piece - chunk::FilePieces(*m_, file).first) * per_piece;
  b.spec.length = per_piece;
  b.spec.proof_layers = 0;
  b.piece = piece;
  b.data = std::move(data);
  b.bytes = bytes;
  b.block_senders = std::move(block_senders);
  b.senders = senders;
  AskNextForBlame(std::move(b));
  return true;
}

void Swarm::ExpireBlame() {
  for (BlameBook::Case& b : blame_.TakeExpired(ticks_, kBlameAnswerTicks))
    AskNextForBlame(std::move(b));
}

void Swarm::AskNextForBlame(BlameBook::Case b) {
  // A connection made on the v2 info-hash (or one that offered v2) can answer
  // hash requests; libtorrent sets no v2 bit once the v2 hash is agreed on.
  const std::string v2_key =
      hashes_.v2 ? std::string(hashes_.v2->AsStringView().substr(0, 20))
                 : std::string();
  std::vector<BlameBook::Candidate> candidates;
  for (Peer* q : LivePeers()) {
    const bool has = q->Has(b.piece);
    const bool speaks_v2 =
        q->handshake.v2() ||
        std::string_view(
            reinterpret_cast<const char*>(q->handshake.info_hash.data()), 20) ==
            v2_key;
    candidates.push_back({q->conn->key(), has && speaks_v2});
  }
  const wire::HashSpec spec = b.spec;
  const std::optional<uint64_t> ask =
      blame_.AskNext(std::move(b), candidates, ticks_);
  if (!ask) return Strike(b.piece, b.senders);  // `b` was not taken
  peers_.at(*ask)->conn->Send(wire::HashRequest{spec});
}

void Swarm::OnBlockHashes(Peer& p, const wire::HashSpec& spec,
                          std::string_view flat, bool rejected) {
  std::optional<BlameBook::Case> b = blame_.TakeAnswer(p.conn->key(), spec);
  if (!b) return;
  if (rejected) return AskNextForBlame(*std::move(b));
  auto bad = verifier_->FindBadBlocks(b->piece,
                                      std::string_view(b->data.get(), b->bytes),
                                      codec::SplitDigests(flat));
  if (!bad.ok()) {
    // Hashes that do not prove the piece's hash: the answer lied.
    if (absl::IsInvalidArgument(bad.status()))
      return Ban(p, "sent block hashes that do not match the piece");
    return Strike(b->piece, b->senders);
  }
  for (uint32_t block : *bad) {
    if (block >= b->block_senders.size()) continue;
    auto peer = peers_.find(b->block_senders[block]);
    if (peer == peers_.end() || peer->second->gone) continue;
    Ban(*peer->second,
        absl::StrCat("sent a corrupt block (", block, ") of piece ", b->piece));
  }
}

void Swarm::MaybeSuperSeed() {
  if (!super_seed_ || seeder_ || !picker_ || m_->num_pieces <= 1 ||
      !picker_->have().all())
    return;
  // Trusted peers (an origin's fan-out) get the trusted mode; a torrent's
  // peers the strict one of BEP 16.
  seeder_.emplace(
      m_->num_pieces,
      [m = m_](uint32_t i) { return uint64_t{chunk::PieceSize(*m, i)}; },
      random_, /*strict=*/!options_.trusted_peers);
}

void Swarm::SetSuperSeed(bool on) {
  super_seed_ = on;
  if (on) {
    MaybeSuperSeed();
    return;
  }
  if (!seeder_) return;
  seeder_.reset();
  // Peers were shown some pieces: tell them of the rest.
  for (Peer* q : LivePeers()) {
    std::string haves;
    for (uint32_t i = 0; i < m_->num_pieces; ++i)
      if (picker_->have().test(i) && !q->Has(i))
        wire::AppendMessage(wire::Have{i}, haves);
    if (!haves.empty()) q->conn->Send(std::move(haves));
    SyncUploadOnly(*q);
  }
}

void Swarm::Complete() {
  spdlog::info("swarm {}: complete", hashes_.BestHex().substr(0, 12));
  // Only trusted origins start super-seeding at the start; a torrent set to
  // super-seed does once it has everything.
  if (!options_.trusted_peers) MaybeSuperSeed();
  for (Peer* q : LivePeers()) {
    UpdateInterest(*q);
    SyncUploadOnly(*q);
    CloseIfBothSeeds(*q);
  }
  OnComplete();
}

}  // namespace shoal::node
