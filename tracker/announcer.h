// Announcer: keeps one torrent announced to its trackers. It runs the BEP 12
// Multitracker state machine with asio timers, sends announces through
// HttpTrackerClient / UdpTrackerClient (one per tracker URL, created on first
// use), and hands the peers the trackers return to a callback.
//
//   Announcer a(io, hashes, metainfo.announce_tiers, options,
//               [&] { return TransferStats{up, down, left}; },
//               [&](const std::vector<PeerEndpoint>& peers) { Connect(peers);
//               });
//   a.Start();          // "started"
//   a.Complete();       // "completed" when the download finishes
//   a.Stop([&] { ... });  // "stopped" to every tracker that saw "started"
//
// A hybrid torrent is announced under both its v1 hash and its truncated v2
// hash, as two announces to the same tracker (as libtorrent does); the
// tracker counts as answering if either succeeds, and the peers of both are
// reported. A v2-only torrent announces the truncated v2 hash.
#ifndef SHOAL_TRACKER_ANNOUNCER_H_
#define SHOAL_TRACKER_ANNOUNCER_H_

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/info_hash.h"
#include "tracker/announce.h"
#include "tracker/http_tracker_client.h"
#include "tracker/multitracker.h"
#include "tracker/tracker_client.h"
#include "tracker/udp_tracker_client.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace shoal::tracker {

// Transfer totals reported in announces. A value type.
struct TransferStats {
  int64_t uploaded = 0;
  int64_t downloaded = 0;
  int64_t left = 0;
};

// A value type.
struct AnnouncerOptions {
  PeerId peer_id;
  // The port peers should connect to.
  uint16_t listen_port = 0;
  // Sent as AnnounceRequest::ipv4 / ipv6 (BEP 7) when set.
  std::optional<std::string> ipv4;
  std::optional<std::string> ipv6;
  // Peers asked for per announce (0 is sent with "stopped").
  std::optional<int32_t> numwant = 200;
  // Seeds the tier shuffle, the announce key and UDP transaction IDs. The
  // node passes a random value; tests pass a fixed one.
  uint64_t random_seed = 0;
  // After Stop(), its callback runs when every "stopped" is answered or
  // failed, or after this long, whichever is first.
  std::chrono::milliseconds stop_timeout{5'000};
  MultitrackerOptions multitracker;
  HttpTrackerClientOptions http;
  UdpTrackerClientOptions udp;
};

// Thread-compatible: use from the io_context's thread only. Callbacks run on
// that thread and must not destroy the Announcer (except Stop's callback,
// which may).
class Announcer {
 public:
  using ClientFactory =
      std::function<absl::StatusOr<std::unique_ptr<TrackerClient>>(
          const std::string& url)>;
  using PeersCallback =
      std::function<void(const std::vector<PeerEndpoint>& peers)>;
  using StatsProvider = std::function<TransferStats()>;

  // `tiers` as for Multitracker. `client_factory` makes the client for a
  // tracker URL; by default HTTP(S) and UDP clients with options.http and
  // options.udp (tests substitute fakes). REQUIRES: !hashes.empty().
  Announcer(boost::asio::io_context& io, chunk::InfoHashes hashes,
            std::vector<std::vector<std::string>> tiers,
            AnnouncerOptions options, StatsProvider stats,
            PeersCallback on_peers, ClientFactory client_factory = nullptr);
  // Cancels everything in flight, without sending "stopped".
  ~Announcer();
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  // Starts announcing ("started"), or resumes after Stop.
  void Start();
  // The download completed: send "completed".
  void Complete();
  // Announce again as soon as the trackers' min intervals allow.
  void Reannounce();
  // Sends "stopped" to every tracker that saw "started"; then (or after
  // options.stop_timeout) posts `done`.
  void Stop(std::function<void()> done);

  // Scrapes the torrent's hashes from the tracker that last answered (or the
  // first in order). UNIMPLEMENTED if that tracker has no scrape URL;
  // NOT_FOUND if there are no trackers.
  void Scrape(ScrapeCallback done);

  const Multitracker& multitracker() const { return multitracker_; }
  // The 20-byte hashes this torrent is announced under (one or two).
  const std::vector<AnnounceHash>& announce_hashes() const {
    return announce_hashes_;
  }

 private:
  struct Timers;
  struct InFlight;

  void Pump();
  void ArmTimer();
  void Send(const Multitracker::Announce& announce);
  void Finish(const std::shared_ptr<InFlight>& flight);
  void MaybeFinishStop();
  absl::StatusOr<TrackerClient*> ClientFor(TrackerIndex i);
  absl::StatusOr<std::unique_ptr<TrackerClient>> MakeDefaultClient(
      const std::string& url);

  boost::asio::io_context& io_;
  const AnnouncerOptions options_;
  std::vector<AnnounceHash> announce_hashes_;
  StatsProvider stats_;
  PeersCallback on_peers_;
  ClientFactory client_factory_;
  std::mt19937_64 rng_;
  const uint32_t key_;
  Multitracker multitracker_;
  // By TrackerIndex; created on first use.
  std::vector<std::unique_ptr<TrackerClient>> clients_;
  std::unique_ptr<Timers> timers_;
  std::function<void()> stop_done_;
  // Timer handlers hold a weak_ptr to this, so a handler queued before the
  // Announcer was destroyed can tell and do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_ANNOUNCER_H_
