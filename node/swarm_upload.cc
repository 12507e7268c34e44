// The swarm engine: serving blocks and hashes, and super-seeding.
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

// --- Serving
// --------------------------------------------------------------------------

void Swarm::OnRequest(Peer& p, const wire::BlockSpec& b) {
  const bool valid =
      picker_ && b.piece < m_->num_pieces && b.length > 0 &&
      b.length <= kMaxBlockRequest &&
      uint64_t{b.begin} + b.length <= chunk::PieceSize(*m_, b.piece);
  if (!valid) {
    return Drop(*p.conn, absl::InvalidArgumentError(absl::StrCat(
                             "request outside the torrent: piece ", b.piece,
                             " offset ", b.begin, " length ", b.length)));
  }
  const bool allowed =
      !p.am_choking || std::find(p.allowed_out.begin(), p.allowed_out.end(),
                                 b.piece) != p.allowed_out.end();
  if (!allowed || !picker_->have().test(b.piece) ||
      p.requests_in.size() >= static_cast<size_t>(options_.max_requests * 4)) {
    if (p.fast) p.conn->Send(wire::Reject{b});
    return;
  }
  // A cluster node whose uplink is backlogged turns requests away (the
  // origin, which alone has what it reveals, never does): the peer asks
  // another holder, whose uplink may be idle (docs/ARCHITECTURE.md,
  // "Fan-out").
  if (options_.upload_backlog_bytes > 0 && p.fast && !seeder_ &&
      num_peers() > 1) {
    const double limit =
        std::max(static_cast<double>(options_.upload_backlog_bytes),
                 options_.upload_backlog_seconds * up_.rate());
    size_t backlog = 0;
    for (Peer* q : LivePeers()) backlog += q->conn->queued_bytes();
    if (static_cast<double>(backlog) > limit) {
      p.conn->Send(wire::Reject{b});
      return;
    }
  }
  p.requests_in.push_back(b);
  ServeQueued(p);
}

void Swarm::ServeQueued(Peer& p) {
  while (!p.gone && !p.requests_in.empty() && storage_ &&
         p.conn->queued_bytes() < PeerLink::kHighWater) {
    const wire::BlockSpec b = p.requests_in.front();
    p.requests_in.pop_front();
    if (PieceCache::Piece hit = piece_cache_.Find(b.piece)) {
      SendBlockFromPiece(p, b, hit);
      continue;
    }
    if (!piece_cache_.Wait(b.piece, {p.conn->key(), b})) continue;
    const uint32_t piece = b.piece;
    auto read = std::make_shared<absl::StatusOr<std::string>>();
    env_.Offload(
        [read, storage = storage_, piece] {
          *read = storage->ReadPiece(piece);
        },
        [this, alive = std::weak_ptr<bool>(alive_), piece, read] {
          if (alive.expired()) return;
          absl::StatusOr<std::string>& data = *read;
          PieceCache::Piece shared;
          if (data.ok())
            shared = std::make_shared<const std::string>(*std::move(data));
          for (auto& [key, b] : piece_cache_.Done(piece, shared)) {
            auto it = peers_.find(key);
            if (it == peers_.end() || it->second->gone) continue;
            if (shared) {
              SendBlockFromPiece(*it->second, b, shared);
            } else if (it->second->fast) {
              it->second->conn->Send(wire::Reject{b});
            }
          }
          if (!shared) {
            spdlog::warn("swarm {}: cannot serve piece {}: {}",
                         hashes_.BestHex().substr(0, 12), piece,
                         data.status().ToString());
            // The storage lost it: it must come back from peers.
            if (picker_ && data.status().code() == absl::StatusCode::kDataLoss)
              Restart();
            return;
          }
          for (Peer* q : LivePeers()) ServeQueued(*q);
        });
  }
}

void Swarm::SendBlockFromPiece(
    Peer& p, const wire::BlockSpec& b,
    const std::shared_ptr<const std::string>& piece) {
  std::string out;
  wire::AppendPieceHeader(b.piece, b.begin, b.length, out);
  // Storage may return a piece without its trailing pad bytes: they are zeros.
  const size_t have = b.begin < piece->size()
                          ? std::min<size_t>(b.length, piece->size() - b.begin)
                          : 0;
  p.up.Add(b.length);
  up_.Add(b.length);
  Add(NodeStats::Get().kind(options_.kind).bytes_sent, b.length);
  if (have == b.length) {
    // The block goes from the cached piece itself.
    p.conn->SendShared(std::move(out), piece, b.begin, b.length);
  } else {
    out.reserve(13 + b.length);
    if (have > 0) out.append(*piece, b.begin, have);
    out.append(b.length - have, '\0');
    p.conn->Send(std::move(out));
  }
  if (seeder_ && seeder_->Sent(p.conn->key(), b.piece, b.length))
    SendReveals(p);
}

void Swarm::RevealMore(Peer& p, std::string& out) {
  if (!seeder_ || p.gone || p.has_all) return;
  for (uint32_t piece : seeder_->RevealMore(
           p.conn->key(), p.has, p.up.rate(), ticks_,
           [&](uint32_t i) { return picker_->Availability(i); }))
    wire::AppendMessage(wire::Have{piece}, out);
}

void Swarm::SendReveals(Peer& p) {
  std::string out;
  RevealMore(p, out);
  if (!out.empty()) p.conn->Send(std::move(out));
}

void Swarm::OnHashRequest(Peer& p, const wire::HashRequest& m) {
  auto reject = [&] { p.conn->Send(wire::HashReject{m.spec}); };
  if (!m_ || !storage_) return reject();
  size_t file = 0;
  const chunk::PieceLayerTree* tree = TreeFor(m.spec.pieces_root, &file);
  if (tree == nullptr) return reject();
  chunk::HashRange r{m.spec.base_layer, m.spec.index, m.spec.length,
                     m.spec.proof_layers};
  const chunk::PieceRange range = chunk::FilePieces(*m_, file);
  const uint64_t file_blocks = chunk::NumBlocks(m_->files[file].length);
  auto block_hashes =
      [&](uint64_t first,
          uint32_t count) -> absl::StatusOr<std::vector<Sha256Digest>> {
    std::vector<Sha256Digest> out(count);
    const uint32_t per_piece = m_->piece_length / chunk::kBlockSize;
    std::string piece_data;
    uint32_t loaded = UINT32_MAX;
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t block = first + k;
      if (block >= file_blocks) break;  // padding: zero hashes
      const uint32_t piece =
          range.first + static_cast<uint32_t>(block / per_piece);
      if (!picker_->have().test(piece))
        return absl::UnavailableError("piece not held");
      if (piece != loaded) {
        auto d = storage_->ReadPiece(piece);
        if (!d.ok()) return d.status();
        piece_data = *std::move(d);
        loaded = piece;
      }
      const uint64_t off = (block % per_piece) * chunk::kBlockSize;
      const uint64_t file_end = m_->files[file].offset +
                                m_->files[file].length -
                                uint64_t{piece} * m_->piece_length;
      const uint64_t len =
          std::min<uint64_t>(chunk::kBlockSize, file_end - off);
      out[k] = codec::Sha256::Hash(
          std::string_view(piece_data)
              .substr(off, std::min<uint64_t>(len, piece_data.size() - off)));
    }
    return out;
  };
  auto hashes = tree->GetHashes(r, block_hashes);
  if (!hashes.ok()) return reject();
  std::string flat;
  flat.reserve(hashes->size() * 32);
  for (const auto& h : *hashes)
    flat.append(reinterpret_cast<const char*>(h.data()), 32);
  p.conn->Send(wire::Hashes{m.spec, flat});
}

}  // namespace shoal::node
