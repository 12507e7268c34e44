// The swarm engine: peers, ticks, choking and message dispatch (node/swarm.h).
#include "node/swarm.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "chunk/directory.h"
#include "chunk/merkle.h"
#include "codec/sha.h"
#include "node/swarm_peer.h"
#include "spdlog/spdlog.h"
#include "wire/allowed_fast.h"
#include "wire/peer_priority.h"
#include "wire/pex.h"

namespace shoal::node {

using namespace swarm_internal;  // NOLINT: the engine's own constants

SwarmOptions CdnSwarmOptions(int max_peers) {
  SwarmOptions so;
  so.trusted_peers = true;
  // An origin (the content held when its swarm starts) reveals pieces a few
  // at a time, so that fetchers trade instead of all pulling from it.
  so.super_seed = true;
  so.kind = TrafficKind::kCdn;
  so.max_peers = max_peers;
  // A short request pipeline: what a fetcher asks of a peer waits in that
  // peer's uplink, so this is how long each piece waits at each hop of a
  // fan-out (docs/ARCHITECTURE.md, "Downloading"). Peers more than half a
  // second away (round trip) would be asked for less than their link carries.
  so.min_requests = 4;
  so.request_queue_seconds = 0.5;
  // Within a cluster, at most two round trips plus 10 ms at 200 MB/s: 2 MiB
  // for a peer on loopback or a LAN (500 blocks, 8 MiB, before: blocks that
  // arrive ahead of the disk wait in memory, and a 1 GiB fetch's leecher
  // peaked 5-6 MB higher in the same time); a peer 20 ms or more away still
  // gets the full 500 (docs/ARCHITECTURE.md, "Memory").
  so.request_rtt_cover_rate = 200e6;
  // A directory's dict is the largest metadata content has.
  so.max_metadata_size = chunk::kMaxDirectoryDictBytes;
  // The chunk store takes pieces into memtables (no disk wait per piece), and
  // its memtables are memory too: a smaller write-back bound keeps the
  // fetching node's peak memory down (4 MiB against 8: 76-78 MB against
  // 81-84 MB for a 1 GiB fetch, in the same time).
  so.max_write_back_bytes = 4 << 20;
  // A fetcher with more than 1/16 s of uploads waiting (at least 768 KiB)
  // turns requests away: each piece goes to its requesters through the
  // holders that are free (docs/ARCHITECTURE.md, "Fan-out").
  so.upload_backlog_bytes = 768 << 10;
  so.upload_backlog_seconds = 1.0 / 16;
  return so;
}

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
      metadata_(hashes_, options.max_metadata_size),
      strategy_(options.strategy) {
  super_seed_ = options.super_seed;
  ticker_ = env_.EverySecond([this] { Tick(); });
}

Swarm::~Swarm() {
  *alive_ = false;
  ticker_.reset();
  Shutdown();
  if (options_.download_budget)
    options_.download_budget->Charge(budget_charge_, 0);
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

std::vector<std::pair<std::string, uint64_t>> Swarm::BytesPerPeer() const {
  std::map<std::string, uint64_t> by(received_from_gone_.begin(),
                                     received_from_gone_.end());
  for (const auto& [k, p] : peers_) {
    if (p->gone) continue;
    if (const uint64_t got = p->down.total(); got > 0)
      by[p->conn->remote().ToString()] += got;
  }
  return {by.begin(), by.end()};
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
    i.snubbed = p->requests.snubbed();
    i.transport = p->conn->transport();
    i.encrypted = p->conn->encrypted();
    i.download_rate = p->down.rate();
    i.upload_rate = p->up.rate();
    i.downloaded = p->down.total();
    i.uploaded = p->up.total();
    i.requests_out = p->requests.outstanding();
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
  dialing_.clear();
}

Swarm::Peer* Swarm::Find(PeerLink& conn) {
  auto it = peers_.find(conn.key());
  return it == peers_.end() || it->second->gone ? nullptr : it->second.get();
}

uint32_t Swarm::PriorityOf(const PeerEndpoint& peer) const {
  return own_address_ ? wire::CanonicalPeerPriority(*own_address_, peer) : 0;
}

Swarm::Peer* Swarm::LowestPriorityPeer() {
  if (options_.trusted_peers || !own_address_) return nullptr;
  Peer* lowest = nullptr;
  uint32_t low = 0;
  for (Peer* q : LivePeers()) {
    const uint32_t p = PriorityOf(q->conn->remote());
    if (lowest == nullptr || p < low) {
      lowest = q;
      low = p;
    }
  }
  return lowest;
}

void Swarm::ConnectTo(const std::vector<PeerEndpoint>& given) {
  for (const PeerEndpoint& ep : given) {
    if (ep.port != 0 && !IsBanned(ep)) known_.Add(ep, ticks_);
  }
  DialKnown();
}

void Swarm::DialKnown() {
  if (shut_ || !connector_) return;
  const int used = static_cast<int>(num_peers() + dialing_.size());
  if (used >= options_.max_peers) return;
  // A seed does not dial seeds (BEP 21): they have nothing to trade.
  const bool seed = picker_ && picker_->have().all();
  std::vector<PeerEndpoint> due =
      known_.Due(ticks_, known_.size(), [&](const PeerEndpoint& ep, bool s) {
        return (seed && s) || IsBanned(ep) || dialing_.contains(ep.ToString());
      });
  const size_t room = static_cast<size_t>(options_.max_peers - used);
  // More candidates than free slots: the highest BEP 40 priority first.
  if (due.size() > room && !options_.trusted_peers && own_address_) {
    std::stable_sort(due.begin(), due.end(),
                     [&](const PeerEndpoint& a, const PeerEndpoint& b) {
                       return PriorityOf(a) > PriorityOf(b);
                     });
  }
  if (due.size() > room) due.resize(room);
  for (const PeerEndpoint& ep : due) {
    dialing_.insert(ep.ToString());
    connector_(ep);
  }
}

void Swarm::OnConnectFailed(const PeerEndpoint& peer, bool peer_fault) {
  dialing_.erase(peer.ToString());
  if (peer_fault) {
    known_.Failed(peer, ticks_);
  } else {
    known_.Postpone(peer, ticks_, kBusyRetryTicks);
  }
}

void Swarm::AddPeer(std::shared_ptr<PeerLink> conn,
                    const wire::Handshake& theirs, bool incoming) {
  // The dial is over, whether the connection stays or not.
  if (!incoming) dialing_.erase(conn->remote().ToString());
  // A connection refused here is not the peer's fault: it may be dialed again
  // in a while.
  auto refuse = [&](absl::Status why) {
    if (!incoming) known_.Postpone(conn->remote(), ticks_, kBusyRetryTicks);
    conn->Close(std::move(why));
  };
  if (shut_) {
    refuse(absl::CancelledError("swarm not running"));
    return;
  }
  if (static_cast<int>(num_peers()) >= options_.max_peers) {
    // Full: BEP 40 lets a peer of higher canonical priority take the slot
    // of the lowest, so that every client keeps the same connections and a
    // newcomer (or a flood of connections) cannot be shut out (or shut
    // everyone else out) by arriving first.
    Peer* lowest = LowestPriorityPeer();
    if (lowest == nullptr ||
        PriorityOf(conn->remote()) <= PriorityOf(lowest->conn->remote())) {
      refuse(absl::ResourceExhaustedError("too many peers"));
      return;
    }
    lowest->conn->Close(absl::ResourceExhaustedError(
        "replaced by a peer of higher canonical priority (BEP 40)"));
  }
  // Both sides may dial each other: keep one connection per peer, the one
  // opened by the side with the greater peer ID, so that both ends keep the
  // same one (libtorrent decides so too). Without our ID: the first one.
  for (Peer* q : LivePeers()) {
    if (q->handshake.peer_id != theirs.peer_id) continue;
    const bool opened_by_greater =
        own_peer_id_ && (theirs.peer_id < *own_peer_id_) == !incoming;
    if (!opened_by_greater) {
      refuse(absl::AlreadyExistsError("already connected to this peer"));
      return;
    }
    q->conn->Close(absl::AlreadyExistsError(
        "the peer's other connection to us replaces this one"));
    break;
  }
  auto p = std::make_unique<Peer>();
  p->conn = conn;
  p->handshake = theirs;
  p->incoming = incoming;
  p->fast = theirs.fast();
  p->requests = RequestQueue(RequestQueue::Options{
      .min_depth = static_cast<uint32_t>(options_.min_requests),
      .max_depth = static_cast<uint32_t>(options_.max_requests),
      .queue_seconds = options_.request_queue_seconds,
      .rtt_cover_rate = options_.request_rtt_cover_rate,
      .snub_ticks = static_cast<uint64_t>(options_.snub_seconds)});
  p->requests.SetRtt(static_cast<double>(conn->rtt_us()) / 1e6);
  if (!incoming) {
    p->listen = conn->remote();
    known_.Connected(conn->remote(), ticks_);
  }
  Peer& peer = *p;
  peers_[conn->key()] = std::move(p);
  spdlog::debug("swarm {}: peer {} connected", hashes_.BestHex().substr(0, 12),
                conn->remote().ToString());
  std::vector<std::shared_ptr<RateLimit>> down{down_limit_};
  std::vector<std::shared_ptr<RateLimit>> up{up_limit_};
  if (global_down_) down.push_back(global_down_);
  if (global_up_) up.push_back(global_up_);
  conn->SetRateLimits(std::move(down), std::move(up));
  if (options_.upload_backlog_bytes > 0) conn->LimitUnsent(kUnsentPerLink);
  SendHello(peer);
  conn->Start(this);
}

void Swarm::SendHello(Peer& peer) {
  std::string hello;
  if (peer.handshake.extensions()) {
    wire::ExtensionHandshake ext;
    ext.m["ut_metadata"] = kOurMetadataId;
    if (!private_torrent()) ext.m["ut_pex"] = kOurPexId;
    ext.m["upload_only"] = kOurUploadOnlyId;
    ext.upload_only = upload_only();
    peer.told_upload_only = ext.upload_only;
    ext.client = client_name_;
    ext.listen_port = listen_port_;
    ext.reqq = options_.max_requests * 4;
    if (m_) ext.metadata_size = static_cast<int64_t>(m_->info_bytes.size());
    ext.yourip = std::string(peer.conn->remote().AddressBytes());
    wire::AppendMessage(wire::Extended{0, wire::EncodeExtensionHandshake(ext)},
                        hello);
  }
  const bool have_all = complete() && picker_->have().all();
  const bool have_none = !picker_ || picker_->have().none() || seeder_;
  peer.hello_unchecked = !picker_;
  if (seeder_) {
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
  if (const uint64_t got = p.down.total(); got > 0) {
    // Bounded: a long-lived torrent meets many peers.
    const std::string from =
        received_from_gone_.size() < 256 ||
                received_from_gone_.contains(conn.remote().ToString())
            ? conn.remote().ToString()
            : "others";
    received_from_gone_[from] += got;
  }
  // Dialed again once its wait is over (not at all if it was banned). Closed
  // by us for reasons of ours (the swarm stopped; the peer's other
  // connection replaced this one), it is no failure of the peer's.
  if (p.listen) {
    if (IsBanned(*p.listen)) {
      known_.Remove(*p.listen);
    } else {
      known_.Disconnected(
          *p.listen, ticks_, p.IsSeed() || p.upload_only,
          /*ours=*/shut_ || why.code() == absl::StatusCode::kAlreadyExists);
    }
  }
  SyncBudget();  // its requests will not arrive
  // Pieces revealed to it and not sent go back to the least revealed.
  if (seeder_) seeder_->PeerGone(conn.key());
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
  std::vector<BlameBook::Case> unsettled = blame_.TakeAskedOf(conn.key());
  if (!unsettled.empty()) {
    auto later =
        std::make_shared<std::vector<BlameBook::Case>>(std::move(unsettled));
    env_.Defer([this, alive = std::weak_ptr<bool>(alive_), later] {
      if (alive.expired()) return;
      for (BlameBook::Case& b : *later) AskNextForBlame(std::move(b));
    });
  }
  // Erase later: the caller may still be inside this peer's code.
  env_.Defer([this, alive = std::weak_ptr<bool>(alive_), key = conn.key()] {
    if (alive.expired()) return;
    peers_.erase(key);
    blame_.Forget(key);
    if (num_peers() == 0 && !complete() && !shut_) OnNoPeers();
    // Other peers may take over the requests it held.
    RequestMoreAll();
  });
}

void Swarm::Drop(PeerLink& conn, const absl::Status& why) { conn.Close(why); }

void Swarm::Ban(Peer& p, const std::string& why) {
  std::string addr = p.conn->ban_key();
  spdlog::warn("swarm {}: banning {}: {}", hashes_.BestHex().substr(0, 12),
               addr, why);
  blame_.Ban(addr, p.conn->key());
  Add(NodeStats::Get().kind(options_.kind).peers_banned, 1);
  if (bus_ != nullptr) {
    Event e;
    e.kind = EventKind::kPeerBanned;
    e.id = hashes_.BestHex();
    e.address = p.conn->remote().ToString();
    e.message = why;
    bus_->Publish(std::move(e));
  }
  p.conn->Close(absl::PermissionDeniedError(absl::StrCat("banned: ", why)));
}

void Swarm::CloseIfBothSeeds(Peer& p) {
  // Two seeds have nothing to trade, and the slot may serve a fetcher.
  if (p.gone || !picker_ || !picker_->have().all()) return;
  if (p.IsSeed() || p.upload_only) p.conn->Close(absl::OkStatus());
}

void Swarm::SyncUploadOnly(Peer& p) {
  const bool now = upload_only();
  if (p.gone || now == p.told_upload_only) return;
  const uint8_t id = p.ext.IdOf("upload_only");
  if (id == 0) return;
  p.told_upload_only = now;
  p.conn->Send(
      wire::Extended{id, now ? std::string(1, '\1') : std::string(1, '\0')});
}

void Swarm::OnWritable(PeerLink& conn) {
  if (Peer* p = Find(conn)) ServeQueued(*p);
}

// --- Timers
// ---------------------------------------------------------------------------

void Swarm::Tick() {
  {
    ++ticks_;
    SyncBudget();
    down_.Tick();
    up_.Tick();
    for (Peer* p : LivePeers()) {
      ++p->connected_ticks;
      const bool got = p->down.Tick() > 0;
      p->up.Tick();
      // The request pipeline: depth, snubbing, timeouts (RequestQueue).
      RequestQueue::TickResult r = p->requests.Tick(
          ticks_, p->down.rate(), p->connected_ticks, got, p->peer_choking,
          p->ext.reqq, static_cast<double>(p->conn->rtt_us()) / 1e6);
      if (r.snubbed) {
        spdlog::debug("swarm {}: peer {} snubbed us",
                      hashes_.BestHex().substr(0, 12),
                      p->conn->remote().ToString());
        if (picker_) picker_->PeerGone(p->conn->key());
        RequestMoreAll();
      }
      if (picker_ && !r.expired.empty()) {
        for (const chunk::Block& b : r.expired) {
          p->conn->Send(wire::Cancel{{b.piece, b.offset, b.length}});
          picker_->RequestFailed(p->conn->key(), b);
        }
        RequestMoreAll();
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
    if (seeder_) {  // rates changed: so did the reveal windows
      for (Peer* p : LivePeers()) SendReveals(*p);
    }
    if (ticks_ % kRechokeTicks == 0) Rechoke();
    SendPex();    // each peer at most once a minute (PexTracker::Due)
    DialKnown();  // peers whose wait is over, into free slots
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
    c.snubbed = p->requests.snubbed();
    c.download_rate = p->down.rate();
    c.upload_rate = p->up.rate();
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
            p.requests.Clear();
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
            if (seeder_ && seeder_->Announced(conn.key(), m.piece, ticks_))
              SendReveals(p);
            // Strict super-seeding: peers whose last piece is now shared.
            if (seeder_) {
              for (uint64_t key : seeder_->TakeReady()) {
                auto it = peers_.find(key);
                if (it != peers_.end() && !it->second->gone)
                  SendReveals(*it->second);
              }
            }
          } else if (!p.has_all && p.has.size() != n) {
            p.early_haves.push_back(m.piece);
          }
          OnPeerHas(p);
          CloseIfBothSeeds(p);
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
          CloseIfBothSeeds(p);
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
          const bool ours = p.requests.Forget(rejected);
          // A cluster peer rejects while its uplink is backlogged
          // (SwarmOptions::upload_backlog_bytes): ask someone else.
          if (ours && options_.upload_backlog_bytes > 0 && picker_) {
            if (p.rejected.empty() || p.rejected.back().first != m.block.piece)
              p.rejected.emplace_back(m.block.piece, ticks_);
            RequestMoreAll();
          }
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

}  // namespace shoal::node
