#include "node/swarm.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "chunk/merkle.h"
#include "codec/sha.h"
#include "spdlog/spdlog.h"
#include "wire/allowed_fast.h"
#include "wire/pex.h"

namespace shoal::node {
namespace {

using codec::Sha256Digest;

constexpr uint8_t kOurMetadataId = 1;
constexpr uint8_t kOurPexId = 2;
constexpr uint32_t kMaxBlockRequest = 128 * 1024;
constexpr size_t kPieceCacheEntries = 4;
constexpr uint32_t kHashesPerRequest = 512;
constexpr int kHashPeers = 4;
// Ticks (seconds) between rechokes.
constexpr uint64_t kRechokeTicks = 10;
// A peer silent this long is dropped; we send a keep-alive after half of it.
constexpr uint64_t kIdleTicks = 120;
// Seconds a peer has to answer a request for the block hashes under a bad
// piece before the next peer is asked.
constexpr uint64_t kBlameAnswerTicks = 5;

std::vector<Sha256Digest> Digests(std::string_view bytes) {
  std::vector<Sha256Digest> out(bytes.size() / 32);
  for (size_t i = 0; i < out.size(); ++i)
    std::memcpy(out[i].data(), bytes.data() + 32 * i, 32);
  return out;
}

}  // namespace

struct Swarm::Peer {
  std::shared_ptr<PeerLink> conn;
  wire::Handshake handshake;
  bool incoming = false;
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
  // Our hello went out before our pieces were known (metadata or check
  // pending): it said "none", so what the check finds follows as haves.
  bool hello_unchecked = false;
  std::deque<wire::BlockSpec> requests_in;
  uint32_t outstanding = 0;
  uint32_t depth = 0;
  uint32_t depth_cap = 0;  // from its measured rate
  bool metadata_requested = false;
  bool hashes_requested = false;
  int bad_pieces = 0;
  bool gone = false;
  bool snubbed = false;
  std::string listen_key;  // its listen address, if known
  // Rates, payload bytes.
  uint64_t downloaded = 0;
  uint64_t uploaded = 0;
  uint64_t last_downloaded = 0;
  uint64_t last_uploaded = 0;
  double download_rate = 0;
  double upload_rate = 0;
  // Ticks since a block arrived while we had requests out.
  uint64_t ticks_waiting = 0;
  uint64_t last_bytes_in = 0;
  uint64_t last_bytes_out = 0;
  uint64_t idle_in = 0;
  uint64_t idle_out = 0;
  uint64_t connected_ticks = 0;
  uint64_t last_pex_in = 0;
  std::unique_ptr<wire::PexTracker> pex;
  // BEP 6: pieces it lets us request while it chokes us, and the pieces we
  // let it request while we choke it.
  std::vector<uint32_t> allowed_in;
  std::vector<uint32_t> allowed_out;
  // BEP 6 suggest: pieces it would rather serve (cached, say), tried first.
  std::vector<uint32_t> suggested;
  // Super-seeding: pieces revealed to it, with the bytes of each not yet
  // sent to it, and their sum.
  std::map<uint32_t, uint64_t> revealed_left;
  uint64_t revealed_bytes_left = 0;
  // Requests outstanding to it, oldest first, with the tick each was sent.
  std::deque<std::pair<chunk::Block, uint64_t>> sent;

  void Forget(const chunk::Block& b) {
    for (auto it = sent.begin(); it != sent.end(); ++it) {
      if (it->first == b) {
        sent.erase(it);
        return;
      }
    }
  }

  double progress(uint32_t n) const {
    if (has_all) return 1;
    return n == 0 ? 0 : static_cast<double>(has.count()) / n;
  }
};

Swarm::Swarm(SwarmEnv& env, chunk::InfoHashes hashes, SwarmOptions options,
             std::string client_name, uint16_t listen_port)
    : env_(env),
      hashes_(std::move(hashes)),
      options_(options),
      client_name_(std::move(client_name)),
      listen_port_(listen_port),
      alive_(std::make_shared<bool>(true)),
      random_([&env] { return env.Random(); }),
      choker_(chunk::ChokerOptions{.slots = options.trusted_peers
                                                ? -1
                                                : options.upload_slots},
              random_),
      strategy_(options.strategy) {
  ticker_ = env_.EverySecond([this] { Tick(); });
}

Swarm::~Swarm() {
  *alive_ = false;
  ticker_.reset();
  Shutdown();
}

std::array<uint8_t, 20> Swarm::handshake_hash() const {
  std::array<uint8_t, 20> h{};
  if (hashes_.v1) {
    h = hashes_.v1->bytes;
  } else if (hashes_.v2) {
    std::memcpy(h.data(), hashes_.v2->bytes.data(), 20);
  }
  return h;
}

std::vector<std::string> Swarm::HandshakeKeys() const {
  std::vector<std::string> keys;
  if (hashes_.v1) keys.emplace_back(hashes_.v1->AsStringView());
  if (hashes_.v2) keys.emplace_back(hashes_.v2->AsStringView().substr(0, 20));
  return keys;
}

size_t Swarm::num_peers() const {
  size_t n = 0;
  for (const auto& [k, p] : peers_) n += !p->gone;
  return n;
}

size_t Swarm::num_seeds() const {
  size_t n = 0;
  const uint32_t pieces = m_ ? m_->num_pieces : 0;
  for (const auto& [k, p] : peers_)
    n += !p->gone && (p->has_all ||
                      (pieces > 0 && p->has.size() == pieces && p->has.all()));
  return n;
}

std::vector<PeerInfo> Swarm::Peers() const {
  std::vector<PeerInfo> out;
  const uint32_t n = m_ ? m_->num_pieces : 0;
  for (const auto& [k, p] : peers_) {
    if (p->gone) continue;
    PeerInfo i;
    i.address = p->conn->remote().ToString();
    i.client = p->ext.client;
    i.incoming = p->incoming;
    i.progress = p->progress(n);
    i.seed = i.progress >= 1;
    i.am_choking = p->am_choking;
    i.am_interested = p->am_interested;
    i.peer_choking = p->peer_choking;
    i.peer_interested = p->peer_interested;
    i.snubbed = p->snubbed;
    i.download_rate = p->download_rate;
    i.upload_rate = p->upload_rate;
    i.downloaded = p->downloaded;
    i.uploaded = p->uploaded;
    i.requests_out = p->outstanding;
    out.push_back(std::move(i));
  }
  std::sort(out.begin(), out.end(), [](const PeerInfo& a, const PeerInfo& b) {
    return a.address < b.address;
  });
  return out;
}

uint32_t Swarm::pieces_have() const {
  return picker_ ? picker_->have().count() : 0;
}

uint64_t Swarm::bytes_have() const {
  if (!picker_) return 0;
  const chunk::Bitfield& have = picker_->have();
  uint64_t n = uint64_t{have.count()} * m_->piece_length;
  if (m_->num_pieces > 0 && have.test(m_->num_pieces - 1)) {
    n -= m_->piece_length - chunk::PieceSize(*m_, m_->num_pieces - 1);
  }
  return n;
}

uint64_t Swarm::bytes_wanted() const {
  if (!m_) return 0;
  if (!picker_) return m_->total_size;
  uint64_t n = 0;
  for (uint32_t i = 0; i < m_->num_pieces; ++i)
    if (picker_->Priority(i) > 0) n += chunk::PieceSize(*m_, i);
  return n;
}

std::vector<Swarm::Peer*> Swarm::LivePeers() {
  std::vector<Peer*> live;
  for (auto& [key, q] : peers_)
    if (!q->gone) live.push_back(q.get());
  return live;
}

void Swarm::Shutdown() {
  shut_ = true;
  std::vector<std::shared_ptr<PeerLink>> conns;
  for (auto& [key, p] : peers_)
    if (!p->gone) conns.push_back(p->conn);
  for (auto& c : conns) c->Close(absl::CancelledError("swarm shut down"));
  connecting_.clear();
}

Swarm::Peer* Swarm::Find(PeerLink& conn) {
  auto it = peers_.find(conn.key());
  return it == peers_.end() || it->second->gone ? nullptr : it->second.get();
}

void Swarm::ConnectTo(const std::vector<PeerEndpoint>& peers) {
  if (shut_ || !connector_) return;
  for (const PeerEndpoint& ep : peers) {
    if (static_cast<int>(num_peers() + connecting_.size()) >=
        options_.max_peers)
      break;
    if (ep.port == 0 || IsBanned(ep)) continue;
    std::string key = ep.ToString();
    if (!connecting_.insert(key).second) continue;
    connector_(ep);
  }
}

void Swarm::OnConnectFailed(const PeerEndpoint& peer) {
  connecting_.erase(peer.ToString());
}

void Swarm::AddPeer(std::shared_ptr<PeerLink> conn,
                    const wire::Handshake& theirs, bool incoming) {
  if (shut_) {
    conn->Close(absl::CancelledError("swarm not running"));
    return;
  }
  if (static_cast<int>(num_peers()) >= options_.max_peers) {
    conn->Close(absl::ResourceExhaustedError("too many peers"));
    return;
  }
  // Both sides may dial each other: keep one connection per peer.
  for (Peer* q : LivePeers()) {
    if (q->handshake.peer_id == theirs.peer_id) {
      conn->Close(absl::AlreadyExistsError("already connected to this peer"));
      return;
    }
  }
  auto p = std::make_unique<Peer>();
  p->conn = conn;
  p->handshake = theirs;
  p->incoming = incoming;
  p->fast = theirs.fast();
  p->depth = options_.min_requests;
  p->depth_cap = options_.max_requests;
  if (!incoming) p->listen_key = conn->remote().ToString();
  Peer& peer = *p;
  peers_[conn->key()] = std::move(p);
  spdlog::debug("swarm {}: peer {} connected", hashes_.BestHex().substr(0, 12),
                conn->remote().ToString());
  std::vector<std::shared_ptr<RateLimit>> down{down_limit_};
  std::vector<std::shared_ptr<RateLimit>> up{up_limit_};
  if (global_down_) down.push_back(global_down_);
  if (global_up_) up.push_back(global_up_);
  conn->SetRateLimits(std::move(down), std::move(up));
  SendHello(peer);
  conn->Start(this);
}

void Swarm::SendHello(Peer& peer) {
  std::string hello;
  if (peer.handshake.extensions()) {
    wire::ExtensionHandshake ext;
    ext.m["ut_metadata"] = kOurMetadataId;
    if (!private_torrent()) ext.m["ut_pex"] = kOurPexId;
    ext.client = client_name_;
    ext.listen_port = listen_port_;
    ext.reqq = options_.max_requests * 4;
    if (m_) ext.metadata_size = static_cast<int64_t>(m_->info_bytes.size());
    ext.yourip = std::string(peer.conn->remote().AddressBytes());
    wire::AppendMessage(wire::Extended{0, wire::EncodeExtensionHandshake(ext)},
                        hello);
  }
  const bool have_all = complete() && picker_->have().all();
  const bool have_none = !picker_ || picker_->have().none() || super_seeding_;
  peer.hello_unchecked = !picker_;
  if (super_seeding_) {
    if (peer.fast) wire::AppendMessage(wire::HaveNone{}, hello);
    RevealMore(peer, hello);
  } else if (peer.fast) {
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
  if (peer.fast && m_ && !options_.trusted_peers) {
    peer.allowed_out = AllowedFastSet(peer.conn->remote());
    for (uint32_t i : peer.allowed_out)
      wire::AppendMessage(wire::AllowedFast{i}, hello);
  }
  peer.conn->Send(std::move(hello));
}

void Swarm::OnClose(PeerLink& conn, const absl::Status& why) {
  auto it = peers_.find(conn.key());
  if (it == peers_.end() || it->second->gone) return;
  Peer& p = *it->second;
  p.gone = true;
  if (!p.listen_key.empty()) connecting_.erase(p.listen_key);
  // Pieces revealed to it and not sent go back to the least revealed.
  for (const auto& [piece, left] : p.revealed_left)
    if (left == chunk::PieceSize(*m_, piece)) CountReveal(piece, -1);
  p.revealed_left.clear();
  spdlog::debug("swarm {}: peer {} gone: {}", hashes_.BestHex().substr(0, 12),
                conn.remote().ToString(), why.ToString());
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
  // Blame it was asked to settle goes to the next peer (or to strikes), later
  // (Strike may ban and close other connections).
  std::vector<Blame> unsettled;
  for (auto it = blame_.begin(); it != blame_.end();) {
    if (it->second.asked == conn.key()) {
      unsettled.push_back(std::move(it->second));
      it = blame_.erase(it);
    } else {
      ++it;
    }
  }
  if (!unsettled.empty()) {
    auto later = std::make_shared<std::vector<Blame>>(std::move(unsettled));
    env_.Defer([this, alive = std::weak_ptr<bool>(alive_), later] {
      if (alive.expired()) return;
      for (Blame& b : *later) AskNextForBlame(std::move(b));
    });
  }
  // Erase later: the caller may still be inside this peer's code.
  env_.Defer([this, alive = std::weak_ptr<bool>(alive_), key = conn.key()] {
    if (alive.expired()) return;
    peers_.erase(key);
    if (num_peers() == 0 && !complete() && !shut_) OnNoPeers();
    // Other peers may take over the requests it held.
    RequestMoreAll();
  });
}

void Swarm::Drop(PeerLink& conn, const absl::Status& why) { conn.Close(why); }

void Swarm::Ban(Peer& p, const std::string& why) {
  std::string addr = p.conn->remote().IpString();
  spdlog::warn("swarm {}: banning {}: {}", hashes_.BestHex().substr(0, 12),
               addr, why);
  banned_.insert(addr);
  banned_keys_.insert(p.conn->key());
  Add(NodeStats::Get().kind(options_.kind).peers_banned, 1);
  p.conn->Close(absl::PermissionDeniedError(absl::StrCat("banned: ", why)));
}

void Swarm::OnWritable(PeerLink& conn) {
  if (Peer* p = Find(conn)) ServeQueued(*p);
}

// --- Timers
// ---------------------------------------------------------------------------

void Swarm::Tick() {
  {
    ++ticks_;
    // Rates: an exponential average over about five seconds.
    constexpr double kAlpha = 0.2;
    download_rate_ +=
        kAlpha *
        (static_cast<double>(downloaded_ - last_downloaded_) - download_rate_);
    upload_rate_ += kAlpha * (static_cast<double>(uploaded_ - last_uploaded_) -
                              upload_rate_);
    last_downloaded_ = downloaded_;
    last_uploaded_ = uploaded_;
    for (Peer* p : LivePeers()) {
      ++p->connected_ticks;
      p->download_rate +=
          kAlpha * (static_cast<double>(p->downloaded - p->last_downloaded) -
                    p->download_rate);
      p->upload_rate +=
          kAlpha * (static_cast<double>(p->uploaded - p->last_uploaded) -
                    p->upload_rate);
      const bool got = p->downloaded != p->last_downloaded;
      p->last_downloaded = p->downloaded;
      p->last_uploaded = p->uploaded;
      // Pipeline depth: enough requests to cover the peer's rate for
      // request_queue_seconds (its latency hides behind the queue).
      if (p->connected_ticks > 2 && p->download_rate > 0) {
        const double blocks = p->download_rate *
                              options_.request_queue_seconds /
                              chunk::kBlockLength;
        p->depth_cap = static_cast<uint32_t>(std::clamp<double>(
            blocks, options_.min_requests, options_.max_requests));
        if (p->ext.reqq && *p->ext.reqq > 0)
          p->depth_cap = std::min<uint32_t>(
              p->depth_cap, static_cast<uint32_t>(
                                std::min<int64_t>(*p->ext.reqq, UINT32_MAX)));
        p->depth = std::min(p->depth, p->depth_cap);
      }
      // Snubbing: requests out, unchoked, nothing for snub_seconds.
      if (p->outstanding > 0 && !p->peer_choking && !got) {
        if (++p->ticks_waiting >=
                static_cast<uint64_t>(options_.snub_seconds) &&
            !p->snubbed) {
          p->snubbed = true;
          spdlog::debug("swarm {}: peer {} snubbed us",
                        hashes_.BestHex().substr(0, 12),
                        p->conn->remote().ToString());
          if (picker_) picker_->PeerGone(p->conn->key());
          p->outstanding = 0;
          p->sent.clear();
          p->depth = 1;
          RequestMoreAll();
        }
      } else if (got) {
        p->ticks_waiting = 0;
        if (p->snubbed) {
          p->snubbed = false;
          p->depth = options_.min_requests;
        }
      }
      // Request timeouts: a request older than twice the time the peer's
      // queue should take (and at least 10 s) was lost or dropped by the
      // peer; the block goes back to the picker, for anyone.
      if (picker_ && !p->sent.empty() && !p->snubbed) {
        const double rate = std::max(p->download_rate, 1.0);
        const uint64_t limit =
            10 + static_cast<uint64_t>(2 * p->outstanding *
                                       chunk::kBlockLength / rate);
        bool expired = false;
        while (!p->sent.empty() && ticks_ - p->sent.front().second > limit) {
          const chunk::Block b = p->sent.front().first;
          p->sent.pop_front();
          p->conn->Send(wire::Cancel{{b.piece, b.offset, b.length}});
          picker_->RequestFailed(p->conn->key(), b);
          if (p->outstanding > 0) --p->outstanding;
          expired = true;
        }
        if (expired) RequestMoreAll();
      }
      // Keep-alives and idle peers.
      const uint64_t in = p->conn->bytes_received();
      const uint64_t out = p->conn->bytes_sent();
      p->idle_in = in == p->last_bytes_in ? p->idle_in + 1 : 0;
      p->idle_out = out == p->last_bytes_out ? p->idle_out + 1 : 0;
      p->last_bytes_in = in;
      p->last_bytes_out = out;
      if (p->idle_in >= kIdleTicks) {
        Drop(*p->conn, absl::DeadlineExceededError("peer silent for 2 min"));
        continue;
      }
      if (p->idle_out >= kIdleTicks / 2) p->conn->Send(wire::KeepAlive{});
    }
    if (super_seeding_) {  // rates changed: so did the reveal windows
      for (Peer* p : LivePeers()) {
        std::string out;
        RevealMore(*p, out);
        if (!out.empty()) p->conn->Send(std::move(out));
      }
    }
    if (ticks_ % kRechokeTicks == 0) Rechoke();
    if (ticks_ % 10 == 5) SendPex();
    ExpireBlame();
    AdvanceDeadlines();  // the peers may have changed
    OnTick();
  }
}

void Swarm::Rechoke() {
  if (options_.trusted_peers) return;
  std::vector<chunk::ChokePeer> snapshot;
  for (Peer* p : LivePeers()) {
    chunk::ChokePeer c;
    c.key = p->conn->key();
    c.interested = p->peer_interested;
    c.choked = p->am_choking;
    c.snubbed = p->snubbed;
    c.download_rate = p->download_rate;
    c.upload_rate = p->upload_rate;
    c.connected_for_ms = static_cast<int64_t>(p->connected_ticks) * 1000;
    snapshot.push_back(c);
  }
  const auto unchoke = choker_.Rechoke(snapshot, complete());
  absl::flat_hash_set<uint64_t> keep(unchoke.begin(), unchoke.end());
  for (Peer* p : LivePeers()) {
    if (keep.contains(p->conn->key())) {
      Unchoke(*p);
    } else {
      Choke(*p);
    }
  }
}

void Swarm::Unchoke(Peer& p) {
  if (!p.am_choking || p.gone) return;
  p.am_choking = false;
  p.conn->Send(wire::Unchoke{});
}

void Swarm::Choke(Peer& p) {
  if (p.am_choking || p.gone) return;
  p.am_choking = true;
  p.conn->Send(wire::Choke{});
  // Requests queued from it are dropped; with the fast extension it is told.
  if (p.fast) {
    std::string out;
    for (const auto& b : p.requests_in)
      wire::AppendMessage(wire::Reject{b}, out);
    if (!out.empty()) p.conn->Send(std::move(out));
  }
  p.requests_in.clear();
}

// --- Messages
// -------------------------------------------------------------------------

void Swarm::OnMessage(PeerLink& conn, const wire::Message& message) {
  Peer* pp = Find(conn);
  if (pp == nullptr) return;
  Peer& p = *pp;
  const uint32_t n = m_ ? m_->num_pieces : 0;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Choke>) {
          p.peer_choking = true;
          if (!p.fast && picker_) {
            picker_->PeerGone(conn.key());
            p.outstanding = 0;
            p.sent.clear();
          }
        } else if constexpr (std::is_same_v<T, wire::Unchoke>) {
          p.peer_choking = false;
          RequestMore(p);
        } else if constexpr (std::is_same_v<T, wire::Interested>) {
          p.peer_interested = true;
          // A free slot is given at once rather than at the next rechoke.
          int unchoked = 0;
          for (Peer* q : LivePeers()) unchoked += !q->am_choking;
          if (options_.trusted_peers || unchoked < options_.upload_slots)
            Unchoke(p);
        } else if constexpr (std::is_same_v<T, wire::NotInterested>) {
          p.peer_interested = false;
          if (!options_.trusted_peers) Choke(p);
        } else if constexpr (std::is_same_v<T, wire::Have>) {
          if (!m_) {
            if (p.early_haves.size() < 100000) p.early_haves.push_back(m.piece);
            return;
          }
          if (m.piece >= n)
            return Drop(conn,
                        absl::InvalidArgumentError("have past the last piece"));
          if (!p.has_all && p.has.size() == n && !p.has.test(m.piece)) {
            p.has.set(m.piece);
            if (p.registered) picker_->PeerHas(m.piece);
            // Revealed to it, and it got the piece elsewhere.
            if (super_seeding_ && p.revealed_left.contains(m.piece))
              RevealedSent(p, m.piece, p.revealed_left[m.piece]);
          } else if (!p.has_all && p.has.size() != n) {
            p.early_haves.push_back(m.piece);
          }
          OnPeerHas(p);
        } else if constexpr (std::is_same_v<T, wire::Bitfield>) {
          if (!m_) {
            p.raw_bitfield = std::string(m.bits);
            return;
          }
          auto bits = chunk::Bitfield::FromBytes(m.bits, n);
          if (!bits)
            return Drop(
                conn, absl::InvalidArgumentError("bitfield of the wrong size"));
          if (p.registered) picker_->PeerLostBitfield(p.has), p.registered = 0;
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
          const chunk::Block rejected{m.block.piece, m.block.begin,
                                      m.block.length};
          if (picker_) picker_->RequestFailed(conn.key(), rejected);
          p.Forget(rejected);
          if (p.outstanding > 0) --p.outstanding;
        } else if constexpr (std::is_same_v<T, wire::Extended>) {
          OnExtended(p, m);
        } else if constexpr (std::is_same_v<T, wire::HashRequest>) {
          OnHashRequest(p, m);
        } else if constexpr (std::is_same_v<T, wire::Hashes>) {
          OnHashes(p, m);
        } else if constexpr (std::is_same_v<T, wire::HashReject>) {
          if (m.spec.base_layer == 0) return OnBlockHashes(p, m.spec, {}, true);
          p.hashes_requested = false;
        } else if constexpr (std::is_same_v<T, wire::AllowedFast>) {
          if (p.fast && p.allowed_in.size() < 64 &&
              std::find(p.allowed_in.begin(), p.allowed_in.end(), m.piece) ==
                  p.allowed_in.end()) {
            p.allowed_in.push_back(m.piece);
            RequestMore(p);
          }
        } else if constexpr (std::is_same_v<T, wire::Suggest>) {
          if (p.fast && m_ && m.piece < m_->num_pieces &&
              p.suggested.size() < 32 &&
              std::find(p.suggested.begin(), p.suggested.end(), m.piece) ==
                  p.suggested.end()) {
            p.suggested.push_back(m.piece);
            RequestMore(p);
          }
        }
        // keep-alive, port, have none, unknown: nothing to do.
      },
      message);
}

// --- Metadata
// -------------------------------------------------------------------------

void Swarm::OnExtended(Peer& p, const wire::Extended& m) {
  if (m.id == 0) {
    auto ext = wire::ParseExtensionHandshake(m.payload);
    if (!ext.ok()) return Drop(*p.conn, ext.status());
    p.ext = *std::move(ext);
    p.got_ext = true;
    if (p.incoming && p.ext.listen_port && *p.ext.listen_port != 0) {
      PeerEndpoint listen = p.conn->remote();
      listen.port = *p.ext.listen_port;
      p.listen_key = listen.ToString();
      connecting_.insert(p.listen_key);
    }
    MaybeRequestMetadata(p);
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
  for (const wire::PexPeer& e : m->added) {
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
    if (q->listen_key.empty()) continue;
    const size_t colon = q->listen_key.rfind(':');
    std::string ip = q->listen_key.substr(0, colon);
    if (!ip.empty() && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
    wire::PexPeer e;
    e.ip = ip;
    e.port = static_cast<uint16_t>(std::stoi(q->listen_key.substr(colon + 1)));
    if (q->has_all) e.flags |= wire::kPexSeed;
    if (!q->incoming) e.flags |= wire::kPexReachable;
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

void Swarm::OnMetadataMessage(Peer& p, std::string_view payload) {
  auto m = wire::ParseMetadataMessage(payload);
  if (!m.ok()) return Drop(*p.conn, m.status());
  const uint8_t their_id = p.ext.IdOf("ut_metadata");
  switch (m->type) {
    case wire::MetadataMessageType::kRequest: {
      if (their_id == 0) return;
      const uint64_t off = uint64_t{m->piece} * wire::kMetadataPieceSize;
      wire::MetadataMessage reply{
          wire::MetadataMessageType::kReject, m->piece, {}, {}};
      if (m_ && off < m_->info_bytes.size()) {
        reply.type = wire::MetadataMessageType::kData;
        reply.total_size = static_cast<int64_t>(m_->info_bytes.size());
        reply.data = std::string_view(m_->info_bytes)
                         .substr(off, wire::kMetadataPieceSize);
      }
      p.conn->Send(
          wire::Extended{their_id, wire::EncodeMetadataMessage(reply)});
      return;
    }
    case wire::MetadataMessageType::kReject:
      p.metadata_requested = false;
      return;
    case wire::MetadataMessageType::kData: {
      if (m_ || m->piece >= metadata_pieces_.size()) return;
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
      const bool v1_ok =
          !hashes_.v1 || chunk::InfoHashV1::Of(dict) == *hashes_.v1;
      const bool v2_ok =
          !hashes_.v2 || chunk::InfoHashV2::Of(dict) == *hashes_.v2;
      if (!v1_ok || !v2_ok) {
        // Whoever sent pieces of it may be the liar; ask again from scratch.
        for (Peer* q : LivePeers()) q->metadata_requested = false;
        Ban(p, "metadata does not hash to the info-hash");
        for (Peer* q : LivePeers()) MaybeRequestMetadata(*q);
        return;
      }
      auto parsed = ParseMetadata(dict);
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
  layer_fetches_.clear();
  file_by_root_.clear();
  trees_.clear();
  for (size_t f = 0; f < m_->files.size(); ++f) {
    const chunk::FileEntry& file = m_->files[f];
    if (!file.pieces_root) continue;
    file_by_root_[std::string(
        reinterpret_cast<const char*>(file.pieces_root->data()), 32)] = f;
    const chunk::PieceRange range = chunk::FilePieces(*m_, f);
    const uint32_t pieces = range.end - range.first;
    if (pieces <= 1) {
      layers_[f].assign(reinterpret_cast<const char*>(file.pieces_root->data()),
                        32);
      continue;
    }
    if (!layers_[f].empty()) continue;
    LayerFetch lf;
    lf.file = f;
    lf.pieces = pieces;
    lf.layer.assign(pieces, Sha256Digest{});
    lf.known.assign(pieces, false);
    lf.missing = pieces;
    layer_fetches_.push_back(std::move(lf));
  }
  if (layer_fetches_.empty()) {
    OnLayersComplete();
    return;
  }
  spdlog::info("swarm {}: fetching the piece layers of {} files",
               hashes_.BestHex().substr(0, 12), layer_fetches_.size());
  for (Peer* q : LivePeers()) MaybeRequestHashes(*q);
}

void Swarm::MaybeRequestHashes(Peer& p) {
  if (!m_ || layer_fetches_.empty() || p.hashes_requested || p.gone) return;
  if (!p.has_all && p.has.size() == 0 && p.raw_bitfield.empty() &&
      p.early_haves.empty())
    return;
  // Asked of several peers at once (the first proof wins): a peer that never
  // answers must not stall the fetch, and the layers are small next to the
  // content.
  int asked = 0;
  for (const auto& [key, q] : peers_) asked += q->hashes_requested && !q->gone;
  if (asked >= kHashPeers) return;
  const int base = std::countr_zero(m_->piece_length / chunk::kBlockSize);
  std::string out;
  for (const LayerFetch& lf : layer_fetches_) {
    if (lf.missing == 0) continue;
    const chunk::FileEntry& file = m_->files[lf.file];
    const uint64_t leaves =
        chunk::NextPowerOfTwo(chunk::NumBlocks(file.length));
    const int height = std::countr_zero(leaves);
    const uint64_t width = leaves >> base;
    const uint32_t count =
        static_cast<uint32_t>(std::min<uint64_t>(width, kHashesPerRequest));
    for (uint64_t index = 0; index < lf.pieces; index += count) {
      bool need = false;
      for (uint64_t i = index; i < std::min<uint64_t>(index + count, lf.pieces);
           ++i)
        need |= !lf.known[i];
      if (!need) continue;
      wire::HashSpec spec;
      spec.pieces_root = *file.pieces_root;
      spec.base_layer = static_cast<uint32_t>(base);
      spec.index = static_cast<uint32_t>(index);
      spec.length = count;
      spec.proof_layers = static_cast<uint32_t>(height - base - 1);
      wire::AppendMessage(wire::HashRequest{spec}, out);
    }
  }
  p.hashes_requested = true;
  p.conn->Send(std::move(out));
}

void Swarm::OnHashes(Peer& p, const wire::Hashes& m) {
  if (m.spec.base_layer == 0) return OnBlockHashes(p, m.spec, m.hashes, false);
  if (!m_ || layer_fetches_.empty()) return;
  auto fit = file_by_root_.find(std::string(
      reinterpret_cast<const char*>(m.spec.pieces_root.data()), 32));
  if (fit == file_by_root_.end()) return;
  auto lf =
      std::find_if(layer_fetches_.begin(), layer_fetches_.end(),
                   [&](const LayerFetch& l) { return l.file == fit->second; });
  if (lf == layer_fetches_.end() || lf->missing == 0) return;
  const chunk::FileEntry& file = m_->files[lf->file];
  const uint64_t leaves = chunk::NextPowerOfTwo(chunk::NumBlocks(file.length));
  const int base = std::countr_zero(m_->piece_length / chunk::kBlockSize);
  if (static_cast<int>(m.spec.base_layer) != base) return;
  const std::vector<Sha256Digest> hashes = Digests(m.hashes);
  chunk::HashRange r{m.spec.base_layer, m.spec.index, m.spec.length,
                     m.spec.proof_layers};
  auto ok = chunk::VerifyHashes(*file.pieces_root, leaves, r, hashes);
  if (!ok.ok()) {
    if (ok.status().code() == absl::StatusCode::kDataLoss)
      return Ban(p, "sent bad hashes");
    return Drop(*p.conn, ok.status());
  }
  for (uint32_t k = 0; k < r.count; ++k) {
    const uint64_t i = uint64_t{r.index} + k;
    if (i < lf->pieces && !lf->known[i]) {
      lf->layer[i] = (*ok)[k];
      lf->known[i] = true;
      --lf->missing;
    }
  }
  if (lf->missing > 0) return;
  std::string bytes;
  bytes.reserve(lf->layer.size() * 32);
  for (const auto& h : lf->layer)
    bytes.append(reinterpret_cast<const char*>(h.data()), 32);
  if (absl::Status s = verifier_->AddPieceLayer(lf->file, bytes); !s.ok()) {
    spdlog::warn("swarm {}: piece layer refused: {}",
                 hashes_.BestHex().substr(0, 12), s.ToString());
    return;
  }
  layers_[lf->file] = std::move(bytes);
  layer_fetches_.erase(lf);
  if (layer_fetches_.empty()) OnLayersComplete();
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
  piece_cache_.clear();
  for (Peer* q : LivePeers()) {
    q->registered = false;
    q->outstanding = 0;
    q->sent.clear();
  }
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
        Digests(layers_[*file]), m_->piece_length,
        chunk::NumBlocks(m_->files[*file].length));
  }
  return tree.get();
}

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
  super_seeding_ = options_.super_seed && options_.trusted_peers &&
                   m_->num_pieces > 1 && picker_->have().all();
  if (super_seeding_) {
    revealed_count_.assign(m_->num_pieces, 0);
    reveal_order_.resize(m_->num_pieces);
    for (uint32_t i = 0; i < m_->num_pieces; ++i) reveal_order_[i] = i;
    for (uint32_t i = m_->num_pieces - 1; i > 0; --i)
      std::swap(reveal_order_[i], reveal_order_[random_() % (i + 1)]);
    reveal_cursor_ = 0;
    reveal_round_ = 0;
    at_round_ = m_->num_pieces;
  }
  // Peers that connected while we were checking were told we had nothing.
  std::string haves;
  bool haves_built = false;
  for (Peer* q : LivePeers()) {
    if (super_seeding_) {
      std::string reveal;
      RevealMore(*q, reveal);
      if (!reveal.empty()) q->conn->Send(std::move(reveal));
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
  WantedRange r;
  r.first = static_cast<uint32_t>(offset / m_->piece_length);
  r.end = std::min(m_->num_pieces,
                   static_cast<uint32_t>((end - 1) / m_->piece_length + 1));
  r.base = static_cast<int64_t>(ticks_) * 1000 - r.first;
  ranges_.push_back(r);
  AdvanceDeadlines();
  RequestMoreAll();
}

void Swarm::AdvanceDeadlines() {
  if (!picker_ || ranges_.empty()) return;
  // With only seeds to fetch from, a reader is served best in order. Once
  // other fetchers are connected, only a small window ahead of each reader is
  // in order and the rest follows the strategy (rarest first), so that nodes
  // fetching the same content at once hold different pieces and trade instead
  // of all waiting on the same next piece from the same seed.
  const bool trading = num_peers() > num_seeds();
  const uint32_t window =
      trading
          ? std::max<uint32_t>(4, static_cast<uint32_t>(kDeadlineWindowBytes /
                                                        m_->piece_length))
          : UINT32_MAX;
  const chunk::Bitfield& have = picker_->have();
  for (WantedRange& r : ranges_) {
    while (r.first < r.end && have.test(r.first)) ++r.first;
    const uint32_t stop = r.first + std::min(window, r.end - r.first);
    for (uint32_t i = std::max(r.first, r.marked_end); i < stop; ++i)
      if (!have.test(i)) picker_->SetDeadline(i, r.base + i);
    for (uint32_t i = stop; i < r.marked_end; ++i) picker_->ClearDeadline(i);
    r.marked_end = stop;
  }
  std::erase_if(ranges_, [](const WantedRange& r) { return r.first >= r.end; });
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
  if (p.outstanding >= p.depth) return;
  // The write-back bound: the disk must catch up first.
  if (write_back_bytes_ >= options_.max_write_back_bytes) return;
  std::vector<chunk::Block> blocks;
  if (p.peer_choking) {
    // Choked: only its allowed-fast pieces (BEP 6) that it has; not in
    // sequential mode, where they would complete out of order.
    if (strategy_ == chunk::PickStrategy::kSequential) return;
    std::vector<uint32_t> allowed;
    for (uint32_t i : p.allowed_in)
      if (i < m_->num_pieces &&
          (p.has_all || (p.has.size() > i && p.has.test(i))))
        allowed.push_back(i);
    if (allowed.empty()) return;
    blocks = picker_->PickFrom(p.conn->key(), allowed, p.depth - p.outstanding);
  } else {
    // Its suggested pieces first (rarest-first and random only: in order, or
    // with deadlines, what comes next matters more than what it has cached).
    if (!p.suggested.empty()) {
      std::erase_if(p.suggested, [&](uint32_t i) {
        return picker_->have().test(i) ||
               !(p.has_all || (p.has.size() > i && p.has.test(i)));
      });
      if (strategy_ != chunk::PickStrategy::kSequential && ranges_.empty())
        blocks = picker_->PickFrom(p.conn->key(), p.suggested,
                                   p.depth - p.outstanding);
    }
    const size_t room = p.depth - p.outstanding - blocks.size();
    if (room > 0 && blocks.empty()) {
      blocks = picker_->Pick(p.conn->key(), p.has, room, p.has_all);
    } else if (room > 0) {
      std::vector<chunk::Block> more =
          picker_->Pick(p.conn->key(), p.has, room, p.has_all);
      blocks.insert(blocks.end(), more.begin(), more.end());
    }
  }
  if (blocks.empty()) return;
  std::string out;
  for (const chunk::Block& b : blocks) {
    wire::AppendMessage(wire::Request{{b.piece, b.offset, b.length}}, out);
    p.sent.emplace_back(b, ticks_);
    ++p.outstanding;
  }
  p.conn->Send(std::move(out));
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
  p.Forget(block);
  if (p.outstanding > 0) --p.outstanding;
  p.downloaded += m.data.size();
  downloaded_ += m.data.size();
  Add(NodeStats::Get().kind(options_.kind).bytes_received, m.data.size());
  // A peer that keeps our pipeline full earns a deeper one (slow start up to
  // what its rate justifies).
  if (p.depth < p.depth_cap) ++p.depth;
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
      it->second->Forget(block);
      if (it->second->outstanding > 0) --it->second->outstanding;
    }
    picker_->RequestFailed(other, block);
  }
  if (whole) {
    std::shared_ptr<char[]> data(std::move(partial.data));
    const size_t bytes = partial.size;
    std::vector<uint64_t> senders = std::move(partial.senders);
    partial_.erase(pit);
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
  const bool was_full = write_back_bytes_ >= options_.max_write_back_bytes;
  write_back_bytes_ -= std::min(write_back_bytes_, bytes);
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
    const bool explained =
        std::any_of(senders.begin(), senders.end(),
                    [&](uint64_t k) { return banned_keys_.contains(k); });
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
  for (Peer* q : LivePeers())
    if (!q->has_all) q->conn->Send(have);
  if (picker_->Complete()) {
    Complete();
  } else if (was_full) {
    RequestMoreAll();
  }
}

void Swarm::Strike(uint32_t piece, const std::vector<uint64_t>& senders) {
  for (uint64_t key : senders) {
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->gone) continue;
    if (senders.size() == 1 ||
        ++it->second->bad_pieces >= options_.ban_after_bad_pieces) {
      Ban(*it->second, absl::StrCat("sent corrupt data for piece ", piece));
    }
  }
}

bool Swarm::AskBlockHashes(uint32_t piece, std::shared_ptr<char[]> data,
                           size_t bytes, std::vector<uint64_t> block_senders,
                           const std::vector<uint64_t>& senders) {
  if (!data || !hashes_.v2 || !m_ || blame_.size() >= 16) return false;
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
  Blame b;
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
  std::vector<Blame> late;
  for (auto it = blame_.begin(); it != blame_.end();) {
    if (ticks_ >= it->second.asked_tick + kBlameAnswerTicks) {
      late.push_back(std::move(it->second));
      it = blame_.erase(it);
    } else {
      ++it;
    }
  }
  for (Blame& b : late) AskNextForBlame(std::move(b));
}

void Swarm::AskNextForBlame(Blame b) {
  // A connection made on the v2 info-hash (or one that offered v2) can answer
  // hash requests; libtorrent sets no v2 bit once the v2 hash is agreed on.
  const std::string v2_key =
      hashes_.v2 ? std::string(hashes_.v2->AsStringView().substr(0, 20))
                 : std::string();
  auto speaks_v2 = [&](const Peer& q) {
    return q.handshake.v2() ||
           std::string_view(
               reinterpret_cast<const char*>(q.handshake.info_hash.data()),
               20) == v2_key;
  };
  auto blocks_sent = [&](uint64_t key) {
    return std::count(b.block_senders.begin(), b.block_senders.end(), key);
  };
  Peer* ask = nullptr;
  for (Peer* q : LivePeers()) {
    const uint64_t key = q->conn->key();
    const bool has =
        q->has_all || (q->has.size() > b.piece && q->has.test(b.piece));
    if (!has || !speaks_v2(*q) ||
        std::find(b.tried.begin(), b.tried.end(), key) != b.tried.end())
      continue;
    // Rank: a peer that sent nothing of the piece, else the one that sent the
    // most of it (a liar sends what it must, an honest peer the rest).
    auto rank = [&](const Peer* p) {
      const auto n = blocks_sent(p->conn->key());
      return n == 0 ? INT64_MAX : static_cast<int64_t>(n);
    };
    if (ask == nullptr || rank(q) > rank(ask)) ask = q;
  }
  if (ask == nullptr) {
    Strike(b.piece, b.senders);
    return;
  }
  b.asked = ask->conn->key();
  b.asked_tick = ticks_;
  b.tried.push_back(b.asked);
  const wire::HashSpec spec = b.spec;
  blame_[std::make_pair(
      std::string(reinterpret_cast<const char*>(spec.pieces_root.data()), 32),
      spec.index)] = std::move(b);
  ask->conn->Send(wire::HashRequest{spec});
}

void Swarm::OnBlockHashes(Peer& p, const wire::HashSpec& spec,
                          std::string_view flat, bool rejected) {
  auto it = blame_.find(std::make_pair(
      std::string(reinterpret_cast<const char*>(spec.pieces_root.data()), 32),
      spec.index));
  if (it == blame_.end() || it->second.asked != p.conn->key()) return;
  Blame b = std::move(it->second);
  blame_.erase(it);
  if (rejected) return AskNextForBlame(std::move(b));
  auto bad = verifier_->FindBadBlocks(
      b.piece, std::string_view(b.data.get(), b.bytes), Digests(flat));
  if (!bad.ok()) {
    // Hashes that do not prove the piece's hash: the answer lied.
    if (absl::IsInvalidArgument(bad.status()))
      return Ban(p, "sent block hashes that do not match the piece");
    return Strike(b.piece, b.senders);
  }
  for (uint32_t block : *bad) {
    if (block >= b.block_senders.size()) continue;
    auto peer = peers_.find(b.block_senders[block]);
    if (peer == peers_.end() || peer->second->gone) continue;
    Ban(*peer->second,
        absl::StrCat("sent a corrupt block (", block, ") of piece ", b.piece));
  }
}

void Swarm::Complete() {
  spdlog::info("swarm {}: complete", hashes_.BestHex().substr(0, 12));
  for (Peer* q : LivePeers()) {
    UpdateInterest(*q);
    // Two seeds have nothing to trade.
    if (picker_->have().all() &&
        (q->has_all || (q->has.size() > 0 && q->has.all())))
      q->conn->Close(absl::OkStatus());
  }
  OnComplete();
}

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
  p.requests_in.push_back(b);
  ServeQueued(p);
}

void Swarm::ServeQueued(Peer& p) {
  while (!p.gone && !p.requests_in.empty() && storage_ &&
         p.conn->queued_bytes() < PeerLink::kHighWater) {
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
    auto read = std::make_shared<absl::StatusOr<std::string>>();
    env_.Offload(
        [read, storage = storage_, piece] {
          *read = storage->ReadPiece(piece);
        },
        [this, alive = std::weak_ptr<bool>(alive_), piece, read] {
          if (alive.expired()) return;
          absl::StatusOr<std::string>& data = *read;
          auto waiters = std::move(piece_reads_[piece]);
          piece_reads_.erase(piece);
          if (!data.ok()) {
            spdlog::warn("swarm {}: cannot serve piece {}: {}",
                         hashes_.BestHex().substr(0, 12), piece,
                         data.status().ToString());
            for (auto& [key, b] : waiters) {
              auto it = peers_.find(key);
              if (it != peers_.end() && !it->second->gone && it->second->fast) {
                it->second->conn->Send(wire::Reject{b});
              }
            }
            // The storage lost it: it must come back from peers.
            if (picker_ && data.status().code() == absl::StatusCode::kDataLoss)
              Restart();
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
          for (Peer* q : LivePeers()) ServeQueued(*q);
        });
  }
}

void Swarm::SendBlockFromPiece(
    Peer& p, const wire::BlockSpec& b,
    const std::shared_ptr<const std::string>& piece) {
  std::string out;
  out.reserve(13 + b.length);
  wire::AppendPieceHeader(b.piece, b.begin, b.length, out);
  // Storage may return a piece without its trailing pad bytes: they are zeros.
  const size_t have = b.begin < piece->size()
                          ? std::min<size_t>(b.length, piece->size() - b.begin)
                          : 0;
  if (have > 0) out.append(*piece, b.begin, have);
  out.append(b.length - have, '\0');
  p.uploaded += b.length;
  uploaded_ += b.length;
  Add(NodeStats::Get().kind(options_.kind).bytes_sent, b.length);
  p.conn->Send(std::move(out));
  if (super_seeding_) RevealedSent(p, b.piece, b.length);
}

void Swarm::RevealedSent(Peer& p, uint32_t piece, uint64_t bytes) {
  auto it = p.revealed_left.find(piece);
  if (it == p.revealed_left.end()) return;
  const uint64_t n = std::min(bytes, it->second);
  it->second -= n;
  p.revealed_bytes_left -= n;
  if (it->second > 0) return;
  p.revealed_left.erase(it);
  std::string out;
  RevealMore(p, out);
  if (!out.empty()) p.conn->Send(std::move(out));
}

void Swarm::CountReveal(uint32_t piece, int delta) {
  const uint32_t before = revealed_count_[piece];
  revealed_count_[piece] = before + delta;
  if (delta > 0 && before == reveal_round_ && --at_round_ > 0) return;
  if (delta < 0 && revealed_count_[piece] >= reveal_round_) return;
  // The least count changed: count again (once a round).
  reveal_round_ =
      *std::min_element(revealed_count_.begin(), revealed_count_.end());
  at_round_ = static_cast<size_t>(std::count(
      revealed_count_.begin(), revealed_count_.end(), reveal_round_));
}

void Swarm::RevealMore(Peer& p, std::string& out) {
  if (!super_seeding_ || p.gone || p.has_all) return;
  // A second of its rate, and at least two pieces: enough to keep its
  // request pipeline full across a round trip, and no more (what is revealed
  // to one peer is not revealed to the others).
  const uint64_t want = std::max<uint64_t>(
      2 * uint64_t{m_->piece_length}, static_cast<uint64_t>(p.upload_rate));
  const size_t n = reveal_order_.size();
  while (p.revealed_bytes_left < want) {
    // The first piece in the order, from the cursor, revealed fewest times
    // among those the peer lacks; none is revealed fewer than round_ times.
    std::optional<size_t> best;
    for (size_t k = 0; k < n; ++k) {
      const size_t at = (reveal_cursor_ + k) % n;
      const uint32_t i = reveal_order_[at];
      if (p.revealed_left.contains(i) || (p.has.size() == n && p.has.test(i)))
        continue;
      if (!best || revealed_count_[i] < revealed_count_[reveal_order_[*best]])
        best = at;
      if (revealed_count_[i] == reveal_round_) break;
    }
    if (!best) return;  // it has, or was shown, every piece
    const uint32_t piece = reveal_order_[*best];
    reveal_cursor_ = (*best + 1) % n;
    CountReveal(piece, +1);
    const uint64_t size = chunk::PieceSize(*m_, piece);
    p.revealed_left[piece] = size;
    p.revealed_bytes_left += size;
    wire::AppendMessage(wire::Have{piece}, out);
  }
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
