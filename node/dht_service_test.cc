// clang-format off
#include "node/asio.h"
// clang-format on

#include "node/dht_service.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "codec/bencode.h"
#include "dht/krpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/chunk_store.h"

namespace shoal::node {
namespace {

using ::testing::Contains;
using Network = DhtService::Network;
using udp = asio::ip::udp;
using namespace std::chrono_literals;

DhtService::Key KeyOf(uint8_t b) {
  DhtService::Key k;
  k.fill(b);
  return k;
}

// Every node ID in `node`'s routing table.
std::set<dht::NodeId> TableIds(const dht::DhtNode& node) {
  std::set<dht::NodeId> ids;
  for (const dht::NodeInfo& n :
       node.routing_table().Closest(node.id(), 10'000)) {
    ids.insert(n.id);
  }
  return ids;
}

class DhtServiceTest : public ::testing::Test {
 protected:
  struct Peer {
    std::filesystem::path dir;
    std::unique_ptr<store::ChunkStore> store;
    std::unique_ptr<udp::socket> socket;
    std::unique_ptr<DhtService> service;
    uint16_t port = 0;
    DhtService::Options options;

    DhtService& operator*() { return *service; }
    DhtService* operator->() { return service.get(); }
  };

  void TearDown() override {
    for (auto& p : peers_) {
      p->service.reset();
      p->store.reset();
    }
    peers_.clear();
    std::filesystem::remove_all(root_);
  }

  // Fast timeouts and no rate limit: every node shares 127.0.0.1.
  static DhtService::Options FastOptions() {
    DhtService::Options o;
    o.tick_interval = 50ms;
    o.dht.query_timeout_ms = 300;
    o.dht.query_retries = 1;
    o.dht.queries_per_second_per_source = 1e6;
    o.dht.query_burst_per_source = 1e6;
    return o;
  }

  static HostPort Loopback(uint16_t port) { return {"127.0.0.1", port}; }

  // A peer with its own store and UDP socket on 127.0.0.1:0, not started.
  Peer& AddPeer(DhtService::Options options) {
    auto p = std::make_unique<Peer>();
    p->dir = root_ / std::to_string(peers_.size());
    OpenStore(*p);
    p->socket = std::make_unique<udp::socket>(io_);
    p->socket->open(udp::v4());
    p->socket->bind(udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    p->port = p->socket->local_endpoint().port();
    p->options = std::move(options);
    p->service =
        std::make_unique<DhtService>(io_, *p->socket, *p->store, p->options);
    peers_.push_back(std::move(p));
    return *peers_.back();
  }

  void OpenStore(Peer& p) {
    store::StoreOptions o;
    o.dir = p.dir;
    auto s = store::ChunkStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    p.store = *std::move(s);
  }

  // Peer 0 is the seed; the others bootstrap both networks from it.
  void StartSwarm(int n) {
    Peer& seed = AddPeer(FastOptions());
    ASSERT_TRUE(seed->Start().ok());
    for (int i = 1; i < n; ++i) {
      DhtService::Options o = FastOptions();
      o.public_routers = {Loopback(seed.port)};
      o.cluster_bootstrap = {Loopback(seed.port)};
      Peer& p = AddPeer(o);
      ASSERT_TRUE(p->Start().ok());
    }
    const size_t want = std::min<size_t>(3, n - 1);
    ASSERT_TRUE(RunUntil([&] {
      for (auto& p : peers_) {
        if ((*p)->NumNodes(Network::kCluster) < want ||
            (*p)->NumNodes(Network::kPublic) < want) {
          return false;
        }
      }
      return true;
    })) << "the swarm did not bootstrap";
  }

  // Runs the io_context until `pred` holds; false after `timeout`.
  bool RunUntil(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(20ms);
    }
    return true;
  }

  void RunFor(std::chrono::milliseconds d) {
    RunUntil([] { return false; }, d);
  }

  std::vector<tcp::endpoint> GetPeersBlocking(Peer& from, Network net,
                                              const DhtService::Key& key) {
    std::optional<std::vector<tcp::endpoint>> result;
    from->GetPeers(net, key, [&](std::vector<tcp::endpoint> peers) {
      result = std::move(peers);
    });
    EXPECT_TRUE(RunUntil([&] { return result.has_value(); }));
    return result.value_or(std::vector<tcp::endpoint>{});
  }

  tcp::endpoint TcpLoopback(uint16_t port) {
    return {asio::ip::make_address("127.0.0.1"), port};
  }

  asio::io_context io_;
  std::filesystem::path root_ =
      std::filesystem::temp_directory_path() /
      ("shoal_dht_service_test_" + std::to_string(::getpid()) + "_" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::vector<std::unique_ptr<Peer>> peers_;
};

TEST(DhtEndpointTest, ConvertsBothWaysAndUnmapsV4) {
  const auto v4 = asio::ip::make_address("10.1.2.3");
  dht::Endpoint e = ToDhtEndpoint(v4, 6881);
  EXPECT_EQ(e, dht::Endpoint::V4(0x0a010203, 6881));
  EXPECT_EQ(ToAsioAddress(e), v4);

  const auto v6 = asio::ip::make_address("2001:db8::1");
  dht::Endpoint e6 = ToDhtEndpoint(v6, 1);
  EXPECT_TRUE(e6.is_v6());
  EXPECT_EQ(ToAsioAddress(e6), v6);

  EXPECT_EQ(ToDhtEndpoint(asio::ip::make_address("::ffff:10.1.2.3"), 6881), e);
  EXPECT_TRUE(ToAsioAddress(dht::Endpoint{}).is_unspecified());
}

// A key provided in the cluster network is found from another node there, and
// never reaches the public network.
TEST_F(DhtServiceTest, ProvidedKeyIsFoundInClusterOnly) {
  StartSwarm(8);
  Peer& provider = *peers_[3];
  const DhtService::Key key = KeyOf(0xab);
  provider->Provide(Network::kCluster, key, provider.port);
  EXPECT_EQ(provider->NumProviding(), 1u);
  ASSERT_TRUE(RunUntil([&] {
    for (auto& p : peers_) {
      if ((*p)->Instance(Network::kCluster)->stored_peer_count() > 0) {
        return true;
      }
    }
    return false;
  }));

  // implied_port: the provider's UDP port, which is its listen port.
  EXPECT_THAT(GetPeersBlocking(*peers_[6], Network::kCluster, key),
              Contains(TcpLoopback(provider.port)));
  EXPECT_THAT(GetPeersBlocking(*peers_[0], Network::kCluster, key),
              Contains(TcpLoopback(provider.port)));
  EXPECT_TRUE(GetPeersBlocking(*peers_[6], Network::kPublic, key).empty());
  for (auto& p : peers_) {
    EXPECT_EQ((*p)->Instance(Network::kPublic)->stored_peer_count(), 0u);
  }
}

// A key announced in the public network is found there and not in the
// cluster; Announce reports the acknowledgements.
TEST_F(DhtServiceTest, AnnounceInPublicIsFoundInPublicOnly) {
  StartSwarm(6);
  const DhtService::Key key = KeyOf(0x11);
  std::optional<int> acked;
  (*peers_[2])->Announce(Network::kPublic, key, 1234, [&](int n) {
    acked = n;
  });
  ASSERT_TRUE(RunUntil([&] { return acked.has_value(); }));
  EXPECT_GT(*acked, 0);
  EXPECT_THAT(GetPeersBlocking(*peers_[5], Network::kPublic, key),
              Contains(TcpLoopback(peers_[2]->port)));
  EXPECT_TRUE(GetPeersBlocking(*peers_[5], Network::kCluster, key).empty());
}

// Each routing table holds only nodes of its own network.
TEST_F(DhtServiceTest, RoutingTablesDoNotMix) {
  StartSwarm(8);
  std::set<dht::NodeId> public_ids, cluster_ids;
  for (auto& p : peers_) {
    public_ids.insert((*p)->Instance(Network::kPublic)->id());
    cluster_ids.insert((*p)->Instance(Network::kCluster)->id());
  }
  for (auto& p : peers_) {
    for (const dht::NodeId& id : TableIds(*(*p)->Instance(Network::kPublic))) {
      EXPECT_TRUE(public_ids.contains(id));
      EXPECT_FALSE(cluster_ids.contains(id));
    }
    for (const dht::NodeId& id : TableIds(*(*p)->Instance(Network::kCluster))) {
      EXPECT_TRUE(cluster_ids.contains(id));
      EXPECT_FALSE(public_ids.contains(id));
    }
  }
}

// A node of another cluster (other "cn") never joins this cluster, but still
// joins the public network.
TEST_F(DhtServiceTest, OtherClusterNameStaysOut) {
  StartSwarm(4);
  DhtService::Options o = FastOptions();
  o.cluster_name = "other";
  o.public_routers = {Loopback(peers_[0]->port)};
  o.cluster_bootstrap = {Loopback(peers_[0]->port)};
  Peer& stranger = AddPeer(o);
  ASSERT_TRUE(stranger->Start().ok());
  ASSERT_TRUE(
      RunUntil([&] { return stranger->NumNodes(Network::kPublic) >= 3; }));
  RunFor(300ms);
  EXPECT_EQ(stranger->NumNodes(Network::kCluster), 0u);
  const dht::NodeId stranger_id = stranger->Instance(Network::kCluster)->id();
  for (size_t i = 0; i + 1 < peers_.size(); ++i) {
    EXPECT_FALSE(TableIds(*(*peers_[i])->Instance(Network::kCluster))
                     .contains(stranger_id));
  }
}

// With the public DHT off, public queries are dropped and public lookups
// end at once, empty; the cluster works as before.
TEST_F(DhtServiceTest, PublicDisabled) {
  DhtService::Options o = FastOptions();
  o.public_enabled = false;
  Peer& seed = AddPeer(o);
  ASSERT_TRUE(seed->Start().ok());
  EXPECT_EQ(seed->Instance(Network::kPublic), nullptr);
  DhtService::Options o2 = FastOptions();
  o2.public_routers = {Loopback(seed.port)};
  o2.cluster_bootstrap = {Loopback(seed.port)};
  Peer& other = AddPeer(o2);
  ASSERT_TRUE(other->Start().ok());
  ASSERT_TRUE(RunUntil([&] {
    return other->NumNodes(Network::kCluster) == 1 &&
           seed->NumNodes(Network::kCluster) == 1;
  }));
  RunFor(300ms);
  EXPECT_EQ(other->NumNodes(Network::kPublic), 0u);
  EXPECT_GT(seed->stats().unrouted, 0u);

  bool called = false;
  seed->GetPeers(Network::kPublic, KeyOf(1),
                 [&](std::vector<tcp::endpoint> peers) {
                   called = true;
                   EXPECT_TRUE(peers.empty());
                 });
  EXPECT_TRUE(called);  // at once
  seed->Provide(Network::kPublic, KeyOf(1), 1);
  EXPECT_EQ(seed->NumProviding(), 0u);
}

// Node IDs and routing tables survive Stop/Start and a reopened store.
TEST_F(DhtServiceTest, StatePersistsAcrossRestart) {
  StartSwarm(5);
  Peer& p = *peers_[4];
  const dht::NodeId public_id = p->Instance(Network::kPublic)->id();
  const dht::NodeId cluster_id = p->Instance(Network::kCluster)->id();
  const size_t cluster_nodes = p->NumNodes(Network::kCluster);
  ASSERT_GE(cluster_nodes, 3u);

  // Same service and store.
  p->Stop();
  p->Stop();  // idempotent
  EXPECT_FALSE(p->running());
  ASSERT_TRUE(p->Start().ok());
  EXPECT_EQ(p->Instance(Network::kPublic)->id(), public_id);
  EXPECT_EQ(p->Instance(Network::kCluster)->id(), cluster_id);
  EXPECT_EQ(p->NumNodes(Network::kCluster), cluster_nodes);

  // A new service on a reopened store, with no bootstrap nodes: the saved
  // table alone brings it back into the network.
  p.service.reset();  // saves
  p.store.reset();
  OpenStore(p);
  ASSERT_TRUE(p.store->GetState("dht/cluster").ok());
  ASSERT_TRUE(p.store->GetState("dht/public").ok());
  DhtService::Options o = FastOptions();
  p.service = std::make_unique<DhtService>(io_, *p.socket, *p.store, o);
  ASSERT_TRUE(p->Start().ok());
  EXPECT_EQ(p->Instance(Network::kPublic)->id(), public_id);
  EXPECT_EQ(p->Instance(Network::kCluster)->id(), cluster_id);
  EXPECT_EQ(p->NumNodes(Network::kCluster), cluster_nodes);
  const DhtService::Key key = KeyOf(0x42);
  p->Provide(Network::kCluster, key, p.port);
  RunFor(200ms);
  EXPECT_THAT(GetPeersBlocking(*peers_[1], Network::kCluster, key),
              Contains(TcpLoopback(p.port)));
}

// A routing table saved under another cluster name is not loaded, but the
// node keeps its ID.
TEST_F(DhtServiceTest, TableOfAnotherClusterIsNotLoaded) {
  StartSwarm(4);
  Peer& p = *peers_[3];
  const dht::NodeId cluster_id = p->Instance(Network::kCluster)->id();
  p.service.reset();
  DhtService::Options o = FastOptions();
  o.cluster_name = "renamed";
  p.service = std::make_unique<DhtService>(io_, *p.socket, *p.store, o);
  ASSERT_TRUE(p->Start().ok());
  EXPECT_EQ(p->Instance(Network::kCluster)->id(), cluster_id);
  EXPECT_EQ(p->NumNodes(Network::kCluster), 0u);
  EXPECT_GE(p->NumNodes(Network::kPublic), 3u);
}

// Unreadable saved state gives fresh IDs instead of an error.
TEST_F(DhtServiceTest, CorruptStateIsIgnored) {
  Peer& p = AddPeer(FastOptions());
  ASSERT_TRUE(p.store->PutState("dht/public", "garbage").ok());
  ASSERT_TRUE(p.store->PutState("dht/cluster", "d1:vi1e2:id3:abce").ok());
  ASSERT_TRUE(p->Start().ok());
  EXPECT_EQ(p->NumNodes(Network::kCluster), 0u);
}

// Garbage, oversized and unexpected datagrams are dropped; the node still
// answers a well-formed query afterwards.
TEST_F(DhtServiceTest, MalformedDatagramsAreIgnored) {
  Peer& p = AddPeer(FastOptions());
  ASSERT_TRUE(p->Start().ok());
  udp::socket client(io_,
                     udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), p.port);
  std::vector<std::string> junk = {
      "",
      "garbage",
      "de",
      "i42e",
      "d1:ti1e1:y1:qe",                          // t not a string
      "d1:t2:aa1:y1:re",                         // a reply nobody waits for
      "d1:t2:aa1:y1:ee",                         // an error nobody waits for
      "d1:t2:aa1:y1:q1:q4:pinge",                // no arguments
      "d2:cn5:shoal1:t2:aa1:y1:q1:q4:pinge",     // the same, for the cluster
      "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",  // short id
      "d1:t2:aa1:y1:x1:q4:pinge",                // unknown y
      std::string(200, 'l') + std::string(200, 'e'),  // deep nesting
      std::string(2000, 'x'),                         // oversized
      "d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:" + std::string(20, 'z') + "e" +
          std::string(1500, ' ') + "e",  // valid prefix, oversized
  };
  std::string random(700, '\0');
  for (size_t i = 0; i < random.size(); ++i) {
    random[i] = static_cast<char>(i * 131 + 7);
  }
  junk.push_back(random);
  for (const std::string& d : junk) client.send_to(asio::buffer(d), to);
  ASSERT_TRUE(RunUntil([&] { return p->stats().datagrams_in >= junk.size(); }));
  EXPECT_EQ(p->stats().oversized, 2u);
  EXPECT_GE(p->stats().undecodable, 6u);
  EXPECT_GE(p->stats().unrouted, 3u);
  EXPECT_TRUE(p->running());

  // A cluster ping gets a cluster answer.
  dht::KrpcMessage ping =
      dht::KrpcMessage::Query(dht::KrpcMethod::kPing, "pp", dht::NodeId());
  ping.cluster = "shoal";
  client.send_to(asio::buffer(dht::EncodeKrpc(ping)), to);
  std::array<char, 1500> buf;
  udp::endpoint from;
  std::optional<absl::StatusOr<dht::KrpcMessage>> reply;
  client.async_receive_from(asio::buffer(buf), from,
                            [&](boost::system::error_code ec, size_t n) {
                              ASSERT_FALSE(ec);
                              reply = dht::DecodeKrpc({buf.data(), n});
                            });
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  ASSERT_TRUE(reply->ok()) << reply->status();
  EXPECT_EQ((*reply)->type, dht::KrpcType::kResponse);
  EXPECT_EQ((*reply)->transaction_id, "pp");
  EXPECT_EQ((*reply)->cluster, "shoal");
  EXPECT_EQ((*reply)->id, p->Instance(Network::kCluster)->id());
}

// Stop completes lookups in flight with empty results before it returns, and
// nothing runs after it; calls on a stopped service complete at once.
TEST_F(DhtServiceTest, StopCompletesLookupsAndSilencesCallbacks) {
  // Bootstrap from a port where nothing answers, so lookups stay in flight.
  udp::socket silent(io_,
                     udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  DhtService::Options o = FastOptions();
  o.dht.query_timeout_ms = 10'000;
  o.cluster_bootstrap = {Loopback(silent.local_endpoint().port())};
  o.public_routers = o.cluster_bootstrap;
  Peer& p = AddPeer(o);
  ASSERT_TRUE(p->Start().ok());
  // The silent node queries both instances once, so both tables hold it and
  // lookups have a candidate that never answers.
  dht::NodeId silent_id;
  silent_id.mutable_array().fill(0x5a);
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), p.port);
  dht::KrpcMessage ping =
      dht::KrpcMessage::Query(dht::KrpcMethod::kPing, "p1", silent_id);
  silent.send_to(asio::buffer(dht::EncodeKrpc(ping)), to);
  ping.cluster = "shoal";
  silent.send_to(asio::buffer(dht::EncodeKrpc(ping)), to);
  ASSERT_TRUE(RunUntil([&] {
    return p->NumNodes(Network::kPublic) == 1 &&
           p->NumNodes(Network::kCluster) == 1;
  }));

  int peers_calls = 0, announce_calls = 0;
  p->GetPeers(Network::kCluster, KeyOf(7),
              [&](std::vector<tcp::endpoint> peers) {
                ++peers_calls;
                EXPECT_TRUE(peers.empty());
              });
  p->Announce(Network::kPublic, KeyOf(7), 1, [&](int acked) {
    ++announce_calls;
    EXPECT_EQ(acked, 0);
  });
  p->Provide(Network::kCluster, KeyOf(8), 1);
  RunFor(100ms);
  EXPECT_EQ(peers_calls + announce_calls, 0);  // still in flight

  p->Stop();
  EXPECT_EQ(peers_calls, 1);
  EXPECT_EQ(announce_calls, 1);
  EXPECT_EQ(p->NumProviding(), 0u);
  p->GetPeers(Network::kCluster, KeyOf(7),
              [&](std::vector<tcp::endpoint>) { ++peers_calls; });
  EXPECT_EQ(peers_calls, 2);

  // Datagrams and timers after Stop reach nobody; the socket is left open
  // for its owner.
  udp::socket client(io_,
                     udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  client.send_to(asio::buffer(std::string("garbage")),
                 udp::endpoint(asio::ip::make_address("127.0.0.1"), p.port));
  const uint64_t in = p->stats().datagrams_in;
  RunFor(200ms);
  EXPECT_EQ(p->stats().datagrams_in, in);
  EXPECT_EQ(peers_calls, 2);
  EXPECT_EQ(announce_calls, 1);
  EXPECT_TRUE(p.socket->is_open());

  // Destroying a running service leaves no handler behind that touches it.
  ASSERT_TRUE(p->Start().ok());
  p->GetPeers(Network::kCluster, KeyOf(9),
              [&](std::vector<tcp::endpoint>) { ++peers_calls; });
  p.service.reset();
  EXPECT_EQ(peers_calls, 3);
  RunFor(100ms);
}

// Stop may be called from a lookup's callback.
TEST_F(DhtServiceTest, StopFromCallback) {
  StartSwarm(3);
  Peer& p = *peers_[1];
  bool done = false;
  p->GetPeers(Network::kCluster, KeyOf(3), [&](std::vector<tcp::endpoint>) {
    p->Stop();
    done = true;
  });
  ASSERT_TRUE(RunUntil([&] { return done; }));
  EXPECT_FALSE(p->running());
  RunFor(100ms);
}

// Start refuses bad options and a socket that is not bound.
TEST_F(DhtServiceTest, StartChecksOptionsAndSocket) {
  DhtService::Options o = FastOptions();
  o.cluster_name = "";
  Peer& p = AddPeer(o);
  EXPECT_EQ(p->Start().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(p->running());

  udp::socket unopened(io_);
  DhtService s(io_, unopened, *p.store, FastOptions());
  EXPECT_EQ(s.Start().code(), absl::StatusCode::kFailedPrecondition);

  Peer& q = AddPeer(FastOptions());
  ASSERT_TRUE(q->Start().ok());
  EXPECT_EQ(q->Start().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace shoal::node
