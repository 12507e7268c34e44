// Integration tests against Debian's opentracker on 127.0.0.1: its HTTP and
// UDP interfaces on one OS-chosen port, with a whitelist (opentracker serves
// nothing else). Skipped, with a reason, where opentracker cannot run.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tracker/announcer.h"
#include "tracker/http_tracker_client.h"
#include "tracker/internal/asio.h"
#include "tracker/internal/io_test_util.h"
#include "tracker/udp_tracker_client.h"

extern char** environ;

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using std::chrono::milliseconds;
using testing::RunUntil;

constexpr char kOpentracker[] = "/usr/bin/opentracker";

AnnounceHash HashOf(char fill) {
  return AnnounceHash::FromBytes(std::string(20, fill));
}

// A TCP and UDP port on 127.0.0.1 that was free a moment ago.
uint16_t FreePort() {
  asio::io_context io;
  for (int i = 0; i < 20; ++i) {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    uint16_t port = a.local_endpoint().port();
    boost::system::error_code ec;
    asio::ip::udp::socket u(io);
    u.open(asio::ip::udp::v4(), ec);
    if (!ec) u.bind({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) return port;
  }
  return 0;
}

// Whether process `pid` holds the socket listening on TCP 127.0.0.1:`port`
// (from /proc): a free port found earlier may have been taken meanwhile by
// another test's tracker, which would then answer our requests.
bool ListensOn(pid_t pid, uint16_t port) {
  std::vector<std::string> sockets;  // "socket:[inode]" -> inode
  std::error_code ec;
  const fs::path fds = fs::path("/proc") / std::to_string(pid) / "fd";
  for (const auto& e : fs::directory_iterator(fds, ec)) {
    const std::string target = fs::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0)
      sockets.push_back(target.substr(8, target.size() - 9));
  }
  char local[32];
  std::snprintf(local, sizeof(local), "0100007F:%04X", port);
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, addr, remote, state, queues, timer, retr, uid, timeout,
        inode;
    in >> slot >> addr >> remote >> state >> queues >> timer >> retr >> uid >>
        timeout >> inode;
    if (addr == local && state == "0A" &&
        std::find(sockets.begin(), sockets.end(), inode) != sockets.end())
      return true;
  }
  return false;
}

class OpentrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kOpentracker, X_OK) != 0) {
      GTEST_SKIP() << kOpentracker << " is not installed";
    }
    char tmpl[] = "/tmp/shoal-opentracker-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) GTEST_SKIP() << "mkdtemp failed";
    dir_ = tmpl;
    // opentracker chroots here and drops to "nobody", who must read it.
    chmod(dir_.c_str(), 0755);
    {
      std::ofstream w(dir_ / "whitelist");
      for (char c : {'\x11', '\x22', '\x33', '\x44'}) {
        w << HashOf(c).Hex() << "\n";
      }
    }
    chmod((dir_ / "whitelist").c_str(), 0644);
    // A free port may be taken by another test's listener before opentracker
    // binds it: then try another.
    for (int attempt = 0; attempt < 3; ++attempt) {
      bool retry = false;
      const std::string error = Start(retry);
      if (error.empty()) return;
      if (!retry) GTEST_SKIP() << error;
      Stop();
    }
    GTEST_SKIP() << "no port stayed free for opentracker in 3 tries";
  }

  // Starts opentracker on a free port; "" when it listens there. `retry`:
  // the port was taken by someone else meanwhile.
  std::string Start(bool& retry) {
    port_ = FreePort();
    if (port_ == 0) return "no free port on 127.0.0.1";
    const std::string port = std::to_string(port_);
    const std::string log = (dir_ / "opentracker.log").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> args = {kOpentracker,  "-i", "127.0.0.1", "-p",
                                     port,          "-P", port,        "-d",
                                     dir_.string(), "-w", "whitelist"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, kOpentracker, &actions, nullptr, argv.data(),
                         environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return std::string("cannot start opentracker: ") + strerror(rc);
    }
    // Ready when its TCP port accepts, and the listener is its own.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::ifstream in(log);
        std::string out((std::istreambuf_iterator<char>(in)), {});
        retry = out.find("bind") != std::string::npos;
        return "opentracker exited at start: " + out;
      }
      asio::io_context io;
      tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
      if (!ec) {
        if (ListensOn(pid_, port_)) return "";
        retry = true;  // someone else's listener: ours could not bind
        return "127.0.0.1:" + port + " was taken by another process";
      }
      std::this_thread::sleep_for(
          milliseconds(20));  // a child process: no clock to inject
    }
    return "opentracker did not listen on 127.0.0.1:" + port;
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(milliseconds(10));
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  void TearDown() override {
    Stop();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  std::string HttpUrl() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/announce";
  }
  std::string UdpUrl() const {
    return "udp://127.0.0.1:" + std::to_string(port_) + "/announce";
  }

  static AnnounceRequest Peer(AnnounceHash hash, uint16_t port,
                              TrackerEvent event) {
    AnnounceRequest r;
    r.info_hash = hash;
    std::string id = "-SH0100-peer" + std::to_string(port);
    id.resize(20, 'x');
    r.peer_id = PeerId::FromBytes(id);
    r.port = port;
    r.left = 1000;
    r.event = event;
    r.numwant = 50;
    r.key = port;
    return r;
  }

  absl::StatusOr<AnnounceResponse> Announce(TrackerClient& c,
                                            const AnnounceRequest& r) {
    std::optional<absl::StatusOr<AnnounceResponse>> result;
    c.Announce(r, [&](auto x) { result = std::move(x); });
    if (!RunUntil(io_, [&] { return result.has_value(); })) {
      return absl::DeadlineExceededError("no callback");
    }
    return *result;
  }

  absl::StatusOr<std::vector<ScrapeEntry>> Scrape(TrackerClient& c,
                                                  AnnounceHash h) {
    std::optional<absl::StatusOr<std::vector<ScrapeEntry>>> result;
    c.Scrape({h}, [&](auto x) { result = std::move(x); });
    if (!RunUntil(io_, [&] { return result.has_value(); })) {
      return absl::DeadlineExceededError("no callback");
    }
    return *result;
  }

  static bool Has(const AnnounceResponse& r, uint16_t port) {
    return std::any_of(r.peers.begin(), r.peers.end(), [&](const auto& p) {
      return p.ToString() == "127.0.0.1:" + std::to_string(port);
    });
  }

  // Two peers announce; each sees the other; scrape counts them; "stopped"
  // removes one.
  void CheckSwarm(TrackerClient& c, AnnounceHash hash) {
    auto a = Announce(c, Peer(hash, 10001, TrackerEvent::kStarted));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_GT(a->interval.count(), 0);
    auto b = Announce(c, Peer(hash, 10002, TrackerEvent::kStarted));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_TRUE(Has(*b, 10001)) << "B does not see A";
    a = Announce(c, Peer(hash, 10001, TrackerEvent::kNone));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(Has(*a, 10002)) << "A does not see B";

    auto s = Scrape(c, hash);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].info_hash, hash);
    EXPECT_EQ((*s)[0].stats.incomplete, 2);
    EXPECT_EQ((*s)[0].stats.complete, 0);

    auto stop = Announce(c, Peer(hash, 10001, TrackerEvent::kStopped));
    ASSERT_TRUE(stop.ok()) << stop.status();
    b = Announce(c, Peer(hash, 10002, TrackerEvent::kNone));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE(Has(*b, 10001)) << "A is still listed after stopped";
    s = Scrape(c, hash);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].stats.incomplete, 1);
  }

  asio::io_context io_;
  fs::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// HTTP announce (compact peers), scrape and "stopped".
TEST_F(OpentrackerTest, HttpAnnounceScrapeStop) {
  auto c = HttpTrackerClient::Create(io_, HttpUrl());
  ASSERT_TRUE(c.ok()) << c.status();
  CheckSwarm(**c, HashOf('\x11'));
  // A hash that is not whitelisted is refused with the tracker's reason.
  auto r = Announce(**c, Peer(HashOf('\x99'), 10003, TrackerEvent::kStarted));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
      << r.status();
}

// The same over BEP 15.
TEST_F(OpentrackerTest, UdpAnnounceScrapeStop) {
  UdpTrackerClientOptions options;
  options.base_timeout = milliseconds(500);
  options.max_retries = 2;
  options.random_seed = 1;
  auto c = UdpTrackerClient::Create(io_, UdpUrl(), options);
  ASSERT_TRUE(c.ok()) << c.status();
  CheckSwarm(**c, HashOf('\x22'));
}

// Two Announcers for a hybrid torrent (udp tier first, http second) find
// each other, and Stop() takes both off the tracker.
TEST_F(OpentrackerTest, AnnouncersFindEachOther) {
  chunk::InfoHashes hashes;
  hashes.v1 = chunk::InfoHashV1::FromBytes(std::string(20, '\x33'));
  // The v2 hash's first 20 bytes are what is announced (and whitelisted).
  hashes.v2 = chunk::InfoHashV2::FromBytes(std::string(20, '\x44') +
                                           std::string(12, '\x55'));
  auto make = [&](uint16_t port, std::vector<PeerEndpoint>& seen) {
    AnnouncerOptions options;
    std::string id = "-SH0100-ann" + std::to_string(port);
    id.resize(20, 'y');
    options.peer_id = PeerId::FromBytes(id);
    options.listen_port = port;
    options.random_seed = port;
    options.udp.base_timeout = milliseconds(500);
    options.udp.max_retries = 1;
    options.http.timeout = milliseconds(2000);
    return std::make_unique<Announcer>(
        io_, hashes,
        std::vector<std::vector<std::string>>{{UdpUrl()}, {HttpUrl()}}, options,
        [] {
          return TransferStats{0, 0, 1000};
        },
        [&seen](const std::vector<PeerEndpoint>& p) {
          seen.insert(seen.end(), p.begin(), p.end());
        });
  };
  std::vector<PeerEndpoint> seen_a, seen_b;
  auto a = make(20001, seen_a);
  auto b = make(20002, seen_b);
  a->Start();
  ASSERT_TRUE(
      RunUntil(io_, [&] { return a->multitracker().working().has_value(); }));
  b->Start();
  const PeerEndpoint a_addr = *PeerEndpoint::FromIpString("127.0.0.1", 20001);
  ASSERT_TRUE(RunUntil(io_, [&] {
    return std::find(seen_b.begin(), seen_b.end(), a_addr) != seen_b.end();
  })) << "B never learned of A";
  // The UDP tracker (tier 1) answered, so HTTP was never needed.
  EXPECT_EQ(b->multitracker().tracker(*b->multitracker().working()).url,
            UdpUrl());

  int stopped = 0;
  a->Stop([&] { ++stopped; });
  b->Stop([&] { ++stopped; });
  ASSERT_TRUE(RunUntil(io_, [&] { return stopped == 2; }));
  EXPECT_EQ(a->multitracker().state(), Multitracker::State::kStopped);

  auto c = HttpTrackerClient::Create(io_, HttpUrl());
  for (const AnnounceHash& h : a->announce_hashes()) {
    auto s = Scrape(**c, h);
    ASSERT_TRUE(s.ok()) << s.status();
    int64_t peers = 0;
    for (const ScrapeEntry& e : *s) {
      peers += e.stats.complete + e.stats.incomplete;
    }
    EXPECT_EQ(peers, 0) << h.Hex();
  }
}

}  // namespace
}  // namespace shoal::tracker
