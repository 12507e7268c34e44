#include "dht/dht_node.h"

#include <algorithm>
#include <ctime>

#include "absl/status/status.h"
#include "codec/sha.h"
#include "dht/cluster_auth.h"

namespace shoal::dht {

absl::Status DhtOptions::Validate() const {
  if (k < 1 || k > 64) return absl::InvalidArgumentError("dht: k out of range");
  if (query_retries < 0 || query_retries > 10) {
    return absl::InvalidArgumentError("dht: query_retries out of range");
  }
  if (alpha < 1 || alpha > 16) {
    return absl::InvalidArgumentError("dht: alpha out of range");
  }
  if (query_timeout_ms <= 0 || token_rotation_ms <= 0 || peer_ttl_ms <= 0 ||
      bucket_refresh_ms <= 0 || ping_interval_ms <= 0) {
    return absl::InvalidArgumentError("dht: durations must be positive");
  }
  if (max_peers_per_key == 0 || max_peers_total == 0) {
    return absl::InvalidArgumentError("dht: peer limits must be positive");
  }
  if (queries_per_second_per_source <= 0 || query_burst_per_source < 1) {
    return absl::InvalidArgumentError("dht: rate limit must be positive");
  }
  if (cluster_name && cluster_name->empty()) {
    return absl::InvalidArgumentError("dht: empty cluster name");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DhtNode>> DhtNode::Create(DhtOptions options,
                                                         Clock clock,
                                                         Random random,
                                                         SendFn send) {
  absl::Status s = options.Validate();
  if (!s.ok()) return s;
  return std::unique_ptr<DhtNode>(
      new DhtNode(std::move(options), std::move(clock), std::move(random),
                  std::move(send)));
}

DhtNode::DhtNode(DhtOptions options, Clock clock, Random random, SendFn send)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      random_(std::move(random)),
      send_(std::move(send)),
      table_(std::make_unique<RoutingTable>(options_.id, options_.k)) {
  next_transaction_ = static_cast<uint32_t>(random_());
  secret_ = random_();
  previous_secret_ = random_();
  last_rotation_ms_ = clock_();
  last_maintenance_ms_ = last_rotation_ms_;
}

// ---------------------------------------------------------------- sending

std::string DhtNode::Encode(KrpcMessage m) const {
  m.cluster = options_.cluster_name;
  if (!options_.cluster_key) return EncodeKrpc(m);
  return SealKrpc(std::move(m), *options_.cluster_key, UnixTime());
}

int64_t DhtNode::UnixTime() const {
  return options_.unix_time ? options_.unix_time()
                            : static_cast<int64_t>(std::time(nullptr));
}

void DhtNode::Send(const Endpoint& to, KrpcMessage m) {
  send_(to, Encode(std::move(m)));
}

std::string DhtNode::SendQuery(const Endpoint& to, std::optional<NodeId> id,
                               KrpcMessage m, uint64_t lookup) {
  std::string tid;
  do {
    uint32_t t = next_transaction_++;
    tid = std::string{static_cast<char>(t >> 24), static_cast<char>(t >> 16),
                      static_cast<char>(t >> 8), static_cast<char>(t)};
  } while (pending_.contains(tid));
  m.transaction_id = tid;
  Pending p;
  p.to = to;
  p.id = id;
  p.method = m.method;
  p.sent_ms = clock_();
  p.lookup = lookup;
  p.bytes = Encode(std::move(m));
  send_(to, p.bytes);
  pending_.emplace(tid, std::move(p));
  return tid;
}

// ---------------------------------------------------------------- input

void DhtNode::OnPacket(const Endpoint& from, std::string_view bytes) {
  ++stats_.packets_in;
  if (!from.valid()) return;
  if (options_.cluster_key &&
      !VerifyKrpc(bytes, *options_.cluster_key, UnixTime()).ok()) {
    ++stats_.unauthenticated;
    return;
  }
  absl::StatusOr<KrpcMessage> m = DecodeKrpc(bytes);
  if (!m.ok()) {
    ++stats_.malformed;
    return;
  }
  if (m->type == KrpcType::kQuery) {
    HandleQuery(from, *m);
  } else {
    HandleReply(from, *m);
  }
}

bool DhtNode::AllowQuery(const Endpoint& from, int64_t now) {
  // Spoofed source addresses could grow the table without bound; forgetting
  // every bucket is the cheap, bounded answer.
  if (rate_.size() >= kMaxRateSources && !rate_.contains(from.address)) {
    rate_.clear();
  }
  RateBucket& b = rate_[from.address];
  if (b.last_ms == 0 && b.tokens == 0)
    b.tokens = options_.query_burst_per_source;
  b.tokens =
      std::min(options_.query_burst_per_source,
               b.tokens + (now - b.last_ms) *
                              options_.queries_per_second_per_source / 1000.0);
  b.last_ms = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bool DhtNode::Bep42Ok(const NodeInfo& n) const {
  return !options_.enforce_bep42 ||
         IsValidNodeIdForIp(n.id, n.endpoint.address);
}

void DhtNode::NoteExternalAddress(const Endpoint& voter, const Endpoint& ours) {
  if (id_settled_ || options_.bep42_votes <= 0 || !ours.valid() ||
      ip_votes_.size() > 64) {
    return;
  }
  std::set<Endpoint>& voters = ip_votes_[ours.address];
  if (voters.size() < 1024) voters.insert(voter);
  if (static_cast<int>(voters.size()) < options_.bep42_votes) return;
  id_settled_ = true;
  ip_votes_.clear();
  if (IsValidNodeIdForIp(options_.id, ours.address)) return;
  // A new ID valid for the address; the nodes we know move to a table built
  // around it.
  std::vector<NodeInfo> known = table_->Closest(options_.id, table_->size());
  options_.id =
      NodeIdForIp(ours.address, static_cast<uint8_t>(random_()), random_);
  table_ = std::make_unique<RoutingTable>(options_.id, options_.k);
  const int64_t now = clock_();
  for (const NodeInfo& n : known) table_->Heard(n, now, Contact::kLoaded);
  ++stats_.id_changes;
  // Announce ourselves under the new ID: look up our own neighbourhood.
  Bootstrap({});
}

void DhtNode::HandleQuery(const Endpoint& from, const KrpcMessage& m) {
  if (m.cluster != options_.cluster_name) {
    ++stats_.wrong_network;
    return;
  }
  const int64_t now = clock_();
  if (!AllowQuery(from, now)) {
    ++stats_.rate_limited;
    return;
  }
  ++stats_.queries_served;
  if (Bep42Ok({m.id, from}))
    table_->Heard({m.id, from}, now, Contact::kQueried);

  KrpcMessage r = KrpcMessage::Response(m.transaction_id, options_.id);
  r.ip = from;
  // BEP 32: the families the querier asked for, else its own.
  const bool want_v4 = m.want_v4 || (!m.want_v6 && from.is_v4());
  const bool want_v6 = m.want_v6 || (!m.want_v4 && from.is_v6());
  auto fill_nodes = [&](const NodeId& target) {
    // Closest() mixes families; ask for enough to fill each list.
    for (NodeInfo& n : table_->Closest(target, options_.k * 4)) {
      if (n.endpoint.is_v4() && want_v4 &&
          r.nodes.size() < static_cast<size_t>(options_.k)) {
        r.nodes.push_back(std::move(n));
      } else if (n.endpoint.is_v6() && want_v6 &&
                 r.nodes6.size() < static_cast<size_t>(options_.k)) {
        r.nodes6.push_back(std::move(n));
      }
    }
  };
  switch (m.method) {
    case KrpcMethod::kPing:
      break;
    case KrpcMethod::kFindNode:
      fill_nodes(m.target);
      break;
    case KrpcMethod::kGetPeers: {
      r.token = TokenFor(from.address);
      auto it = peers_.find(m.info_hash);
      if (it != peers_.end()) {
        const std::vector<StoredPeer>& stored = it->second;
        size_t n = std::min(stored.size(), options_.max_values_per_response);
        // A random window, so that large swarms spread their load.
        size_t start = stored.size() > n ? random_() % stored.size() : 0;
        for (size_t i = 0; i < n; ++i) {
          r.values.push_back(stored[(start + i) % stored.size()].endpoint);
        }
      }
      if (auto self = local_peers_.find(m.info_hash);
          self != local_peers_.end() &&
          std::find(r.values.begin(), r.values.end(), self->second) ==
              r.values.end()) {
        r.values.push_back(self->second);
      }
      fill_nodes(m.info_hash);
      break;
    }
    case KrpcMethod::kAnnouncePeer: {
      if (!ValidToken(m.token, from.address)) {
        ++stats_.bad_tokens;
        Send(from,
             KrpcMessage::Error(m.transaction_id, kErrorProtocol, "bad token"));
        return;
      }
      Endpoint peer = from;
      if (!m.implied_port) peer.port = m.port;
      StorePeer(m.info_hash, peer, now);
      break;
    }
    case KrpcMethod::kPreheat: {
      if (!options_.cluster_name || !preheat_handler_) {
        Send(from, KrpcMessage::Error(m.transaction_id, kErrorMethodUnknown,
                                      "method unknown"));
        return;
      }
      PreheatAnswer a = preheat_handler_(m.content);
      r.state = a.state.empty() ? "failed" : a.state;
      r.done = a.done;
      r.total = a.total;
      break;
    }
    case KrpcMethod::kUnknown:
      Send(from, KrpcMessage::Error(m.transaction_id, kErrorMethodUnknown,
                                    "method unknown"));
      return;
  }
  Send(from, std::move(r));
}

bool DhtNode::ExpectsReply(const Endpoint& from,
                           std::string_view transaction_id) const {
  auto it = pending_.find(std::string(transaction_id));
  return it != pending_.end() && it->second.to == from;
}

void DhtNode::HandleReply(const Endpoint& from, const KrpcMessage& m) {
  auto it = pending_.find(m.transaction_id);
  if (it == pending_.end() || it->second.to != from) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  const int64_t now = clock_();
  const bool ok = m.type == KrpcType::kResponse && (!p.id || *p.id == m.id);
  if (ok) {
    if (Bep42Ok({m.id, from}))
      table_->Heard({m.id, from}, now, Contact::kResponded);
    if (m.ip) NoteExternalAddress(from, *m.ip);
  } else if (m.type == KrpcType::kResponse && p.id) {
    table_->Failed(*p.id, p.to);  // answered with another ID
  }
  if (auto cb = preheat_callbacks_.extract(m.transaction_id)) {
    std::optional<PreheatAnswer> answer;
    if (ok && !m.state.empty())
      answer = PreheatAnswer{m.state, m.done, m.total};
    cb.mapped()(answer);
    return;
  }
  if (p.lookup == 0) return;
  auto l = lookups_.find(p.lookup);
  if (l == lookups_.end()) return;
  if (p.method == KrpcMethod::kAnnouncePeer) {
    AnnounceReply(*l->second, ok);
  } else {
    LookupReply(*l->second, p, ok ? &m : nullptr);
  }
}

// ---------------------------------------------------------------- tokens

std::string DhtNode::MakeToken(std::string_view address,
                               uint64_t secret) const {
  std::string input(8, '\0');
  for (int i = 0; i < 8; ++i) input[i] = static_cast<char>(secret >> (8 * i));
  input += address;
  codec::Sha1Digest d = codec::Sha1::Hash(input);
  return std::string(reinterpret_cast<const char*>(d.data()), 8);
}

std::string DhtNode::TokenFor(std::string_view address) const {
  return MakeToken(address, secret_);
}

bool DhtNode::ValidToken(std::string_view token,
                         std::string_view address) const {
  return token == MakeToken(address, secret_) ||
         token == MakeToken(address, previous_secret_);
}

// ---------------------------------------------------------------- peer store

void DhtNode::StorePeer(const NodeId& info_hash, const Endpoint& peer,
                        int64_t now) {
  std::vector<StoredPeer>& list = peers_[info_hash];
  for (StoredPeer& p : list) {
    if (p.endpoint == peer) {
      p.added_ms = now;
      return;
    }
  }
  if (list.size() >= options_.max_peers_per_key) {
    // Replace the oldest: live swarms re-announce, dead entries age out.
    auto oldest = std::min_element(
        list.begin(), list.end(), [](const StoredPeer& a, const StoredPeer& b) {
          return a.added_ms < b.added_ms;
        });
    *oldest = {peer, now};
    return;
  }
  if (total_peers_ >= options_.max_peers_total) {
    if (list.empty()) peers_.erase(info_hash);
    return;
  }
  list.push_back({peer, now});
  ++total_peers_;
}

void DhtNode::ExpirePeers(int64_t now) {
  for (auto it = peers_.begin(); it != peers_.end();) {
    std::vector<StoredPeer>& list = it->second;
    size_t before = list.size();
    std::erase_if(list, [&](const StoredPeer& p) {
      return now - p.added_ms >= options_.peer_ttl_ms;
    });
    total_peers_ -= before - list.size();
    if (list.empty()) {
      peers_.erase(it++);
    } else {
      ++it;
    }
  }
}

void DhtNode::SetLocalPeer(const NodeId& info_hash, const Endpoint& self,
                           bool on) {
  if (on) {
    local_peers_[info_hash] = self;
  } else {
    local_peers_.erase(info_hash);
  }
}

std::vector<Endpoint> DhtNode::StoredPeers(const NodeId& info_hash) const {
  std::vector<Endpoint> out;
  auto it = peers_.find(info_hash);
  if (it == peers_.end()) return out;
  for (const StoredPeer& p : it->second) out.push_back(p.endpoint);
  return out;
}

// ---------------------------------------------------------------- maintenance

void DhtNode::Tick() {
  const int64_t now = clock_();
  std::vector<std::string> expired;
  std::vector<std::string> stalled;
  for (const auto& [tid, p] : pending_) {
    if (now - p.sent_ms >= options_.query_timeout_ms) expired.push_back(tid);
    if (p.lookup != 0 && !p.stalled && p.attempts == 2 &&
        p.method != KrpcMethod::kAnnouncePeer &&
        now - p.sent_ms >= options_.lookup_stall_ms) {
      stalled.push_back(tid);
    }
  }
  std::sort(stalled.begin(), stalled.end());  // deterministic order
  for (const std::string& tid : stalled) {
    auto it = pending_.find(tid);
    if (it == pending_.end()) continue;
    auto l = lookups_.find(it->second.lookup);
    if (l == lookups_.end()) continue;
    // Only a search for peers stops waiting: find_node and the lookup before
    // an announce must reach the exact k closest.
    if (l->second->method != KrpcMethod::kGetPeers || l->second->announce)
      continue;
    it->second.stalled = true;
    // As if it had failed, for the lookup's progress; a late answer still
    // counts (LookupReply).
    Pending copy = it->second;
    copy.stalled = false;
    LookupReply(*l->second, copy, nullptr);
  }
  std::sort(expired.begin(), expired.end());  // deterministic order
  for (const std::string& tid : expired) {
    auto it = pending_.find(tid);
    if (it == pending_.end()) continue;
    if (it->second.attempts <= options_.query_retries) {
      ++it->second.attempts;
      it->second.sent_ms = now;
      send_(it->second.to, it->second.bytes);
      continue;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    ++stats_.timeouts;
    if (p.id) table_->Failed(*p.id, p.to);
    if (auto cb = preheat_callbacks_.extract(tid)) cb.mapped()(std::nullopt);
    if (p.lookup == 0) continue;
    auto l = lookups_.find(p.lookup);
    if (l == lookups_.end()) continue;
    if (p.method == KrpcMethod::kAnnouncePeer) {
      AnnounceReply(*l->second, false);
    } else {
      LookupReply(*l->second, p, nullptr);
    }
  }

  if (now - last_rotation_ms_ >= options_.token_rotation_ms) {
    previous_secret_ = secret_;
    secret_ = random_();
    last_rotation_ms_ = now;
  }

  if (now - last_maintenance_ms_ >= 10'000) {
    last_maintenance_ms_ = now;
    ExpirePeers(now);
    for (auto it = rate_.begin(); it != rate_.end();) {
      if (now - it->second.last_ms > 60'000) {
        rate_.erase(it++);
      } else {
        ++it;
      }
    }
    int budget = 8;
    for (const NodeInfo& n :
         table_->NodesToPing(now, options_.ping_interval_ms)) {
      if (budget-- == 0) break;
      table_->Pinged(n.id, now);
      SendQuery(n.endpoint, n.id,
                KrpcMessage::Query(KrpcMethod::kPing, "", options_.id), 0);
    }
    if (table_->size() == 0 && !routers_.empty() &&
        now - last_bootstrap_ms_ >= 30'000) {
      Bootstrap(routers_);
    } else if (table_->size() > 0) {
      for (const NodeId& target :
           table_->BucketsToRefresh(now, options_.bucket_refresh_ms, random_)) {
        FindNode(target, nullptr);
      }
    }
  }
}

// ---------------------------------------------------------------- lookups

DhtNode::Lookup& DhtNode::StartLookup(KrpcMethod method, const NodeId& target) {
  auto l = std::make_unique<Lookup>();
  l->id = next_lookup_++;
  l->method = method;
  l->target = target;
  for (const NodeInfo& n : table_->Closest(target, options_.k * 2)) {
    AddCandidate(*l, n, 1);
  }
  Lookup& ref = *l;
  lookups_.emplace(ref.id, std::move(l));
  return ref;
}

void DhtNode::AddCandidate(Lookup& l, const NodeInfo& node, int hops) {
  if (node.id == options_.id || !node.endpoint.valid() ||
      node.endpoint.port == 0) {
    return;
  }
  if (!l.seen.insert(node.id).second) return;
  Candidate c;
  c.node = node;
  c.hops = hops;
  auto pos = std::upper_bound(l.candidates.begin(), l.candidates.end(), node.id,
                              [&](const NodeId& id, const Candidate& o) {
                                return CloserTo(l.target, id, o.node.id);
                              });
  l.candidates.insert(pos, std::move(c));
  // Bound the memory a flood of made-up nodes can take: far candidates that
  // are not in flight are forgotten.
  const size_t cap = static_cast<size_t>(options_.k) * kCandidatesPerK;
  while (l.candidates.size() > cap &&
         l.candidates.back().state != Candidate::State::kInFlight) {
    l.candidates.pop_back();
  }
}

void DhtNode::Step(Lookup& l) {
  int considered = 0;
  for (Candidate& c : l.candidates) {
    if (considered >= options_.k) break;
    if (c.state == Candidate::State::kFailed) continue;
    ++considered;
    if (c.state != Candidate::State::kNew || l.in_flight >= options_.alpha)
      continue;
    KrpcMessage q = KrpcMessage::Query(l.method, "", options_.id);
    q.target = l.target;
    q.info_hash = l.target;
    c.state = Candidate::State::kInFlight;
    ++l.in_flight;
    ++l.queries;
    SendQuery(c.node.endpoint, c.node.id, std::move(q), l.id);
  }
  if (l.in_flight == 0) FinishLookup(l);
}

void DhtNode::LookupReply(Lookup& l, const Pending& p,
                          const KrpcMessage* reply) {
  if (l.announce_outstanding > 0) return;  // already announcing
  if (p.stalled) {
    // The lookup stopped waiting for this node already: a late answer still
    // brings nodes and peers; a final timeout changes nothing.
    if (reply == nullptr) return;
  } else {
    --l.in_flight;
  }
  Candidate* c = nullptr;
  for (Candidate& x : l.candidates) {
    if (p.id ? x.node.id == *p.id : x.node.endpoint == p.to) {
      c = &x;
      break;
    }
  }
  int hops = c ? c->hops : 0;
  if (reply != nullptr) {
    if (c == nullptr) {  // a bootstrap router: its ID is news to us
      AddCandidate(l, {reply->id, p.to}, 0);
      for (Candidate& x : l.candidates) {
        if (x.node.id == reply->id) c = &x;
      }
    }
    if (c != nullptr) {
      c->state = Candidate::State::kDone;
      c->token = reply->token;
    }
    for (const NodeInfo& n : reply->nodes) AddCandidate(l, n, hops + 1);
    for (const NodeInfo& n : reply->nodes6) AddCandidate(l, n, hops + 1);
    const size_t known = l.peers.size();
    for (const Endpoint& e : reply->values) {
      if (e.valid() && l.peer_set.insert(e).second) l.peers.push_back(e);
    }
    if (l.found_callback && l.peers.size() > known) {
      l.found_callback(std::vector<Endpoint>(
          l.peers.begin() + static_cast<std::ptrdiff_t>(known), l.peers.end()));
    }
  } else if (c != nullptr) {
    c->state = Candidate::State::kFailed;
  }
  Step(l);
}

void DhtNode::FinishLookup(Lookup& l) {
  std::vector<NodeInfo> closest;
  std::vector<NodeWithToken> with_tokens;
  LookupStats stats;
  stats.queries = l.queries;
  for (const Candidate& c : l.candidates) {
    if (closest.size() >= static_cast<size_t>(options_.k)) break;
    if (c.state != Candidate::State::kDone) continue;
    if (closest.empty()) stats.hops = c.hops;
    closest.push_back(c.node);
    with_tokens.push_back({c.node, c.token});
  }
  if (l.announce) {
    for (const NodeWithToken& n : with_tokens) {
      if (n.token.empty()) continue;
      KrpcMessage q =
          KrpcMessage::Query(KrpcMethod::kAnnouncePeer, "", options_.id);
      q.info_hash = l.target;
      q.port = l.port;
      q.implied_port = l.implied_port;
      q.token = n.token;
      ++l.announce_outstanding;
      SendQuery(n.node.endpoint, n.node.id, std::move(q), l.id);
    }
    if (l.announce_outstanding > 0) return;
  }
  // Take the lookup out before the callback, which may start others.
  auto node = lookups_.extract(l.id);
  std::unique_ptr<Lookup> owned = std::move(node.mapped());
  if (owned->refresh_after) {
    for (const NodeId& target : table_->AllRefreshTargets(clock_(), random_)) {
      FindNode(target, nullptr);
    }
  }
  if (owned->announce) {
    if (owned->announce_callback) owned->announce_callback(0);
  } else if (owned->peers_callback) {
    // Peers announced to this node count too: in a small network it may be
    // among the closest nodes itself.
    for (const Endpoint& e : StoredPeers(owned->target)) {
      if (std::find(owned->peers.begin(), owned->peers.end(), e) ==
          owned->peers.end())
        owned->peers.push_back(e);
    }
    owned->peers_callback(owned->peers, with_tokens, stats);
  } else if (owned->find_callback) {
    owned->find_callback(closest, stats);
  }
}

void DhtNode::AnnounceReply(Lookup& l, bool acked) {
  if (acked) ++l.announce_acked;
  if (--l.announce_outstanding > 0) return;
  auto node = lookups_.extract(l.id);
  std::unique_ptr<Lookup> owned = std::move(node.mapped());
  if (owned->announce_callback) owned->announce_callback(owned->announce_acked);
}

void DhtNode::Preheat(const Endpoint& to, const NodeId& id, std::string content,
                      PreheatCallback callback) {
  KrpcMessage q = KrpcMessage::Query(KrpcMethod::kPreheat, "", options_.id);
  q.content = std::move(content);
  const std::string tid = SendQuery(to, id, std::move(q), 0);
  preheat_callbacks_[tid] = std::move(callback);
}

void DhtNode::FindNode(const NodeId& target, FindNodeCallback callback) {
  Lookup& l = StartLookup(KrpcMethod::kFindNode, target);
  l.find_callback = std::move(callback);
  Step(l);
}

void DhtNode::GetPeers(const NodeId& info_hash, GetPeersCallback callback,
                       PeersFoundCallback found) {
  Lookup& l = StartLookup(KrpcMethod::kGetPeers, info_hash);
  l.peers_callback = std::move(callback);
  l.found_callback = std::move(found);
  Step(l);
}

void DhtNode::Announce(const NodeId& info_hash, uint16_t port,
                       bool implied_port, AnnounceCallback callback) {
  Lookup& l = StartLookup(KrpcMethod::kGetPeers, info_hash);
  l.announce = true;
  l.port = port;
  l.implied_port = implied_port;
  l.announce_callback = std::move(callback);
  Step(l);
}

void DhtNode::Bootstrap(const std::vector<Endpoint>& routers) {
  if (&routers != &routers_) routers_ = routers;
  last_bootstrap_ms_ = clock_();
  Lookup& l = StartLookup(KrpcMethod::kFindNode, options_.id);
  l.refresh_after = true;
  for (const Endpoint& e : routers) {
    if (!e.valid()) continue;
    KrpcMessage q = KrpcMessage::Query(KrpcMethod::kFindNode, "", options_.id);
    q.target = options_.id;
    ++l.in_flight;
    ++l.queries;
    SendQuery(e, std::nullopt, std::move(q), l.id);
  }
  Step(l);
}

// ---------------------------------------------------------------- state

std::string DhtNode::SaveState() const { return table_->Save(); }

absl::Status DhtNode::LoadState(std::string_view bytes) {
  absl::StatusOr<std::vector<NodeInfo>> nodes = RoutingTable::ParseSaved(bytes);
  if (!nodes.ok()) return nodes.status();
  const int64_t now = clock_();
  for (const NodeInfo& n : *nodes) {
    if (Bep42Ok(n)) table_->Heard(n, now, Contact::kLoaded);
  }
  return absl::OkStatus();
}

}  // namespace shoal::dht
