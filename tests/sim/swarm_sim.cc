#include "tests/sim/swarm_sim.h"

#include <algorithm>
#include <cstring>

#include "node/provider_lookups.h"
#include "wire/message.h"

namespace shoal::node::sim {

void SimLink::Send(std::string bytes) {
  if (closed_ || bytes.empty()) return;
  sent_ += bytes.size();
  // Small messages join the last queued bytes (a segment sent already keeps
  // its offsets: appending changes no byte before them).
  if (bytes.size() < 64 && !out_.empty() && !out_.back()->ref &&
      out_.back()->raw.size() < kSegment) {
    out_.back()->raw += bytes;
    queued_ += bytes.size();
    return;
  }
  auto chunk = std::make_shared<Chunk>();
  // One block of the content, as SendBlockFromPiece builds it?
  const TestContent& c = sim_->c_;
  if (bytes.size() > 13 && bytes[4] == 7) {
    uint32_t len, piece, begin;
    std::memcpy(&len, bytes.data(), 4);
    std::memcpy(&piece, bytes.data() + 5, 4);
    std::memcpy(&begin, bytes.data() + 9, 4);
    len = __builtin_bswap32(len);
    piece = __builtin_bswap32(piece);
    begin = __builtin_bswap32(begin);
    const uint64_t off = c.layout.piece_offset(piece) + begin;
    const size_t n = bytes.size() - 13;
    if (len + 4 == bytes.size() && piece < c.layout.num_pieces() &&
        off + n <= c.data.size() &&
        std::memcmp(c.data.data() + off, bytes.data() + 13, n) == 0) {
      chunk->ref = true;
      sim_->CountSent(node_, off);
      chunk->content_offset = off;
      chunk->length = static_cast<uint32_t>(n);
      bytes.resize(13);
    }
  }
  chunk->raw = std::move(bytes);
  queued_ += chunk->size();
  out_.push_back(std::move(chunk));
  if (!in_ready_) {
    in_ready_ = true;
    sim_->nodes_[node_]->ready.push_back(weak_from_this());
  }
  sim_->KickUplink(node_);
}

void SimLink::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  out_.clear();
  queued_ = 0;
  if (auto other = other_.lock()) {
    const int to = other->node_;
    sim_->At(sim_->now() + sim_->Latency(node_, to),
             [w = std::weak_ptr<SimLink>(other)] {
               if (auto l = w.lock())
                 l->Close(absl::UnavailableError("closed by the peer"));
             });
  }
  if (handler_) handler_->OnClose(*this, why);
}

void Sim::Arrive(int i) {
  SimNode& n = *nodes_[i];
  n.alive = true;
  n.env = std::make_unique<SimEnvImpl>(this);
  n.swarm = std::make_unique<SimSwarm>(*n.env, c_, options_,
                                       n.spec.seed || n.spec.malicious,
                                       n.spec.malicious, [this, i] {
                                         if (nodes_[i]->completed_at < 0)
                                           nodes_[i]->completed_at = now_;
                                       });
  n.swarm->set_connector([this, i](const PeerEndpoint& to) { Dial(i, to); });
  if (!n.spec.seed && !n.spec.malicious) Lookup(i, 0);
  At(now_ + 1, [this, i] { Tick(i); });
}

void Sim::Leave(int i) {
  SimNode& n = *nodes_[i];
  if (!n.alive) return;
  n.alive = false;
  n.left = true;
  left_uploaded_[i] = n.swarm->uploaded();
  n.swarm.reset();  // closes every link
  n.env.reset();
}

// What a DHT provider lookup gives: up to 20 providers at random (BEP 5
// caps a get_peers answer, and the providers are stored at a few nodes). As
// in the node, a seed provides from the start and a fetcher once its
// metadata has checked out.
void Sim::Discover(int i) {
  std::vector<PeerEndpoint> found;
  std::vector<int> present;
  for (const auto& n : nodes_)
    if (n->alive && n->index != i && n->swarm->has_metadata())
      present.push_back(n->index);
  for (int k = 0; k < 20 && !present.empty(); ++k) {
    const size_t pick = Random() % present.size();
    found.push_back(nodes_[present[pick]]->address);
    present.erase(present.begin() + static_cast<ptrdiff_t>(pick));
  }
  nodes_[i]->swarm->ConnectTo(found);
}

void Sim::Tick(int i) {
  SimNode& n = *nodes_[i];
  if (!n.alive) return;
  n.env->TickAll();
  if (!n.alive) return;
  At(now_ + 1, [this, i] { Tick(i); });
}

// Lookups as the session makes them (Session::LookupProviders): on the
// schedule of ProviderLookupDelay (node's default interval, 3 s), while it
// has fewer than kLookupPeers peers, until complete.
void Sim::Lookup(int i, int round) {
  SimNode& n = *nodes_[i];
  if (!n.alive || n.completed_at >= 0) return;
  if (n.swarm->num_peers() < kLookupPeers) Discover(i);
  const double delay =
      ProviderLookupDelay(round, std::chrono::seconds(3)).count() / 1000.0;
  At(now_ + delay, [this, i, round] { Lookup(i, round + 1); });
}

void Sim::Dial(int from, const PeerEndpoint& to_ep) {
  const int to = NodeAt(to_ep);
  const double rtt = to < 0 ? 0.1 : 2 * Latency(from, to);
  At(now_ + rtt, [this, from, to, to_ep] {
    SimNode& a = *nodes_[from];
    if (!a.alive) return;
    if (to < 0 || !nodes_[to]->alive || nodes_[to]->swarm->shut()) {
      a.swarm->OnConnectFailed(to_ep);
      return;
    }
    SimNode& b = *nodes_[to];
    auto la = std::make_shared<SimLink>(this, from, next_key_++, b.address);
    auto lb = std::make_shared<SimLink>(this, to, next_key_++, a.address);
    la->other_ = lb;
    lb->other_ = la;
    auto hs = [](const SimNode& n) {
      wire::Handshake h;
      h.set_extensions(true);
      h.set_fast(true);
      h.set_v2(true);
      h.info_hash = n.swarm->handshake_hash();
      std::memcpy(h.peer_id.data(), "-SHsim0-", 8);
      std::memcpy(h.peer_id.data() + 8, n.address.address.data(), 4);
      return h;
    };
    a.swarm->AddPeer(la, hs(b), /*incoming=*/false);
    b.swarm->AddPeer(lb, hs(a), /*incoming=*/true);
  });
}

void Sim::KickUplink(int i) {
  SimNode& n = *nodes_[i];
  if (n.uplink_busy || !n.alive) return;
  while (!n.ready.empty()) {
    auto link = n.ready.front().lock();
    n.ready.pop_front();
    if (!link) continue;
    link->in_ready_ = false;
    if (link->closed_ || link->out_.empty()) continue;
    Transmit(i, link);
    return;
  }
}

void Sim::Transmit(int i, const std::shared_ptr<SimLink>& link) {
  SimNode& n = *nodes_[i];
  // One segment off the link's stream.
  Segment s;
  s.chunk = link->out_.front();
  s.offset = link->front_sent_;
  s.length = std::min(kSegment, s.chunk->size() - s.offset);
  link->front_sent_ += s.length;
  if (link->front_sent_ == s.chunk->size()) {
    link->out_.pop_front();
    link->front_sent_ = 0;
  }
  link->queued_ -= s.length;
  n.uplink_busy = true;
  const double done = now_ + static_cast<double>(s.length) / n.spec.up;
  At(done, [this, i, w = std::weak_ptr<SimLink>(link), s] {
    SimNode& n = *nodes_[i];
    n.uplink_busy = false;
    if (auto l = w.lock(); l && !l->closed_) {
      if (auto other = l->other_.lock()) {
        double at = now_ + Latency(i, other->node_);
        if (static_cast<double>(Random() % 1'000'000) < kLoss * 1e6) at += kRto;
        at = std::max(at, other->last_arrival_);  // TCP delivers in order
        other->last_arrival_ = at;
        At(at, [this, o = std::weak_ptr<SimLink>(other), s] { Arrival(o, s); });
      }
      if (!l->out_.empty() && !l->in_ready_) {
        l->in_ready_ = true;
        n.ready.push_back(l);
      }
      // As PeerConnection: after each write, while little is queued.
      if (l->queued_ < PeerLink::kLowWater && l->handler_)
        l->handler_->OnWritable(*l);
    }
    KickUplink(i);
  });
}

void Sim::Arrival(std::weak_ptr<SimLink> to, Segment s) {
  auto link = to.lock();
  if (!link || link->closed_) return;
  SimNode& n = *nodes_[link->node_];
  const double at = std::max(now_, n.downlink_free) +
                    static_cast<double>(s.length) / n.spec.down;
  n.downlink_free = at;
  At(at, [this, to, s] {
    if (auto l = to.lock(); l && !l->closed_) Deliver(l, s);
  });
}

void Sim::Deliver(const std::shared_ptr<SimLink>& link, const Segment& s) {
  const Chunk& c = *s.chunk;
  if (!c.ref) {
    link->inbox_.append(c.raw, s.offset, s.length);
  } else {
    size_t off = s.offset, left = s.length;
    if (off < c.raw.size()) {
      const size_t k = std::min(left, c.raw.size() - off);
      link->inbox_.append(c.raw, off, k);
      off += k;
      left -= k;
    }
    if (left > 0) {
      link->inbox_.append(c_.data, c.content_offset + (off - c.raw.size()),
                          left);
    }
  }
  std::string data = std::move(link->inbox_);
  link->inbox_.clear();
  std::string_view view(data);
  while (!link->closed_) {
    const size_t before = view.size();
    auto m = wire::ParseMessage(view);
    if (!m.ok()) {
      link->Close(m.status());
      return;
    }
    if (!m->has_value()) break;
    link->received_ += before - view.size();
    if (link->handler_) link->handler_->OnMessage(*link, **m);
  }
  if (!link->closed_) link->inbox_.insert(0, view);
}

}  // namespace shoal::node::sim
