// µTP on the node's network thread: UtpService runs a utp::Stack on the
// listen port's UDP socket (DhtService reads the socket and hands it the
// datagrams whose first byte is µTP's), and UtpSocket is one connection as an
// asio stream (AsyncReadStream and AsyncWriteStream), so the handshakes and
// PeerConnection run on it as they do on a tcp::socket.
//
//   UtpService utp(io, udp_socket, {});
//   utp.set_accept([](UtpSocket s) { co_spawn(io, Incoming(std::move(s))); });
//   utp.Start();
//   UtpSocket s(utp);
//   co_await s.async_connect(endpoint, use_awaitable);
//   co_await asio::async_write(s, asio::buffer(handshake), use_awaitable);
#ifndef SHOAL_NODE_UTP_SOCKET_H_
#define SHOAL_NODE_UTP_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "base/peer_endpoint.h"
#include "node/asio.h"
#include "utp/stack.h"

namespace shoal::node {

class UtpSocket;

// Not thread-safe: everything runs on the io_context's (network) thread.
class UtpService {
 public:
  // REQUIRES: `socket` is open, bound and non-blocking; io and socket outlive
  // the service.
  UtpService(asio::io_context& io, asio::ip::udp::socket& socket,
             utp::Stack::Options options);
  ~UtpService();
  UtpService(const UtpService&) = delete;
  UtpService& operator=(const UtpService&) = delete;

  // Incoming connections, already acknowledged; none are taken without.
  void set_accept(std::function<void(UtpSocket)> accept);
  // Starts the timer that drives retransmissions (every 50 ms).
  void Start();
  // Resets every connection and stops the timer.
  void Stop();

  // A datagram read from the socket; false if it is not µTP (KRPC), which
  // is left to the DHT.
  bool OnDatagram(const asio::ip::udp::endpoint& from, std::string_view d);
  // After a batch of datagrams: the ACKs they earned.
  void FlushAcks();

  std::shared_ptr<utp::Connection> Connect(const PeerEndpoint& to);
  uint64_t now_us() const;
  asio::io_context& io() { return io_; }
  // Expires with the service: a socket that outlives it (in a coroutine
  // frame destroyed at shutdown) then touches nothing.
  std::weak_ptr<void> alive() const { return alive_; }
  size_t connections() const { return stack_.size(); }
  const utp::Stack::Stats& stats() const { return stack_.stats(); }

 private:
  void Send(const PeerEndpoint& to, std::string_view datagram);
  void Tick();

  asio::io_context& io_;
  asio::ip::udp::socket& socket_;
  utp::Stack stack_;
  asio::steady_timer timer_;
  std::function<void(UtpSocket)> accept_;
  bool running_ = false;
  uint64_t ticks_ = 0;
  const bool socket_v6_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

class UtpSocket {
 public:
  using executor_type = asio::io_context::executor_type;

  // Unconnected: async_connect() next.
  explicit UtpSocket(UtpService& service);
  // An accepted connection.
  UtpSocket(UtpService& service, std::shared_ptr<utp::Connection> connection);
  UtpSocket(UtpSocket&&) noexcept;
  UtpSocket& operator=(UtpSocket&&) noexcept;
  // Closes: a FIN follows what was written.
  ~UtpSocket();

  executor_type get_executor() { return io_->get_executor(); }

  // Handlers: void(boost::system::error_code[, size_t]). They run through
  // the io_context, never inside the call that starts them.
  template <typename Token>
  auto async_connect(const tcp::endpoint& to, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, const tcp::endpoint& to) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          StartConnect(to,
                       [h](boost::system::error_code ec, size_t) { (*h)(ec); });
        },
        token, to);
  }
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const Buffers& buffers) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          asio::mutable_buffer first;
          for (auto it = asio::buffer_sequence_begin(buffers);
               it != asio::buffer_sequence_end(buffers); ++it) {
            if (asio::mutable_buffer(*it).size() > 0) {
              first = *it;
              break;
            }
          }
          StartRead(first, [h](boost::system::error_code ec, size_t n) {
            (*h)(ec, n);
          });
        },
        token, buffers);
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const Buffers& buffers) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          std::vector<asio::const_buffer> bufs;
          for (auto it = asio::buffer_sequence_begin(buffers);
               it != asio::buffer_sequence_end(buffers); ++it) {
            bufs.emplace_back(*it);
          }
          StartWrite(std::move(bufs), [h](boost::system::error_code ec,
                                          size_t n) { (*h)(ec, n); });
        },
        token, buffers);
  }

  // The peer's address and UDP port (a tcp::endpoint, as the code it shares
  // with TCP expects).
  tcp::endpoint remote_endpoint(boost::system::error_code& ec) const;
  bool is_open() const;
  // The connection's smoothed round-trip time (µs); 0 before a sample.
  uint64_t rtt_us() const;
  // Pending operations end with operation_aborted; what was written still
  // goes, then a FIN.
  void close(boost::system::error_code& ec);
  void close() {
    boost::system::error_code ec;
    close(ec);
  }

 private:
  using Handler = std::function<void(boost::system::error_code, size_t)>;
  struct State;

  void StartConnect(const tcp::endpoint& to, Handler done);
  void StartRead(asio::mutable_buffer buffer, Handler done);
  void StartWrite(std::vector<asio::const_buffer> buffers, Handler done);

  asio::io_context* io_;
  std::shared_ptr<State> state_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_UTP_SOCKET_H_
