// Fakes for driving the swarm engine without sockets, threads or clocks:
// FakeEnv (a SwarmEnv whose time moves only when told, work runs when pumped),
// FakeLink/FakeNet (links that carry bytes between swarms in one process),
// MemoryStorage, and TestSwarm (a Swarm over memory, seeded or empty).
// Test-only.
//
//   FakeEnv env(/*seed=*/1);
//   FakeNet net(env);
//   TestSwarm seed(env, content, options), leech(env, content.hashes, options);
//   seed.StartSeeding();
//   leech.StartEmpty();
//   net.Connect(leech, seed);
//   net.RunUntil([&] { return leech.complete(); }, /*max_seconds=*/60);
#ifndef SHOAL_NODE_SWARM_FAKES_H_
#define SHOAL_NODE_SWARM_FAKES_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/peer_endpoint.h"
#include "chunk/content_id.h"
#include "chunk/info_hash.h"
#include "chunk/metainfo.h"
#include "node/swarm.h"
#include "node/swarm_env.h"
#include "store/piece_storage.h"
#include "wire/handshake.h"
#include "wire/message.h"

namespace shoal::node::testing {

class FakeEnv final : public SwarmEnv {
 public:
  explicit FakeEnv(uint64_t seed) : rng_(seed) {}

  uint64_t Random() override { return rng_(); }
  void Offload(std::function<void()> work,
               std::function<void()> done) override {
    queue_.push_back([work = std::move(work), done = std::move(done)] {
      work();
      done();
    });
  }
  void Defer(std::function<void()> fn) override {
    queue_.push_back(std::move(fn));
  }
  std::unique_ptr<Ticker> EverySecond(std::function<void()> tick) override;

  // Runs what is queued (and what that queues), at most `max` jobs. Returns
  // how many ran.
  size_t RunQueued(size_t max = 1'000'000);
  // One second passes: every ticker ticks once.
  void TickAll();
  uint64_t seconds() const { return seconds_; }

 private:
  class FakeTicker;
  std::mt19937_64 rng_;
  std::deque<std::function<void()>> queue_;
  std::map<uint64_t, std::function<void()>> tickers_;
  uint64_t next_ticker_ = 1;
  uint64_t seconds_ = 0;
};

class FakeNet;

// One end of an in-process connection. Bytes sent reach the other end's
// handler when the net is pumped, parsed into messages as a socket's reader
// would.
class FakeLink final : public PeerLink {
 public:
  FakeLink(FakeNet* net, uint64_t key, PeerEndpoint remote)
      : net_(net), key_(key), remote_(remote) {}

  void Start(Handler* handler) override { handler_ = handler; }
  void Send(std::string bytes) override;
  void Send(const wire::Message& message) override;
  void SetRateLimits(std::vector<std::shared_ptr<RateLimit>>,
                     std::vector<std::shared_ptr<RateLimit>>) override {}
  void Close(const absl::Status& why) override;
  uint64_t key() const override { return key_; }
  const PeerEndpoint& remote() const override { return remote_; }
  size_t queued_bytes() const override { return queued_bytes_; }
  uint64_t bytes_received() const override { return bytes_received_; }
  uint64_t bytes_sent() const override { return bytes_sent_; }

  // Bytes delivery is instant; a test may say some wait (a backlog).
  void set_queued_bytes(size_t n) { queued_bytes_ = n; }
  // The other end (the swarm's, for a scripted peer's link).
  std::shared_ptr<FakeLink> other() const { return other_.lock(); }
  bool closed() const { return closed_; }
  const absl::Status& close_status() const { return close_status_; }
  // Messages this end received (when it has no handler: a scripted peer).
  std::vector<std::string>& received() { return received_; }
  // Changes each message this end sends (a hostile peer); null: none.
  void set_tamper(std::function<void(std::string& encoded)> f) {
    tamper_ = std::move(f);
  }

 private:
  friend class FakeNet;
  // Hands the complete messages that arrived to the handler. True if any.
  bool Deliver();

  FakeNet* net_;
  const uint64_t key_;
  const PeerEndpoint remote_;
  Handler* handler_ = nullptr;
  std::weak_ptr<FakeLink> other_;
  std::string inbox_;
  bool closed_ = false;
  absl::Status close_status_;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  size_t queued_bytes_ = 0;
  std::vector<std::string> received_;
  std::function<void(std::string&)> tamper_;
};

class FakeNet {
 public:
  explicit FakeNet(FakeEnv& env) : env_(env) {}

  // Connects `dialer` to `listener` (a handshake with the extension
  // protocol, the fast extension and v2), as the session would.
  void Connect(Swarm& dialer, Swarm& listener);
  // A peer with no swarm behind it, connected to `swarm`: what it is sent
  // lands in the returned link's received(); it sends with Send().
  std::shared_ptr<FakeLink> ConnectScripted(Swarm& swarm);
  // `a` and `b` dial each other at once: each finishes its own handshake
  // before the other's arrives. Gives both their own peer IDs first.
  void ConnectCrossed(Swarm& a, Swarm& b);

  // Delivers messages and runs queued work until nothing moves, `stop` says
  // so (checked after each round), or `max_rounds` rounds.
  void Pump(const std::function<bool()>& stop = nullptr,
            int max_rounds = 100'000);
  // Pumps, then lets a second pass, until `done` (checked after each round)
  // or `max_seconds` passed. Returns `done()`.
  bool RunUntil(const std::function<bool()>& done, int max_seconds);

  // The address the n-th swarm connected through this net appears at.
  PeerEndpoint AddressOf(const Swarm& s);

 private:
  friend class FakeLink;
  std::pair<std::shared_ptr<FakeLink>, std::shared_ptr<FakeLink>> Pair(
      const PeerEndpoint& a, const PeerEndpoint& b);

  FakeEnv& env_;
  uint64_t next_key_ = 1;
  std::map<const Swarm*, PeerEndpoint> addresses_;
  std::vector<std::shared_ptr<FakeLink>> links_;
  // Links whose other end closed: they close on the next pump.
  std::vector<std::weak_ptr<FakeLink>> remote_closed_;
};

// Piece bytes in memory.
class MemoryStorage final : public store::PieceStorage {
 public:
  explicit MemoryStorage(chunk::ContentLayout layout) : layout_(layout) {}
  absl::Status WritePiece(uint32_t piece, std::string_view data) override;
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override;
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override;

  // Every read of these pieces returns their bytes with one bit flipped.
  void CorruptOnRead(uint32_t piece) { corrupt_.insert({piece, true}); }
  std::map<uint32_t, std::string>& pieces() { return pieces_; }

 private:
  const chunk::ContentLayout layout_;
  std::map<uint32_t, std::string> pieces_;
  std::map<uint32_t, bool> corrupt_;
};

// A canonical single-file v2 content (as `shoal add` makes it) from bytes:
// the metainfo with its piece layer, and the bytes.
struct TestContent {
  chunk::InfoHashes hashes;
  std::shared_ptr<chunk::Metainfo> metainfo;  // with its piece layer
  std::string data;
  chunk::ContentLayout layout;

  static TestContent Make(size_t size, uint64_t seed);
};

// A Swarm over MemoryStorage.
class TestSwarm final : public Swarm {
 public:
  TestSwarm(SwarmEnv& env, const TestContent& content, SwarmOptions options)
      : Swarm(env, content.hashes, options, "shoal-test", 6881),
        content_(content) {}

  // Starts with every piece (metadata and piece layer known).
  void StartSeeding();
  // Starts with nothing: the metadata comes over ut_metadata, the piece layer
  // over hash requests.
  void StartEmpty() {}

  bool completed() const { return completed_; }
  std::shared_ptr<MemoryStorage> memory() const { return memory_; }
  // The bytes held, in order (complete() only).
  std::string Bytes() const;
  // The pieces verified and stored, in the order they were.
  const std::vector<uint32_t>& have_order() const { return have_order_; }

 protected:
  void Prepare() override;
  void OnComplete() override { completed_ = true; }
  void OnPieceHave(uint32_t piece) override { have_order_.push_back(piece); }

 private:
  const TestContent& content_;
  bool seeding_ = false;
  bool completed_ = false;
  std::shared_ptr<MemoryStorage> memory_;
  std::vector<uint32_t> have_order_;
};

}  // namespace shoal::node::testing

#endif  // SHOAL_NODE_SWARM_FAKES_H_
