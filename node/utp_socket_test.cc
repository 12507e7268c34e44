// UtpService and UtpSocket on real loopback UDP sockets: asio's composed
// operations (async_write, async_read) over µTP, end of stream, cancellation
// by close(), a connect nobody answers, and a socket outliving its service.
#include "node/utp_socket.h"

#include <array>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

using udp = asio::ip::udp;

// A UDP socket on 127.0.0.1 whose datagrams go to a UtpService (what
// DhtService does in the node).
struct Endpoint {
  explicit Endpoint(asio::io_context& io, utp::Stack::Options o = {})
      : socket(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    socket.non_blocking(true);
    // As the node sets them: room for bursts.
    socket.set_option(asio::socket_base::receive_buffer_size(4 << 20));
    socket.set_option(asio::socket_base::send_buffer_size(4 << 20));
    service = std::make_unique<UtpService>(io, socket, o);
    service->Start();
    Receive();
  }
  void Receive() {
    socket.async_receive_from(asio::buffer(buf), from,
                              [this](boost::system::error_code ec, size_t n) {
                                if (ec == asio::error::operation_aborted)
                                  return;
                                if (!ec && service)
                                  service->OnDatagram(
                                      from, std::string_view(buf.data(), n));
                                if (service) service->FlushAcks();
                                Receive();
                              });
  }
  tcp::endpoint address() const {
    return tcp::endpoint(socket.local_endpoint().address(),
                         socket.local_endpoint().port());
  }
  udp::socket socket;
  std::unique_ptr<UtpService> service;
  std::array<char, 65536> buf{};
  udp::endpoint from;
};

TEST(UtpSocketTest, ComposedReadsAndWritesThenEndOfStream) {
  asio::io_context io;
  Endpoint a(io), b(io);
  std::unique_ptr<UtpSocket> accepted;
  b.service->set_accept([&](UtpSocket s) {
    accepted = std::make_unique<UtpSocket>(std::move(s));
  });
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string got(data.size(), '\0');
  UtpSocket client(*a.service);
  bool wrote = false, read = false, eof = false;
  client.async_connect(b.address(), [&](boost::system::error_code ec) {
    ASSERT_FALSE(ec) << ec.message();
    asio::async_write(client, asio::buffer(data),
                      [&](boost::system::error_code ec, size_t n) {
                        ASSERT_FALSE(ec) << ec.message();
                        EXPECT_EQ(n, data.size());
                        wrote = true;
                        client.close();  // a FIN follows what was written
                      });
  });
  // The server side reads once it has been accepted.
  asio::steady_timer poll(io);
  std::function<void()> wait_accept = [&] {
    if (!accepted) {
      poll.expires_after(std::chrono::milliseconds(5));
      poll.async_wait([&](auto) { wait_accept(); });
      return;
    }
    asio::async_read(*accepted, asio::buffer(got),
                     [&](boost::system::error_code ec, size_t n) {
                       ASSERT_FALSE(ec) << ec.message();
                       EXPECT_EQ(n, got.size());
                       read = true;
                       static char one;
                       accepted->async_read_some(
                           asio::buffer(&one, 1),
                           [&](boost::system::error_code ec, size_t) {
                             eof = ec == asio::error::eof;
                           });
                     });
  };
  wait_accept();
  for (int i = 0; i < 1000 && !eof; ++i)
    io.run_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(wrote);
  EXPECT_TRUE(read);
  EXPECT_TRUE(got == data);
  EXPECT_TRUE(eof);
  boost::system::error_code ec;
  EXPECT_EQ(accepted->remote_endpoint(ec).port(), a.address().port());
}

TEST(UtpSocketTest, CloseCancelsAPendingRead) {
  asio::io_context io;
  Endpoint a(io), b(io);
  std::unique_ptr<UtpSocket> accepted;
  b.service->set_accept([&](UtpSocket s) {
    accepted = std::make_unique<UtpSocket>(std::move(s));
  });
  UtpSocket client(*a.service);
  boost::system::error_code read_ec;
  bool done = false;
  char buf[16];
  client.async_connect(b.address(), [&](boost::system::error_code ec) {
    ASSERT_FALSE(ec);
    client.async_read_some(asio::buffer(buf),
                           [&](boost::system::error_code ec, size_t) {
                             read_ec = ec;
                             done = true;
                           });
    client.close();
  });
  for (int i = 0; i < 300 && !done; ++i)
    io.run_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(done);
  EXPECT_EQ(read_ec, asio::error::operation_aborted);
  EXPECT_FALSE(client.is_open());
}

TEST(UtpSocketTest, AConnectNobodyAnswersTimesOut) {
  asio::io_context io;
  utp::Stack::Options o;
  o.connection.connect_timeout_us = 300'000;
  Endpoint a(io, o);
  udp::socket silent(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  UtpSocket client(*a.service);
  boost::system::error_code result;
  bool done = false;
  client.async_connect(tcp::endpoint(silent.local_endpoint().address(),
                                     silent.local_endpoint().port()),
                       [&](boost::system::error_code ec) {
                         result = ec;
                         done = true;
                       });
  for (int i = 0; i < 300 && !done; ++i)
    io.run_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(done);
  EXPECT_EQ(result, asio::error::timed_out);
}

TEST(UtpSocketTest, ASocketMayOutliveItsService) {
  asio::io_context io;
  auto a = std::make_unique<Endpoint>(io);
  Endpoint b(io);
  b.service->set_accept([](UtpSocket) {});
  auto client = std::make_unique<UtpSocket>(*a->service);
  client->async_connect(b.address(), [](boost::system::error_code) {});
  io.run_for(std::chrono::milliseconds(50));
  a->service.reset();  // the node shutting down first
  EXPECT_FALSE(client->is_open());
  client.reset();  // touches nothing
  io.run_for(std::chrono::milliseconds(20));
}

}  // namespace
}  // namespace shoal::node
