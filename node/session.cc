#include "node/session.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/memory.h"
#include "base/status_macros.h"
#include "chunk/magnet.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"
#include "node/listen.h"
#include "node/peer_connection.h"
#include "node/run_on.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"
#include "wire/mse.h"

namespace shoal::node {
namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

// Closes `socket` if `timer` expires before it is cancelled or destroyed; the
// handler touches the socket only on expiry, while the coroutine that owns both
// is still waiting.
template <typename Stream>
void CloseOnTimeout(asio::steady_timer& timer, Stream& socket) {
  timer.expires_after(kHandshakeTimeout);
  timer.async_wait([&socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
}

// Handshakes are several small writes each waiting on the peer's answer (MSE's
// steps, then the BitTorrent handshake): with Nagle's algorithm on, a write
// that follows one not yet acknowledged waited for the peer's delayed ACK, 40
// ms on Linux, before libtorrent saw our handshake. PeerConnection keeps the
// option on.
template <typename Stream>
void NoDelay(Stream& socket) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
  }
}

}  // namespace

Session::Session(store::ChunkStore& store, ThreadPool& pool,
                 SessionOptions options)
    : store_(store),
      pool_(pool),
      options_(std::move(options)),
      work_(asio::make_work_guard(io_)) {
  // Azureus-style peer ID: -SH0100- and 12 random bytes.
  std::memcpy(peer_id_.data(), "-SH0100-", 8);
  randombytes_buf(peer_id_.data() + 8, 12);
  node_seed_limits_ = std::make_shared<SeedLimits>(
      SeedLimits{options_.seed_limits.share_ratio.value_or(0),
                 options_.seed_limits.seed_time.value_or(0)});
  if (options_.download_memory_bytes > 0) {
    download_budget_ =
        std::make_shared<DownloadBudget>(options_.download_memory_bytes);
  }
}

Session::~Session() { Stop(); }

void Session::Stop() {
  if (thread_.joinable()) {
    RunOn(io_, [this] {
      boost::system::error_code ec;
      for (auto& p : ports_) p->acceptor.close(ec);
      for (auto& [id, t] : torrents_) t->SaveResume();
      if (dht_) dht_->Stop();
      lsd_.reset();
      by_key_.clear();
      torrents_.clear();
      contents_.clear();
      // After the swarms, and the UDP sockets after that: the swarms' µTP
      // connections say goodbye (ST_FIN) through them. Closed first, they
      // went silently, and a peer with nothing in flight kept the connection
      // until its idle timeout (2 min), waiting on requests.
      for (auto& p : ports_) p->utp.reset();
      for (auto& p : ports_) p->udp.close(ec);
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
    network_thread_ = std::thread::id();
  }
}

absl::Status Session::OpenPort(PeerPort& p, const HostPort& address,
                               bool v6_only, uint16_t prefer_port) {
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(address.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address must be an IP address, got '", address.host, "'"));
  }
  v6_only = v6_only && addr.is_v6();
  auto open = [&](uint16_t port) -> absl::Status {
    boost::system::error_code ec;
    p.acceptor.close(ec);
    p.udp.close(ec);
    ec.clear();
    HostPort at = address;
    at.port = port;
    absl::StatusOr<uint16_t> bound =
        BindAndListen(p.acceptor, at, "listen address", v6_only);
    if (!bound.ok()) return bound.status();
    // The UDP socket takes the TCP port: peers and the DHT know one port.
    const asio::ip::udp::endpoint uep(addr, *bound);
    p.udp.open(uep.protocol(), ec);
    if (!ec && v6_only) p.udp.set_option(asio::ip::v6_only(true), ec);
    if (!ec) p.udp.bind(uep, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on listen address ", address.ToString(),
                       " (udp): ", ec.message()));
    }
    return absl::OkStatus();
  };
  absl::Status s = absl::UnavailableError("");
  if (address.port == 0 && prefer_port != 0) s = open(prefer_port);
  if (!s.ok() && !absl::IsFailedPrecondition(s)) s = open(address.port);
  // Port 0: the OS's TCP port may be taken for UDP; try a few.
  for (int i = 0;
       !s.ok() && !absl::IsFailedPrecondition(s) && address.port == 0 && i < 8;
       ++i) {
    s = open(0);
  }
  if (!s.ok()) return s;
  p.bound = address;
  p.bound.port = p.acceptor.local_endpoint().port();
  p.carries_v6 = addr.is_v6();
  p.carries_v4 = addr.is_v4() || (!v6_only && addr.is_unspecified());
  {
    // Room for bursts of µTP datagrams either way. The kernel caps what it
    // grants at net.core.rmem_max / wmem_max (often 208 KiB), silently: a
    // burst past it is lost and costs a retransmission timeout.
    constexpr int kWant = 4 << 20;
    boost::system::error_code ec;
    p.udp.set_option(asio::socket_base::receive_buffer_size(kWant), ec);
    p.udp.set_option(asio::socket_base::send_buffer_size(kWant), ec);
    asio::socket_base::receive_buffer_size got;
    p.udp.get_option(got, ec);
    // (asio halves what Linux reports, which is twice what was granted.)
    if (!ec && got.value() < kWant && ports_.empty()) {
      spdlog::warn(
          "the UDP receive buffer is {} KiB (net.core.rmem_max caps it), not "
          "{} KiB: µTP at speed may lose bursts; raise it with sysctl -w "
          "net.core.rmem_max={} net.core.wmem_max={}",
          got.value() / 1024, kWant / 1024, kWant, kWant);
    }
  }
  return absl::OkStatus();
}

void Session::StartPortServices(PeerPort& p, size_t index) {
  // µTP shares the socket: the DHT service reads it and hands over what
  // starts like a µTP packet. With µTP off the service only answers SYNs
  // with RESET (it has no acceptor) and nothing dials through it.
  utp::Stack::Options uo;
  uo.connection.connect_timeout_us = 3'000'000;  // then TCP, as libtorrent
  p.utp = std::make_unique<UtpService>(io_, p.udp, uo);
  if (options_.utp) {
    p.utp->set_accept([this](UtpSocket socket) {
      asio::co_spawn(io_, Incoming(std::move(socket)), asio::detached);
    });
  }
  DhtService::Options dho;
  dho.public_enabled = options_.public_dht;
  dho.cluster_key = options_.cluster_key;
  // Each family's table is bootstrapped from that family's addresses (the
  // service skips the others); names resolve for both.
  dho.public_routers = options_.dht_routers;
  dho.cluster_bootstrap = options_.bootstrap;
  if (index > 0) {
    dho.state_prefix = "dht6";
    if (const dht::DhtNode* c =
            dht_->primary()->Instance(DhtService::Network::kCluster)) {
      dho.cluster_id = c->id();
    }
  }
  auto dht = std::make_unique<DhtService>(io_, p.udp, store_, dho);
  UtpService* utp = p.utp.get();
  dht->SetOtherProtocol(
      [utp](const asio::ip::udp::endpoint& from, std::string_view d) {
        return utp->OnDatagram(from, d);
      },
      [utp] { utp->FlushAcks(); });
  dht->SetPreheatHandler([this](std::string_view content) {
    return OnPreheat(chunk::ContentId::FromBytes(content));
  });
  dht->SetStateCallback([this, v6 = p.carries_v6 && !p.carries_v4](
                            DhtService::Network net, const char* state,
                            size_t nodes) {
    Event e;
    e.kind = EventKind::kDhtState;
    e.network =
        absl::StrCat(net == DhtService::Network::kPublic ? "public" : "cluster",
                     v6 ? "-ipv6" : "");
    e.state = state;
    e.nodes = static_cast<uint32_t>(nodes);
    events_.Publish(std::move(e));
  });
  dht_->Add(std::move(dht), p.bound.port);
  p.utp->Start();
  Accept(p);
}

absl::StatusOr<std::vector<HostPort>> Session::Start(
    const std::vector<HostPort>& listen) {
  if (absl::Status s = ValidateListen(listen); !s.ok()) return s;
  dht_ = std::make_unique<DhtGroup>();
  for (size_t i = 0; i < listen.size(); ++i) {
    auto p = std::make_unique<PeerPort>(io_);
    absl::Status s = OpenPort(*p, listen[i], /*v6_only=*/listen.size() > 1,
                              ports_.empty() ? 0 : ports_[0]->bound.port);
    if (!s.ok()) {
      // The IPv6 wildcard, second: a host without IPv6 runs on IPv4.
      boost::system::error_code ec;
      const asio::ip::address a = asio::ip::make_address(listen[i].host, ec);
      if (i > 0 && !ec && a.is_v6() && a.is_unspecified() &&
          absl::IsFailedPrecondition(s)) {
        spdlog::warn("IPv4 only: {}", std::string(s.message()));
        continue;
      }
      // (A host without the family is as unavailable as a taken port.)
      if (absl::IsFailedPrecondition(s))
        return absl::UnavailableError(s.message());
      return s;
    }
    ports_.push_back(std::move(p));
  }
  port_ = ports_[0]->bound.port;
  for (size_t i = 0; i < ports_.size(); ++i) {
    StartPortServices(*ports_[i], i);
    // Started one by one: the second family takes the first's cluster ID.
    if (absl::Status s = dht_->Start(); !s.ok()) return s;
  }
  thread_ = std::thread([this] {
    network_thread_ = std::this_thread::get_id();
    io_.run();
  });
  RunOn(io_, [this] {
    if (options_.lsd) {
      std::array<uint8_t, 8> cookie;
      randombytes_buf(cookie.data(), cookie.size());
      lsd_ = std::make_unique<LsdService>(
          io_, port_,
          absl::BytesToHexString(absl::string_view(
              reinterpret_cast<const char*>(cookie.data()), cookie.size())),
          [this](const LsdService::InfoHash& h, const PeerEndpoint& p) {
            OnLsdPeer(h, p);
          });
      if (absl::Status s = lsd_->Start(); !s.ok()) {
        spdlog::warn("local service discovery is off: {}",
                     std::string(s.message()));
        lsd_.reset();
      }
    }
    LoadTorrents();
    DhtTick();
    LsdTick();
    QueueTick();
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
  std::vector<HostPort> bound;
  for (const auto& p : ports_) bound.push_back(p->bound);
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

UtpService* Session::UtpFor(const tcp::endpoint& to) const {
  const bool v4 = ToDhtEndpoint(to.address(), to.port()).is_v4();
  for (const auto& p : ports_) {
    if (p->utp && (v4 ? p->carries_v4 : p->carries_v6)) return p->utp.get();
  }
  return nullptr;
}

bool Session::IsSelf(const tcp::endpoint& e) const {
  for (const auto& p : ports_) {
    boost::system::error_code ec;
    const tcp::endpoint local = p->acceptor.local_endpoint(ec);
    if (!ec && e.port() == local.port() && e.address() == local.address())
      return true;
  }
  return false;
}

void Session::Accept(PeerPort& port) {
  port.acceptor.async_accept(
      [this, &port](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          if (static_cast<int>(TotalPeers()) + connecting_ >=
              options_.max_connections) {
            socket.close(ec);  // the global connection limit
          } else {
            asio::co_spawn(io_, Incoming(std::move(socket)), asio::detached);
          }
        }
        Accept(port);
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
  swarm->set_own_peer_id(peer_id_);
  swarm->set_connector(
      [this, key = swarm->HandshakeKeys().front()](const PeerEndpoint& ep) {
        if (static_cast<int>(TotalPeers()) + connecting_ >=
            options_.max_connections) {
          auto it = by_key_.find(key);
          if (it != by_key_.end())
            it->second->OnConnectFailed(ep, /*peer_fault=*/false);
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
  SwarmOptions so = CdnSwarmOptions(options_.max_peers_per_torrent);
  so.peer_retry_ticks = static_cast<uint64_t>(options_.peer_retry_seconds);
  so.download_budget = download_budget_;
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
  raw->set_event_bus(&events_);
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
      ReleaseFreeMemory();
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

bool Session::Filtered(const tcp::endpoint& peer) const {
  if (!options_.ip_filter || !options_.ip_filter->Blocked(ToPeerEndpoint(peer)))
    return false;
  spdlog::debug("peer {}:{} is in the ip_filter: not connected",
                peer.address().to_string(), peer.port());
  return true;
}

wire::MseReceiver::Options Session::MseOptions() {
  wire::MseReceiver::Options o;
  o.random_bytes = [](size_t n) {
    std::string s(n, '\0');
    randombytes_buf(s.data(), n);
    return s;
  };
  // The torrent is named by HASH('req2', info-hash): the running swarms', and
  // stored contents' (whose swarms start on their first peer).
  o.find_skey =
      [this](const codec::Sha1Digest& req2) -> std::optional<std::string> {
    for (const auto& [key, swarm] : by_key_)
      if (wire::MseHash("req2", key) == req2) return key;
    for (std::string& key : store_.TruncatedIds())
      if (wire::MseHash("req2", key) == req2) return std::move(key);
    return std::nullopt;
  };
  return o;
}

// Reads until `pending` holds a whole BitTorrent handshake, decrypting what
// it reads with `ciphers` if they are set.
template <typename Stream>
asio::awaitable<absl::Status> Session::ReadHandshake(
    Stream& socket, std::string& pending, const wire::MseCiphers& ciphers) {
  boost::system::error_code ec;
  std::string chunk(4096, '\0');
  while (pending.size() < wire::kHandshakeLength) {
    const size_t n = co_await socket.async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return absl::UnavailableError(ec.message());
    if (ciphers.decrypt) ciphers.decrypt->Apply(chunk.data(), n);
    pending.append(chunk.data(), n);
  }
  co_return absl::OkStatus();
}

// Runs an MSE handshake to its end: sends what it has to say, feeds it what
// arrives, and sends its last words.
template <typename Stream>
asio::awaitable<absl::Status> Session::DriveMse(Stream& socket,
                                                wire::MseHandshake& mse) {
  boost::system::error_code ec;
  std::string chunk(4096, '\0');
  while (true) {
    const std::string out = mse.TakeOutput();
    if (!out.empty()) {
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return absl::UnavailableError(ec.message());
    }
    if (mse.done()) co_return absl::OkStatus();
    const size_t n = co_await socket.async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return absl::UnavailableError(ec.message());
    absl::Status s = mse.Feed(std::string_view(chunk.data(), n));
    if (!s.ok()) co_return s;
  }
}

// The receiving side of an encrypted (MSE) handshake whose first bytes are
// `buf`; leaves the peer's BitTorrent handshake in `buf` and what followed it
// in `pending`, both decrypted.
template <typename Stream>
asio::awaitable<absl::Status> Session::AcceptEncrypted(
    Stream& socket, std::string& buf, std::string& pending,
    wire::MseCiphers& ciphers, std::string& skey) {
  wire::MseReceiver mse(MseOptions());
  if (absl::Status s = mse.Feed(buf); !s.ok()) co_return s;
  absl::Status driven = co_await DriveMse(socket, mse);
  if (!driven.ok()) co_return driven;
  pending = mse.TakePayload();
  ciphers = mse.TakeCiphers();
  skey = mse.skey();
  // The BitTorrent handshake follows, in the initial payload or after it.
  absl::Status read = co_await ReadHandshake(socket, pending, ciphers);
  if (!read.ok()) co_return read;
  buf = pending.substr(0, wire::kHandshakeLength);
  pending.erase(0, wire::kHandshakeLength);
  co_return absl::OkStatus();
}

template <typename Stream>
asio::awaitable<void> Session::Incoming(Stream socket) {
  ++connecting_;
  struct Done {
    int& n;
    ~Done() { --n; }
  } done{connecting_};
  {
    boost::system::error_code ec;
    if (Filtered(socket.remote_endpoint(ec))) co_return;  // closes it
  }
  NoDelay(socket);
  asio::steady_timer timer(io_);
  CloseOnTimeout(timer, socket);
  // A plaintext handshake starts with its protocol string; anything else may
  // be an encrypted (MSE) one.
  static constexpr std::string_view kPlainStart(
      "\x13"
      "BitTorrent protocol");
  std::string buf(kPlainStart.size(), '\0');
  boost::system::error_code ec;
  co_await asio::async_read(socket, asio::buffer(buf),
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  std::string pending;  // the peer's stream after its handshake, plaintext
  wire::MseCiphers ciphers;
  std::string mse_skey;
  if (buf != kPlainStart) {
    absl::Status s =
        co_await AcceptEncrypted(socket, buf, pending, ciphers, mse_skey);
    if (!s.ok()) {
      spdlog::debug("encrypted handshake from {} refused: {}",
                    socket.remote_endpoint(ec).address().to_string(),
                    s.ToString());
      co_return;
    }
  } else {
    buf.resize(wire::kHandshakeLength);
    co_await asio::async_read(
        socket,
        asio::buffer(buf.data() + kPlainStart.size(),
                     wire::kHandshakeLength - kPlainStart.size()),
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
  auto theirs = wire::ParseHandshake(buf);
  if (!theirs.ok()) co_return;
  const Key key(reinterpret_cast<const char*>(theirs->info_hash.data()), 20);
  Swarm* swarm = SwarmForInfoHash(key);
  // The handshake must name the torrent the encrypted one did (a hybrid's
  // other hash is the same torrent).
  if (!mse_skey.empty() && key != mse_skey &&
      SwarmForInfoHash(mse_skey) != swarm) {
    co_return;
  }
  if (swarm == nullptr || swarm->shut()) co_return;  // not ours: close
  if (swarm->IsBanned(ToPeerEndpoint(socket.remote_endpoint(ec)))) co_return;
  // A transport turned off refuses torrents' peers (cluster content always
  // takes TCP).
  constexpr bool kUtp = std::is_same_v<Stream, UtpSocket>;
  if (!(kUtp ? options_.utp : options_.tcp) && !contents_.contains(key))
    co_return;
  // Answer with the hash they used (a hybrid has two), but a peer that used a
  // hybrid's v1 hash and offered v2 (BEP 52's reserved bit) is answered with
  // the v2 hash: the upgrade BEP 52 allows, and what libtorrent answers too.
  // libtorrent needs it: should it learn of us from its v2 announce between
  // its handshake and ours, it checks our answer against the v2 hash alone
  // and drops the connection as "invalid info-hash" if we echo the v1 one.
  std::array<uint8_t, 20> answer = theirs->info_hash;
  const chunk::InfoHashes& ih = swarm->hashes();
  if (theirs->v2() && ih.v1 && ih.v2 && key == ih.v1->AsStringView()) {
    const chunk::InfoHashV1 v2 = ih.v2->Truncated();
    std::copy(v2.bytes.begin(), v2.bytes.end(), answer.begin());
  }
  std::string ours =
      wire::EncodeHandshake(OurHandshake(answer, ih.v2.has_value()));
  if (ciphers.encrypt) ciphers.encrypt->Apply(ours);
  co_await asio::async_write(socket, asio::buffer(ours),
                             asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec || !socket.is_open()) co_return;
  // The swarm may have gone while we wrote.
  swarm = SwarmForInfoHash(key);
  if (swarm == nullptr) co_return;
  auto conn = std::make_shared<BasicPeerConnection<Stream>>(
      std::move(socket), next_key_++, std::move(pending));
  if (ciphers.encrypt) conn->SetCiphers(std::move(ciphers));
  swarm->AddPeer(conn, *theirs, /*incoming=*/true);
}

asio::awaitable<void> Session::Outgoing(Key key, tcp::endpoint to) {
  ++connecting_;
  struct Done {
    int& n;
    ~Done() { --n; }
  } done{connecting_};
  auto fail = [&] {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) it->second->OnConnectFailed(ToPeerEndpoint(to));
  };
  if (Filtered(to)) {
    fail();
    co_return;
  }
  OutgoingPlan plan;
  plan.key = key;
  std::array<uint8_t, 20> info_hash;
  std::memcpy(info_hash.data(), key.data(), 20);
  // Encrypted, a torrent with a v2 hash is named by it in both handshakes:
  // libtorrent ties an encrypted connection to the hash that named it, and
  // closed a hybrid named by its v1 hash at our first v2 hash request.
  std::array<uint8_t, 20> mse_hash = info_hash;
  bool v2 = false;
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    if (const auto& h = it->second->hashes().v2) {
      v2 = true;
      std::memcpy(mse_hash.data(), h->bytes.data(), 20);
    }
  }
  plan.handshake = wire::EncodeHandshake(OurHandshake(info_hash, v2));
  plan.mse_key = Key(reinterpret_cast<const char*>(mse_hash.data()), 20);
  plan.mse_handshake = wire::EncodeHandshake(OurHandshake(mse_hash, v2));
  // Torrents follow the encryption policy and try µTP first, as libtorrent
  // does; cluster content is plaintext TCP (the fast path between nodes).
  const bool content = contents_.contains(key);
  plan.policy = content ? Encryption::kOff : options_.encryption;
  const PeerEndpoint peer = ToPeerEndpoint(to);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = no_utp_.find(peer);
      it != no_utp_.end() && now - it->second >= std::chrono::hours(1)) {
    no_utp_.erase(it);
  }
  if (!content && UtpFor(to) != nullptr && options_.utp &&
      !no_utp_.contains(peer)) {
    const Dialed d = co_await Dial<UtpSocket>(plan, to);
    if (d == Dialed::kConnected || d == Dialed::kGone) co_return;
    if (d == Dialed::kFailed) {
      fail();
      co_return;
    }
    if (no_utp_.size() >= 10000) no_utp_.clear();
    no_utp_[peer] = now;
  }
  if (content || options_.tcp) {
    const Dialed d = co_await Dial<tcp::socket>(plan, to);
    if (d == Dialed::kConnected || d == Dialed::kGone) co_return;
  }
  fail();
}

template <typename Stream>
asio::awaitable<Session::Dialed> Session::Dial(const OutgoingPlan& plan,
                                               tcp::endpoint to) {
  constexpr bool kUtp = std::is_same_v<Stream, UtpSocket>;
  boost::system::error_code ec;
  bool encrypt = plan.policy != Encryption::kOff;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if constexpr (kUtp) {
      if (UtpFor(to) == nullptr) co_return Dialed::kGone;  // stopping
    }
    Stream socket = NewStream<Stream>(to);
    asio::steady_timer timer(io_);
    CloseOnTimeout(timer, socket);
    co_await socket.async_connect(
        to, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      // A peer without µTP is common; TCP follows.
      if (kUtp) {
        spdlog::debug("no utp from {}:{}: {}", to.address().to_string(),
                      to.port(), ec.message());
      } else {
        spdlog::info("cannot connect to {}:{}: {}", to.address().to_string(),
                     to.port(), ec.message());
      }
      co_return attempt == 0 ? Dialed::kUnreachable : Dialed::kFailed;
    }
    NoDelay(socket);
    std::string pending;  // their stream after the MSE handshake, plaintext
    wire::MseCiphers ciphers;
    if (encrypt) {
      absl::Status s = co_await ConnectEncrypted(
          socket, plan.mse_key, plan.mse_handshake,
          plan.policy == Encryption::kRequire, pending, ciphers);
      if (!s.ok()) {
        spdlog::debug("encrypted handshake with {}:{} failed: {}",
                      to.address().to_string(), to.port(), s.ToString());
        if (plan.policy == Encryption::kPrefer && attempt == 0) {
          encrypt = false;  // once more, in plaintext
          continue;
        }
        co_return Dialed::kFailed;
      }
    } else {
      co_await asio::async_write(socket, asio::buffer(plan.handshake),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Dialed::kFailed;
    }
    // Their handshake: what came with the MSE reply first, then the socket.
    absl::Status read = co_await ReadHandshake(socket, pending, ciphers);
    timer.cancel();
    if (!read.ok() || !socket.is_open()) co_return Dialed::kFailed;
    auto theirs = wire::ParseHandshake(
        std::string_view(pending).substr(0, wire::kHandshakeLength));
    pending.erase(0, wire::kHandshakeLength);
    if (!theirs.ok() || theirs->peer_id == peer_id_) {
      // Our own address (a tracker told us of ourselves) ends here too.
      co_return Dialed::kFailed;
    }
    auto it = by_key_.find(plan.key);
    if (it == by_key_.end()) co_return Dialed::kGone;
    // A hybrid's peer may answer with the other hash (libtorrent upgrades to
    // the v2 one when we set the v2 bit).
    const Key answered(reinterpret_cast<const char*>(theirs->info_hash.data()),
                       20);
    auto other = by_key_.find(answered);
    if (other == by_key_.end() || other->second != it->second)
      co_return Dialed::kFailed;
    auto conn = std::make_shared<BasicPeerConnection<Stream>>(
        std::move(socket), next_key_++, std::move(pending));
    if (ciphers.encrypt) conn->SetCiphers(std::move(ciphers));
    it->second->AddPeer(conn, *theirs, /*incoming=*/false);
    co_return Dialed::kConnected;
  }
  co_return Dialed::kFailed;
}

// The initiating side of an encrypted (MSE) handshake, our BitTorrent
// handshake as its initial payload; leaves in `pending` what the peer sent
// after its part, decrypted.
template <typename Stream>
asio::awaitable<absl::Status> Session::ConnectEncrypted(
    Stream& socket, const Key& key, const std::string& handshake, bool rc4_only,
    std::string& pending, wire::MseCiphers& ciphers) {
  wire::MseInitiator::Options o;
  o.skey = key;
  o.provide = rc4_only ? wire::kMseRc4 : (wire::kMseRc4 | wire::kMsePlaintext);
  o.initial = handshake;
  o.random_bytes = MseOptions().random_bytes;
  wire::MseInitiator mse(std::move(o));
  absl::Status driven = co_await DriveMse(socket, mse);
  if (!driven.ok()) co_return driven;
  pending = mse.TakePayload();
  ciphers = mse.TakeCiphers();
  co_return absl::OkStatus();
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

std::optional<Session::Transfer> Session::ContentTransfer(
    const chunk::ContentId& id) {
  return RunOn(io_, [&]() -> std::optional<Transfer> {
    auto it = contents_.find(Key(id.AsStringView().substr(0, 20)));
    if (it == contents_.end() || !it->second->has_metadata() ||
        it->second->complete())
      return std::nullopt;
    const ContentSwarm& s = *it->second;
    Transfer t;
    t.download_rate = s.download_rate();
    t.num_peers = static_cast<uint32_t>(s.num_peers());
    const uint64_t left =
        s.bytes_wanted() - std::min(s.bytes_wanted(), s.bytes_have());
    if (t.download_rate >= 1 && left > 0)
      t.eta_seconds = static_cast<int64_t>(
          std::ceil(static_cast<double>(left) / t.download_rate));
    return t;
  });
}

size_t Session::NumPeers() {
  return RunOn(io_, [&] { return TotalPeers(); });
}

}  // namespace shoal::node
