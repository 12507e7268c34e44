#include "tracker/udp_tracker_client.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tracker/internal/asio.h"
#include "tracker/internal/io_test_util.h"
#include "tracker/udp_protocol.h"

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using boost::system::error_code;
using std::chrono::milliseconds;
using testing::RunFor;
using testing::RunUntil;
namespace bep15 = ::shoal::tracker::udp;

uint32_t Get32(std::string_view p, size_t at) {
  return (uint32_t{static_cast<uint8_t>(p[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(p[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(p[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(p[at + 3])};
}

constexpr uint64_t kConnectionId = 0x0123456789ABCDEF;

// A loopback UDP tracker. `handler` maps each datagram (and its index) to the
// datagrams to send back; by default it behaves like a real tracker.
class FakeUdpTracker {
 public:
  using Handler =
      std::function<std::vector<std::string>(const std::string&, size_t)>;

  explicit FakeUdpTracker(asio::io_context& io, Handler handler = nullptr)
      : socket_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        handler_(handler ? std::move(handler) : Handler(WellBehaved)) {
    asio::co_spawn(io, Loop(), asio::detached);
  }
  ~FakeUdpTracker() {
    error_code ignored;
    socket_.close(ignored);
  }

  uint16_t port() const { return socket_.local_endpoint().port(); }
  std::string url() const {
    return "udp://127.0.0.1:" + std::to_string(port()) + "/announce";
  }
  const std::vector<std::string>& received() const { return received_; }
  const std::vector<std::chrono::steady_clock::time_point>& times() const {
    return times_;
  }

  // A correct reply to any request.
  static std::vector<std::string> WellBehaved(const std::string& p, size_t) {
    if (p.size() < 16) return {};
    const uint32_t action = Get32(p, 8);
    const bep15::TransactionId tid{Get32(p, 12)};
    if (action == 0) {
      return {bep15::EncodeConnectResponse(tid,
                                           bep15::ConnectionId{kConnectionId})};
    }
    if (action == 1) {
      auto peer = PeerEndpoint::FromIpString("10.1.2.3", 6881);
      return {bep15::EncodeAnnounceReply(tid, 1200, 5, 6, {*peer})};
    }
    if (action == 2) {
      std::string r = bep15::EncodeErrorReply(tid, "");
      r[3] = 2;  // action scrape
      for (size_t i = 16; i + 20 <= p.size(); i += 20) {
        r +=
            std::string("\x00\x00\x00\x07\x00\x00\x00\x08\x00\x00\x00\x09", 12);
      }
      return {r};
    }
    return {};
  }

 private:
  asio::awaitable<void> Loop() {
    std::array<char, 2048> buf;
    while (true) {
      udp::endpoint from;
      error_code ec;
      size_t n = co_await socket_.async_receive_from(
          asio::buffer(buf), from,
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !socket_.is_open()) co_return;
      if (ec) continue;
      std::string p(buf.data(), n);
      received_.push_back(p);
      times_.push_back(std::chrono::steady_clock::now());
      for (const std::string& reply : handler_(p, received_.size() - 1)) {
        socket_.send_to(asio::buffer(reply), from, 0, ec);
      }
    }
  }

  udp::socket socket_;
  Handler handler_;
  std::vector<std::string> received_;
  std::vector<std::chrono::steady_clock::time_point> times_;
};

AnnounceRequest Request(uint16_t port = 6881) {
  AnnounceRequest r;
  r.info_hash = AnnounceHash::FromBytes(std::string(20, '\x5a'));
  r.peer_id = PeerId::FromBytes("-SH0100-123456789012");
  r.port = port;
  r.left = 100;
  r.event = TrackerEvent::kStarted;
  r.key = 77;
  return r;
}

UdpTrackerClientOptions FastOptions() {
  UdpTrackerClientOptions o;
  o.base_timeout = milliseconds(50);
  o.max_retries = 2;
  o.random_seed = 42;
  return o;
}

absl::StatusOr<AnnounceResponse> AnnounceAndWait(
    asio::io_context& io, UdpTrackerClient& client,
    AnnounceRequest request = Request()) {
  std::optional<absl::StatusOr<AnnounceResponse>> result;
  client.Announce(request, [&](auto r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value());
  if (!RunUntil(io, [&] { return result.has_value(); })) {
    return absl::InternalError("callback never ran");
  }
  return *result;
}

// connect, then announce with the connection ID; the reply's peers and
// counts come back.
TEST(UdpTrackerClientTest, ConnectsAndAnnounces) {
  asio::io_context io;
  FakeUdpTracker tracker(io);
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = AnnounceAndWait(io, **client);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(1200));
  EXPECT_EQ(r->incomplete, 5);
  EXPECT_EQ(r->complete, 6);
  ASSERT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(r->peers[0].ToString(), "10.1.2.3:6881");
  ASSERT_EQ(tracker.received().size(), 2u);
  EXPECT_EQ(tracker.received()[0].size(), 16u);
  auto announce = bep15::ParseAnnounceRequest(tracker.received()[1]);
  ASSERT_TRUE(announce.ok()) << announce.status();
  EXPECT_EQ(announce->connection.value, kConnectionId);
  EXPECT_EQ(announce->request.event, TrackerEvent::kStarted);
  EXPECT_EQ(announce->request.port, 6881);
  EXPECT_EQ(announce->request.key, 77u);
  EXPECT_EQ(announce->request.info_hash, Request().info_hash);
}

// The connection ID is reused within its lifetime; queued requests all run.
TEST(UdpTrackerClientTest, ReusesConnectionIdAndQueues) {
  asio::io_context io;
  FakeUdpTracker tracker(io);
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  ASSERT_TRUE(client.ok());
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    (*client)->Announce(Request(), [&](auto r) {
      EXPECT_TRUE(r.ok()) << r.status();
      ++done;
    });
  }
  ASSERT_TRUE(RunUntil(io, [&] { return done == 3; }));
  EXPECT_EQ(tracker.received().size(), 4u);  // one connect, three announces
}

// A lost datagram is retransmitted after base_timeout * 2^n.
TEST(UdpTrackerClientTest, RetransmitsAfterTimeout) {
  asio::io_context io;
  FakeUdpTracker tracker(io, [](const std::string& p, size_t index) {
    if (index == 0 || index == 2) return std::vector<std::string>{};  // drop
    return FakeUdpTracker::WellBehaved(p, index);
  });
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  auto r = AnnounceAndWait(io, **client);
  ASSERT_TRUE(r.ok()) << r.status();
  // connect (dropped), connect, announce (dropped), announce.
  ASSERT_EQ(tracker.received().size(), 4u);
  EXPECT_EQ(Get32(tracker.received()[0], 8), 0u);
  EXPECT_EQ(Get32(tracker.received()[1], 8), 0u);
  EXPECT_EQ(Get32(tracker.received()[2], 8), 1u);
  EXPECT_EQ(Get32(tracker.received()[3], 8), 1u);
  EXPECT_GE(tracker.times()[1] - tracker.times()[0], milliseconds(45));
  // Attempt 1 waits 100 ms; attempt 2 starts 200 ms windows.
  EXPECT_GE(tracker.times()[3] - tracker.times()[2], milliseconds(90));
}

// A silent tracker: DEADLINE_EXCEEDED after max_retries + 1 attempts.
TEST(UdpTrackerClientTest, GivesUpAfterRetries) {
  asio::io_context io;
  FakeUdpTracker tracker(io, [](const std::string&, size_t) {
    return std::vector<std::string>{};
  });
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  const auto start = std::chrono::steady_clock::now();
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_EQ(tracker.received().size(), 3u);
  // 50 + 100 + 200 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(340));
}

// An error reply is FAILED_PRECONDITION with the tracker's message; replies
// with the wrong transaction ID or garbage are ignored.
TEST(UdpTrackerClientTest, HandlesErrorsAndIgnoresStrays) {
  asio::io_context io;
  FakeUdpTracker tracker(io, [](const std::string& p, size_t index) {
    const bep15::TransactionId tid{Get32(p, 12)};
    if (index == 0) {
      return std::vector<std::string>{
          "garbage",
          bep15::EncodeConnectResponse(bep15::TransactionId{tid.value + 1},
                                       bep15::ConnectionId{1}),
          bep15::EncodeConnectResponse(tid,
                                       bep15::ConnectionId{kConnectionId})};
    }
    return std::vector<std::string>{
        bep15::EncodeErrorReply(tid, "torrent not registered")};
  });
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().ToString().find("torrent not registered"),
            std::string::npos);
  auto announce = bep15::ParseAnnounceRequest(tracker.received()[1]);
  ASSERT_TRUE(announce.ok());
  EXPECT_EQ(announce->connection.value, kConnectionId);
}

// Scrape pairs the stats with the requested hashes; too many hashes is
// INVALID_ARGUMENT.
TEST(UdpTrackerClientTest, Scrapes) {
  asio::io_context io;
  FakeUdpTracker tracker(io);
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  std::vector<AnnounceHash> hashes = {
      AnnounceHash::FromBytes(std::string(20, 'a')),
      AnnounceHash::FromBytes(std::string(20, 'b'))};
  std::optional<absl::StatusOr<std::vector<ScrapeEntry>>> result;
  (*client)->Scrape(hashes, [&](auto r) { result = std::move(r); });
  ASSERT_TRUE(RunUntil(io, [&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  ASSERT_EQ((*result)->size(), 2u);
  EXPECT_EQ((**result)[1].info_hash, hashes[1]);
  EXPECT_EQ((**result)[1].stats, (ScrapeStats{7, 8, 9}));

  result.reset();
  (*client)->Scrape(std::vector<AnnounceHash>(75, hashes[0]),
                    [&](auto r) { result = std::move(r); });
  ASSERT_TRUE(RunUntil(io, [&] { return result.has_value(); }));
  EXPECT_EQ(result->status().code(), absl::StatusCode::kInvalidArgument);
}

// Destroying the client drops its requests without calling back.
TEST(UdpTrackerClientTest, DestroyCancels) {
  asio::io_context io;
  FakeUdpTracker tracker(io, [](const std::string&, size_t) {
    return std::vector<std::string>{};
  });
  auto client = UdpTrackerClient::Create(io, tracker.url(), FastOptions());
  bool called = false;
  (*client)->Announce(Request(), [&](auto) { called = true; });
  (*client)->Announce(Request(), [&](auto) { called = true; });
  RunUntil(io, [&] { return !tracker.received().empty(); });
  client->reset();
  RunFor(io, milliseconds(200));
  EXPECT_FALSE(called);
}

// Only udp:// URLs with a port.
TEST(UdpTrackerClientTest, CreateValidates) {
  asio::io_context io;
  EXPECT_EQ(
      UdpTrackerClient::Create(io, "http://127.0.0.1/announce").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UdpTrackerClient::Create(io, "udp://127.0.0.1/").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::tracker
