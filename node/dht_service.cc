// clang-format off
#include "node/asio.h"
// clang-format on

#include "node/dht_service.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"
#include "node/stats.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

using SteadyClock = std::chrono::steady_clock;
using udp = asio::ip::udp;

constexpr int64_t kStateVersion = 1;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

uint64_t RandomU64() {
  uint64_t v = 0;
  randombytes_buf(&v, sizeof v);
  return v;
}

const char* NetName(DhtService::Network net) {
  return net == DhtService::Network::kPublic ? "public" : "cluster";
}

std::string StateKey(const std::string& prefix, DhtService::Network net) {
  return absl::StrCat(
      prefix, net == DhtService::Network::kPublic ? "/public" : "/cluster");
}

// What one instance keeps in the store: a bencoded dict
// {"v": 1, "id": <20 bytes>, "cn": <cluster name; cluster only>,
//  "nodes": <DhtNode::SaveState()>}.
struct SavedState {
  dht::NodeId id;
  std::string nodes;  // empty if the table belongs to another network
};

std::string EncodeState(const dht::DhtNode& node) {
  namespace b = codec::bencode;
  b::Dict d;
  d["v"] = kStateVersion;
  d["id"] = std::string(node.id().bytes());
  if (node.options().cluster_name) d["cn"] = *node.options().cluster_name;
  d["nodes"] = node.SaveState();
  return b::Encode(b::Value(std::move(d)));
}

absl::StatusOr<SavedState> DecodeState(
    std::string_view bytes, const std::optional<std::string>& cluster_name) {
  codec::BdecodeOptions limits;
  limits.max_depth = 2;
  limits.max_tokens = 16;
  limits.max_string_length = 4 << 20;
  absl::StatusOr<codec::BDocument> doc = codec::Bdecode(bytes, limits);
  if (!doc.ok()) return doc.status();
  codec::BNode root = doc->root();
  if (root.FindInt("v") != kStateVersion) {
    return absl::InvalidArgumentError("unknown version");
  }
  std::optional<dht::NodeId> id =
      dht::NodeId::FromBytes(root.FindString("id").value_or(""));
  if (!id) return absl::InvalidArgumentError("no 20-byte id");
  SavedState s;
  s.id = *id;
  std::optional<std::string_view> cn = root.FindString("cn");
  const bool same_network =
      cluster_name ? cn && *cn == *cluster_name : !cn.has_value();
  // A table of another cluster would only lead into that cluster.
  if (same_network)
    s.nodes = std::string(root.FindString("nodes").value_or(""));
  return s;
}

}  // namespace

dht::Endpoint ToDhtEndpoint(const asio::ip::address& address, uint16_t port) {
  dht::Endpoint e;
  e.port = port;
  if (address.is_v4()) {
    auto b = address.to_v4().to_bytes();
    e.address.assign(b.begin(), b.end());
  } else if (address.to_v6().is_v4_mapped()) {
    auto b = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6())
                 .to_bytes();
    e.address.assign(b.begin(), b.end());
  } else {
    auto b = address.to_v6().to_bytes();
    e.address.assign(b.begin(), b.end());
  }
  return e;
}

asio::ip::address ToAsioAddress(const dht::Endpoint& endpoint) {
  if (endpoint.is_v4()) {
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), endpoint.address.data(), b.size());
    return asio::ip::address_v4(b);
  }
  if (endpoint.is_v6()) {
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), endpoint.address.data(), b.size());
    return asio::ip::address_v6(b);
  }
  return {};
}

DhtService::DhtService(asio::io_context& io, asio::ip::udp::socket& socket,
                       store::ChunkStore& store, Options options)
    : socket_(socket),
      store_(store),
      options_(std::move(options)),
      generation_(std::make_shared<uint64_t>(0)),
      tick_timer_(io),
      resolver_(io) {}

DhtService::~DhtService() { Stop(); }

dht::DhtNode* DhtService::Node(Network net) const {
  return net == Network::kPublic ? public_.get() : cluster_.get();
}

const dht::DhtNode* DhtService::Instance(Network net) const {
  return Node(net);
}

size_t DhtService::NumNodes(Network net) const {
  const dht::DhtNode* n = Node(net);
  return n ? n->routing_table().size() : 0;
}

absl::Status DhtService::CreateNodes() {
  auto make =
      [&](Network net) -> absl::StatusOr<std::unique_ptr<dht::DhtNode>> {
    dht::DhtOptions o = options_.dht;
    o.enforce_bep42 = options_.enforce_bep42;
    if (net == Network::kCluster) {
      o.cluster_name = options_.cluster_name;
      o.cluster_key = options_.cluster_key;
    } else {
      o.cluster_name.reset();
      o.cluster_key.reset();
    }
    std::string nodes;
    absl::StatusOr<std::string> bytes =
        store_.GetState(StateKey(options_.state_prefix, net));
    absl::StatusOr<SavedState> saved =
        bytes.ok() ? DecodeState(*bytes, o.cluster_name) : bytes.status();
    if (saved.ok()) {
      o.id = saved->id;
      nodes = std::move(saved->nodes);
    } else {
      if (!absl::IsNotFound(saved.status())) {
        spdlog::warn("dht {}: ignoring saved state: {}", NetName(net),
                     std::string(saved.status().message()));
      }
      o.id = dht::NodeId::Random(RandomU64);
    }
    if (net == Network::kCluster && options_.cluster_id)
      o.id = *options_.cluster_id;
    absl::StatusOr<std::unique_ptr<dht::DhtNode>> node = dht::DhtNode::Create(
        o, NowMs, RandomU64, [this](const dht::Endpoint& to, std::string b) {
          Send(to, std::move(b));
        });
    if (!node.ok()) return node.status();
    if (!nodes.empty()) {
      absl::Status s = (*node)->LoadState(nodes);
      if (!s.ok()) {
        spdlog::warn("dht {}: ignoring saved routing table: {}", NetName(net),
                     std::string(s.message()));
      }
    }
    return node;
  };
  std::unique_ptr<dht::DhtNode> pub;
  if (options_.public_enabled) {
    absl::StatusOr<std::unique_ptr<dht::DhtNode>> n = make(Network::kPublic);
    if (!n.ok()) return n.status();
    pub = *std::move(n);
  }
  absl::StatusOr<std::unique_ptr<dht::DhtNode>> cl = make(Network::kCluster);
  if (!cl.ok()) return cl.status();
  public_ = std::move(pub);
  cluster_ = *std::move(cl);
  if (preheat_handler_) cluster_->set_preheat_handler(preheat_handler_);
  return absl::OkStatus();
}

absl::Status DhtService::Start() {
  if (running_) return absl::FailedPreconditionError("dht: already running");
  if (options_.tick_interval.count() <= 0 ||
      options_.save_interval.count() <= 0 ||
      options_.provider_reannounce.count() <= 0 ||
      options_.provider_retry.count() <= 0) {
    return absl::InvalidArgumentError("dht: intervals must be positive");
  }
  boost::system::error_code ec;
  const udp::endpoint local = socket_.local_endpoint(ec);
  if (!socket_.is_open() || ec) {
    return absl::FailedPreconditionError("dht: the UDP socket is not bound");
  }
  socket_.non_blocking(true, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dht: cannot make the UDP socket non-blocking: ", ec.message()));
  }
  socket_v6_ = local.address().is_v6();
  socket_v4_ = !socket_v6_;
  if (socket_v6_) {
    asio::ip::v6_only v6_only;
    socket_.get_option(v6_only, ec);
    socket_v4_ = !ec && !v6_only.value();
  }
  absl::Status s = CreateNodes();
  if (!s.ok()) return s;
  running_ = true;
  ++*generation_;
  last_save_ = SteadyClock::now();
  spdlog::debug("dht: started on udp port {} (public {}, cluster '{}' id {})",
                local.port(),
                public_ ? public_->id().ToHex().substr(0, 12) : "off",
                options_.cluster_name, cluster_->id().ToHex().substr(0, 12));
  Receive();
  ScheduleTick();
  for (Rebootstrap& r : rebootstrap_) r.next = last_save_ + r.backoff;
  if (public_) Bootstrap(Network::kPublic, options_.public_routers);
  if (running_) Bootstrap(Network::kCluster, options_.cluster_bootstrap);
  if (running_ && state_cb_) {
    for (Network net : {Network::kPublic, Network::kCluster}) {
      if (Node(net) == nullptr) continue;
      last_nodes_[static_cast<size_t>(net)] = NumNodes(net);
      state_cb_(
          net,
          last_nodes_[static_cast<size_t>(net)] > 0 ? "ready" : "bootstrapping",
          NumNodes(net));
    }
  }
  return absl::OkStatus();
}

void DhtService::Stop() {
  if (!running_) return;
  running_ = false;
  ++*generation_;  // handlers already queued find a stale generation
  boost::system::error_code ec;
  tick_timer_.cancel();
  resolver_.cancel();
  socket_.cancel(ec);
  SaveState();
  providing_.clear();
  std::map<uint64_t, Request> requests = std::move(requests_);
  requests_.clear();
  for (auto& [id, r] : requests) {
    if (r.peers_done) r.peers_done({});
    if (r.announce_done) r.announce_done(0);
  }
}

void DhtService::SaveState() {
  for (Network net : {Network::kPublic, Network::kCluster}) {
    const dht::DhtNode* node = Node(net);
    if (!node) continue;
    absl::Status s = store_.PutState(StateKey(options_.state_prefix, net),
                                     EncodeState(*node));
    if (!s.ok()) {
      spdlog::warn("dht {}: cannot save state: {}", NetName(net),
                   std::string(s.message()));
    }
  }
  last_save_ = SteadyClock::now();
}

void DhtService::Send(const dht::Endpoint& to, std::string bytes) {
  if (!running_) return;
  asio::ip::address address = ToAsioAddress(to);
  if (!to.valid() || (address.is_v6() && !socket_v6_) ||
      (address.is_v4() && !socket_v4_)) {
    ++stats_.send_dropped;
    return;
  }
  if (address.is_v4() && socket_v6_) {
    address = asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4());
  }
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(bytes), udp::endpoint(address, to.port), 0, ec);
  if (ec) {
    ++stats_.send_dropped;  // would block, unreachable: the DHT retries
  } else {
    ++stats_.datagrams_out;
  }
}

void DhtService::Receive() {
  std::weak_ptr<uint64_t> token = generation_;
  const uint64_t generation = *generation_;
  socket_.async_receive_from(
      asio::buffer(datagram_), sender_,
      [this, token, generation](boost::system::error_code ec, size_t size) {
        std::shared_ptr<uint64_t> alive = token.lock();
        if (!alive || *alive != generation) return;
        if (ec == asio::error::operation_aborted ||
            ec == asio::error::bad_descriptor) {
          return;
        }
        // Other errors (ICMP unreachable reported on the socket) concern
        // one datagram we sent; keep reading.
        if (!ec) OnDatagram(sender_, size);
        // What else is queued is read now, without a turn of the event loop
        // each (the socket is non-blocking): µTP at speed is thousands of
        // datagrams a second.
        for (int i = 0; i < 64 && *alive == generation; ++i) {
          boost::system::error_code more;
          const size_t n =
              socket_.receive_from(asio::buffer(datagram_), sender_, 0, more);
          if (more == asio::error::would_block) break;
          if (more == asio::error::operation_aborted ||
              more == asio::error::bad_descriptor) {
            return;
          }
          if (!more) OnDatagram(sender_, n);
        }
        if (*alive == generation && other_batch_done_) other_batch_done_();
        if (*alive == generation) Receive();  // a callback may have stopped us
      });
}

void DhtService::OnDatagram(const asio::ip::udp::endpoint& sender,
                            size_t size) {
  if (other_take_ &&
      other_take_(sender, std::string_view(datagram_.data(), size))) {
    return;
  }
  ++stats_.datagrams_in;
  if (size > kMaxDatagram) {
    ++stats_.oversized;
    return;
  }
  const std::string_view bytes(datagram_.data(), size);
  // Only y, t and cn are needed to route; the instance decodes it in full.
  codec::BdecodeOptions limits;
  limits.max_depth = 4;
  limits.max_tokens = 512;
  limits.max_string_length = 2048;
  absl::StatusOr<codec::BDocument> doc = codec::Bdecode(bytes, limits);
  if (!doc.ok() || !doc->root().is_dict()) {
    ++stats_.undecodable;
    return;
  }
  const codec::BNode root = doc->root();
  const std::optional<std::string_view> y = root.FindString("y");
  const std::optional<std::string_view> t = root.FindString("t");
  if (!y || !t) {
    ++stats_.undecodable;
    return;
  }
  const bool has_cn = static_cast<bool>(root.Find("cn"));
  const dht::Endpoint from = ToDhtEndpoint(sender.address(), sender.port());
  dht::DhtNode* to = nullptr;
  if (*y == "q") {
    to = has_cn ? cluster_.get() : public_.get();
  } else if (*y == "r" || *y == "e") {
    const bool cluster = cluster_->ExpectsReply(from, *t);
    const bool pub = public_ && public_->ExpectsReply(from, *t);
    if (cluster && pub) {
      // Both sent this transaction ID to this node (2^-32 odds): a cluster
      // node echoes cn.
      to = has_cn ? cluster_.get() : public_.get();
    } else if (cluster) {
      to = cluster_.get();
    } else if (pub) {
      to = public_.get();
    }
  }
  if (!to) {
    ++stats_.unrouted;
    return;
  }
  to->OnPacket(from, bytes);
}

void DhtService::ScheduleTick() {
  std::weak_ptr<uint64_t> token = generation_;
  const uint64_t generation = *generation_;
  tick_timer_.expires_after(options_.tick_interval);
  tick_timer_.async_wait(
      [this, token, generation](boost::system::error_code ec) {
        std::shared_ptr<uint64_t> alive = token.lock();
        if (ec || !alive || *alive != generation) return;
        OnTick();
      });
}

void DhtService::OnTick() {
  // Callbacks that Tick() runs may call Stop().
  if (public_) public_->Tick();
  if (!running_) return;
  cluster_->Tick();
  if (!running_) return;
  const SteadyClock::time_point now = SteadyClock::now();
  if (now - last_save_ >= options_.save_interval) SaveState();
  std::vector<std::pair<Network, Key>> due;
  for (const auto& [entry, p] : providing_) {
    if (!p.in_flight && p.next <= now) due.push_back(entry);
  }
  for (const auto& entry : due) {
    if (!running_) return;
    AnnounceProvided(entry);
  }
  for (Network net : {Network::kPublic, Network::kCluster}) {
    if (!running_) return;
    MaybeRebootstrap(net, now);
  }
  if (running_) ReportStates();
  if (running_) ScheduleTick();
}

void DhtService::ReportStates() {
  if (!state_cb_) return;
  for (Network net : {Network::kPublic, Network::kCluster}) {
    if (Node(net) == nullptr) continue;
    size_t& last = last_nodes_[static_cast<size_t>(net)];
    const size_t now = NumNodes(net);
    if (last == 0 && now > 0) state_cb_(net, "ready", now);
    if (last > 0 && now == 0) state_cb_(net, "empty", now);
    last = now;
  }
}

bool DhtService::ClusterReachable() const {
  if (!running_ || !cluster_) return false;
  if (cluster_->routing_table().size() > 0) return true;
  return cluster_->num_lookups() > 0 || resolving_[1] > 0;
}

void DhtService::MaybeRebootstrap(Network net, SteadyClock::time_point now) {
  dht::DhtNode* node = Node(net);
  const std::vector<HostPort>& hosts = net == Network::kPublic
                                           ? options_.public_routers
                                           : options_.cluster_bootstrap;
  Rebootstrap& r = rebootstrap_[static_cast<size_t>(net)];
  if (node == nullptr || node->routing_table().size() > 0) {
    r.backoff = std::chrono::milliseconds(1000);
    r.next = now + r.backoff;
    return;
  }
  const bool has_names = std::any_of(hosts.begin(), hosts.end(), [](auto& h) {
    boost::system::error_code ec;
    asio::ip::make_address(h.host, ec);
    return static_cast<bool>(ec);
  });
  if (!has_names || now < r.next) return;
  spdlog::debug("dht {}: routing table empty, resolving bootstrap names again",
                NetName(net));
  Bootstrap(net, hosts);
  r.next = now + r.backoff;
  r.backoff = std::min<std::chrono::milliseconds>(2 * r.backoff,
                                                  std::chrono::seconds(60));
}

void DhtService::Bootstrap(Network net, const std::vector<HostPort>& hosts) {
  std::vector<dht::Endpoint> literals;
  std::vector<const HostPort*> names;
  for (const HostPort& h : hosts) {
    boost::system::error_code ec;
    const asio::ip::address a = asio::ip::make_address(h.host, ec);
    if (ec) {
      names.push_back(&h);
    } else if (h.port != 0 && (a.is_v4() ? socket_v4_ : socket_v6_)) {
      literals.push_back(ToDhtEndpoint(a, h.port));
    }
  }
  // Even with no routers: nodes loaded from the store are asked.
  Node(net)->Bootstrap(literals);
  if (names.empty() || !running_) return;

  // Shared by the resolve handlers of this bootstrap: the last one to finish
  // bootstraps again with every address found.
  struct Resolving {
    size_t remaining = 0;
    size_t literals = 0;
    std::vector<dht::Endpoint> endpoints;
  };
  auto state = std::make_shared<Resolving>();
  state->remaining = names.size();
  state->literals = literals.size();
  state->endpoints = std::move(literals);
  std::weak_ptr<uint64_t> token = generation_;
  const uint64_t generation = *generation_;
  for (const HostPort* h : names) {
    ++resolving_[static_cast<size_t>(net)];
    resolver_.async_resolve(
        h->host, std::to_string(h->port), udp::resolver::numeric_service,
        [this, token, generation, net, state, host = h->host](
            boost::system::error_code ec, udp::resolver::results_type r) {
          std::shared_ptr<uint64_t> alive = token.lock();
          if (!alive || *alive != generation) return;
          --resolving_[static_cast<size_t>(net)];
          if (ec) {
            // (A dual-stack node's second family resolves the same names:
            // one warning is enough.)
            spdlog::log(options_.state_prefix == "dht" ? spdlog::level::warn
                                                       : spdlog::level::debug,
                        "dht {}: cannot resolve {}: {}", NetName(net), host,
                        ec.message());
          } else {
            for (const auto& entry : r) {
              const udp::endpoint e = entry.endpoint();
              if (e.port() == 0 ||
                  !(e.address().is_v4() ? socket_v4_ : socket_v6_)) {
                continue;
              }
              state->endpoints.push_back(ToDhtEndpoint(e.address(), e.port()));
            }
          }
          if (--state->remaining == 0 &&
              state->endpoints.size() > state->literals) {
            Node(net)->Bootstrap(state->endpoints);
          }
        });
  }
}

void DhtService::GetPeers(
    Network net, const Key& key,
    std::function<void(std::vector<tcp::endpoint>)> done,
    std::function<void(std::vector<tcp::endpoint>)> found) {
  dht::DhtNode* node = running_ ? Node(net) : nullptr;
  if (!node) {
    done({});
    return;
  }
  const uint64_t id = next_request_++;
  requests_[id].peers_done = std::move(done);
  dht::DhtNode::PeersFoundCallback on_found;
  if (found) {
    on_found =
        [this, found = std::move(found), token = std::weak_ptr(generation_),
         generation = *generation_](const std::vector<dht::Endpoint>& peers) {
          std::vector<tcp::endpoint> out;
          for (const dht::Endpoint& p : peers) {
            if (p.valid() && p.port != 0)
              out.emplace_back(ToAsioAddress(p), p.port);
          }
          if (out.empty()) return;
          // Outside the DHT node's call stack: `found` may start lookups.
          asio::post(socket_.get_executor(),
                     [found, out = std::move(out), token, generation] {
                       std::shared_ptr<uint64_t> alive = token.lock();
                       if (alive && *alive == generation) found(out);
                     });
        };
  }
  node->GetPeers(
      dht::NodeId(key),
      [this, id, net](const std::vector<dht::Endpoint>& peers,
                      const std::vector<dht::NodeWithToken>&,
                      const dht::LookupStats&) {
        Add(NodeStats::Get()
                .dht_lookups[static_cast<size_t>(net)][peers.empty() ? 1 : 0],
            1);
        FinishPeers(id, peers);
      },
      std::move(on_found));
}

void DhtService::ClosestNodes(
    const Key& key,
    std::function<void(std::vector<dht::NodeInfo>, std::vector<tcp::endpoint>)>
        done) {
  if (!running_ || !cluster_) {
    done({}, {});
    return;
  }
  cluster_->GetPeers(
      dht::NodeId(key),
      [done = std::move(done)](const std::vector<dht::Endpoint>& peers,
                               const std::vector<dht::NodeWithToken>& closest,
                               const dht::LookupStats&) {
        std::vector<dht::NodeInfo> nodes;
        for (const auto& n : closest) nodes.push_back(n.node);
        std::vector<tcp::endpoint> providers;
        for (const dht::Endpoint& p : peers) {
          if (p.valid() && p.port != 0)
            providers.emplace_back(ToAsioAddress(p), p.port);
        }
        done(std::move(nodes), std::move(providers));
      });
}

void DhtService::Preheat(const dht::NodeInfo& node, std::string content,
                         dht::DhtNode::PreheatCallback done) {
  if (!running_ || !cluster_) {
    done(std::nullopt);
    return;
  }
  cluster_->Preheat(node.endpoint, node.id, std::move(content),
                    std::move(done));
}

void DhtService::FinishPeers(uint64_t request,
                             const std::vector<dht::Endpoint>& peers) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return;
  std::function<void(std::vector<tcp::endpoint>)> done =
      std::move(it->second.peers_done);
  requests_.erase(it);
  std::vector<tcp::endpoint> out;
  std::set<tcp::endpoint> seen;
  for (const dht::Endpoint& p : peers) {
    if (!p.valid() || p.port == 0) continue;
    tcp::endpoint e(ToAsioAddress(p), p.port);
    if (seen.insert(e).second) out.push_back(e);
  }
  done(std::move(out));
}

void DhtService::Announce(Network net, const Key& key, uint16_t port,
                          std::function<void(int acknowledged)> done) {
  dht::DhtNode* node = running_ ? Node(net) : nullptr;
  if (!node) {
    done(0);
    return;
  }
  const uint64_t id = next_request_++;
  requests_[id].announce_done = std::move(done);
  node->Announce(
      dht::NodeId(key), port, /*implied_port=*/true,
      [this, id](int acknowledged) { FinishAnnounce(id, acknowledged); });
}

void DhtService::FinishAnnounce(uint64_t request, int acknowledged) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return;
  std::function<void(int)> done = std::move(it->second.announce_done);
  requests_.erase(it);
  done(acknowledged);
}

void DhtService::Provide(Network net, const Key& key, uint16_t port) {
  if (!running_ || !Node(net)) return;
  Provided& p = providing_[{net, key}];
  p.port = port;
  // Answer get_peers for it ourselves too, when our address is a real one.
  boost::system::error_code ec;
  const auto local = socket_.local_endpoint(ec);
  if (!ec && !local.address().is_unspecified()) {
    Node(net)->SetLocalPeer(dht::NodeId(key),
                            ToDhtEndpoint(local.address(), port), true);
  }
  p.generation = next_provide_generation_++;
  p.in_flight = false;
  AnnounceProvided({net, key});
}

void DhtService::StopProviding(Network net, const Key& key) {
  providing_.erase({net, key});
  if (running_ && Node(net)) {
    Node(net)->SetLocalPeer(dht::NodeId(key), dht::Endpoint{}, false);
  }
}

void DhtService::AnnounceProvided(const std::pair<Network, Key>& entry) {
  auto it = providing_.find(entry);
  if (it == providing_.end()) return;
  Provided& p = it->second;
  p.in_flight = true;
  const uint64_t generation = p.generation;
  Node(entry.first)
      ->Announce(
          dht::NodeId(entry.second), p.port, /*implied_port=*/true,
          [this, entry, generation](int acknowledged) {
            auto it = providing_.find(entry);
            if (it == providing_.end() || it->second.generation != generation) {
              return;  // stopped, or provided again since
            }
            it->second.in_flight = false;
            it->second.next = SteadyClock::now() +
                              (acknowledged > 0 ? options_.provider_reannounce
                                                : options_.provider_retry);
          });
}

}  // namespace shoal::node
