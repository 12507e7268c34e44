#include "node/session.h"

#include <malloc.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "chunk/magnet.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"
#include "node/listen.h"
#include "node/peer_connection.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"

namespace shoal::node {
namespace {

// A fetch looks for more providers while it has fewer peers than this: each
// one is another fetcher to trade with (tests/sim/swarm_sim_test.cc: 100
// nodes complete a release 16% sooner than with 8).
constexpr size_t kLookupPeers = 30;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

// Runs `fn` on the io_context's thread and returns its result.
template <typename Fn>
auto RunOn(asio::io_context& io, Fn fn) -> decltype(fn()) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  asio::post(io, [&task] { task(); });
  return result.get();
}

// Closes `socket` if `timer` expires before it is cancelled or destroyed; the
// handler touches the socket only on expiry, while the coroutine that owns both
// is still waiting.
void CloseOnTimeout(asio::steady_timer& timer, tcp::socket& socket) {
  timer.expires_after(kHandshakeTimeout);
  timer.async_wait([&socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
}

}  // namespace

Session::Session(store::ChunkStore& store, ThreadPool& pool,
                 SessionOptions options)
    : store_(store),
      pool_(pool),
      options_(std::move(options)),
      acceptor_(io_),
      udp_(io_),
      work_(asio::make_work_guard(io_)) {
  // Azureus-style peer ID: -SH0100- and 12 random bytes.
  std::memcpy(peer_id_.data(), "-SH0100-", 8);
  randombytes_buf(peer_id_.data() + 8, 12);
}

Session::~Session() { Stop(); }

void Session::Stop() {
  if (thread_.joinable()) {
    RunOn(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      udp_.close(ec);
      for (auto& [id, t] : torrents_) t->SaveResume();
      if (dht_) dht_->Stop();
      by_key_.clear();
      torrents_.clear();
      contents_.clear();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
    network_thread_ = std::thread::id();
  }
}

absl::StatusOr<HostPort> Session::Start(const HostPort& listen) {
  auto port = BindAndListen(acceptor_, listen, "listen address");
  if (!port.ok()) return port.status();
  port_ = *port;
  boost::system::error_code ec;
  const asio::ip::address addr = acceptor_.local_endpoint().address();
  asio::ip::udp::endpoint uep(addr, port_);
  udp_.open(uep.protocol(), ec);
  if (!ec) udp_.bind(uep, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on listen address ", listen.ToString(),
                     " (udp): ", ec.message()));
  }
  Accept();
  DhtService::Options dho;
  dho.public_routers = options_.dht_routers;
  dho.cluster_bootstrap = options_.bootstrap;
  dho.public_enabled = options_.public_dht;
  dho.cluster_key = options_.cluster_key;
  dht_ = std::make_unique<DhtService>(io_, udp_, store_, dho);
  dht_->SetPreheatHandler([this](std::string_view content) {
    return OnPreheat(chunk::ContentId::FromBytes(content));
  });
  if (absl::Status s = dht_->Start(); !s.ok()) return s;
  thread_ = std::thread([this] {
    network_thread_ = std::this_thread::get_id();
    io_.run();
  });
  RunOn(io_, [this] {
    LoadTorrents();
    DhtTick();
    // Provide what the store holds, a few per second (each is a lookup).
    auto ids = std::make_shared<std::vector<chunk::ContentId>>();
    for (const store::ContentState& c : store_.List())
      // A directory's files are asked of the directory's providers.
      if (c.complete() && c.record.length > 0 && !c.record.in_directory_only)
        ids->push_back(c.record.id);
    for (size_t i = 0; i < ids->size(); ++i) {
      auto timer = std::make_shared<asio::steady_timer>(
          io_, std::chrono::milliseconds(200 * i));
      timer->async_wait(
          [this, timer, id = (*ids)[i]](boost::system::error_code ec) {
            if (!ec && dht_) Provide(id);
          });
    }
    return 0;
  });
  HostPort bound = listen;
  bound.port = port_;
  return bound;
}

void Session::AssertNetworkThread() const {
  // Before the thread starts (Start() sets up on the caller's thread), and
  // after it is joined, there is nobody to race with.
  const std::thread::id network = network_thread_.load();
  if (network == std::thread::id() || network == std::this_thread::get_id())
    return;
  spdlog::critical("network-thread-only code called from another thread");
  std::abort();
}

wire::Handshake Session::OurHandshake(const std::array<uint8_t, 20>& info_hash,
                                      bool v2) const {
  wire::Handshake h;
  h.set_extensions(true);
  h.set_fast(true);
  // Only for a torrent with a v2 info-hash: libtorrent refuses a v1 torrent's
  // connection that claims v2 ("invalid info-hash").
  h.set_v2(v2);
  h.info_hash = info_hash;
  h.peer_id = peer_id_;
  return h;
}

void Session::Accept() {
  acceptor_.async_accept(
      [this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          if (static_cast<int>(TotalPeers()) + connecting_ >=
              options_.max_connections) {
            socket.close(ec);  // the global connection limit
          } else {
            asio::co_spawn(io_, Incoming(std::move(socket)), asio::detached);
          }
        }
        Accept();
      });
}

size_t Session::TotalPeers() const {
  size_t n = 0;
  for (const auto& [k, s] : contents_) n += s->num_peers();
  for (const auto& [k, t] : torrents_) n += t->num_peers();
  return n;
}

void Session::Register(Swarm* swarm) {
  AssertNetworkThread();
  for (const std::string& key : swarm->HandshakeKeys()) by_key_[key] = swarm;
  swarm->set_global_limits(global_down_, global_up_);
  swarm->set_connector(
      [this, key = swarm->HandshakeKeys().front()](const PeerEndpoint& ep) {
        if (static_cast<int>(TotalPeers()) + connecting_ >=
            options_.max_connections) {
          auto it = by_key_.find(key);
          if (it != by_key_.end()) it->second->OnConnectFailed(ep);
          return;
        }
        asio::co_spawn(io_, Outgoing(key, ToTcpEndpoint(ep)), asio::detached);
      });
}

void Session::Unregister(Swarm* swarm) {
  AssertNetworkThread();
  for (const std::string& key : swarm->HandshakeKeys()) {
    auto it = by_key_.find(key);
    if (it != by_key_.end() && it->second == swarm) by_key_.erase(it);
  }
}

Swarm* Session::SwarmForInfoHash(std::string_view info_hash) {
  AssertNetworkThread();
  auto it = by_key_.find(Key(info_hash));
  if (it != by_key_.end()) return it->second;
  auto id = store_.FindByTruncatedId(info_hash);
  if (!id.ok()) return nullptr;
  return SwarmFor(*id);
}

ContentSwarm* Session::SwarmFor(const chunk::ContentId& id) {
  AssertNetworkThread();
  Key key(id.AsStringView().substr(0, 20));
  auto it = contents_.find(key);
  if (it != contents_.end()) {
    if (!it->second->events()->failed()) return it->second.get();
    Unregister(it->second.get());
    contents_.erase(it);  // a failed fetch: start afresh
  }
  SwarmOptions so;
  so.trusted_peers = true;
  // An origin (the content held when its swarm starts) reveals pieces a few
  // at a time, so that fetchers trade instead of all pulling from it.
  so.super_seed = true;
  so.kind = TrafficKind::kCdn;
  so.max_peers = options_.max_peers_per_torrent;
  // A directory's dict is the largest metadata content has.
  so.max_metadata_size = chunk::kMaxDirectoryDictBytes;
  // The chunk store takes pieces into memtables (no disk wait per piece), and
  // its memtables are memory too: a smaller write-back bound keeps the
  // fetching node's peak memory down.
  so.max_write_back_bytes = 8 << 20;
  auto swarm = std::make_unique<ContentSwarm>(swarm_env_, store_, id, so,
                                              options_.client_name, port_);
  ContentSwarm* raw = swarm.get();
  contents_[key] = std::move(swarm);
  Register(raw);
  // A fetcher provides as soon as it knows the content is real (its metadata
  // verified against the ID), not only once complete: nodes fetching the same
  // content at once find each other and trade the pieces each got from the
  // seed.
  raw->set_on_started([this, id] { Provide(id); });
  raw->set_on_complete([this, id] {
    Provide(id);
    auto dir = directory_of_.find(id);
    if (dir == directory_of_.end()) return;
    const chunk::ContentId d = dir->second;
    directory_of_.erase(dir);
    CheckDirectorySoon(d);
    FileDone(d);
  });
  raw->set_on_directory([this, key] {
    // Its files are fetched as contents of their own; drop the swarm once
    // its callers have returned.
    asio::post(io_, [this, key] {
      auto it = contents_.find(key);
      if (it == contents_.end()) return;
      // The nodes that served the dict hold the directory: its files are
      // asked of them first, without waiting for a DHT lookup.
      std::vector<PeerEndpoint>& known = directory_peers_[it->second->id()];
      for (const PeerInfo& p : it->second->directory_peers()) {
        if (p.incoming) continue;  // only dialled peers give a listen port
        auto hp = HostPort::Parse(p.address);
        if (!hp.ok()) continue;
        auto e = PeerEndpoint::FromIpString(hp->host, hp->port);
        if (!e) continue;
        if (std::find(known.begin(), known.end(), *e) == known.end())
          known.push_back(*e);
      }
      if (known.size() > 16) known.erase(known.begin(), known.end() - 16);
      Unregister(it->second.get());
      contents_.erase(it);
      // A large directory's metadata (a parsed torrent of every file) is
      // gone: give the memory back rather than keep it in malloc's arenas.
      ::malloc_trim(0);
    });
  });
  raw->set_on_failed([this, id] {
    if (auto dir = directory_of_.find(id); dir != directory_of_.end()) {
      const chunk::ContentId d = dir->second;
      directory_of_.erase(dir);
      FileDone(d);
    }
    if (!dht_) return;
    DhtService::Key k;
    std::memcpy(k.data(), id.bytes.data(), 20);
    dht_->StopProviding(DhtService::Network::kCluster, k);
  });
  raw->Init();
  return raw;
}

asio::awaitable<void> Session::Incoming(tcp::socket socket) {
  ++connecting_;
  struct Done {
    int& n;
    ~Done() { --n; }
  } done{connecting_};
  asio::steady_timer timer(io_);
  CloseOnTimeout(timer, socket);
  std::string buf(wire::kHandshakeLength, '\0');
  boost::system::error_code ec;
  co_await asio::async_read(socket, asio::buffer(buf),
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  auto theirs = wire::ParseHandshake(buf);
  if (!theirs.ok()) co_return;
  const Key key(reinterpret_cast<const char*>(theirs->info_hash.data()), 20);
  Swarm* swarm = SwarmForInfoHash(key);
  if (swarm == nullptr || swarm->shut()) co_return;  // not ours: close
  if (swarm->IsBanned(ToPeerEndpoint(socket.remote_endpoint(ec)))) co_return;
  // Answer with the hash they used (a hybrid has two).
  std::string ours = wire::EncodeHandshake(
      OurHandshake(theirs->info_hash, swarm->hashes().v2.has_value()));
  co_await asio::async_write(socket, asio::buffer(ours),
                             asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec || !socket.is_open()) co_return;
  // The swarm may have gone while we wrote.
  swarm = SwarmForInfoHash(key);
  if (swarm == nullptr) co_return;
  auto conn = std::make_shared<PeerConnection>(std::move(socket), next_key_++,
                                               std::string());
  swarm->AddPeer(conn, *theirs, /*incoming=*/true);
}

asio::awaitable<void> Session::Outgoing(Key key, tcp::endpoint to) {
  ++connecting_;
  struct Done {
    int& n;
    ~Done() { --n; }
  } done{connecting_};
  tcp::socket socket(io_);
  asio::steady_timer timer(io_);
  CloseOnTimeout(timer, socket);
  boost::system::error_code ec;
  auto fail = [&] {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) it->second->OnConnectFailed(ToPeerEndpoint(to));
  };
  co_await socket.async_connect(to,
                                asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::info("cannot connect to {}:{}: {}", to.address().to_string(),
                 to.port(), ec.message());
    fail();
    co_return;
  }
  std::array<uint8_t, 20> info_hash;
  std::memcpy(info_hash.data(), key.data(), 20);
  bool v2 = false;
  if (auto it = by_key_.find(key); it != by_key_.end())
    v2 = it->second->hashes().v2.has_value();
  std::string ours = wire::EncodeHandshake(OurHandshake(info_hash, v2));
  co_await asio::async_write(socket, asio::buffer(ours),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    fail();
    co_return;
  }
  std::string buf(wire::kHandshakeLength, '\0');
  co_await asio::async_read(socket, asio::buffer(buf),
                            asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  auto theirs = wire::ParseHandshake(buf);
  if (ec || !socket.is_open() || !theirs.ok() || theirs->peer_id == peer_id_) {
    fail();  // our own address (a tracker told us of ourselves) ends here too
    co_return;
  }
  auto it = by_key_.find(key);
  if (it == by_key_.end()) co_return;
  // A hybrid's peer may answer with the other hash (libtorrent upgrades to the
  // v2 one when we set the v2 bit).
  const Key answered(reinterpret_cast<const char*>(theirs->info_hash.data()),
                     20);
  auto other = by_key_.find(answered);
  if (other == by_key_.end() || other->second != it->second) {
    fail();
    co_return;
  }
  auto conn = std::make_shared<PeerConnection>(std::move(socket), next_key_++,
                                               std::string());
  it->second->AddPeer(conn, *theirs, /*incoming=*/false);
}

absl::StatusOr<std::shared_ptr<PieceEvents>> Session::Fetch(
    const chunk::ContentId& id, const std::vector<HostPort>& peers,
    uint64_t offset, uint64_t length,
    std::optional<chunk::ContentId> directory) {
  std::vector<PeerEndpoint> endpoints;
  for (const HostPort& hp : peers) {
    boost::system::error_code ec;
    asio::ip::address addr = asio::ip::make_address(hp.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peer address must be an IP address, got '", hp.host, "'"));
    }
    endpoints.push_back(ToPeerEndpoint(tcp::endpoint(addr, hp.port)));
  }
  return RunOn(io_, [&]() -> std::shared_ptr<PieceEvents> {
    ContentSwarm* swarm = SwarmFor(id);
    if (!swarm->complete()) {
      swarm->WantRange(offset, length);
      swarm->ConnectTo(endpoints);
      if (directory) {
        directory_of_[id] = *directory;
        if (auto known = directory_peers_.find(*directory);
            known != directory_peers_.end())
          swarm->ConnectTo(known->second);
      }
      if (endpoints.empty())
        LookupProviders(id, SteadyClock::now() + std::chrono::minutes(5));
    }
    return swarm->events();
  });
}

void Session::LookupProviders(const chunk::ContentId& id,
                              SteadyClock::time_point until, int round) {
  Key key(id.AsStringView().substr(0, 20));
  auto it = contents_.find(key);
  if (it == contents_.end() || it->second->complete() || !dht_ ||
      it->second->events()->failed() || SteadyClock::now() > until)
    return;
  // Look again while peers are few: other fetchers announce themselves.
  if (it->second->num_peers() < kLookupPeers) {
    DhtService::Key k;
    // A directory's files are asked of the directory's providers.
    auto dir = directory_of_.find(id);
    std::memcpy(k.data(),
                dir != directory_of_.end()
                    ? dir->second.bytes.data()
                    : reinterpret_cast<const uint8_t*>(key.data()),
                20);
    // A lookup from an empty table (bootstrap still under way) asked nobody:
    // it says nothing about whether anyone provides the content.
    const bool asked = dht_->NumNodes(DhtService::Network::kCluster) > 0;
    dht_->GetPeers(DhtService::Network::kCluster, k,
                   [this, key, asked](std::vector<tcp::endpoint> peers) {
                     auto it = contents_.find(key);
                     if (it == contents_.end()) return;
                     std::erase_if(peers, [this](const tcp::endpoint& e) {
                       return e.port() == port_ &&
                              e.address() ==
                                  acceptor_.local_endpoint().address();
                     });
                     if (asked || !peers.empty())
                       it->second->events()->NoteLookup(!peers.empty());
                     it->second->ConnectTo(ToPeerEndpoints(peers));
                   });
  }
  // The first few lookups come faster: nodes that start fetching at the same
  // moment announce themselves within a second or two, and each second they
  // don't trade is a second the seed serves them all.
  const absl::Duration interval =
      round < 5 ? std::min(absl::Seconds(1), options_.provider_lookup_interval)
                : options_.provider_lookup_interval;
  auto timer = std::make_shared<asio::steady_timer>(
      io_, absl::ToChronoMilliseconds(interval));
  timer->async_wait(
      [this, timer, id, until, round](boost::system::error_code ec) {
        if (!ec) LookupProviders(id, until, round + 1);
      });
}

void Session::DhtLookups(TorrentSwarm& t) {
  AssertNetworkThread();
  if (!dht_) return;
  const TorrentState state = t.Status().state;
  const bool running = state != TorrentState::kPaused &&
                       state != TorrentState::kError && !t.shut();
  const bool is_private = t.metainfo() && t.metainfo()->is_private;
  for (const std::string& key : t.HandshakeKeys()) {
    DhtService::Key k;
    std::memcpy(k.data(), key.data(), 20);
    if (!running || is_private) {
      dht_->StopProviding(DhtService::Network::kPublic, k);
      continue;
    }
    dht_->Provide(DhtService::Network::kPublic, k, port_);
    if (state == TorrentState::kSeeding || t.num_peers() >= 20) continue;
    dht_->GetPeers(DhtService::Network::kPublic, k,
                   [this, id = t.id()](std::vector<tcp::endpoint> peers) {
                     TorrentSwarm* t = FindTorrent(id);
                     if (t != nullptr) t->ConnectTo(ToPeerEndpoints(peers));
                   });
  }
}

void Session::DhtTick() {
  for (auto& [id, t] : torrents_) DhtLookups(*t);
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(15));
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (!ec && dht_ && dht_->running()) DhtTick();
  });
}

namespace {

constexpr int kPreloadFilesInFlight = 8;
constexpr size_t kMaxPreheating = 32;

std::string EndpointText(const asio::ip::address& a, uint16_t port) {
  return a.is_v6() ? absl::StrCat("[", a.to_string(), "]:", port)
                   : absl::StrCat(a.to_string(), ":", port);
}

}  // namespace

dht::PreheatAnswer Session::OnPreheat(const chunk::ContentId& id) {
  AssertNetworkThread();
  auto st = store_.Stat(id);
  if (st.ok() && st->record.is_directory()) {
    const int64_t total =
        static_cast<int64_t>(st->record.directory->files().size());
    if (st->complete()) {
      preloads_.erase(id);
      return {"complete", total, total};
    }
    Preload& p = preloads_[id];
    if (!p.dir) p.dir = st->record.directory;
    if (p.next >= p.dir->files().size() && p.in_flight == 0)
      p.next = 0;  // retry
    PumpPreload(id);
    return {"fetching", st->files_local, total};
  }
  if (st.ok() && st->complete()) {
    preheating_.erase(id);
    const int64_t n = st->record.layout().num_pieces();
    return {"complete", n, n};
  }
  Key key(id.AsStringView().substr(0, 20));
  auto it = contents_.find(key);
  const bool running = it != contents_.end() && !it->second->events()->failed();
  if (!running) {
    absl::erase_if(preheating_, [this](const chunk::ContentId& c) {
      auto s = store_.Stat(c);
      return s.ok() && s->complete();
    });
    if (preheating_.size() >= kMaxPreheating && !preheating_.contains(id))
      return {"busy", 0, 0};
    preheating_.insert(id);
    ContentSwarm* swarm = SwarmFor(id);
    if (!swarm->complete()) {
      swarm->WantRange(0, UINT64_MAX);
      LookupProviders(id, SteadyClock::now() + std::chrono::minutes(5));
    }
    it = contents_.find(key);
  }
  if (it == contents_.end()) return {"fetching", 0, 0};
  const ContentSwarm& swarm = *it->second;
  return {"fetching", swarm.pieces_have(),
          swarm.metainfo() ? swarm.metainfo()->num_pieces : 0};
}

void Session::PumpPreload(const chunk::ContentId& dir_id) {
  AssertNetworkThread();
  auto it = preloads_.find(dir_id);
  if (it == preloads_.end()) return;
  Preload& p = it->second;
  const chunk::Directory& dir = *p.dir;
  while (p.in_flight < kPreloadFilesInFlight && p.next < dir.files().size()) {
    const size_t i = p.next++;
    const chunk::ContentId& fid = dir.file_id(i);
    if (auto st = store_.Stat(fid); st.ok() && st->complete()) continue;
    ContentSwarm* swarm = SwarmFor(fid);
    if (swarm->complete()) continue;
    ++p.in_flight;
    directory_of_[fid] = dir_id;
    if (auto known = directory_peers_.find(dir_id);
        known != directory_peers_.end())
      swarm->ConnectTo(known->second);
    swarm->WantRange(0, UINT64_MAX);
    LookupProviders(fid, SteadyClock::now() + std::chrono::minutes(5));
  }
}

void Session::FileDone(const chunk::ContentId& dir) {
  AssertNetworkThread();
  auto it = preloads_.find(dir);
  if (it == preloads_.end()) return;
  if (it->second.in_flight > 0) --it->second.in_flight;
  PumpPreload(dir);
}

absl::Status Session::Preheat(
    const chunk::ContentId& id, int count, absl::Duration timeout,
    const std::function<bool(const PreheatStatus&)>& update) {
  struct Target {
    dht::NodeInfo node;
    PreheatStatus status;
    bool changed = true;
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool looked_up = false;
    std::vector<Target> targets;
  };
  auto shared = std::make_shared<Shared>();
  const absl::Time deadline = absl::Now() + timeout;
  DhtService::Key key;
  std::memcpy(key.data(), id.bytes.data(), 20);
  asio::post(io_, [this, shared, key, count] {
    const std::string self =
        EndpointText(acceptor_.local_endpoint().address(), port_);
    auto done = [shared, count, self](std::vector<dht::NodeInfo> nodes,
                                      std::vector<tcp::endpoint> providers) {
      std::lock_guard<std::mutex> lock(shared->mu);
      for (const dht::NodeInfo& n : nodes) {
        if (static_cast<int>(shared->targets.size()) >= count) break;
        // A node's peer port is its DHT port.
        const std::string text = n.endpoint.ToString();
        if (text == self) continue;
        if (std::any_of(providers.begin(), providers.end(),
                        [&](const tcp::endpoint& p) {
                          return EndpointText(p.address(), p.port()) == text;
                        }))
          continue;
        Target t;
        t.node = n;
        t.status.node = text;
        t.status.node_id = n.id.ToHex();
        t.status.state = "asked";
        shared->targets.push_back(std::move(t));
      }
      shared->looked_up = true;
      shared->cv.notify_all();
    };
    if (!dht_) return done({}, {});
    dht_->ClosestNodes(key, std::move(done));
  });
  auto ask_all = [this, shared, &id] {
    asio::post(io_, [this, shared, content = std::string(id.AsStringView())] {
      std::vector<dht::NodeInfo> nodes;
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        for (const Target& t : shared->targets)
          if (t.status.state != "complete") nodes.push_back(t.node);
      }
      for (const dht::NodeInfo& n : nodes) {
        if (!dht_) return;
        dht_->Preheat(n, content,
                      [shared, n](const std::optional<dht::PreheatAnswer>& a) {
                        std::lock_guard<std::mutex> lock(shared->mu);
                        for (Target& t : shared->targets) {
                          if (t.node.id != n.id) continue;
                          PreheatStatus s = t.status;
                          if (a) {
                            s.state = a->state;
                            s.done = a->done;
                            s.total = a->total;
                          } else {
                            s.state = "unreachable";
                          }
                          if (s.state != t.status.state ||
                              s.done != t.status.done ||
                              s.total != t.status.total) {
                            t.status = std::move(s);
                            t.changed = true;
                          }
                        }
                        shared->cv.notify_all();
                      });
      }
    });
  };
  std::unique_lock<std::mutex> lock(shared->mu);
  while (!shared->looked_up) {
    if (shared->cv.wait_until(lock, absl::ToChronoTime(deadline)) ==
        std::cv_status::timeout) {
      return absl::DeadlineExceededError(
          "the cluster DHT lookup did not end in time");
    }
  }
  if (shared->targets.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster DHT knows no node that lacks ", id.Hex(),
                     " (no --bootstrap, or every node provides it already)"));
  }
  const size_t want = shared->targets.size();
  absl::Time next_ask = absl::InfinitePast();
  for (;;) {
    for (Target& t : shared->targets) {
      if (!t.changed) continue;
      t.changed = false;
      const PreheatStatus s = t.status;
      lock.unlock();
      const bool go_on = update(s);
      lock.lock();
      if (!go_on) return absl::CancelledError("the caller went away");
    }
    size_t complete = 0;
    bool unsent = false;  // changed while `update` ran unlocked
    for (const Target& t : shared->targets) {
      complete += t.status.state == "complete";
      unsent |= t.changed;
    }
    if (unsent) continue;
    if (complete == want) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(complete, " of ", want, " nodes complete within ",
                       absl::FormatDuration(timeout)));
    }
    if (now >= next_ask) {
      next_ask = now + absl::Seconds(1);
      lock.unlock();
      ask_all();
      lock.lock();
    }
    shared->cv.wait_until(lock,
                          absl::ToChronoTime(std::min(next_ask, deadline)));
  }
}

void Session::CheckDirectorySoon(const chunk::ContentId& id) {
  if (!directories_to_check_.insert(id).second) return;
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(500));
  timer->async_wait([this, timer, id](boost::system::error_code ec) {
    if (ec) return;
    pool_.Post([this, id] {
      auto st = store_.Stat(id);
      const bool complete = st.ok() && st->complete();
      asio::post(io_, [this, id, complete] {
        directories_to_check_.erase(id);
        if (complete) Provide(id);
      });
    });
  });
}

void Session::Provide(const chunk::ContentId& id) {
  asio::post(io_, [this, id] {
    if (!dht_) return;
    DhtService::Key k;
    std::memcpy(k.data(), id.bytes.data(), 20);
    dht_->Provide(DhtService::Network::kCluster, k, port_);
  });
}

absl::StatusOr<std::vector<std::string>> Session::FindProviders(
    const chunk::ContentId& id, absl::Duration timeout) {
  auto done = std::make_shared<std::promise<std::vector<std::string>>>();
  auto future = done->get_future();
  asio::post(io_, [this, id, done] {
    if (!dht_) return done->set_value({});
    DhtService::Key k;
    std::memcpy(k.data(), id.bytes.data(), 20);
    dht_->GetPeers(
        DhtService::Network::kCluster, k,
        [done](std::vector<tcp::endpoint> peers) {
          std::vector<std::string> out;
          for (const auto& e : peers) {
            const auto a = e.address();
            out.push_back(a.is_v6()
                              ? absl::StrCat("[", a.to_string(), "]:", e.port())
                              : absl::StrCat(a.to_string(), ":", e.port()));
          }
          std::sort(out.begin(), out.end());
          done->set_value(std::move(out));
        });
  });
  if (future.wait_for(absl::ToChronoMilliseconds(timeout)) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError(
        absl::StrCat("the provider lookup took longer than ",
                     absl::FormatDuration(timeout)));
  }
  return future.get();
}

std::pair<size_t, size_t> Session::DhtNodes() {
  return RunOn(io_, [this]() -> std::pair<size_t, size_t> {
    if (!dht_) return {0, 0};
    return {dht_->NumNodes(DhtService::Network::kPublic),
            dht_->NumNodes(DhtService::Network::kCluster)};
  });
}

bool Session::ClusterReachable() {
  return RunOn(io_, [this] { return dht_ && dht_->ClusterReachable(); });
}

uint64_t Session::DhtUnauthenticated() {
  return RunOn(
      io_, [this]() -> uint64_t { return dht_ ? dht_->Unauthenticated() : 0; });
}

void Session::Forget(const chunk::ContentId& id) { Forget(std::vector{id}); }

void Session::Forget(const std::vector<chunk::ContentId>& ids) {
  RunOn(io_, [&] {
    for (const chunk::ContentId& id : ids) {
      if (dht_) {
        DhtService::Key k;
        std::memcpy(k.data(), id.bytes.data(), 20);
        dht_->StopProviding(DhtService::Network::kCluster, k);
      }
      Key key(id.AsStringView().substr(0, 20));
      auto it = contents_.find(key);
      if (it != contents_.end()) {
        Unregister(it->second.get());
        contents_.erase(it);
      }
    }
    return 0;
  });
}

size_t Session::NumPeers() {
  return RunOn(io_, [&] { return TotalPeers(); });
}

// --- Torrents
// -------------------------------------------------------------------------

namespace {

constexpr char kTorrentIndexKey[] = "torrents";
constexpr char kRateLimitsKey[] = "rate limits";

std::string EncodeLimits(uint64_t down, uint64_t up) {
  codec::bencode::Dict d;
  d["down"] = static_cast<int64_t>(down);
  d["up"] = static_cast<int64_t>(up);
  return codec::bencode::Encode(codec::bencode::Value(d));
}

std::pair<uint64_t, uint64_t> DecodeLimits(std::string_view bytes) {
  auto doc = codec::Bdecode(bytes);
  if (!doc.ok()) return {0, 0};
  return {static_cast<uint64_t>(
              std::max<int64_t>(0, doc->root().FindInt("down").value_or(0))),
          static_cast<uint64_t>(
              std::max<int64_t>(0, doc->root().FindInt("up").value_or(0)))};
}

std::string LimitsKey(const std::string& id) {
  return absl::StrCat("limits/", id);
}

std::string TorrentKey(const std::string& id) {
  return absl::StrCat("torrent/", id);
}

}  // namespace

TorrentSwarm* Session::FindTorrent(const std::string& id) {
  AssertNetworkThread();
  std::string lower = id;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  auto it = torrents_.find(lower);
  if (it != torrents_.end()) return it->second.get();
  for (auto& [k, t] : torrents_) {
    const chunk::InfoHashes& h = t->hashes();
    if ((h.v1 && h.v1->Hex() == lower) || (h.v2 && h.v2->Hex() == lower))
      return t.get();
  }
  return nullptr;
}

template <typename Fn>
auto Session::WithTorrent(const std::string& id, Fn fn) {
  using R = decltype(fn(std::declval<TorrentSwarm&>()));
  return RunOn(io_, [&]() -> R {
    TorrentSwarm* t = FindTorrent(id);
    if (t == nullptr)
      return absl::NotFoundError(absl::StrCat("no torrent ", id));
    return fn(*t);
  });
}

absl::StatusOr<TorrentStatus> Session::AddTorrent(
    const AddTorrentParams& params) {
  return RunOn(io_, [&] { return AddTorrentHere(params, /*persist=*/true); });
}

absl::StatusOr<TorrentStatus> Session::AddTorrentHere(
    const AddTorrentParams& params, bool persist) {
  if (params.torrent_bytes.empty() == params.magnet.empty()) {
    return absl::InvalidArgumentError(
        "give either a .torrent file or a magnet link");
  }
  chunk::InfoHashes hashes;
  std::shared_ptr<chunk::Metainfo> metainfo;
  TorrentConfig config;
  config.paused = params.paused;
  config.sequential = params.sequential;
  config.source.torrent_bytes = params.torrent_bytes;
  config.source.magnet = params.magnet;
  config.source.save_path =
      params.save_path.empty() ? options_.default_save_path : params.save_path;
  config.source.in_store = params.in_store;
  if (params.in_store) config.source.save_path.clear();
  auto add_peer = [&](const std::string& host, uint16_t port) -> absl::Status {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("peer address must be an IP address, got '", host, "'"));
    }
    config.peers.push_back(ToPeerEndpoint(tcp::endpoint(addr, port)));
    return absl::OkStatus();
  };
  if (!params.torrent_bytes.empty()) {
    auto m = chunk::ParseMetainfo(params.torrent_bytes);
    if (!m.ok()) return m.status();
    hashes = m->info_hashes;
    std::map<int, std::vector<std::string>> tiers;
    for (const auto& t : m->trackers) tiers[t.tier].push_back(t.url);
    for (auto& [tier, urls] : tiers) config.trackers.push_back(urls);
    metainfo = std::make_shared<chunk::Metainfo>(*std::move(m));
  } else {
    auto mag = chunk::ParseMagnetUri(params.magnet);
    if (!mag.ok()) return mag.status();
    hashes = mag->info_hashes;
    config.display_name = mag->display_name;
    for (const auto& url : mag->trackers) config.trackers.push_back({url});
    for (const std::string& pe : mag->peers) {
      auto hp = HostPort::Parse(pe);
      if (!hp.ok()) return hp.status();
      std::string host = hp->host;
      if (host.size() > 2 && host.front() == '[')
        host = host.substr(1, host.size() - 2);
      SHOAL_RETURN_IF_ERROR(add_peer(host, hp->port));
    }
  }
  for (const HostPort& hp : params.peers)
    SHOAL_RETURN_IF_ERROR(add_peer(hp.host, hp.port));
  const std::string id = hashes.BestHex();
  if (FindTorrent(id) != nullptr ||
      (hashes.v1 && FindTorrent(hashes.v1->Hex()) != nullptr)) {
    return absl::AlreadyExistsError(
        absl::StrCat("torrent ", id, " is already added"));
  }
  if (persist) {
    codec::bencode::Dict d;
    if (!params.torrent_bytes.empty()) {
      d["torrent"] = params.torrent_bytes;
    } else {
      d["magnet"] = params.magnet;
    }
    d["save path"] = config.source.save_path.string();
    d["in store"] = int64_t{params.in_store};
    std::string peers;
    for (const HostPort& hp : params.peers) peers += hp.ToString() + " ";
    d["peers"] = peers;
    d["paused"] = int64_t{params.paused};
    d["sequential"] = int64_t{params.sequential};
    SHOAL_RETURN_IF_ERROR(store_.PutState(
        TorrentKey(id), codec::bencode::Encode(codec::bencode::Value(d))));
  }
  SwarmOptions so;
  so.max_peers = options_.max_peers_per_torrent;
  so.upload_slots = options_.upload_slots;
  so.strategy = params.sequential ? chunk::PickStrategy::kSequential
                                  : chunk::PickStrategy::kRarestFirst;
  tracker::AnnouncerOptions ao;
  ao.peer_id = tracker::PeerId::FromBytes(std::string_view(
      reinterpret_cast<const char*>(peer_id_.data()), peer_id_.size()));
  ao.listen_port = port_;
  ao.random_seed = (uint64_t{peer_id_[8]} << 8 | peer_id_[9]) ^ next_key_;
  auto t = std::make_unique<TorrentSwarm>(swarm_env_, io_, store_, pool_,
                                          hashes, metainfo, config, so, ao,
                                          options_.client_name, port_, events_);
  TorrentSwarm* raw = t.get();
  torrents_[id] = std::move(t);
  Register(raw);
  if (persist) SaveTorrentIndex();
  if (auto limits = store_.GetState(LimitsKey(id)); limits.ok()) {
    auto [down, up] = DecodeLimits(*limits);
    raw->SetRateLimits(down, up);
  }
  raw->Start();
  DhtLookups(*raw);
  return raw->Status();
}

void Session::SaveTorrentIndex() {
  AssertNetworkThread();
  codec::bencode::List ids;
  for (const auto& [id, t] : torrents_) ids.emplace_back(id);
  if (absl::Status s = store_.PutState(
          kTorrentIndexKey, codec::bencode::Encode(codec::bencode::Value(ids)));
      !s.ok()) {
    spdlog::warn("saving the torrent list: {}", s.ToString());
  }
}

void Session::LoadTorrents() {
  if (auto limits = store_.GetState(kRateLimitsKey); limits.ok()) {
    auto [down, up] = DecodeLimits(*limits);
    global_down_->set_rate(down);
    global_up_->set_rate(up);
  }
  auto index = store_.GetState(kTorrentIndexKey);
  if (!index.ok() || index->empty()) return;
  auto doc = codec::Bdecode(*index);
  if (!doc.ok() || !doc->root().is_list()) return;
  for (const codec::BNode& item : doc->root().list_items()) {
    if (!item.is_string()) continue;
    const std::string id(item.string_value());
    auto value = store_.GetState(TorrentKey(id));
    if (!value.ok() || value->empty()) continue;
    auto d = codec::Bdecode(*value);
    if (!d.ok()) continue;
    AddTorrentParams p;
    if (auto t = d->root().FindString("torrent"))
      p.torrent_bytes = std::string(*t);
    if (auto m = d->root().FindString("magnet")) p.magnet = std::string(*m);
    if (auto s = d->root().FindString("save path"))
      p.save_path = std::string(*s);
    if (auto peers = d->root().FindString("peers")) {
      const std::vector<std::string> parts =
          absl::StrSplit(std::string(*peers), ' ', absl::SkipEmpty());
      for (const std::string& part : parts) {
        auto hp = HostPort::Parse(part);
        if (hp.ok()) p.peers.push_back(*hp);
      }
    }
    p.paused = d->root().FindInt("paused").value_or(0) != 0;
    p.sequential = d->root().FindInt("sequential").value_or(0) != 0;
    p.in_store = d->root().FindInt("in store").value_or(0) != 0;
    auto st = AddTorrentHere(p, /*persist=*/false);
    if (!st.ok()) {
      spdlog::warn("torrent {}: cannot restore: {}", id,
                   st.status().ToString());
    } else {
      spdlog::info("torrent {}: restored ({})", id, st->name);
    }
  }
}

std::vector<TorrentStatus> Session::ListTorrents() {
  return RunOn(io_, [&] {
    std::vector<TorrentStatus> out;
    for (const auto& [id, t] : torrents_) out.push_back(t->Status());
    return out;
  });
}

absl::StatusOr<TorrentStatus> Session::GetTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::StatusOr<TorrentStatus> {
    return t.Status();
  });
}

absl::StatusOr<std::vector<PeerInfo>> Session::TorrentPeers(
    const std::string& id) {
  return WithTorrent(
      id, [](TorrentSwarm& t) -> absl::StatusOr<std::vector<PeerInfo>> {
        return t.Peers();
      });
}

absl::StatusOr<std::vector<TorrentFileInfo>> Session::TorrentFiles(
    const std::string& id) {
  return WithTorrent(
      id, [](TorrentSwarm& t) -> absl::StatusOr<std::vector<TorrentFileInfo>> {
        if (t.known_metainfo() == nullptr)
          return absl::FailedPreconditionError(
              "the torrent's metadata is not known yet");
        return t.Files();
      });
}

absl::StatusOr<TorrentSwarm::ReadSource> Session::TorrentReadSource(
    const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) { return t.GetReadSource(); });
}

absl::Status Session::WantTorrentRange(const std::string& id, uint64_t offset,
                                       uint64_t length) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.WantRange(offset, length);
    return absl::OkStatus();
  });
}

absl::Status Session::ReadTorrentFile(const std::string& id, size_t file,
                                      uint64_t offset,
                                      std::optional<uint64_t> length,
                                      const ReadSink& sink,
                                      absl::Duration wait) {
  SHOAL_ASSIGN_OR_RETURN(
      TorrentSwarm::ReadSource src,
      WithTorrent(id, [](TorrentSwarm& t) { return t.GetReadSource(); }));
  const chunk::Metainfo& m = *src.metainfo;
  if (file >= m.files.size() || m.files[file].pad_file) {
    return absl::InvalidArgumentError(
        absl::StrCat("no file ", file, " in the torrent (it has ",
                     m.files.size(), " entries, pad files included)"));
  }
  const chunk::FileEntry& e = m.files[file];
  if (offset > e.length) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset ", offset, " is past the end of the file (",
                     e.length, " bytes)"));
  }
  const uint64_t len = length.value_or(e.length - offset);
  if (len > e.length - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("range ", offset, "+", len,
                     " is past the end of the file (", e.length, " bytes)"));
  }
  uint64_t pos = e.offset + offset;  // in the torrent's byte stream
  const uint64_t end = pos + len;
  bool wanted = false;
  while (pos < end) {
    const uint32_t p = static_cast<uint32_t>(pos / m.piece_length);
    if (p < m.num_pieces && !src.have.test(p) && wait > absl::ZeroDuration()) {
      if (!wanted) {
        wanted = true;  // deadlines from here to the end of the range
        SHOAL_RETURN_IF_ERROR(WantTorrentRange(id, pos, end - pos));
      }
      absl::Status arrived = src.arriving->WaitForPiece(p, wait);
      if (!arrived.ok()) {
        return absl::UnavailableError(
            absl::StrCat("piece ", p, " (byte ", pos - e.offset, " of ", e.path,
                         ") did not arrive: ", std::string(arrived.message())));
      }
      src.have.set(p);
    }
    if (p >= m.num_pieces || !src.have.test(p)) {
      return absl::UnavailableError(absl::StrCat("piece ", p, " (byte ",
                                                 pos - e.offset, " of ", e.path,
                                                 ") is not downloaded yet"));
    }
    SHOAL_ASSIGN_OR_RETURN(std::string data, src.storage->ReadPiece(p));
    if (src.verifier != nullptr && !src.verifier->Verify(p, data).ok()) {
      return absl::DataLossError(
          absl::StrCat("piece ", p,
                       " changed on disk since it was verified; recheck the "
                       "torrent"));
    }
    const uint64_t start = uint64_t{p} * m.piece_length;
    const uint64_t from = pos - start;
    const uint64_t to = std::min<uint64_t>(end - start, data.size());
    if (to <= from) {
      return absl::InternalError(
          absl::StrCat("piece ", p, " is shorter than the file needs"));
    }
    if (from != 0 || to != data.size()) data = data.substr(from, to - from);
    if (!sink(std::move(data), pos - e.offset))
      return absl::CancelledError("reader went away");
    pos = start + to;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Session::TorrentFileEntries(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::StatusOr<size_t> {
    if (t.known_metainfo() == nullptr)
      return absl::FailedPreconditionError(
          "the torrent's metadata is not known yet");
    return t.known_metainfo()->files.size();
  });
}

absl::Status Session::PauseTorrent(const std::string& id) {
  return WithTorrent(id, [this](TorrentSwarm& t) -> absl::Status {
    t.Pause();
    DhtLookups(t);
    return absl::OkStatus();
  });
}

absl::Status Session::ResumeTorrent(const std::string& id) {
  return WithTorrent(id, [this](TorrentSwarm& t) -> absl::Status {
    t.Resume();
    DhtLookups(t);
    return absl::OkStatus();
  });
}

absl::Status Session::RemoveTorrent(const std::string& id, bool delete_data) {
  auto removed = std::make_shared<std::promise<void>>();
  auto future = removed->get_future();
  absl::Status s = WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    const std::string key = t.id();
    Unregister(&t);
    if (dht_) {
      for (const std::string& hk : t.HandshakeKeys()) {
        DhtService::Key k;
        std::memcpy(k.data(), hk.data(), 20);
        dht_->StopProviding(DhtService::Network::kPublic, k);
      }
    }
    (void)store_.PutState(TorrentKey(key), "");
    (void)store_.PutState(LimitsKey(key), "");
    t.Remove(delete_data, [this, key, removed] {
      // Destroy it later: we are inside its callback.
      asio::post(io_, [this, key, removed] {
        torrents_.erase(key);
        SaveTorrentIndex();
        removed->set_value();
      });
    });
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  // "stopped" to the trackers is bounded by the announcer's stop timeout.
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready)
    return absl::DeadlineExceededError("removing the torrent timed out");
  return absl::OkStatus();
}

absl::Status Session::SetFilePriorities(const std::string& id,
                                        std::vector<uint8_t> priorities) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    return t.SetFilePriorities(std::move(priorities));
  });
}

absl::Status Session::SetSequential(const std::string& id, bool on) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetSequential(on);
    return absl::OkStatus();
  });
}

absl::Status Session::RecheckTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::Status {
    if (!t.ready())
      return absl::FailedPreconditionError(
          "the torrent is not checked or downloading yet");
    t.Recheck();
    return absl::OkStatus();
  });
}

absl::Status Session::ReannounceTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::Status {
    t.Reannounce();
    return absl::OkStatus();
  });
}

absl::Status Session::SetRateLimits(const std::string& id, uint64_t download,
                                    uint64_t upload) {
  if (id.empty()) {
    return RunOn(io_, [&] {
      global_down_->set_rate(download);
      global_up_->set_rate(upload);
      return store_.PutState(kRateLimitsKey, EncodeLimits(download, upload));
    });
  }
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetRateLimits(download, upload);
    return store_.PutState(LimitsKey(t.id()), EncodeLimits(download, upload));
  });
}

absl::StatusOr<Session::Limits> Session::GetRateLimits(const std::string& id) {
  if (id.empty()) {
    return RunOn(io_, [&]() -> absl::StatusOr<Limits> {
      return Limits{global_down_->rate(), global_up_->rate()};
    });
  }
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::StatusOr<Limits> {
    return Limits{t.download_limit(), t.upload_limit()};
  });
}

}  // namespace shoal::node
