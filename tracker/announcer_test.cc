#include "tracker/announcer.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tracker/internal/asio.h"
#include "tracker/internal/io_test_util.h"

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
using testing::RunUntil;

// What fake trackers saw and how they answer, by URL.
struct FakeNetwork {
  using Script =
      std::function<absl::StatusOr<AnnounceResponse>(const AnnounceRequest&)>;
  std::map<std::string, Script> scripts;
  std::map<std::string, std::vector<AnnounceRequest>> requests;
  std::map<std::string, int> scrapes;
};

// Answers from the script, later on the io_context (never inline).
class FakeClient : public TrackerClient {
 public:
  FakeClient(asio::io_context& io, std::string url, FakeNetwork& net)
      : io_(io), url_(std::move(url)), net_(net) {}
  void Announce(const AnnounceRequest& r, AnnounceCallback done) override {
    net_.requests[url_].push_back(r);
    auto it = net_.scripts.find(url_);
    absl::StatusOr<AnnounceResponse> result =
        it == net_.scripts.end() ? absl::UnavailableError("no such tracker")
                                 : it->second(r);
    asio::post(io_, [done = std::move(done), result] { done(result); });
  }
  void Scrape(std::vector<AnnounceHash> hashes, ScrapeCallback done) override {
    ++net_.scrapes[url_];
    std::vector<ScrapeEntry> entries;
    for (const AnnounceHash& h : hashes) entries.push_back({h, {1, 2, 3}});
    asio::post(io_, [done = std::move(done), entries] { done(entries); });
  }

 private:
  asio::io_context& io_;
  std::string url_;
  FakeNetwork& net_;
};

AnnounceResponse WithPeers(std::vector<std::string> ips) {
  AnnounceResponse r;
  r.interval = std::chrono::seconds(1800);
  for (const std::string& ip : ips) {
    r.peers.push_back(*PeerEndpoint::FromIpString(ip, 6881));
  }
  return r;
}

chunk::InfoHashes Hybrid() {
  chunk::InfoHashes h;
  h.v1 = chunk::InfoHashV1::FromBytes(std::string(20, '\x01'));
  h.v2 = chunk::InfoHashV2::FromBytes(std::string(32, '\x02'));
  return h;
}

class AnnouncerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Announcer> Make(std::vector<std::vector<std::string>> tiers,
                                  chunk::InfoHashes hashes = Hybrid()) {
    AnnouncerOptions options;
    options.peer_id = PeerId::FromBytes("-SH0100-abcdefghijkl");
    options.listen_port = 6881;
    options.random_seed = 9;
    options.stop_timeout = std::chrono::milliseconds(2000);
    return std::make_unique<Announcer>(
        io_, hashes, std::move(tiers), options,
        [] {
          return TransferStats{1, 2, 3};
        },
        [this](const std::vector<PeerEndpoint>& p) {
          for (const auto& e : p) peers_.push_back(e.ToString());
          ++peer_reports_;
        },
        [this](const std::string& url)
            -> absl::StatusOr<std::unique_ptr<TrackerClient>> {
          if (url.rfind("wss://", 0) == 0) {
            return absl::InvalidArgumentError("unsupported scheme");
          }
          return std::make_unique<FakeClient>(io_, url, net_);
        });
  }

  asio::io_context io_;
  FakeNetwork net_;
  std::vector<std::string> peers_;
  int peer_reports_ = 0;
};

// A hybrid torrent announces both 20-byte hashes ("started", our port, key,
// stats); the peers of both answers are merged and reported once.
TEST_F(AnnouncerTest, AnnouncesHybridAndReportsPeers) {
  net_.scripts["http://a/announce"] = [](const AnnounceRequest& r) {
    return r.info_hash.bytes[0] == 1 ? WithPeers({"10.0.0.1", "10.0.0.2"})
                                     : WithPeers({"10.0.0.2", "10.0.0.3"});
  };
  auto a = Make({{"http://a/announce"}});
  a->Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return peer_reports_ == 1; }));
  const auto& reqs = net_.requests["http://a/announce"];
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].info_hash, Hybrid().v1.value());
  EXPECT_EQ(reqs[1].info_hash, Hybrid().v2->Truncated());
  for (const AnnounceRequest& r : reqs) {
    EXPECT_EQ(r.event, TrackerEvent::kStarted);
    EXPECT_EQ(r.port, 6881);
    EXPECT_EQ(r.uploaded, 1);
    EXPECT_EQ(r.downloaded, 2);
    EXPECT_EQ(r.left, 3);
    EXPECT_EQ(r.numwant, 200);
    EXPECT_EQ(r.key, reqs[0].key);
  }
  EXPECT_EQ(peers_, (std::vector<std::string>{"10.0.0.1:6881", "10.0.0.2:6881",
                                              "10.0.0.3:6881"}));
  EXPECT_EQ(a->multitracker().tracker(TrackerIndex{0}).next_announce -
                a->multitracker().tracker(TrackerIndex{0}).min_announce,
            std::chrono::seconds(1800 - 60));
}

// A dead tracker and an unusable URL fall through to one that works.
TEST_F(AnnouncerTest, FallsThroughDeadAndUnusableTrackers) {
  net_.scripts["udp://live:1"] = [](const AnnounceRequest&) {
    return WithPeers({"10.9.9.9"});
  };
  chunk::InfoHashes v1_only;
  v1_only.v1 = chunk::InfoHashV1::FromBytes(std::string(20, '\x07'));
  auto a =
      Make({{"wss://x/announce", "http://dead/announce"}, {"udp://live:1"}},
           v1_only);
  a->Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return peer_reports_ == 1; }));
  EXPECT_EQ(peers_, std::vector<std::string>{"10.9.9.9:6881"});
  EXPECT_EQ(net_.requests["http://dead/announce"].size(), 1u);
  const Multitracker& m = a->multitracker();
  EXPECT_EQ(m.tracker(TrackerIndex{0}).last_error.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.tracker(TrackerIndex{1}).last_error.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(m.working(), TrackerIndex{2});
}

// Stop sends "stopped" (numwant 0) to the trackers that saw "started", then
// calls back; Scrape goes to the working tracker.
TEST_F(AnnouncerTest, StopsAndScrapes) {
  net_.scripts["http://a/announce"] = [](const AnnounceRequest&) {
    return WithPeers({});
  };
  auto a = Make({{"http://a/announce"}});
  a->Start();
  ASSERT_TRUE(
      RunUntil(io_, [&] { return a->multitracker().working().has_value(); }));

  std::optional<absl::StatusOr<std::vector<ScrapeEntry>>> scraped;
  a->Scrape([&](auto r) { scraped = std::move(r); });
  ASSERT_TRUE(RunUntil(io_, [&] { return scraped.has_value(); }));
  ASSERT_TRUE(scraped->ok());
  EXPECT_EQ((*scraped)->size(), 2u);
  EXPECT_EQ(net_.scrapes["http://a/announce"], 1);

  bool stopped = false;
  a->Stop([&] { stopped = true; });
  ASSERT_TRUE(RunUntil(io_, [&] { return stopped; }));
  const auto& reqs = net_.requests["http://a/announce"];
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[2].event, TrackerEvent::kStopped);
  EXPECT_EQ(reqs[2].numwant, 0);
  EXPECT_EQ(peer_reports_, 0);  // empty peer lists are not reported
}

// Stop before anything was announced calls back at once; no trackers at all
// is harmless.
TEST_F(AnnouncerTest, StopWithoutTrackers) {
  auto a = Make({});
  a->Start();
  bool stopped = false;
  a->Stop([&] { stopped = true; });
  ASSERT_TRUE(RunUntil(
      io_, [&] { return stopped; }, std::chrono::milliseconds(500)));
  std::optional<absl::StatusOr<std::vector<ScrapeEntry>>> scraped;
  a->Scrape([&](auto r) { scraped = std::move(r); });
  ASSERT_TRUE(RunUntil(io_, [&] { return scraped.has_value(); }));
  EXPECT_EQ(scraped->status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shoal::tracker
