#include "node/utp_socket.h"

#include <chrono>
#include <utility>

#include "node/asio_swarm_env.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

constexpr auto kTick = std::chrono::milliseconds(50);

boost::system::error_code ErrorOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return asio::error::eof;
    case absl::StatusCode::kDeadlineExceeded:
      return asio::error::timed_out;
    case absl::StatusCode::kCancelled:
      return asio::error::operation_aborted;
    default:
      return asio::error::connection_reset;
  }
}

}  // namespace

// --- UtpService
// ----------------------------------------------------------------------

UtpService::UtpService(asio::io_context& io, asio::ip::udp::socket& socket,
                       utp::Stack::Options options)
    : io_(io),
      socket_(socket),
      stack_(
          std::move(options),
          [this](const PeerEndpoint& to, std::string_view d) { Send(to, d); },
          [] {
            static thread_local std::mt19937_64 r{std::random_device{}()};
            return r();
          }),
      timer_(io),
      socket_v6_(socket.local_endpoint().address().is_v6()) {}

UtpService::~UtpService() { Stop(); }

void UtpService::set_accept(std::function<void(UtpSocket)> accept) {
  accept_ = std::move(accept);
  if (!accept_) {
    stack_.set_accept(nullptr);
    return;
  }
  stack_.set_accept([this](std::shared_ptr<utp::Connection> c) {
    if (accept_) accept_(UtpSocket(*this, std::move(c)));
  });
}

void UtpService::Start() {
  if (running_) return;
  running_ = true;
  Tick();
}

void UtpService::Stop() {
  if (!running_) return;
  running_ = false;
  timer_.cancel();
  stack_.set_accept(nullptr);
}

uint64_t UtpService::now_us() const {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

void UtpService::Tick() {
  if (!running_) return;
  stack_.Tick(now_us());
  if (spdlog::should_log(spdlog::level::debug) && ++ticks_ % 40 == 0) {
    stack_.ForEach([](const utp::Connection& c) {
      spdlog::debug("utp {}", c.DebugString());
    });
  }
  timer_.expires_after(kTick);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Tick();
  });
}

bool UtpService::OnDatagram(const asio::ip::udp::endpoint& from,
                            std::string_view d) {
  if (!utp::LooksLikeUtp(d)) return false;
  if (!running_) return true;
  asio::ip::address a = from.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  stack_.OnDatagram(ToPeerEndpoint(tcp::endpoint(a, from.port())), d, now_us());
  return true;
}

void UtpService::FlushAcks() { stack_.FlushAcks(now_us()); }

std::shared_ptr<utp::Connection> UtpService::Connect(const PeerEndpoint& to) {
  return stack_.Connect(to, now_us());
}

void UtpService::Send(const PeerEndpoint& to, std::string_view datagram) {
  asio::ip::address a = ToTcpEndpoint(to).address();
  if (a.is_v4() && socket_v6_)
    a = asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
  if (a.is_v6() && !socket_v6_) return;
  boost::system::error_code ec;
  // Would block or unreachable: the datagram is lost and µTP sends it again.
  socket_.send_to(asio::buffer(datagram.data(), datagram.size()),
                  asio::ip::udp::endpoint(a, to.port), 0, ec);
}

// --- UtpSocket
// -----------------------------------------------------------------------

struct UtpSocket::State {
  asio::io_context* io;
  UtpService* service;  // only while alive
  std::weak_ptr<void> alive;
  std::shared_ptr<utp::Connection> conn;
  absl::Status closed = absl::OkStatus();
  bool ended = false;  // the connection closed (closed says why)
  Handler connect;
  asio::mutable_buffer read_buffer;
  Handler read;
  std::vector<asio::const_buffer> write_buffers;
  Handler write;

  void Complete(Handler& h, boost::system::error_code ec, size_t n) {
    if (!h) return;
    if (!alive.expired())
      asio::post(*io, [f = std::move(h), ec, n] { f(ec, n); });
    h = nullptr;
  }

  void TryRead() {
    if (!read) return;
    const size_t n = conn->Read(static_cast<char*>(read_buffer.data()),
                                read_buffer.size(), service->now_us());
    if (n > 0) {
      Complete(read, {}, n);
    } else if (conn->eof()) {
      Complete(read, ended ? ErrorOf(closed) : asio::error::eof, 0);
    }
  }

  void TryWrite() {
    if (!write) return;
    if (ended || !conn->connected()) {
      Complete(write, ended ? ErrorOf(closed) : asio::error::not_connected, 0);
      return;
    }
    size_t total = 0;
    for (const asio::const_buffer& b : write_buffers) {
      const size_t n = conn->Write(
          std::string_view(static_cast<const char*>(b.data()), b.size()),
          service->now_us());
      total += n;
      if (n < b.size()) break;
    }
    if (total > 0) Complete(write, {}, total);
  }

  void OnClosed(const absl::Status& why) {
    ended = true;
    closed = why;
    Complete(connect, ErrorOf(why.ok() ? absl::UnavailableError("") : why), 0);
    TryRead();
    TryWrite();
  }

  void Attach(const std::shared_ptr<State>& self) {
    std::weak_ptr<State> w = self;
    conn->SetCallbacks({.on_connected =
                            [w] {
                              if (auto s = w.lock())
                                s->Complete(s->connect, {}, 0);
                            },
                        .on_readable =
                            [w] {
                              if (auto s = w.lock()) s->TryRead();
                            },
                        .on_writable =
                            [w] {
                              if (auto s = w.lock()) s->TryWrite();
                            },
                        .on_closed =
                            [w](const absl::Status& why) {
                              if (auto s = w.lock()) s->OnClosed(why);
                            }});
  }
};

UtpSocket::UtpSocket(UtpService& service)
    : io_(&service.io()), state_(std::make_shared<State>()) {
  state_->io = io_;
  state_->service = &service;
  state_->alive = service.alive();
}

UtpSocket::UtpSocket(UtpService& service,
                     std::shared_ptr<utp::Connection> connection)
    : UtpSocket(service) {
  state_->conn = std::move(connection);
  state_->Attach(state_);
}

UtpSocket::UtpSocket(UtpSocket&&) noexcept = default;

UtpSocket& UtpSocket::operator=(UtpSocket&& other) noexcept {
  if (this != &other) {
    close();
    io_ = other.io_;
    state_ = std::move(other.state_);
  }
  return *this;
}

UtpSocket::~UtpSocket() { close(); }

void UtpSocket::StartConnect(const tcp::endpoint& to, Handler done) {
  State& s = *state_;
  if (s.alive.expired()) return;
  if (s.conn) {
    s.connect = std::move(done);
    s.Complete(s.connect, asio::error::already_connected, 0);
    return;
  }
  s.connect = std::move(done);
  s.conn = s.service->Connect(ToPeerEndpoint(to));
  s.Attach(state_);
}

void UtpSocket::StartRead(asio::mutable_buffer buffer, Handler done) {
  State& s = *state_;
  if (s.alive.expired()) return;
  s.read = std::move(done);
  s.read_buffer = buffer;
  if (!s.conn) return s.Complete(s.read, asio::error::not_connected, 0);
  if (buffer.size() == 0) return s.Complete(s.read, {}, 0);
  s.TryRead();
}

void UtpSocket::StartWrite(std::vector<asio::const_buffer> buffers,
                           Handler done) {
  State& s = *state_;
  if (s.alive.expired()) return;
  s.write = std::move(done);
  s.write_buffers = std::move(buffers);
  if (!s.conn) return s.Complete(s.write, asio::error::not_connected, 0);
  size_t total = 0;
  for (const auto& b : s.write_buffers) total += b.size();
  if (total == 0) return s.Complete(s.write, {}, 0);
  s.TryWrite();
}

tcp::endpoint UtpSocket::remote_endpoint(boost::system::error_code& ec) const {
  if (!state_ || !state_->conn) {
    ec = asio::error::not_connected;
    return {};
  }
  ec = {};
  return ToTcpEndpoint(state_->conn->remote());
}

bool UtpSocket::is_open() const {
  return state_ && state_->conn && !state_->ended && !state_->alive.expired();
}

uint64_t UtpSocket::rtt_us() const {
  return state_ && state_->conn ? state_->conn->rtt_us() : 0;
}

void UtpSocket::close(boost::system::error_code& ec) {
  ec = {};
  if (!state_) return;
  State& s = *state_;
  if (s.alive.expired()) {
    s.ended = true;
    return;
  }
  if (s.conn) {
    s.conn->SetCallbacks({});
    if (!s.ended) s.conn->Close(s.service->now_us());
  }
  s.ended = true;
  s.closed = absl::CancelledError("closed");
  s.Complete(s.connect, asio::error::operation_aborted, 0);
  s.Complete(s.read, asio::error::operation_aborted, 0);
  s.Complete(s.write, asio::error::operation_aborted, 0);
}

}  // namespace shoal::node
