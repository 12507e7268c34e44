// The swarm engine: metadata (BEP 9), PEX (BEP 11) and piece layers (BEP 52).
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

// --- Metadata
// -------------------------------------------------------------------------

void Swarm::OnExtended(Peer& p, const wire::Extended& m) {
  if (m.id == 0) {
    auto ext = wire::ParseExtensionHandshake(m.payload);
    if (!ext.ok()) return Drop(*p.conn, ext.status());
    p.ext = *std::move(ext);
    p.got_ext = true;
    if (p.incoming && p.ext.listen_port && *p.ext.listen_port != 0 &&
        !p.listen) {
      PeerEndpoint listen = p.conn->remote();
      listen.port = *p.ext.listen_port;
      p.listen = listen;
      known_.Connected(listen, ticks_);  // not dialed while it is here
    }
    p.upload_only = p.ext.upload_only;
    // Our address as peers see it (BEP 10 yourip), for BEP 40 priorities:
    // the latest word wins (a liar only skews which peers we prefer).
    if (p.ext.yourip.size() == 4 || p.ext.yourip.size() == 16) {
      own_address_ = PeerEndpoint::FromBytes(
          p.ext.yourip.size() == 4 ? AddressFamily::kV4 : AddressFamily::kV6,
          p.ext.yourip, listen_port_);
    }
    MaybeRequestMetadata(p);
    CloseIfBothSeeds(p);
    return;
  }
  if (m.id == kOurUploadOnlyId) {
    if (m.payload.empty())
      return Drop(*p.conn, absl::InvalidArgumentError(
                               "upload_only message without its flag"));
    p.upload_only = m.payload[0] != 0;
    CloseIfBothSeeds(p);
    return;
  }
  if (m.id == kOurMetadataId) OnMetadataMessage(p, m.payload);
  if (m.id == kOurPexId) OnPex(p, m.payload);
}

std::vector<uint32_t> Swarm::AllowedFastSet(const PeerEndpoint& addr) const {
  if (addr.family != AddressFamily::kV4 || !m_) return {};
  std::array<uint8_t, 4> v4;
  std::copy(addr.address.begin(), addr.address.begin() + 4, v4.begin());
  return wire::AllowedFastSet(v4, handshake_hash(), m_->num_pieces, /*k=*/10);
}

bool Swarm::private_torrent() const { return m_ && m_->is_private; }

void Swarm::OnPex(Peer& p, std::string_view payload) {
  if (private_torrent()) return;
  // BEP 11: at most one message a minute; extra ones are ignored.
  if (p.last_pex_in > 0 && ticks_ - p.last_pex_in < 45) return;
  p.last_pex_in = ticks_ == 0 ? 1 : ticks_;
  auto m = wire::ParsePex(payload);
  if (!m.ok()) return Drop(*p.conn, m.status());
  std::vector<PeerEndpoint> peers;
  // A seed does not dial seeds (BEP 21): they have nothing to trade.
  const bool seed = picker_ && picker_->have().all();
  for (const wire::PexPeer& e : m->added) {
    if (seed && (e.flags & wire::kPexSeed)) continue;
    auto ep = PeerEndpoint::FromIpString(e.ip, e.port);
    if (ep && e.port != 0) peers.push_back(*ep);
  }
  ConnectTo(peers);
}

void Swarm::SendPex() {
  if (private_torrent()) return;
  // The listen addresses of the peers we are connected to.
  std::vector<std::pair<uint64_t, wire::PexPeer>> known;
  for (Peer* q : LivePeers()) {
    if (!q->listen) continue;
    wire::PexPeer e;
    e.ip = q->listen->IpString();
    e.port = q->listen->port;
    if (q->IsSeed() || q->upload_only) e.flags |= wire::kPexSeed;
    if (!q->incoming) e.flags |= wire::kPexReachable;
    if (q->conn->transport() == "utp") e.flags |= wire::kPexSupportsUtp;
    known.emplace_back(q->conn->key(), std::move(e));
  }
  const int64_t now_ms = static_cast<int64_t>(ticks_) * 1000;
  for (Peer* q : LivePeers()) {
    const uint8_t id = q->ext.IdOf("ut_pex");
    if (id == 0) continue;
    std::vector<wire::PexPeer> others;
    for (const auto& [key, e] : known)
      if (key != q->conn->key()) others.push_back(e);
    if (!q->pex) q->pex = std::make_unique<wire::PexTracker>();
    if (!q->pex->Due(now_ms)) continue;
    if (auto msg = q->pex->Update(others, now_ms)) {
      q->conn->Send(wire::Extended{id, wire::EncodePex(*msg)});
    }
  }
}

void Swarm::MaybeRequestMetadata(Peer& p) {
  if (m_ || p.metadata_requested || !p.got_ext) return;
  const uint8_t their_id = p.ext.IdOf("ut_metadata");
  if (their_id == 0 || !p.ext.metadata_size) return;
  auto wanted = metadata_.Wanted(*p.ext.metadata_size);
  if (!wanted.ok()) return Drop(*p.conn, wanted.status());
  p.metadata_requested = true;
  std::string out;
  for (uint32_t i : *wanted) {
    wire::AppendMessage(
        wire::Extended{their_id,
                       wire::EncodeMetadataMessage(
                           {wire::MetadataMessageType::kRequest, i, {}, {}})},
        out);
  }
  p.conn->Send(std::move(out));
}

void Swarm::OnMetadataMessage(Peer& p, std::string_view payload) {
  auto m = wire::ParseMetadataMessage(payload);
  if (!m.ok()) return Drop(*p.conn, m.status());
  const uint8_t their_id = p.ext.IdOf("ut_metadata");
  switch (m->type) {
    case wire::MetadataMessageType::kRequest: {
      if (their_id == 0) return;
      p.conn->Send(wire::Extended{
          their_id, wire::EncodeMetadataMessage(MetadataExchange::Answer(
                        m_ ? &m_->info_bytes : nullptr, m->piece))});
      return;
    }
    case wire::MetadataMessageType::kReject:
      p.metadata_requested = false;
      return;
    case wire::MetadataMessageType::kData: {
      if (m_) return;
      auto dict = metadata_.OnData(*m, p.ext.metadata_size.value_or(-1));
      if (!dict.ok() && absl::IsDataLoss(dict.status())) {
        // Whoever sent pieces of it may be the liar; ask again from scratch.
        for (Peer* q : LivePeers()) q->metadata_requested = false;
        Ban(p, std::string(dict.status().message()));
        for (Peer* q : LivePeers()) MaybeRequestMetadata(*q);
        return;
      }
      if (!dict.ok()) return Drop(*p.conn, dict.status());
      if (!dict->has_value()) return;
      auto parsed = ParseMetadata(**dict);
      if (!parsed.ok()) {
        Ban(p, std::string(parsed.status().message()));
        return;
      }
      spdlog::info("swarm {}: metadata: {} bytes in {} pieces",
                   hashes_.BestHex().substr(0, 12), parsed->total_size,
                   parsed->num_pieces);
      SetMetadata(std::make_shared<chunk::Metainfo>(*std::move(parsed)));
      return;
    }
  }
}

absl::StatusOr<chunk::Metainfo> Swarm::ParseMetadata(
    const std::string& info_dict) {
  chunk::MetainfoLimits limits;
  limits.max_size = static_cast<uint64_t>(options_.max_metadata_size);
  return chunk::ParseInfoDict(info_dict, limits);
}

void Swarm::SetMetadata(std::shared_ptr<chunk::Metainfo> m) {
  m_ = std::move(m);
  verifier_ = std::make_shared<chunk::PieceVerifier>(*m_);
  layers_ = m_->piece_layers;
  layers_.resize(m_->files.size());
  layer_fetch_.reset();
  file_by_root_.clear();
  trees_.clear();
  for (size_t f = 0; f < m_->files.size(); ++f) {
    const chunk::FileEntry& file = m_->files[f];
    if (!file.pieces_root) continue;
    file_by_root_[std::string(
        reinterpret_cast<const char*>(file.pieces_root->data()), 32)] = f;
    // A file of one piece: its pieces root is its layer.
    const chunk::PieceRange range = chunk::FilePieces(*m_, f);
    if (range.end - range.first <= 1) {
      layers_[f].assign(reinterpret_cast<const char*>(file.pieces_root->data()),
                        32);
    }
  }
  layer_fetch_ = std::make_unique<LayerExchange>(m_, layers_);
  if (layer_fetch_->done()) {
    layer_fetch_.reset();
    OnLayersComplete();
    return;
  }
  spdlog::info("swarm {}: fetching the piece layers of {} files",
               hashes_.BestHex().substr(0, 12), layer_fetch_->files_missing());
  for (Peer* q : LivePeers()) MaybeRequestHashes(*q);
}

void Swarm::MaybeRequestHashes(Peer& p) {
  if (!m_ || !layer_fetch_ || p.hashes_requested || p.gone) return;
  if (!p.has_all && p.has.size() == 0 && p.raw_bitfield.empty() &&
      p.early_haves.empty())
    return;
  // Asked of several peers at once (the first proof wins): a peer that never
  // answers must not stall the fetch, and the layers are small next to the
  // content.
  int asked = 0;
  for (const auto& [key, q] : peers_) asked += q->hashes_requested && !q->gone;
  if (asked >= kHashPeers) return;
  std::string out;
  for (const wire::HashSpec& spec : layer_fetch_->Requests())
    wire::AppendMessage(wire::HashRequest{spec}, out);
  p.hashes_requested = true;
  p.conn->Send(std::move(out));
}

void Swarm::OnHashes(Peer& p, const wire::Hashes& m) {
  if (m.spec.base_layer == 0) return OnBlockHashes(p, m.spec, m.hashes, false);
  if (!m_ || !layer_fetch_) return;
  auto got = layer_fetch_->OnHashes(m.spec, m.hashes);
  if (!got.ok()) {
    if (absl::IsDataLoss(got.status())) return Ban(p, "sent bad hashes");
    return Drop(*p.conn, got.status());
  }
  if (!got->has_value()) return;
  auto& [file, bytes] = **got;
  if (absl::Status s = verifier_->AddPieceLayer(file, bytes); !s.ok()) {
    spdlog::warn("swarm {}: piece layer refused: {}",
                 hashes_.BestHex().substr(0, 12), s.ToString());
    layer_fetch_->Refetch(file);
    return;
  }
  layers_[file] = std::move(bytes);
  if (!layer_fetch_->done()) return;
  layer_fetch_.reset();
  OnLayersComplete();
}

void Swarm::OnLayersComplete() {
  for (Peer* q : LivePeers()) q->hashes_requested = false;
  preparing_ = true;
  Prepare();
}

void Swarm::Restart() {
  picker_.reset();
  storage_.reset();
  partial_.clear();
  partial_bytes_ = 0;
  piece_cache_.Clear();
  for (Peer* q : LivePeers()) {
    q->registered = false;
    q->requests.Clear();
  }
  SyncBudget();
  preparing_ = true;
  Prepare();
}

const chunk::PieceLayerTree* Swarm::TreeFor(const Sha256Digest& root,
                                            size_t* file) {
  auto fit = file_by_root_.find(
      std::string(reinterpret_cast<const char*>(root.data()), 32));
  if (fit == file_by_root_.end()) return nullptr;
  *file = fit->second;
  if (layers_[*file].empty()) return nullptr;
  auto& tree = trees_[*file];
  if (!tree) {
    tree = std::make_unique<chunk::PieceLayerTree>(
        codec::SplitDigests(layers_[*file]), m_->piece_length,
        chunk::NumBlocks(m_->files[*file].length));
  }
  return tree.get();
}

}  // namespace shoal::node
