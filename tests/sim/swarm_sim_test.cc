// A deterministic simulation of a swarm: N nodes, each running the real swarm
// engine (node/swarm.h, with real hashing and verification) over a simulated
// network. Each node has an uplink and a downlink capacity (bytes/s); a pair
// of nodes has a one-way latency (5-45 ms, fixed per pair); a lost segment
// arrives one retransmission timeout (200 ms) late, in order, as TCP would
// deliver it. A node's uplink sends its connections' queued bytes round-robin
// in segments of 16 KiB; its downlink takes arriving segments first come,
// first served. Events sit in a priority queue ordered by simulated time, and
// all randomness comes from one seeded generator: a run is reproducible from
// its seed, printed on failure.
//
//   SHOAL_SWARM_SIM_SEED     replay a run
//   SHOAL_SWARM_SIM_NODES    fetchers (default 100; 1,000 and more work)
//   SHOAL_SWARM_SIM_MIB      content size in MiB (default 16)
//   SHOAL_SWARM_SIM_TRACE    print how the links are used, every 0.2 s
//   SHOAL_SWARM_SIM_MAX_PEERS  SwarmOptions::max_peers of CDN swarms (50)
//
// Each scenario prints one line:
//   swarm sim release: seed S, N nodes, all complete in T s, lower bound L s,
//   ratio R, seed sent X x the content
// with T* = max(F/u_seed, F/min d_i, N·F/(u_seed + Σ u_i)) for F the content
// size (for nodes that arrive or leave, the line says which bound is used).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chunk/bitfield.h"
#include "gtest/gtest.h"
#include "node/provider_lookups.h"
#include "node/swarm.h"
#include "node/swarm_env.h"
#include "node/swarm_fakes.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"
#include "wire/message.h"

namespace shoal::node::sim {
namespace {

using testing::TestContent;

constexpr double kMB = 1e6;
constexpr size_t kSegment = 16 * 1024;
constexpr double kRto = 0.2;
constexpr double kLoss = 0.001;

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

uint64_t SimSeed() {
  static const uint64_t seed =
      EnvU64("SHOAL_SWARM_SIM_SEED", std::random_device{}());
  return seed;
}

// Edge nodes on a WAN: the protocol's fixed costs (round trips, the one-second
// tick) then weigh what they weigh in a real release.
struct NodeSpec {
  double up = 10 * kMB;    // bytes/s
  double down = 20 * kMB;  // bytes/s
  double arrive = 0;       // s
  double leave = std::numeric_limits<double>::infinity();
  bool seed = false;
  bool malicious = false;  // a seed whose every block is corrupt
};

class Sim;

// A piece message whose payload is the content's own bytes is kept as a
// reference (so that a thousand nodes' queues hold no copies); anything else
// as bytes.
struct Chunk {
  std::string raw;  // the bytes; or the 13-byte header of a referenced block
  bool ref = false;
  uint64_t content_offset = 0;
  uint32_t length = 0;
  size_t size() const { return ref ? raw.size() + length : raw.size(); }
};

struct Segment {
  std::shared_ptr<const Chunk> chunk;
  size_t offset = 0;
  size_t length = 0;
};

class SimLink final : public PeerLink,
                      public std::enable_shared_from_this<SimLink> {
 public:
  SimLink(Sim* sim, int node, uint64_t key, PeerEndpoint remote)
      : sim_(sim), node_(node), key_(key), remote_(remote) {}

  void Start(Handler* handler) override { handler_ = handler; }
  void Send(std::string bytes) override;
  void Send(const wire::Message& message) override {
    std::string bytes;
    wire::AppendMessage(message, bytes);
    Send(std::move(bytes));
  }
  void SetRateLimits(std::vector<std::shared_ptr<RateLimit>>,
                     std::vector<std::shared_ptr<RateLimit>>) override {}
  void Close(const absl::Status& why) override;
  uint64_t key() const override { return key_; }
  const PeerEndpoint& remote() const override { return remote_; }
  size_t queued_bytes() const override { return queued_; }
  uint64_t bytes_received() const override { return received_; }
  uint64_t bytes_sent() const override { return sent_; }

 private:
  friend class Sim;
  Sim* sim_;
  const int node_;
  const uint64_t key_;
  const PeerEndpoint remote_;
  Handler* handler_ = nullptr;
  std::weak_ptr<SimLink> other_;
  bool closed_ = false;
  std::deque<std::shared_ptr<Chunk>> out_;
  size_t front_sent_ = 0;  // bytes of out_.front() already on the wire
  size_t queued_ = 0;
  bool in_ready_ = false;
  double last_arrival_ = 0;
  std::string inbox_;
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
};

// Pieces are the content's own bytes: held pieces are a bitmap.
class SimStorage final : public store::PieceStorage {
 public:
  SimStorage(const TestContent& c, bool all, bool corrupt)
      : c_(c), have_(c.layout.num_pieces(), all), corrupt_(corrupt) {}
  absl::Status WritePiece(uint32_t piece, std::string_view data) override {
    if (data != Piece(piece)) return absl::DataLossError("not the content");
    have_[piece] = true;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override {
    auto p = ReadPiece(piece);
    if (!p.ok()) return p.status();
    return p->substr(offset, length);
  }
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override {
    if (!have_[piece]) return absl::UnavailableError("not held");
    std::string out(Piece(piece));
    if (corrupt_) out[out.size() / 3] ^= 0x40;
    return out;
  }

 private:
  std::string_view Piece(uint32_t i) const {
    return std::string_view(c_.data).substr(c_.layout.piece_offset(i),
                                            c_.layout.piece_size(i));
  }
  const TestContent& c_;
  std::vector<bool> have_;
  const bool corrupt_;
};

class SimSwarm final : public Swarm {
 public:
  SimSwarm(SwarmEnv& env, const TestContent& c, SwarmOptions o, bool seed,
           bool malicious, std::function<void()> on_complete)
      : Swarm(env, c.hashes, o, "shoal-sim", 6881),
        c_(c),
        seed_(seed),
        malicious_(malicious),
        on_complete_(std::move(on_complete)) {
    if (seed_) SetMetadata(c_.metainfo);
  }

 protected:
  void Prepare() override {
    StartDownloading(std::make_shared<SimStorage>(c_, seed_, malicious_),
                     chunk::Bitfield(c_.layout.num_pieces(), seed_));
  }
  void OnComplete() override {
    if (!seed_ && on_complete_) on_complete_();
  }

 private:
  const TestContent& c_;
  const bool seed_;
  const bool malicious_;
  std::function<void()> on_complete_;
};

class SimEnvImpl;

struct SimNode {
  int index = 0;
  NodeSpec spec;
  PeerEndpoint address;
  std::unique_ptr<SimEnvImpl> env;
  std::unique_ptr<SimSwarm> swarm;
  bool alive = false;
  bool left = false;
  double completed_at = -1;
  // Uplink: connections with bytes queued, served round-robin.
  std::deque<std::weak_ptr<SimLink>> ready;
  bool uplink_busy = false;
  double downlink_free = 0;
};

class Sim {
 public:
  Sim(uint64_t seed, const TestContent& content, SwarmOptions options)
      : rng_(seed), c_(content), options_(options) {}
  // The swarms go first: closing their links schedules events.
  ~Sim() {
    for (auto& n : nodes_) {
      n->swarm.reset();
      n->env.reset();
    }
  }

  int AddNode(const NodeSpec& spec) {
    auto n = std::make_unique<SimNode>();
    n->index = static_cast<int>(nodes_.size());
    n->spec = spec;
    n->address.family = AddressFamily::kV4;
    n->address.address = {10, static_cast<uint8_t>(n->index >> 16),
                          static_cast<uint8_t>(n->index >> 8),
                          static_cast<uint8_t>(n->index)};
    n->address.port = 6881;
    const int i = n->index;
    nodes_.push_back(std::move(n));
    At(spec.arrive, [this, i] { Arrive(i); });
    if (std::isfinite(spec.leave)) At(spec.leave, [this, i] { Leave(i); });
    return i;
  }

  // Runs until every node that stays and is honest has completed, or
  // `max_seconds` of simulated time. True if they all completed.
  bool Run(double max_seconds) {
    if (getenv("SHOAL_SWARM_SIM_TRACE")) Trace();
    while (!events_.empty()) {
      if (AllDone()) return true;
      std::pop_heap(events_.begin(), events_.end(), std::greater<>());
      Event e = std::move(events_.back());
      events_.pop_back();
      if (e.at > max_seconds) return false;
      now_ = e.at;
      e.fn();
    }
    return AllDone();
  }

  double now() const { return now_; }
  const SimNode& node(int i) const { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }
  uint64_t Random() { return rng_(); }
  // Bytes a node's swarm uploaded.
  uint64_t Uploaded(int i) const {
    return nodes_[i]->swarm             ? nodes_[i]->swarm->uploaded()
           : left_uploaded_.contains(i) ? left_uploaded_.at(i)
                                        : 0;
  }
  int BannedBy(int by, int whom) const {
    return nodes_[by]->swarm &&
           nodes_[by]->swarm->IsBanned(nodes_[whom]->address);
  }

  // A block of the content at `offset` left node `i`: for the trace, whether
  // a seed sent it for the first time or again.
  void CountSent(int i, uint64_t offset) {
    if (!tracing_ || !nodes_[i]->spec.seed) return;
    if (seed_sends_.empty())
      seed_sends_.resize((c_.data.size() + kSegment - 1) / kSegment);
    uint32_t& n = seed_sends_[offset / kSegment];
    ++(n++ == 0 ? seed_first_ : seed_again_);
  }

  // SHOAL_SWARM_SIM_TRACE: every 0.2 s of simulated time, one line on how
  // the fetchers use their links: the share whose uplink and downlink are
  // busy at that instant, how many have completed, the pieces held by those
  // that have not, how many of those have no request out, whether a seed's
  // uplink is busy and what the seeds sent; and, of the fetchers whose uplink
  // is idle, how many peers they have and how many of those are interested in
  // them (peers that want what an idle node has, and ask others for it).
  void Trace() {
    tracing_ = true;
    int alive = 0, done = 0, up = 0, down = 0, idle = 0, seed_up = 0;
    double have = 0;
    int idle_up = 0;
    double idle_peers = 0, idle_interested = 0;
    for (const auto& n : nodes_) {
      if (!n->alive) continue;
      if (n->spec.seed) {
        seed_up += n->uplink_busy;
        continue;
      }
      ++alive;
      up += n->uplink_busy;
      down += n->downlink_free > now_;
      if (n->swarm->complete()) {
        ++done;
        continue;
      }
      have += n->swarm->pieces_have();
      uint32_t out = 0;
      int peers = 0, interested = 0;
      for (const PeerInfo& p : n->swarm->Peers()) {
        out += p.requests_out;
        ++peers;
        interested += p.peer_interested;
      }
      idle += out == 0;
      if (!n->uplink_busy) {
        ++idle_up;
        idle_peers += peers;
        idle_interested += interested;
      }
    }
    const auto share = [](double x, int of) { return of > 0 ? x / of : 0; };
    std::printf(
        "swarm sim trace: t=%.2f s, %d fetchers, %d complete, uplinks busy "
        "%.2f, downlinks busy %.2f, %.1f pieces held, %d with no request out, "
        "seed uplinks busy %d, seeds sent %llu blocks once and %llu again; "
        "%d idle uplinks, their peers %.1f, interested in them %.1f\n",
        now_, alive, done, share(up, alive), share(down, alive),
        share(have, alive - done), idle, seed_up,
        static_cast<unsigned long long>(seed_first_),
        static_cast<unsigned long long>(seed_again_), idle_up,
        share(idle_peers, idle_up), share(idle_interested, idle_up));
    At(now_ + 0.2, [this] { Trace(); });
  }

  void At(double t, std::function<void()> fn) {
    events_.push_back(Event{t, next_seq_++, std::move(fn)});
    std::push_heap(events_.begin(), events_.end(), std::greater<>());
  }

 private:
  friend class SimLink;
  friend class SimEnvImpl;
  struct Event {
    double at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const {
      return at != o.at ? at > o.at : seq > o.seq;
    }
  };

  bool AllDone() const {
    for (const auto& n : nodes_) {
      if (n->spec.seed || n->spec.malicious || std::isfinite(n->spec.leave))
        continue;
      if (n->completed_at < 0) return false;
    }
    return true;
  }

  double Latency(int a, int b) const {
    const uint64_t x = static_cast<uint64_t>(std::min(a, b)) * 1000003u +
                       static_cast<uint64_t>(std::max(a, b));
    return 0.005 + static_cast<double>((x * 2654435761u) % 41) / 1000.0;
  }

  int NodeAt(const PeerEndpoint& e) const {
    const int i = (e.address[1] << 16) | (e.address[2] << 8) | e.address[3];
    return i < static_cast<int>(nodes_.size()) ? i : -1;
  }

  void Arrive(int i);
  void Lookup(int i, int round);
  void Leave(int i);
  void Discover(int i);
  void Tick(int i);
  void Dial(int from, const PeerEndpoint& to);
  void KickUplink(int i);
  void Transmit(int i, const std::shared_ptr<SimLink>& link);
  void Arrival(std::weak_ptr<SimLink> to, Segment s);
  void Deliver(const std::shared_ptr<SimLink>& link, const Segment& s);

  std::mt19937_64 rng_;
  const TestContent& c_;
  const SwarmOptions options_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::map<int, uint64_t> left_uploaded_;
  std::vector<Event> events_;  // a min-heap by (at, seq)
  // The trace's count of what seeds sent (CountSent).
  bool tracing_ = false;
  std::vector<uint32_t> seed_sends_;  // per 16 KiB of the content
  uint64_t seed_first_ = 0;
  uint64_t seed_again_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t next_key_ = 1;
  double now_ = 0;
};

class SimEnvImpl final : public SwarmEnv {
 public:
  SimEnvImpl(Sim* sim) : sim_(sim) {}
  uint64_t Random() override { return sim_->Random(); }
  void Offload(std::function<void()> work,
               std::function<void()> done) override {
    work();  // hashing takes no simulated time
    sim_->At(sim_->now(), std::move(done));
  }
  void Defer(std::function<void()> fn) override {
    sim_->At(sim_->now(), std::move(fn));
  }
  std::unique_ptr<Ticker> EverySecond(std::function<void()> tick) override {
    struct T final : Ticker {
      T(SimEnvImpl* e, uint64_t id) : env(e), id(id) {}
      ~T() override { env->tickers_.erase(id); }
      SimEnvImpl* env;
      uint64_t id;
    };
    const uint64_t id = next_++;
    tickers_[id] = std::move(tick);
    return std::make_unique<T>(this, id);
  }
  void TickAll() {
    std::vector<std::function<void()>> fns;
    for (auto& [id, fn] : tickers_) fns.push_back(fn);
    for (auto& fn : fns) fn();
  }

 private:
  Sim* sim_;
  std::map<uint64_t, std::function<void()>> tickers_;
  uint64_t next_ = 1;
};

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

// --- Scenarios

struct Outcome {
  bool complete = false;
  double time = 0;                 // until every counted node completed
  double bound = 0;                // the lower bound
  double seed_sent = 0;            // bytes the seed sent / content size
  std::vector<double> completion;  // per node, -1 if not
};

Outcome Summarize(const Sim& sim, bool complete, double bound, int seed,
                  double size) {
  Outcome o;
  o.complete = complete;
  o.bound = bound;
  o.seed_sent = static_cast<double>(sim.Uploaded(seed)) / size;
  for (size_t i = 0; i < sim.size(); ++i) {
    const double t = sim.node(static_cast<int>(i)).completed_at;
    o.completion.push_back(t);
    o.time = std::max(o.time, t);
  }
  return o;
}

// The completion time at quantile q of the nodes that completed.
double Quantile(const Outcome& o, double q) {
  std::vector<double> t;
  for (double x : o.completion)
    if (x >= 0) t.push_back(x);
  if (t.empty()) return 0;
  std::sort(t.begin(), t.end());
  return t[std::min(t.size() - 1, static_cast<size_t>(q * t.size()))];
}

void Print(const char* name, uint64_t seed, size_t n, const Outcome& o,
           const std::string& extra = "") {
  std::printf(
      "swarm sim %s: seed %llu, %zu nodes, all complete in %.2f s, lower "
      "bound %.2f s, ratio %.2f, seed sent %.2f x the content%s\n",
      name, static_cast<unsigned long long>(seed), n, o.time, o.bound,
      o.bound > 0 ? o.time / o.bound : 0, o.seed_sent, extra.c_str());
  std::fflush(stdout);
}

class SwarmSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::err);
    const uint64_t mib = EnvU64("SHOAL_SWARM_SIM_MIB", 16);
    content_ = new TestContent(TestContent::Make(mib << 20, 7));
  }
  static void TearDownTestSuite() {
    delete content_;
    content_ = nullptr;
    spdlog::set_level(spdlog::level::info);
  }
  void SetUp() override {
    seed_ = SimSeed();
    n_ = static_cast<int>(EnvU64("SHOAL_SWARM_SIM_NODES", 100));
  }
  void TearDown() override {
    if (HasFailure()) {
      std::printf("swarm sim: replay with SHOAL_SWARM_SIM_SEED=%llu\n",
                  static_cast<unsigned long long>(seed_));
    }
  }
  double F() const { return static_cast<double>(content_->data.size()); }
  // T* of a release from `seed` to n_ nodes like `f`, all there from the start.
  double ReleaseBound(const NodeSpec& seed, const NodeSpec& f) const {
    return std::max(
        {F() / seed.up, F() / f.down, n_ * F() / (seed.up + n_ * f.up)});
  }
  // The first time at which `capacity(t)`, the bytes the uplinks could have
  // sent by then (increasing in t), reaches `bytes`.
  static double FirstTime(double bytes,
                          const std::function<double(double)>& capacity) {
    double lo = 0, hi = 1e6;
    for (int k = 0; k < 100; ++k) {
      const double t = (lo + hi) / 2;
      (capacity(t) >= bytes ? hi : lo) = t;
    }
    return hi;
  }

  static SwarmOptions Cdn() {
    SwarmOptions o = CdnSwarmOptions(
        static_cast<int>(EnvU64("SHOAL_SWARM_SIM_MAX_PEERS", 50)));
    o.super_seed = EnvU64("SHOAL_SWARM_SIM_SUPER_SEED", 1) != 0;
    return o;
  }

  static TestContent* content_;
  uint64_t seed_ = 0;
  int n_ = 100;
};
TestContent* SwarmSim::content_ = nullptr;

// A CDN release: one seed, N fetchers arriving at once.
TEST_F(SwarmSim, Release) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  for (int i = 0; i < n_; ++i) sim.AddNode(f);
  const double bound = ReleaseBound(seed, f);
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("release", seed_, n_, o,
        absl::StrCat(" (p50 ", std::lround(Quantile(o, 0.5) * 100) / 100.0,
                     " s, p90 ", std::lround(Quantile(o, 0.9) * 100) / 100.0,
                     " s)"));
  ASSERT_TRUE(done);
  // 16 MiB at 10 MB/s: the protocol's round trips and one-second lookups
  // weigh more than at 64 MiB, where the ratio is about 1.35.
  EXPECT_LT(o.time / bound, 3.5);
  EXPECT_LT(o.seed_sent, 2.0);  // the origin super-seeds
}

// Fetchers arriving over time: uniformly over twice the release's bound.
// Bound: the latest of (arrival + F/d) over the nodes, and the first time T
// at which the uplinks present could have sent N·F: u_seed·T + Σ u_i·(T -
// a_i)+ = N·F.
TEST_F(SwarmSim, ArrivalsOverTime) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  const double window =
      2 * std::max(F() / seed.up, n_ * F() / (seed.up + n_ * f.up));
  std::vector<double> arrivals;
  std::mt19937_64 rng(seed_ ^ 0x5eed);
  for (int i = 0; i < n_; ++i) {
    f.arrive = window * static_cast<double>(rng() % 1'000'000) / 1e6;
    arrivals.push_back(f.arrive);
    sim.AddNode(f);
  }
  double bound = 0;
  for (double a : arrivals) bound = std::max(bound, a + F() / f.down);
  bound = std::max(bound, FirstTime(n_ * F(), [&](double t) {
                     double cap = seed.up * t;
                     for (double a : arrivals)
                       cap += f.up * std::max(0.0, t - a);
                     return cap;
                   }));
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("arrivals", seed_, n_, o,
        absl::StrCat(" (arrivals over ", std::lround(window * 100) / 100.0,
                     " s; bound: latest arrival + F/d, and uplink capacity "
                     "since each arrival)"));
  ASSERT_TRUE(done);
  EXPECT_LT(o.time / bound, 2.0);
}

// Half the fetchers leave at half the release's bound; the rest complete.
// Bound for those who stay (N' of them): F/u_seed, F/d, and N'·F over the
// seed's and the stayers' uplinks plus the leavers' until they left.
TEST_F(SwarmSim, HalfLeaveMidway) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  const double release = ReleaseBound(seed, f);
  const double leave = release / 2;
  const int stay = n_ - n_ / 2;
  for (int i = 0; i < n_; ++i) {
    NodeSpec x = f;
    if (i % 2 == 1) x.leave = leave;
    sim.AddNode(x);
  }
  const double sent_by = FirstTime(stay * F(), [&](double t) {
    return (seed.up + stay * f.up) * t + (n_ / 2) * f.up * std::min(t, leave);
  });
  const double bound = std::max({F() / seed.up, F() / f.down, sent_by});
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("half-leave", seed_, stay, o,
        absl::StrCat(" (", n_ / 2, " of ", n_, " left at ",
                     std::lround(leave * 100) / 100.0,
                     " s; bound over those who stay)"));
  ASSERT_TRUE(done);
  EXPECT_LT(o.time / bound, 3.5);
}

// One malicious node that has "everything" and sends corrupt blocks: every
// honest node completes, and those it sent to ban it.
TEST_F(SwarmSim, MaliciousNode) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec bad;
  bad.malicious = true;
  const int m = sim.AddNode(bad);
  NodeSpec f;
  std::vector<int> fetchers;
  for (int i = 0; i < n_; ++i) fetchers.push_back(sim.AddNode(f));
  const double bound = ReleaseBound(seed, f);
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  int banned = 0;
  for (int i : fetchers) banned += sim.BannedBy(i, m);
  Print("malicious", seed_, n_, o,
        absl::StrCat(" (", banned,
                     " nodes banned the corrupt one, which "
                     "sent ",
                     std::lround(sim.Uploaded(m) / F() * 100) / 100.0,
                     " x the content)"));
  ASSERT_TRUE(done);
  EXPECT_GT(banned, 0);
  EXPECT_LT(o.time / bound, 3.5);
}

// Torrent mode (tit-for-tat, 4 upload slots, a rechoke every 10 s): half the
// nodes upload 4x faster than the others (0.5 against 0.125 MB/s, slow
// enough that the download lasts several rechokes; the seed's 5 MB/s is not
// what is scarce). They should get the better
// download.
TEST_F(SwarmSim, TitForTatFavoursFastUploaders) {
  SwarmOptions o;
  o.trusted_peers = false;
  o.upload_slots = 4;
  Sim sim(seed_, *content_, o);
  NodeSpec seed;
  seed.seed = true;
  seed.up = 5 * kMB;  // the fetchers' uplinks are what is scarce
  const int s = sim.AddNode(seed);
  std::vector<int> fast, slow;
  double sum_up = 0;
  for (int i = 0; i < n_; ++i) {
    NodeSpec f;
    f.up = (i % 2 == 0 ? 0.5 : 0.125) * kMB;
    f.down = 2.5 * kMB;
    sum_up += f.up;
    (i % 2 == 0 ? fast : slow).push_back(sim.AddNode(f));
  }
  const double bound = std::max(
      {F() / seed.up, F() / (2.5 * kMB), n_ * F() / (seed.up + sum_up)});
  const bool done = sim.Run(60 * bound + 120);
  Outcome out = Summarize(sim, done, bound, s, F());
  auto mean = [&](const std::vector<int>& v) {
    double t = 0;
    for (int i : v) t += sim.node(i).completed_at;
    return t / static_cast<double>(v.size());
  };
  Print("tit-for-tat", seed_, n_, out,
        absl::StrCat(" (fast uploaders' mean ",
                     std::lround(mean(fast) * 100) / 100.0,
                     " s, slow uploaders' mean ",
                     std::lround(mean(slow) * 100) / 100.0, " s)"));
  ASSERT_TRUE(done);
  EXPECT_LT(mean(fast), 0.95 * mean(slow));
}

}  // namespace
}  // namespace shoal::node::sim
