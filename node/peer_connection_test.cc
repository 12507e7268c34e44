// PeerConnection on a real loopback TCP connection: messages cut anywhere by
// the reads (one byte at a time, across the length prefix, a message larger
// than a read) arrive whole and in order, bytes given before Start come
// first, and a message over the limit closes the connection.
#include "node/peer_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

struct Recorder : PeerLink::Handler {
  std::vector<std::string> messages;  // each re-encoded
  std::optional<absl::Status> closed;
  void OnMessage(PeerLink&, const wire::Message& m) override {
    std::string bytes;
    wire::AppendMessage(m, bytes);
    messages.push_back(std::move(bytes));
  }
  void OnClose(PeerLink&, const absl::Status& why) override { closed = why; }
};

class PeerConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(
        io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client_.connect(acceptor.local_endpoint());
    server_ = acceptor.accept();
  }
  // Writes `bytes` in pieces of `step`, letting the connection read between.
  void Feed(std::string_view bytes, size_t step) {
    for (size_t at = 0; at < bytes.size(); at += step) {
      asio::write(client_, asio::buffer(bytes.substr(at, step)));
      io_.run_for(std::chrono::milliseconds(step < 64 ? 1 : 5));
    }
  }
  void RunUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 2000 && !done(); ++i)
      io_.run_for(std::chrono::milliseconds(5));
  }

  asio::io_context io_;
  tcp::socket client_{io_};
  tcp::socket server_{io_};
};

std::vector<std::string> Messages() {
  std::vector<wire::Message> ms;
  const std::string block(16384, 'b');
  const std::string bits(100000, '\xff');  // larger than a connection keeps
  ms.push_back(wire::Have{7});
  ms.push_back(wire::Piece{3, 16384, block});
  ms.push_back(wire::KeepAlive{});
  ms.push_back(wire::Bitfield{bits});
  ms.push_back(wire::Interested{});
  ms.push_back(wire::Piece{4, 0, block});
  std::vector<std::string> out;
  for (const auto& m : ms) {
    out.emplace_back();
    wire::AppendMessage(m, out.back());
  }
  return out;
}

TEST_F(PeerConnectionTest, MessagesCutAnywhereArriveWholeAndInOrder) {
  const std::vector<std::string> want = Messages();
  std::string stream;
  for (const auto& m : want) stream += m;
  // The first bytes came with the handshake: the constructor holds them.
  const size_t pending = 6;
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1,
                                               stream.substr(0, pending));
  conn->Start(&rec);
  std::string_view rest = std::string_view(stream).substr(pending);
  // One byte at a time across the first messages, then larger steps.
  Feed(rest.substr(0, 40), 1);
  Feed(rest.substr(40, 20000), 3001);
  Feed(rest.substr(20040), 65536);
  RunUntil([&] { return rec.messages.size() >= want.size(); });
  EXPECT_FALSE(rec.closed.has_value());
  EXPECT_EQ(rec.messages, want);
  EXPECT_EQ(conn->bytes_received(), rest.size());
  // The kernel's round-trip estimate of a loopback TCP connection: known,
  // and small (the request pipeline's cap uses it).
  EXPECT_GT(conn->rtt_us(), 0u);
  EXPECT_LT(conn->rtt_us(), 200'000u);
  conn->Close(absl::CancelledError("done"));
  EXPECT_EQ(conn->rtt_us(), 0u);
}

TEST_F(PeerConnectionTest, TheSameStreamAllAtOnce) {
  const std::vector<std::string> want = Messages();
  std::string stream;
  for (int i = 0; i < 20; ++i)
    for (const auto& m : want) stream += m;
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1, "");
  conn->Start(&rec);
  Feed(stream, stream.size());
  RunUntil([&] { return rec.messages.size() >= 20 * want.size(); });
  ASSERT_EQ(rec.messages.size(), 20 * want.size());
  for (size_t i = 0; i < rec.messages.size(); ++i)
    EXPECT_EQ(rec.messages[i], want[i % want.size()]) << i;
  conn->Close(absl::CancelledError("done"));
}

// A seed hears small messages (requests, haves) from a leecher. A peer with
// Nagle's algorithm on (libtorrent) holds its next small write until what it
// sent is acknowledged, and Linux delays an ACK by at least 40 ms once a
// connection looks interactive. Each small read is acknowledged at once.
TEST_F(PeerConnectionTest, SmallMessagesAreAcknowledgedAtOnce) {
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1, "");
  conn->Start(&rec);
  std::string have;
  wire::AppendMessage(wire::Have{1}, have);
  auto unacked = [&] {
    tcp_info info{};
    socklen_t len = sizeof info;
    ::getsockopt(client_.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len);
    return info.tcpi_unacked;
  };
  // Rounds of a message each way make the connection interactive (past the
  // kernel's quick ACKs of a new connection), then each small message's ACK
  // is looked for well within the 40 ms a delayed one takes.
  std::string reply(have.size(), '\0');
  for (int round = 0; round < 20; ++round) {
    asio::write(client_, asio::buffer(have));
    RunUntil([&] { return rec.messages.size() == size_t(round) + 1; });
    ASSERT_EQ(rec.messages.size(), size_t(round) + 1);
    bool acked = false;
    for (int i = 0; i < 20 && !acked; ++i) {
      acked = unacked() == 0;
      if (!acked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(acked) << "round " << round;
    conn->Send(wire::Have{2});
    io_.run_for(std::chrono::milliseconds(1));
    asio::read(client_, asio::buffer(reply));
  }
  conn->Close(absl::CancelledError("done"));
}

// A block sent from a cached piece goes out from the piece itself, between
// the messages queued before and after it, and the queue keeps the piece
// alive once the caller lets go of it.
TEST_F(PeerConnectionTest, SharedBytesGoOutInOrderAndOutliveTheCaller) {
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1, "");
  conn->Start(&rec);
  std::string bytes(65536, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  auto piece = std::make_shared<const std::string>(bytes);
  std::string want;
  wire::AppendMessage(wire::Have{5}, want);
  conn->Send(wire::Have{5});
  std::string head;
  wire::AppendPieceHeader(3, 16384, 16384, head);
  want += head + bytes.substr(16384, 16384);
  conn->SendShared(head, piece, 16384, 16384);
  wire::AppendMessage(wire::Interested{}, want);
  conn->Send(wire::Interested{});
  EXPECT_EQ(conn->queued_bytes(), want.size());
  std::weak_ptr<const std::string> watch = piece;
  piece.reset();
  std::string got(want.size(), '\0');
  size_t at = 0;
  for (int i = 0; i < 2000 && at < got.size(); ++i) {
    io_.run_for(std::chrono::milliseconds(1));
    boost::system::error_code ec;
    client_.non_blocking(true);
    at += client_.read_some(asio::buffer(got.data() + at, got.size() - at), ec);
    ASSERT_TRUE(!ec || ec == asio::error::would_block) << ec.message();
  }
  EXPECT_EQ(got, want);
  RunUntil([&] { return conn->queued_bytes() == 0; });
  EXPECT_EQ(conn->queued_bytes(), 0u);
  EXPECT_TRUE(watch.expired());  // written, so let go of
  conn->Close(absl::CancelledError("done"));
}

TEST_F(PeerConnectionTest, OversizedMessageClosesTheConnection) {
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1, "");
  conn->Start(&rec);
  std::string have;
  wire::AppendMessage(wire::Have{1}, have);
  Feed(have + std::string("\x7f\x00\x00\x00", 4), 2);
  RunUntil([&] { return rec.closed.has_value(); });
  ASSERT_TRUE(rec.closed.has_value());
  EXPECT_EQ(rec.closed->code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rec.messages, std::vector<std::string>{have});
}

TEST_F(PeerConnectionTest, PeerClosingEndsTheConnection) {
  Recorder rec;
  auto conn = std::make_shared<PeerConnection>(std::move(server_), 1, "");
  conn->Start(&rec);
  client_.close();
  RunUntil([&] { return rec.closed.has_value(); });
  ASSERT_TRUE(rec.closed.has_value());
  EXPECT_EQ(rec.closed->code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace shoal::node
