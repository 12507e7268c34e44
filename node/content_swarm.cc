#include "node/content_swarm.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/hex.h"
#include "chunk/bdecode.h"
#include "chunk/merkle.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

using chunk::Sha256Digest;

constexpr uint8_t kOurMetadataId = 1;
constexpr uint32_t kMaxBlockRequest = 128 * 1024;
constexpr size_t kPieceCacheEntries = 4;
constexpr uint32_t kHashesPerRequest = 512;
constexpr int kHashPeers = 4;

std::string PeerName(const PeerConnection& c) {
  boost::system::error_code ec;
  return absl::StrCat(c.remote().address().to_string(ec), ":",
                      c.remote().port());
}

}  // namespace

struct ContentSwarm::Peer {
  std::shared_ptr<PeerConnection> conn;
  wire::Handshake handshake;
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
  std::deque<wire::BlockSpec> requests_in;
  uint32_t outstanding = 0;
  uint32_t depth = 0;
  bool metadata_requested = false;
  bool hashes_requested = false;
  int bad_pieces = 0;
  bool gone = false;
};

ContentSwarm::ContentSwarm(asio::io_context& io, store::ChunkStore& store,
                           ThreadPool& pool, const chunk::ContentId& id,
                           SwarmOptions options, std::string client_name,
                           uint16_t listen_port)
    : io_(io),
      store_(store),
      pool_(pool),
      id_(id),
      options_(options),
      client_name_(std::move(client_name)),
      listen_port_(listen_port),
      events_(std::make_shared<PieceEvents>()),
      alive_(std::make_shared<bool>(true)) {}

ContentSwarm::~ContentSwarm() {
  *alive_ = false;
  Shutdown();
}

std::array<uint8_t, 20> ContentSwarm::info_hash() const {
  std::array<uint8_t, 20> h;
  std::memcpy(h.data(), id_.bytes.data(), 20);
  return h;
}

bool ContentSwarm::complete() const { return picker_ && picker_->Complete(); }

void ContentSwarm::Init() {
  auto st = store_.Stat(id_);
  if (!st.ok()) return;
  const store::ContentRecord& r = st->record;
  layout_ = r.layout();
  pieces_root_ = r.pieces_root;
  info_dict_ = chunk::CanonicalInfoDict(*layout_, pieces_root_);
  layer_ = r.piece_layer;
  layer_known_.assign(layer_.size(), true);
  stored_ = true;
  events_->SetNumPieces(layout_->num_pieces());
  if (!layer_.empty()) {
    tree_ = std::make_unique<chunk::PieceLayerTree>(
        layer_, layout_->piece_length, chunk::NumBlocks(layout_->length));
  }
  StartDownloading();
}

void ContentSwarm::Shutdown() {
  std::vector<std::shared_ptr<PeerConnection>> conns;
  for (auto& [key, p] : peers_) conns.push_back(p->conn);
  for (auto& c : conns) c->Close(absl::CancelledError("swarm shut down"));
  peers_.clear();
}

ContentSwarm::Peer* ContentSwarm::Find(PeerConnection& conn) {
  auto it = peers_.find(conn.key());
  return it == peers_.end() || it->second->gone ? nullptr : it->second.get();
}

void ContentSwarm::AddPeer(std::shared_ptr<PeerConnection> conn,
                           const wire::Handshake& theirs) {
  if (static_cast<int>(peers_.size()) >= options_.max_peers) {
    conn->Close(absl::ResourceExhaustedError("too many peers"));
    return;
  }
  auto p = std::make_unique<Peer>();
  p->conn = conn;
  p->handshake = theirs;
  p->fast = theirs.fast();
  p->depth = options_.min_requests;
  Peer& peer = *p;
  peers_[conn->key()] = std::move(p);
  spdlog::debug("swarm {}: peer {} connected", id_.Hex().substr(0, 12),
                PeerName(*conn));

  std::string hello;
  if (theirs.extensions()) {
    wire::ExtensionHandshake ext;
    ext.m["ut_metadata"] = kOurMetadataId;
    ext.client = client_name_;
    ext.listen_port = listen_port_;
    ext.reqq = options_.max_requests * 4;
    if (layout_) ext.metadata_size = static_cast<int64_t>(info_dict_.size());
    boost::system::error_code ec;
    auto addr = conn->remote().address();
    if (addr.is_v4()) {
      auto b = addr.to_v4().to_bytes();
      ext.yourip.assign(reinterpret_cast<const char*>(b.data()), b.size());
    }
    wire::AppendMessage(wire::Extended{0, wire::EncodeExtensionHandshake(ext)},
                        hello);
  }
  const bool have_all = complete();
  const bool have_none = !picker_ || picker_->have().none();
  if (peer.fast) {
    if (have_all) {
      wire::AppendMessage(wire::HaveAll{}, hello);
    } else if (have_none) {
      wire::AppendMessage(wire::HaveNone{}, hello);
    } else {
      wire::AppendMessage(wire::Bitfield{picker_->have().bytes()}, hello);
    }
  } else if (!have_none) {
    wire::AppendMessage(wire::Bitfield{picker_->have().bytes()}, hello);
  }
  conn->Send(std::move(hello));
  conn->Start(this);
}

void ContentSwarm::OnClose(PeerConnection& conn, const absl::Status& why) {
  auto it = peers_.find(conn.key());
  if (it == peers_.end() || it->second->gone) return;
  Peer& p = *it->second;
  p.gone = true;
  spdlog::debug("swarm {}: peer {} gone: {}", id_.Hex().substr(0, 12),
                PeerName(conn), why.ToString());
  if (picker_) {
    if (p.registered) {
      if (p.has_all) {
        picker_->PeerLostAll();
      } else {
        picker_->PeerLostBitfield(p.has);
      }
    }
    picker_->PeerGone(conn.key());
  }
  // Erase later: the caller may still be inside this peer's code.
  asio::post(
      io_, [this, alive = std::weak_ptr<bool>(alive_), key = conn.key()] {
        if (alive.expired()) return;
        peers_.erase(key);
        if (peers_.empty() && !complete()) {
          events_->Fail(absl::UnavailableError(
              "every peer disconnected before the content was complete"));
        }
        // Other peers may take over the requests it held.
        for (auto& [k, q] : peers_) RequestMore(*q);
      });
}

void ContentSwarm::Drop(PeerConnection& conn, const absl::Status& why) {
  conn.Close(why);
}

void ContentSwarm::Ban(Peer& p, const std::string& why) {
  boost::system::error_code ec;
  std::string addr = p.conn->remote().address().to_string(ec);
  spdlog::warn("swarm {}: banning {}: {}", id_.Hex().substr(0, 12), addr, why);
  banned_.insert(addr);
  banned_keys_.insert(p.conn->key());
  p.conn->Close(absl::PermissionDeniedError(absl::StrCat("banned: ", why)));
}

void ContentSwarm::OnWritable(PeerConnection& conn) {
  if (Peer* p = Find(conn)) ServeQueued(*p);
}

void ContentSwarm::OnMessage(PeerConnection& conn,
                             const wire::Message& message) {
  Peer* pp = Find(conn);
  if (pp == nullptr) return;
  Peer& p = *pp;
  const uint32_t n = layout_ ? layout_->num_pieces() : 0;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Choke>) {
          p.peer_choking = true;
          if (!p.fast && picker_) {
            picker_->PeerGone(conn.key());
            p.outstanding = 0;
          }
        } else if constexpr (std::is_same_v<T, wire::Unchoke>) {
          p.peer_choking = false;
          RequestMore(p);
        } else if constexpr (std::is_same_v<T, wire::Interested>) {
          p.peer_interested = true;
          UpdateChoke(p);
        } else if constexpr (std::is_same_v<T, wire::NotInterested>) {
          p.peer_interested = false;
        } else if constexpr (std::is_same_v<T, wire::Have>) {
          if (!layout_) {
            if (p.early_haves.size() < 100000) p.early_haves.push_back(m.piece);
            return;
          }
          if (m.piece >= n)
            return Drop(conn,
                        absl::InvalidArgumentError("have past the last piece"));
          if (!p.has.test(m.piece) && !p.has_all) {
            p.has.set(m.piece);
            if (p.registered) picker_->PeerHas(m.piece);
          }
          OnPeerHas(p);
        } else if constexpr (std::is_same_v<T, wire::Bitfield>) {
          if (!layout_) {
            p.raw_bitfield = std::string(m.bits);
            return;
          }
          auto bits = chunk::Bitfield::FromBytes(m.bits, n);
          if (!bits)
            return Drop(
                conn, absl::InvalidArgumentError("bitfield of the wrong size"));
          p.has = *bits;
          OnPeerHas(p);
        } else if constexpr (std::is_same_v<T, wire::HaveAll>) {
          p.has_all = true;
          OnPeerHas(p);
        } else if constexpr (std::is_same_v<T, wire::Request>) {
          OnRequest(p, m.block);
        } else if constexpr (std::is_same_v<T, wire::Piece>) {
          OnPiece(p, m);
        } else if constexpr (std::is_same_v<T, wire::Cancel>) {
          for (auto it = p.requests_in.begin(); it != p.requests_in.end();
               ++it) {
            if (*it == m.block) {
              p.requests_in.erase(it);
              if (p.fast) p.conn->Send(wire::Reject{m.block});
              break;
            }
          }
        } else if constexpr (std::is_same_v<T, wire::Reject>) {
          if (picker_) {
            picker_->RequestFailed(
                conn.key(),
                chunk::Block{m.block.piece, m.block.begin, m.block.length});
          }
          if (p.outstanding > 0) --p.outstanding;
        } else if constexpr (std::is_same_v<T, wire::Extended>) {
          OnExtended(p, m);
        } else if constexpr (std::is_same_v<T, wire::HashRequest>) {
          OnHashRequest(p, m);
        } else if constexpr (std::is_same_v<T, wire::Hashes>) {
          OnHashes(p, m);
        } else if constexpr (std::is_same_v<T, wire::HashReject>) {
          p.hashes_requested = false;
        }
        // keep-alive, port, suggest, allowed fast, have none, unknown: nothing
        // to do.
      },
      message);
}

// --- Metadata
// -----------------------------------------------------------------------------

void ContentSwarm::OnExtended(Peer& p, const wire::Extended& m) {
  if (m.id == 0) {
    auto ext = wire::ParseExtensionHandshake(m.payload);
    if (!ext.ok()) return Drop(*p.conn, ext.status());
    p.ext = *std::move(ext);
    p.got_ext = true;
    MaybeRequestMetadata(p);
    return;
  }
  if (m.id == kOurMetadataId) OnMetadataMessage(p, m.payload);
}

void ContentSwarm::MaybeRequestMetadata(Peer& p) {
  if (layout_ || p.metadata_requested || !p.got_ext) return;
  const uint8_t their_id = p.ext.IdOf("ut_metadata");
  if (their_id == 0 || !p.ext.metadata_size) return;
  const int64_t size = *p.ext.metadata_size;
  if (size <= 0 || size > options_.max_metadata_size) {
    return Drop(*p.conn,
                absl::InvalidArgumentError("metadata size out of range"));
  }
  const uint32_t pieces = static_cast<uint32_t>(
      (size + wire::kMetadataPieceSize - 1) / wire::kMetadataPieceSize);
  if (metadata_pieces_.size() != pieces)
    metadata_pieces_.assign(pieces, std::string());
  p.metadata_requested = true;
  std::string out;
  for (uint32_t i = 0; i < pieces; ++i) {
    if (!metadata_pieces_[i].empty()) continue;
    wire::AppendMessage(
        wire::Extended{their_id,
                       wire::EncodeMetadataMessage(
                           {wire::MetadataMessageType::kRequest, i, {}, {}})},
        out);
  }
  p.conn->Send(std::move(out));
}

void ContentSwarm::OnMetadataMessage(Peer& p, std::string_view payload) {
  auto m = wire::ParseMetadataMessage(payload);
  if (!m.ok()) return Drop(*p.conn, m.status());
  const uint8_t their_id = p.ext.IdOf("ut_metadata");
  switch (m->type) {
    case wire::MetadataMessageType::kRequest: {
      if (their_id == 0) return;
      const uint64_t off = uint64_t{m->piece} * wire::kMetadataPieceSize;
      wire::MetadataMessage reply{
          wire::MetadataMessageType::kReject, m->piece, {}, {}};
      if (layout_ && off < info_dict_.size()) {
        reply.type = wire::MetadataMessageType::kData;
        reply.total_size = static_cast<int64_t>(info_dict_.size());
        reply.data =
            std::string_view(info_dict_).substr(off, wire::kMetadataPieceSize);
      }
      p.conn->Send(
          wire::Extended{their_id, wire::EncodeMetadataMessage(reply)});
      return;
    }
    case wire::MetadataMessageType::kReject:
      p.metadata_requested = false;
      return;
    case wire::MetadataMessageType::kData: {
      if (layout_ || m->piece >= metadata_pieces_.size()) return;
      const uint64_t total = static_cast<uint64_t>(*m->total_size);
      const uint64_t off = uint64_t{m->piece} * wire::kMetadataPieceSize;
      const uint64_t want = std::min<uint64_t>(wire::kMetadataPieceSize,
                                               total - std::min(total, off));
      if (total != static_cast<uint64_t>(p.ext.metadata_size.value_or(-1)) ||
          m->data.size() != want) {
        return Drop(*p.conn, absl::InvalidArgumentError(
                                 "metadata piece of the wrong size"));
      }
      metadata_pieces_[m->piece] = std::string(m->data);
      for (const auto& piece : metadata_pieces_)
        if (piece.empty()) return;
      std::string dict;
      for (const auto& piece : metadata_pieces_) dict += piece;
      metadata_pieces_.clear();
      if (chunk::Sha256::Hash(dict) != id_.bytes) {
        Ban(p, "metadata does not hash to the content ID");
        return;
      }
      if (absl::Status s = ParseCanonical(dict); !s.ok()) {
        Ban(p, std::string(s.message()));
        return;
      }
      SetMetadata(std::move(dict));
      return;
    }
  }
}

absl::Status ContentSwarm::ParseCanonical(const std::string& dict) {
  chunk::BdecodeOptions o;
  o.max_depth = 8;
  o.max_tokens = 64;
  auto doc = chunk::Bdecode(dict, o);
  if (!doc.ok()) return doc.status();
  chunk::BNode tree = doc->root().FindDict("file tree");
  auto piece_length = doc->root().FindInt("piece length");
  if (!tree || tree.size() != 1 || !piece_length) {
    return absl::InvalidArgumentError(
        "metadata is not a single-file v2 info dict");
  }
  chunk::BNode file = tree.dict_items()[0].value.FindDict("");
  auto length = file.FindInt("length");
  if (!length || *length < 0)
    return absl::InvalidArgumentError("metadata has no file length");
  Sha256Digest root{};
  if (auto r = file.FindString("pieces root")) {
    if (r->size() != 32) return absl::InvalidArgumentError("bad pieces root");
    std::memcpy(root.data(), r->data(), 32);
  }
  chunk::ContentLayout layout =
      chunk::ContentLayout::ForLength(static_cast<uint64_t>(*length));
  // The only dict that names this content is the canonical one: rebuild and
  // compare.
  if (chunk::CanonicalInfoDict(layout, root) != dict) {
    return absl::InvalidArgumentError(
        "metadata is not Shoal's canonical info dict");
  }
  layout_ = layout;
  pieces_root_ = root;
  return absl::OkStatus();
}

void ContentSwarm::SetMetadata(std::string info_dict) {
  info_dict_ = std::move(info_dict);
  const uint32_t n = layout_->num_pieces();
  spdlog::info("swarm {}: metadata: {} bytes in {} pieces",
               id_.Hex().substr(0, 12), layout_->length, n);
  if (n <= 1) {
    layer_.clear();
    if (n == 1) layer_.push_back(pieces_root_);
    layer_known_.assign(n, true);
    OnLayerComplete();
    return;
  }
  layer_.assign(n, Sha256Digest{});
  layer_known_.assign(n, false);
  layer_missing_ = n;
  for (auto& [key, q] : peers_) MaybeRequestHashes(*q);
}

void ContentSwarm::MaybeRequestHashes(Peer& p) {
  if (!layout_ || layer_missing_ == 0 || p.hashes_requested || p.gone) return;
  if (!p.has_all && p.has.size() == 0 && p.raw_bitfield.empty() &&
      p.early_haves.empty())
    return;
  // Asked of several peers at once (the first proof wins): a peer that never
  // answers must not stall the fetch, and the layer is small next to the
  // content.
  int asked = 0;
  for (const auto& [key, q] : peers_) asked += q->hashes_requested && !q->gone;
  if (asked >= kHashPeers) return;
  const uint64_t leaves =
      chunk::NextPowerOfTwo(chunk::NumBlocks(layout_->length));
  const int height = std::countr_zero(leaves);
  const int base = std::countr_zero(layout_->piece_length / chunk::kBlockSize);
  const uint64_t width = leaves >> base;
  const uint32_t count =
      static_cast<uint32_t>(std::min<uint64_t>(width, kHashesPerRequest));
  std::string out;
  for (uint64_t index = 0; index < layout_->num_pieces(); index += count) {
    bool need = false;
    for (uint64_t i = index;
         i < std::min<uint64_t>(index + count, layer_known_.size()); ++i)
      need |= !layer_known_[i];
    if (!need) continue;
    wire::HashSpec spec;
    spec.pieces_root = pieces_root_;
    spec.base_layer = static_cast<uint32_t>(base);
    spec.index = static_cast<uint32_t>(index);
    spec.length = count;
    spec.proof_layers = static_cast<uint32_t>(height - base - 1);
    wire::AppendMessage(wire::HashRequest{spec}, out);
  }
  p.hashes_requested = true;
  p.conn->Send(std::move(out));
}

void ContentSwarm::OnHashes(Peer& p, const wire::Hashes& m) {
  if (!layout_ || layer_missing_ == 0 || m.spec.pieces_root != pieces_root_)
    return;
  const uint64_t leaves =
      chunk::NextPowerOfTwo(chunk::NumBlocks(layout_->length));
  const int base = std::countr_zero(layout_->piece_length / chunk::kBlockSize);
  if (static_cast<int>(m.spec.base_layer) != base) return;
  std::vector<Sha256Digest> hashes(m.hashes.size() / 32);
  for (size_t i = 0; i < hashes.size(); ++i)
    std::memcpy(hashes[i].data(), m.hashes.data() + 32 * i, 32);
  chunk::HashRange r{m.spec.base_layer, m.spec.index, m.spec.length,
                     m.spec.proof_layers};
  auto ok = chunk::VerifyHashes(pieces_root_, leaves, r, hashes);
  if (!ok.ok()) {
    if (ok.status().code() == absl::StatusCode::kDataLoss)
      return Ban(p, "sent bad hashes");
    return Drop(*p.conn, ok.status());
  }
  for (uint32_t k = 0; k < r.count; ++k) {
    const uint64_t i = uint64_t{r.index} + k;
    if (i < layer_.size() && !layer_known_[i]) {
      layer_[i] = (*ok)[k];
      layer_known_[i] = true;
      --layer_missing_;
    }
  }
  if (layer_missing_ == 0) OnLayerComplete();
}

void ContentSwarm::OnLayerComplete() {
  store::ContentRecord record;
  record.id = id_;
  record.length = layout_->length;
  record.piece_length = layout_->piece_length;
  record.pieces_root = pieces_root_;
  record.piece_layer = layer_;
  auto st = store_.CreateContent(record);
  if (!st.ok()) {
    spdlog::warn("swarm {}: cannot store: {}", id_.Hex().substr(0, 12),
                 st.status().ToString());
    events_->Fail(st.status());
    Shutdown();
    return;
  }
  stored_ = true;
  events_->SetNumPieces(layout_->num_pieces());
  if (!layer_.empty()) {
    tree_ = std::make_unique<chunk::PieceLayerTree>(
        layer_, layout_->piece_length, chunk::NumBlocks(layout_->length));
  }
  StartDownloading();
}

// --- Downloading
// --------------------------------------------------------------------------

void ContentSwarm::StartDownloading() {
  chunk::PiecePickerOptions po;
  po.total_length = layout_->length;
  po.piece_length = layout_->piece_length;
  picker_ = std::make_unique<chunk::PiecePicker>(
      po, [state = uint64_t{0x9e3779b97f4a7c15} ^ id_.bytes[0]]() mutable {
        // splitmix64: deterministic per content, good enough for tie-breaking.
        uint64_t z = (state += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
      });
  if (auto held = store_.PiecesHeld(id_); held.ok()) {
    for (uint32_t i = 0; i < held->size(); ++i) {
      if ((*held)[i]) {
        picker_->SetHave(i);
        events_->MarkHave(i);
      }
    }
  }
  if (complete()) {
    Complete();
    return;
  }
  std::vector<Peer*> live;
  for (auto& [key, q] : peers_)
    if (!q->gone) live.push_back(q.get());
  for (Peer* q : live) OnPeerHas(*q);
}

void ContentSwarm::OnPeerHas(Peer& p) {
  if (!picker_) {
    MaybeRequestHashes(p);
    return;
  }
  const uint32_t n = layout_->num_pieces();
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
        for (uint32_t i : p.early_haves)
          if (i < n) p.has.set(i);
        p.raw_bitfield.clear();
        p.early_haves.clear();
      }
      picker_->PeerHasBitfield(p.has);
    } else {
      picker_->PeerHasAll();
    }
    p.registered = true;
  } else if (p.has_all && p.has.size() == n && !p.has.all()) {
    // have-all after a bitfield: count it as a seed.
    picker_->PeerLostBitfield(p.has);
    picker_->PeerHasAll();
  }
  UpdateInterest(p);
  RequestMore(p);
}

void ContentSwarm::UpdateInterest(Peer& p) {
  if (!picker_) return;
  bool want = false;
  if (!complete()) {
    if (p.has_all) {
      want = true;
    } else {
      const chunk::Bitfield& have = picker_->have();
      for (uint32_t i = 0; i < p.has.size() && !want; ++i)
        want = p.has.test(i) && !have.test(i) && picker_->Priority(i) > 0;
    }
  }
  if (want != p.am_interested) {
    p.am_interested = want;
    p.conn->Send(want ? wire::Message(wire::Interested{})
                      : wire::Message(wire::NotInterested{}));
  }
}

void ContentSwarm::RequestMore(Peer& p) {
  if (!picker_ || p.gone || p.peer_choking || !p.am_interested || complete())
    return;
  if (p.outstanding >= p.depth) return;
  auto blocks =
      picker_->Pick(p.conn->key(), p.has, p.depth - p.outstanding, p.has_all);
  if (blocks.empty()) return;
  std::string out;
  for (const chunk::Block& b : blocks) {
    wire::AppendMessage(wire::Request{{b.piece, b.offset, b.length}}, out);
    ++p.outstanding;
  }
  p.conn->Send(std::move(out));
}

void ContentSwarm::OnPiece(Peer& p, const wire::Piece& m) {
  if (!picker_ || m.piece >= layout_->num_pieces()) return;
  const uint32_t size = layout_->piece_size(m.piece);
  if (m.data.empty() || uint64_t{m.begin} + m.data.size() > size) {
    return Drop(*p.conn,
                absl::InvalidArgumentError("piece message outside its piece"));
  }
  if (p.outstanding > 0) --p.outstanding;
  // A peer that keeps our pipeline full earns a deeper one.
  if (p.depth < static_cast<uint32_t>(options_.max_requests)) ++p.depth;
  const chunk::Block block{m.piece, m.begin,
                           static_cast<uint32_t>(m.data.size())};
  const uint64_t key = p.conn->key();
  // A late copy (endgame, or a block cancelled too late) of a piece already
  // complete must not start a new buffer that nothing would ever free.
  if (picker_->have().test(m.piece) || verifying_pieces_.contains(m.piece)) {
    picker_->BlockReceived(key, block);
    RequestMore(p);
    return;
  }
  PartialPiece& partial = partial_[m.piece];
  if (partial.data.size() != size) partial.data.resize(size);
  std::memcpy(partial.data.data() + m.begin, m.data.data(), m.data.size());
  if (std::find(partial.senders.begin(), partial.senders.end(), key) ==
      partial.senders.end()) {
    partial.senders.push_back(key);
  }
  const bool whole = picker_->BlockReceived(key, block);
  // Endgame: the same block may be on its way from others.
  for (uint64_t other : picker_->RequestersOf(block, key)) {
    auto it = peers_.find(other);
    if (it != peers_.end() && !it->second->gone) {
      it->second->conn->Send(
          wire::Cancel{{block.piece, block.offset, block.length}});
      if (it->second->outstanding > 0) --it->second->outstanding;
    }
    picker_->RequestFailed(other, block);
  }
  if (whole) {
    auto data = std::make_shared<std::string>(std::move(partial.data));
    std::vector<uint64_t> senders = std::move(partial.senders);
    partial_.erase(m.piece);
    verifying_pieces_.insert(m.piece);
    const uint32_t piece = m.piece;
    const Sha256Digest want = layer_[piece];
    const int levels = layout_->piece_tree_levels(piece);
    ++verifying_;
    // The job must not touch `this`: the swarm may be gone by the time it runs.
    pool_.Post([this, alive = std::weak_ptr<bool>(alive_), &store = store_,
                &io = io_, id = id_, data, piece, want, levels,
                senders = std::move(senders)]() mutable {
      absl::Status s;
      if (chunk::HashPiece(chunk::AsBytes(*data), levels) != want) {
        s = absl::DataLossError("piece failed its hash check");
      } else {
        s = store.PutContentPiece(id, piece, chunk::AsBytes(*data));
      }
      asio::post(
          io, [this, alive, piece, senders = std::move(senders), s]() mutable {
            if (alive.expired()) return;
            OnPieceVerified(piece, std::move(senders), s);
          });
    });
  }
  RequestMore(p);
}

void ContentSwarm::OnPieceVerified(uint32_t piece,
                                   std::vector<uint64_t> senders,
                                   absl::Status status) {
  --verifying_;
  verifying_pieces_.erase(piece);
  if (!picker_) return;
  if (status.code() == absl::StatusCode::kDataLoss) {
    picker_->PieceFailed(piece);
    spdlog::warn("swarm {}: piece {} failed its hash check",
                 id_.Hex().substr(0, 12), piece);
    // Blame: a peer banned already explains the failure; a sole sender is
    // certainly guilty; otherwise each sender takes a strike.
    const bool explained =
        std::any_of(senders.begin(), senders.end(),
                    [&](uint64_t k) { return banned_keys_.contains(k); });
    if (!explained) {
      for (uint64_t key : senders) {
        auto it = peers_.find(key);
        if (it == peers_.end() || it->second->gone) continue;
        if (senders.size() == 1 ||
            ++it->second->bad_pieces >= options_.ban_after_bad_pieces) {
          Ban(*it->second, absl::StrCat("sent corrupt data for piece ", piece));
        }
      }
    }
    for (auto& [key, q] : peers_) RequestMore(*q);
    return;
  }
  if (!status.ok()) {
    spdlog::error("swarm {}: storing piece {}: {}", id_.Hex().substr(0, 12),
                  piece, status.ToString());
    events_->Fail(status);
    Shutdown();
    return;
  }
  picker_->SetHave(piece);
  events_->MarkHave(piece);
  std::string have;
  wire::AppendMessage(wire::Have{piece}, have);
  for (auto& [key, q] : peers_)
    if (!q->gone && !q->has_all) q->conn->Send(have);
  if (picker_->Complete()) Complete();
}

void ContentSwarm::Complete() {
  spdlog::info("swarm {}: complete", id_.Hex().substr(0, 12));
  std::vector<Peer*> live;
  for (auto& [key, q] : peers_)
    if (!q->gone) live.push_back(q.get());
  for (Peer* q : live) {
    UpdateInterest(*q);
    // Two seeds have nothing to trade.
    if (q->has_all) q->conn->Close(absl::OkStatus());
  }
}

// --- Serving
// ------------------------------------------------------------------------------

void ContentSwarm::UpdateChoke(Peer& p) {
  if (!p.am_choking || !p.peer_interested) return;
  int unchoked = 0;
  for (const auto& [key, q] : peers_) unchoked += !q->am_choking;
  if (options_.trusted_peers || unchoked < options_.max_peers) {
    p.am_choking = false;
    p.conn->Send(wire::Unchoke{});
  }
}

void ContentSwarm::OnRequest(Peer& p, const wire::BlockSpec& b) {
  // libtorrent treats a v2 file as padded to a whole number of pieces and may
  // ask for the last block in full; the padding is zeros (SendBlockFromPiece
  // adds them).
  const bool valid = picker_ && b.piece < layout_->num_pieces() &&
                     b.length > 0 && b.length <= kMaxBlockRequest &&
                     uint64_t{b.begin} + b.length <= layout_->piece_length;
  if (!valid) {
    return Drop(*p.conn, absl::InvalidArgumentError(absl::StrCat(
                             "request outside the content: piece ", b.piece,
                             " offset ", b.begin, " length ", b.length)));
  }
  if (p.am_choking || !picker_->have().test(b.piece) ||
      p.requests_in.size() >= static_cast<size_t>(options_.max_requests * 4)) {
    if (p.fast) p.conn->Send(wire::Reject{b});
    return;
  }
  p.requests_in.push_back(b);
  ServeQueued(p);
}

void ContentSwarm::ServeQueued(Peer& p) {
  while (!p.gone && !p.requests_in.empty() &&
         p.conn->queued_bytes() < PeerConnection::kHighWater) {
    const wire::BlockSpec b = p.requests_in.front();
    auto hit = std::find_if(piece_cache_.begin(), piece_cache_.end(),
                            [&](const auto& e) { return e.first == b.piece; });
    if (hit != piece_cache_.end()) {
      piece_cache_.splice(piece_cache_.begin(), piece_cache_, hit);
      p.requests_in.pop_front();
      SendBlockFromPiece(p, b, piece_cache_.front().second);
      continue;
    }
    auto& waiters = piece_reads_[b.piece];
    const bool reading = !waiters.empty();
    waiters.emplace_back(p.conn->key(), b);
    p.requests_in.pop_front();
    if (reading) continue;
    const uint32_t piece = b.piece;
    pool_.Post([this, alive = std::weak_ptr<bool>(alive_), &store = store_,
                &io = io_, id = id_, piece] {
      auto data = store.ReadPiece(id, piece);
      asio::post(io, [this, alive, piece, data = std::move(data)]() mutable {
        if (alive.expired()) return;
        auto waiters = std::move(piece_reads_[piece]);
        piece_reads_.erase(piece);
        if (!data.ok()) {
          spdlog::warn("swarm {}: cannot serve piece {}: {}",
                       id_.Hex().substr(0, 12), piece,
                       data.status().ToString());
          if (picker_ && data.status().code() == absl::StatusCode::kDataLoss) {
            // The store dropped it; it must come back from peers.
            picker_ = nullptr;
            StartDownloading();
          }
          for (auto& [key, b] : waiters) {
            auto it = peers_.find(key);
            if (it != peers_.end() && !it->second->gone && it->second->fast) {
              it->second->conn->Send(wire::Reject{b});
            }
          }
          return;
        }
        auto shared = std::make_shared<const std::string>(*std::move(data));
        piece_cache_.emplace_front(piece, shared);
        if (piece_cache_.size() > kPieceCacheEntries) piece_cache_.pop_back();
        for (auto& [key, b] : waiters) {
          auto it = peers_.find(key);
          if (it == peers_.end() || it->second->gone) continue;
          SendBlockFromPiece(*it->second, b, shared);
        }
        for (auto& [key, q] : peers_) ServeQueued(*q);
      });
    });
  }
}

void ContentSwarm::SendBlockFromPiece(
    Peer& p, const wire::BlockSpec& b,
    const std::shared_ptr<const std::string>& piece) {
  std::string out;
  out.reserve(13 + b.length);
  wire::AppendPieceHeader(b.piece, b.begin, b.length, out);
  const size_t have = b.begin < piece->size()
                          ? std::min<size_t>(b.length, piece->size() - b.begin)
                          : 0;
  out.append(*piece, b.begin, have);
  out.append(b.length - have, '\0');
  p.conn->Send(std::move(out));
}

void ContentSwarm::OnHashRequest(Peer& p, const wire::HashRequest& m) {
  auto reject = [&] { p.conn->Send(wire::HashReject{m.spec}); };
  if (!tree_ || m.spec.pieces_root != pieces_root_) return reject();
  chunk::HashRange r{m.spec.base_layer, m.spec.index, m.spec.length,
                     m.spec.proof_layers};
  auto block_hashes =
      [&](uint64_t first,
          uint32_t count) -> absl::StatusOr<std::vector<Sha256Digest>> {
    std::vector<Sha256Digest> out(count);
    const uint64_t blocks = chunk::NumBlocks(layout_->length);
    const uint32_t per_piece = layout_->piece_length / chunk::kBlockSize;
    std::string piece_data;
    uint32_t loaded = UINT32_MAX;
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t block = first + k;
      if (block >= blocks) break;  // padding: zero hashes
      const uint32_t piece = static_cast<uint32_t>(block / per_piece);
      if (piece != loaded) {
        auto d = store_.ReadPiece(id_, piece);
        if (!d.ok()) return d.status();
        piece_data = *std::move(d);
        loaded = piece;
      }
      const uint64_t off = (block % per_piece) * chunk::kBlockSize;
      out[k] = chunk::Sha256::Hash(
          std::string_view(piece_data).substr(off, chunk::kBlockSize));
    }
    return out;
  };
  auto hashes = tree_->GetHashes(r, block_hashes);
  if (!hashes.ok()) return reject();
  std::string flat;
  flat.reserve(hashes->size() * 32);
  for (const auto& h : *hashes)
    flat.append(reinterpret_cast<const char*>(h.data()), 32);
  p.conn->Send(wire::Hashes{m.spec, flat});
}

}  // namespace shoal::node
