#include "node/session.h"

#include <sodium.h>

#include <chrono>
#include <cstring>
#include <future>

#include "absl/strings/str_cat.h"
#include "node/listen.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"

namespace shoal::node {
namespace {

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
                 std::string client_name)
    : store_(store),
      pool_(pool),
      client_name_(std::move(client_name)),
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
      swarms_.clear();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
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
  // The DHT will read this socket; until then datagrams are drained and
  // dropped.
  struct Drain {
    Session* s;
    void operator()(boost::system::error_code ec, size_t) const {
      if (ec == asio::error::operation_aborted) return;
      s->udp_.async_receive_from(asio::buffer(s->datagram_), s->sender_, *this);
    }
  };
  udp_.async_receive_from(asio::buffer(datagram_), sender_, Drain{this});
  thread_ = std::thread([this] { io_.run(); });
  HostPort bound = listen;
  bound.port = port_;
  return bound;
}

wire::Handshake Session::OurHandshake(
    const std::array<uint8_t, 20>& info_hash) const {
  wire::Handshake h;
  h.set_extensions(true);
  h.set_fast(true);
  h.set_v2(true);
  h.info_hash = info_hash;
  h.peer_id = peer_id_;
  return h;
}

void Session::Accept() {
  acceptor_.async_accept(
      [this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          asio::co_spawn(io_, Incoming(std::move(socket)), asio::detached);
        }
        Accept();
      });
}

ContentSwarm* Session::SwarmForInfoHash(std::string_view info_hash) {
  auto it = swarms_.find(Key(info_hash));
  if (it != swarms_.end()) return it->second.get();
  auto id = store_.FindByTruncatedId(info_hash);
  if (!id.ok()) return nullptr;
  return SwarmFor(*id);
}

ContentSwarm* Session::SwarmFor(const chunk::ContentId& id) {
  Key key(id.AsStringView().substr(0, 20));
  auto it = swarms_.find(key);
  if (it != swarms_.end()) {
    if (!it->second->events()->failed()) return it->second.get();
    swarms_.erase(it);  // a failed fetch: start afresh
  }
  auto swarm = std::make_unique<ContentSwarm>(
      io_, store_, pool_, id, SwarmOptions{}, client_name_, port_);
  swarm->Init();
  ContentSwarm* raw = swarm.get();
  swarms_[key] = std::move(swarm);
  return raw;
}

asio::awaitable<void> Session::Incoming(tcp::socket socket) {
  asio::steady_timer timer(io_);
  CloseOnTimeout(timer, socket);
  std::string buf(wire::kHandshakeLength, '\0');
  boost::system::error_code ec;
  co_await asio::async_read(socket, asio::buffer(buf),
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  auto theirs = wire::ParseHandshake(buf);
  if (!theirs.ok()) co_return;
  std::string_view info_hash(
      reinterpret_cast<const char*>(theirs->info_hash.data()), 20);
  ContentSwarm* swarm = SwarmForInfoHash(info_hash);
  if (swarm == nullptr) co_return;  // not ours: close
  if (swarm->IsBanned(socket.remote_endpoint(ec).address())) co_return;
  std::string ours = wire::EncodeHandshake(OurHandshake(swarm->info_hash()));
  co_await asio::async_write(socket, asio::buffer(ours),
                             asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec || !socket.is_open()) co_return;
  // The swarm may have gone while we wrote.
  swarm = SwarmForInfoHash(info_hash);
  if (swarm == nullptr) co_return;
  auto conn = std::make_shared<PeerConnection>(std::move(socket), next_key_++,
                                               std::string());
  swarm->AddPeer(conn, *theirs);
}

asio::awaitable<void> Session::Outgoing(chunk::ContentId id, tcp::endpoint to) {
  tcp::socket socket(io_);
  asio::steady_timer timer(io_);
  CloseOnTimeout(timer, socket);
  boost::system::error_code ec;
  co_await socket.async_connect(to,
                                asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::info("fetch {}: cannot connect to {}:{}: {}",
                 id.Hex().substr(0, 12), to.address().to_string(), to.port(),
                 ec.message());
    co_return;
  }
  std::array<uint8_t, 20> info_hash;
  std::memcpy(info_hash.data(), id.bytes.data(), 20);
  std::string ours = wire::EncodeHandshake(OurHandshake(info_hash));
  co_await asio::async_write(socket, asio::buffer(ours),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  std::string buf(wire::kHandshakeLength, '\0');
  co_await asio::async_read(socket, asio::buffer(buf),
                            asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec || !socket.is_open()) co_return;
  auto theirs = wire::ParseHandshake(buf);
  if (!theirs.ok() || theirs->info_hash != info_hash) co_return;
  Key key(id.AsStringView().substr(0, 20));
  auto it = swarms_.find(key);
  if (it == swarms_.end()) co_return;
  auto conn = std::make_shared<PeerConnection>(std::move(socket), next_key_++,
                                               std::string());
  it->second->AddPeer(conn, *theirs);
}

absl::StatusOr<std::shared_ptr<PieceEvents>> Session::Fetch(
    const chunk::ContentId& id, const std::vector<HostPort>& peers) {
  std::vector<tcp::endpoint> endpoints;
  for (const HostPort& hp : peers) {
    boost::system::error_code ec;
    asio::ip::address addr = asio::ip::make_address(hp.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peer address must be an IP address, got '", hp.host, "'"));
    }
    endpoints.emplace_back(addr, hp.port);
  }
  return RunOn(io_, [&]() -> std::shared_ptr<PieceEvents> {
    ContentSwarm* swarm = SwarmFor(id);
    if (!swarm->complete()) {
      for (const auto& ep : endpoints) {
        asio::co_spawn(io_, Outgoing(id, ep), asio::detached);
      }
    }
    return swarm->events();
  });
}

void Session::Forget(const chunk::ContentId& id) {
  RunOn(io_, [&] {
    swarms_.erase(Key(id.AsStringView().substr(0, 20)));
    return 0;
  });
}

size_t Session::NumPeers() {
  return RunOn(io_, [&] {
    size_t n = 0;
    for (const auto& [k, s] : swarms_) n += s->num_peers();
    return n;
  });
}

}  // namespace shoal::node
