#include "tracker/announcer.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "tracker/internal/asio.h"
#include "tracker/tracker_url.h"

namespace shoal::tracker {

namespace asio = boost::asio;

struct Announcer::Timers {
  explicit Timers(asio::io_context& io) : announce(io), stop(io) {}
  asio::steady_timer announce;
  asio::steady_timer stop;
};

// One announce to one tracker: one request per announce hash.
struct Announcer::InFlight {
  TrackerIndex tracker;
  TrackerEvent event = TrackerEvent::kNone;
  size_t pending = 0;
  absl::Status first_error;
  std::optional<AnnounceResponse> merged;
};

namespace {

void Merge(AnnounceResponse& into, AnnounceResponse from) {
  into.interval = std::max(into.interval, from.interval);
  if (from.min_interval) {
    into.min_interval =
        std::max(into.min_interval.value_or(from.min_interval.value()),
                 *from.min_interval);
  }
  if (from.tracker_id) into.tracker_id = from.tracker_id;
  if (from.warning_message) into.warning_message = from.warning_message;
  if (from.complete) {
    into.complete = std::max(into.complete.value_or(0), *from.complete);
  }
  if (from.incomplete) {
    into.incomplete = std::max(into.incomplete.value_or(0), *from.incomplete);
  }
  std::set<PeerEndpoint> seen(into.peers.begin(), into.peers.end());
  for (const PeerEndpoint& p : from.peers) {
    if (seen.insert(p).second) into.peers.push_back(p);
  }
}

}  // namespace

Announcer::Announcer(asio::io_context& io, chunk::InfoHashes hashes,
                     std::vector<std::vector<std::string>> tiers,
                     AnnouncerOptions options, StatsProvider stats,
                     PeersCallback on_peers, ClientFactory client_factory)
    : io_(io),
      options_(std::move(options)),
      stats_(std::move(stats)),
      on_peers_(std::move(on_peers)),
      client_factory_(std::move(client_factory)),
      rng_(options_.random_seed),
      key_(static_cast<uint32_t>(rng_())),
      multitracker_(tiers, rng_(), options_.multitracker),
      clients_(multitracker_.size()),
      timers_(std::make_unique<Timers>(io)) {
  if (hashes.v1) announce_hashes_.push_back(*hashes.v1);
  if (hashes.v2) announce_hashes_.push_back(hashes.v2->Truncated());
}

Announcer::~Announcer() {
  timers_->announce.cancel();
  timers_->stop.cancel();
}

void Announcer::Start() {
  multitracker_.Start(TrackerClock::now());
  Pump();
}

void Announcer::Complete() {
  multitracker_.Complete(TrackerClock::now());
  Pump();
}

void Announcer::Reannounce() {
  multitracker_.Reannounce(TrackerClock::now());
  Pump();
}

void Announcer::Stop(std::function<void()> done) {
  stop_done_ = std::move(done);
  multitracker_.Stop(TrackerClock::now());
  timers_->stop.expires_after(options_.stop_timeout);
  timers_->stop.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const auto& ec) {
        if (ec || alive.expired() || !stop_done_) return;
        asio::post(io_, std::exchange(stop_done_, nullptr));
      });
  Pump();
}

void Announcer::Scrape(ScrapeCallback done) {
  if (multitracker_.size() == 0) {
    asio::post(io_, [done = std::move(done)] {
      done(absl::NotFoundError("torrent has no trackers"));
    });
    return;
  }
  TrackerIndex i = multitracker_.working().value_or(multitracker_.order()[0]);
  absl::StatusOr<TrackerClient*> client = ClientFor(i);
  if (!client.ok()) {
    asio::post(io_, [done = std::move(done), status = client.status()] {
      done(status);
    });
    return;
  }
  (*client)->Scrape(announce_hashes_, std::move(done));
}

absl::StatusOr<std::unique_ptr<TrackerClient>> Announcer::MakeDefaultClient(
    const std::string& url) {
  absl::StatusOr<TrackerUrl> u = ParseTrackerUrl(url);
  if (!u.ok()) return u.status();
  if (u->scheme == TrackerUrl::Scheme::kUdp) {
    UdpTrackerClientOptions udp = options_.udp;
    udp.random_seed = rng_();
    absl::StatusOr<std::unique_ptr<UdpTrackerClient>> c =
        UdpTrackerClient::Create(io_, url, udp);
    if (!c.ok()) return c.status();
    return std::unique_ptr<TrackerClient>(*std::move(c));
  }
  absl::StatusOr<std::unique_ptr<HttpTrackerClient>> c =
      HttpTrackerClient::Create(io_, url, options_.http);
  if (!c.ok()) return c.status();
  return std::unique_ptr<TrackerClient>(*std::move(c));
}

absl::StatusOr<TrackerClient*> Announcer::ClientFor(TrackerIndex i) {
  std::unique_ptr<TrackerClient>& slot = clients_[i.value];
  if (!slot) {
    const std::string& url = multitracker_.tracker(i).url;
    absl::StatusOr<std::unique_ptr<TrackerClient>> c =
        client_factory_ ? client_factory_(url) : MakeDefaultClient(url);
    if (!c.ok()) return c.status();
    slot = *std::move(c);
  }
  return slot.get();
}

void Announcer::Pump() {
  while (true) {
    std::vector<Multitracker::Announce> announces =
        multitracker_.Poll(TrackerClock::now());
    if (announces.empty()) break;
    for (const Multitracker::Announce& a : announces) Send(a);
  }
  MaybeFinishStop();
  ArmTimer();
}

void Announcer::ArmTimer() {
  std::optional<TimePoint> wake = multitracker_.NextWakeup();
  if (!wake) {
    timers_->announce.cancel();
    return;
  }
  timers_->announce.expires_at(std::max(*wake, TrackerClock::now()));
  timers_->announce.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const auto& ec) {
        if (ec || alive.expired()) return;
        Pump();
      });
}

void Announcer::Send(const Multitracker::Announce& announce) {
  absl::StatusOr<TrackerClient*> client = ClientFor(announce.tracker);
  if (!client.ok()) {
    // A URL we cannot use (bad scheme, bad syntax) fails like a dead
    // tracker, so the round falls through to the next one.
    multitracker_.OnAnnounceFailure(announce.tracker, TrackerClock::now(),
                                    client.status());
    return;
  }
  const TransferStats stats = stats_ ? stats_() : TransferStats{};
  const TrackerState& state = multitracker_.tracker(announce.tracker);
  // Shared by the callbacks of the one or two requests of this announce.
  auto flight = std::make_shared<InFlight>();
  flight->tracker = announce.tracker;
  flight->event = announce.event;
  flight->pending = announce_hashes_.size();
  for (const AnnounceHash& hash : announce_hashes_) {
    AnnounceRequest r;
    r.info_hash = hash;
    r.peer_id = options_.peer_id;
    r.port = options_.listen_port;
    r.uploaded = stats.uploaded;
    r.downloaded = stats.downloaded;
    r.left = stats.left;
    r.event = announce.event;
    r.numwant = announce.event == TrackerEvent::kStopped ? 0 : options_.numwant;
    r.key = key_;
    r.tracker_id = state.tracker_id;
    r.ipv4 = options_.ipv4;
    r.ipv6 = options_.ipv6;
    (*client)->Announce(
        r, [this, flight](absl::StatusOr<AnnounceResponse> response) {
          if (response.ok()) {
            if (!flight->merged) {
              flight->merged = *std::move(response);
            } else {
              Merge(*flight->merged, *std::move(response));
            }
          } else if (flight->first_error.ok()) {
            flight->first_error = response.status();
          }
          if (--flight->pending == 0) Finish(flight);
        });
  }
}

void Announcer::Finish(const std::shared_ptr<InFlight>& flight) {
  const TimePoint now = TrackerClock::now();
  if (flight->merged) {
    multitracker_.OnAnnounceSuccess(flight->tracker, now, *flight->merged);
    if (flight->event != TrackerEvent::kStopped &&
        !flight->merged->peers.empty() && on_peers_) {
      on_peers_(flight->merged->peers);
    }
  } else {
    multitracker_.OnAnnounceFailure(flight->tracker, now, flight->first_error);
  }
  Pump();
}

void Announcer::MaybeFinishStop() {
  const Multitracker::State state = multitracker_.state();
  if (!stop_done_ || state == Multitracker::State::kRunning ||
      state == Multitracker::State::kStopping) {
    return;
  }
  timers_->stop.cancel();
  asio::post(io_, std::exchange(stop_done_, nullptr));
}

}  // namespace shoal::tracker
