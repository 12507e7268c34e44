// Session: fetching content by ID (provider lookups on the cluster DHT),
// preheat, directories, and the DHT announcements of torrents.
#include <malloc.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "chunk/magnet.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"
#include "node/listen.h"
#include "node/peer_connection.h"
#include "node/provider_lookups.h"
#include "node/run_on.h"
#include "node/session.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"

namespace shoal::node {

absl::StatusOr<std::shared_ptr<PieceEvents>> Session::Fetch(
    const chunk::ContentId& id, const std::vector<HostPort>& peers,
    uint64_t offset, uint64_t length,
    std::optional<chunk::ContentId> directory) {
  std::vector<PeerEndpoint> endpoints;
  for (const HostPort& hp : peers) {
    boost::system::error_code ec;
    asio::ip::address addr = asio::ip::make_address(hp.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peer address must be an IP address, got '", hp.host, "'"));
    }
    endpoints.push_back(ToPeerEndpoint(tcp::endpoint(addr, hp.port)));
  }
  return RunOn(io_, [&]() -> std::shared_ptr<PieceEvents> {
    ContentSwarm* swarm = SwarmFor(id);
    if (!swarm->complete()) {
      swarm->WantRange(offset, length);
      swarm->ConnectTo(endpoints);
      if (directory) {
        directory_of_[id] = *directory;
        if (auto known = directory_peers_.find(*directory);
            known != directory_peers_.end())
          swarm->ConnectTo(known->second);
      }
      if (endpoints.empty())
        LookupProviders(id, SteadyClock::now() + std::chrono::minutes(5));
    }
    return swarm->events();
  });
}

void Session::LookupProviders(const chunk::ContentId& id,
                              SteadyClock::time_point until, int round) {
  Key key(id.AsStringView().substr(0, 20));
  auto it = contents_.find(key);
  if (it == contents_.end() || it->second->complete() || !dht_ ||
      it->second->events()->failed() || SteadyClock::now() > until)
    return;
  // Look again while peers are few: other fetchers announce themselves.
  if (it->second->num_peers() < kLookupPeers) {
    DhtService::Key k;
    // A directory's files are asked of the directory's providers.
    auto dir = directory_of_.find(id);
    std::memcpy(k.data(),
                dir != directory_of_.end()
                    ? dir->second.bytes.data()
                    : reinterpret_cast<const uint8_t*>(key.data()),
                20);
    // A lookup from an empty table (bootstrap still under way) asked nobody:
    // it says nothing about whether anyone provides the content.
    const bool asked = dht_->NumNodes(DhtService::Network::kCluster) > 0;
    auto connect = [this, key](std::vector<tcp::endpoint>& peers) {
      auto it = contents_.find(key);
      if (it == contents_.end()) return false;
      std::erase_if(peers,
                    [this](const tcp::endpoint& e) { return IsSelf(e); });
      it->second->ConnectTo(ToPeerEndpoints(peers));
      return true;
    };
    dht_->GetPeers(
        DhtService::Network::kCluster, k,
        [this, key, asked, connect](std::vector<tcp::endpoint> peers) {
          if (!connect(peers)) return;
          if (asked || !peers.empty())
            contents_[key]->events()->NoteLookup(!peers.empty());
        },
        // Providers as soon as a node names them: the lookup itself may
        // wait seconds on nodes that are gone.
        [this, key, connect](std::vector<tcp::endpoint> peers) {
          if (connect(peers) && !peers.empty())
            contents_[key]->events()->NoteLookup(true);
        });
  }
  // The first few lookups come faster (node/provider_lookups.h).
  auto timer = std::make_shared<asio::steady_timer>(
      io_, ProviderLookupDelay(round, absl::ToChronoMilliseconds(
                                          options_.provider_lookup_interval)));
  timer->async_wait(
      [this, timer, id, until, round](boost::system::error_code ec) {
        if (!ec) LookupProviders(id, until, round + 1);
      });
}

void Session::DhtLookups(TorrentSwarm& t) {
  AssertNetworkThread();
  if (!dht_) return;
  const TorrentState state = t.state();
  const bool running = state != TorrentState::kPaused &&
                       state != TorrentState::kError &&
                       state != TorrentState::kQueued && !t.shut();
  const bool is_private = t.metainfo() && t.metainfo()->is_private;
  for (const std::string& key : t.HandshakeKeys()) {
    DhtService::Key k;
    std::memcpy(k.data(), key.data(), 20);
    if (!running || is_private) {
      dht_->StopProviding(DhtService::Network::kPublic, k);
      continue;
    }
    dht_->Provide(DhtService::Network::kPublic, k);
    if (state == TorrentState::kSeeding || t.num_peers() >= 20) continue;
    dht_->GetPeers(DhtService::Network::kPublic, k,
                   [this, id = t.id()](std::vector<tcp::endpoint> peers) {
                     TorrentSwarm* t = FindTorrent(id);
                     if (t != nullptr) t->ConnectTo(ToPeerEndpoints(peers));
                   });
  }
}

void Session::Discover(TorrentSwarm& t) {
  DhtLookups(t);
  LsdAnnounce(t, /*now=*/true);
}

void Session::LsdAnnounce(TorrentSwarm& t, bool now) {
  AssertNetworkThread();
  if (!lsd_) return;
  const TorrentState state = t.state();
  if (state == TorrentState::kPaused || state == TorrentState::kError ||
      state == TorrentState::kQueued || t.shut() ||
      (t.known_metainfo() && t.known_metainfo()->is_private))
    return;
  const auto at = std::chrono::steady_clock::now();
  auto [it, added] = lsd_announced_.try_emplace(t.id(), at);
  if (!now && !added && at - it->second < std::chrono::minutes(5)) return;
  it->second = at;
  std::vector<LsdService::InfoHash> hashes;
  for (const std::string& key : t.HandshakeKeys()) {
    LsdService::InfoHash h;
    std::memcpy(h.data(), key.data(), h.size());
    hashes.push_back(h);
  }
  lsd_->Announce(hashes);
}

void Session::LsdTick() {
  if (!lsd_) return;
  for (auto& [id, t] : torrents_) LsdAnnounce(*t, /*now=*/false);
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(15));
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (!ec) LsdTick();
  });
}

void Session::OnLsdPeer(const LsdService::InfoHash& hash,
                        const PeerEndpoint& peer) {
  AssertNetworkThread();
  const std::string key(reinterpret_cast<const char*>(hash.data()),
                        hash.size());
  for (auto& [id, t] : torrents_) {
    const chunk::Metainfo* m = t->known_metainfo();
    if (t->shut() || (m && m->is_private)) continue;
    const std::vector<std::string> keys = t->HandshakeKeys();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;
    spdlog::debug("lsd: peer {} for torrent {}", peer.ToString(), id);
    t->ConnectTo({peer});
  }
}

void Session::DhtTick() {
  for (auto& [id, t] : torrents_) DhtLookups(*t);
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(15));
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (!ec && dht_ && dht_->running()) DhtTick();
  });
}

namespace {

constexpr int kPreloadFilesInFlight = 8;
constexpr size_t kMaxPreheating = 32;

std::string EndpointText(const asio::ip::address& a, uint16_t port) {
  return a.is_v6() ? absl::StrCat("[", a.to_string(), "]:", port)
                   : absl::StrCat(a.to_string(), ":", port);
}

}  // namespace

dht::PreheatAnswer Session::OnPreheat(const chunk::ContentId& id) {
  AssertNetworkThread();
  auto st = store_.Stat(id);
  if (st.ok() && st->record.is_directory()) {
    const int64_t total =
        static_cast<int64_t>(st->record.directory->files().size());
    if (st->complete()) {
      preloads_.erase(id);
      return {"complete", total, total};
    }
    Preload& p = preloads_[id];
    if (!p.dir) p.dir = st->record.directory;
    if (p.next >= p.dir->files().size() && p.in_flight == 0)
      p.next = 0;  // retry
    PumpPreload(id);
    return {"fetching", st->files_local, total};
  }
  if (st.ok() && st->complete()) {
    preheating_.erase(id);
    const int64_t n = st->record.layout().num_pieces();
    return {"complete", n, n};
  }
  Key key(id.AsStringView().substr(0, 20));
  auto it = contents_.find(key);
  const bool running = it != contents_.end() && !it->second->events()->failed();
  if (!running) {
    absl::erase_if(preheating_, [this](const chunk::ContentId& c) {
      auto s = store_.Stat(c);
      return s.ok() && s->complete();
    });
    if (preheating_.size() >= kMaxPreheating && !preheating_.contains(id))
      return {"busy", 0, 0};
    preheating_.insert(id);
    ContentSwarm* swarm = SwarmFor(id);
    if (!swarm->complete()) {
      swarm->WantRange(0, UINT64_MAX);
      LookupProviders(id, SteadyClock::now() + std::chrono::minutes(5));
    }
    it = contents_.find(key);
  }
  if (it == contents_.end()) return {"fetching", 0, 0};
  const ContentSwarm& swarm = *it->second;
  return {"fetching", swarm.pieces_have(),
          swarm.metainfo() ? swarm.metainfo()->num_pieces : 0};
}

void Session::PumpPreload(const chunk::ContentId& dir_id) {
  AssertNetworkThread();
  auto it = preloads_.find(dir_id);
  if (it == preloads_.end()) return;
  Preload& p = it->second;
  const chunk::Directory& dir = *p.dir;
  while (p.in_flight < kPreloadFilesInFlight && p.next < dir.files().size()) {
    const size_t i = p.next++;
    const chunk::ContentId& fid = dir.file_id(i);
    if (auto st = store_.Stat(fid); st.ok() && st->complete()) continue;
    ContentSwarm* swarm = SwarmFor(fid);
    if (swarm->complete()) continue;
    ++p.in_flight;
    directory_of_[fid] = dir_id;
    if (auto known = directory_peers_.find(dir_id);
        known != directory_peers_.end())
      swarm->ConnectTo(known->second);
    swarm->WantRange(0, UINT64_MAX);
    LookupProviders(fid, SteadyClock::now() + std::chrono::minutes(5));
  }
}

void Session::FileDone(const chunk::ContentId& dir) {
  AssertNetworkThread();
  auto it = preloads_.find(dir);
  if (it == preloads_.end()) return;
  if (it->second.in_flight > 0) --it->second.in_flight;
  PumpPreload(dir);
}

absl::Status Session::Preheat(
    const chunk::ContentId& id, int count, absl::Duration timeout,
    const std::function<bool(const PreheatStatus&)>& update) {
  struct Target {
    dht::NodeInfo node;
    PreheatStatus status;
    bool changed = true;
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool looked_up = false;
    std::vector<Target> targets;
  };
  auto shared = std::make_shared<Shared>();
  const absl::Time deadline = absl::Now() + timeout;
  DhtService::Key key;
  std::memcpy(key.data(), id.bytes.data(), 20);
  asio::post(io_, [this, shared, key, count] {
    std::vector<std::string> self;
    for (const auto& p : ports_) {
      boost::system::error_code ec;
      const tcp::endpoint e = p->acceptor.local_endpoint(ec);
      if (!ec) self.push_back(EndpointText(e.address(), e.port()));
    }
    auto done = [shared, count, self](std::vector<dht::NodeInfo> nodes,
                                      std::vector<tcp::endpoint> providers) {
      std::lock_guard<std::mutex> lock(shared->mu);
      for (const dht::NodeInfo& n : nodes) {
        if (static_cast<int>(shared->targets.size()) >= count) break;
        // A node's peer port is its DHT port.
        const std::string text = n.endpoint.ToString();
        if (std::find(self.begin(), self.end(), text) != self.end()) continue;
        if (std::any_of(providers.begin(), providers.end(),
                        [&](const tcp::endpoint& p) {
                          return EndpointText(p.address(), p.port()) == text;
                        }))
          continue;
        Target t;
        t.node = n;
        t.status.node = text;
        t.status.node_id = n.id.ToHex();
        t.status.state = "asked";
        shared->targets.push_back(std::move(t));
      }
      shared->looked_up = true;
      shared->cv.notify_all();
    };
    if (!dht_) return done({}, {});
    dht_->ClosestNodes(key, std::move(done));
  });
  auto ask_all = [this, shared, &id] {
    asio::post(io_, [this, shared, content = std::string(id.AsStringView())] {
      std::vector<dht::NodeInfo> nodes;
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        for (const Target& t : shared->targets)
          if (t.status.state != "complete") nodes.push_back(t.node);
      }
      for (const dht::NodeInfo& n : nodes) {
        if (!dht_) return;
        dht_->Preheat(n, content,
                      [shared, n](const std::optional<dht::PreheatAnswer>& a) {
                        std::lock_guard<std::mutex> lock(shared->mu);
                        for (Target& t : shared->targets) {
                          if (t.node.id != n.id) continue;
                          PreheatStatus s = t.status;
                          if (a) {
                            s.state = a->state;
                            s.done = a->done;
                            s.total = a->total;
                          } else {
                            s.state = "unreachable";
                          }
                          if (s.state != t.status.state ||
                              s.done != t.status.done ||
                              s.total != t.status.total) {
                            t.status = std::move(s);
                            t.changed = true;
                          }
                        }
                        shared->cv.notify_all();
                      });
      }
    });
  };
  std::unique_lock<std::mutex> lock(shared->mu);
  while (!shared->looked_up) {
    if (shared->cv.wait_until(lock, absl::ToChronoTime(deadline)) ==
        std::cv_status::timeout) {
      return absl::DeadlineExceededError(
          "the cluster DHT lookup did not end in time");
    }
  }
  if (shared->targets.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster DHT knows no node that lacks ", id.Hex(),
                     " (no --bootstrap, or every node provides it already)"));
  }
  const size_t want = shared->targets.size();
  absl::Time next_ask = absl::InfinitePast();
  for (;;) {
    for (Target& t : shared->targets) {
      if (!t.changed) continue;
      t.changed = false;
      const PreheatStatus s = t.status;
      lock.unlock();
      const bool go_on = update(s);
      lock.lock();
      if (!go_on) return absl::CancelledError("the caller went away");
    }
    size_t complete = 0;
    bool unsent = false;  // changed while `update` ran unlocked
    for (const Target& t : shared->targets) {
      complete += t.status.state == "complete";
      unsent |= t.changed;
    }
    if (unsent) continue;
    if (complete == want) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(complete, " of ", want, " nodes complete within ",
                       absl::FormatDuration(timeout)));
    }
    if (now >= next_ask) {
      next_ask = now + absl::Seconds(1);
      lock.unlock();
      ask_all();
      lock.lock();
    }
    shared->cv.wait_until(lock,
                          absl::ToChronoTime(std::min(next_ask, deadline)));
  }
}

void Session::CheckDirectorySoon(const chunk::ContentId& id) {
  if (!directories_to_check_.insert(id).second) return;
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(500));
  timer->async_wait([this, timer, id](boost::system::error_code ec) {
    if (ec) return;
    pool_.Post([this, id] {
      auto st = store_.Stat(id);
      const bool complete = st.ok() && st->complete();
      asio::post(io_, [this, id, complete] {
        directories_to_check_.erase(id);
        if (complete) Provide(id);
      });
    });
  });
}

void Session::Provide(const chunk::ContentId& id) {
  asio::post(io_, [this, id] {
    if (!dht_) return;
    DhtService::Key k;
    std::memcpy(k.data(), id.bytes.data(), 20);
    dht_->Provide(DhtService::Network::kCluster, k);
  });
}

absl::StatusOr<std::vector<std::string>> Session::FindProviders(
    const chunk::ContentId& id, absl::Duration timeout) {
  // What the lookup found so far, and whether it ended. Nodes that never
  // answer can hold a lookup for seconds after the providers are known: the
  // answer is what was found a second after the first provider (or when the
  // lookup ends, or at the deadline).
  struct Found {
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> providers;
    bool ended = false;
  };
  auto found = std::make_shared<Found>();
  auto add = [found](const std::vector<tcp::endpoint>& peers, bool ended) {
    std::lock_guard<std::mutex> lock(found->mu);
    for (const auto& e : peers) {
      const auto a = e.address();
      found->providers.insert(
          a.is_v6() ? absl::StrCat("[", a.to_string(), "]:", e.port())
                    : absl::StrCat(a.to_string(), ":", e.port()));
    }
    found->ended |= ended;
    found->cv.notify_all();
  };
  asio::post(io_, [this, id, add] {
    if (!dht_) return add({}, true);
    DhtService::Key k;
    std::memcpy(k.data(), id.bytes.data(), 20);
    dht_->GetPeers(
        DhtService::Network::kCluster, k,
        [add](std::vector<tcp::endpoint> peers) { add(peers, true); },
        [add](std::vector<tcp::endpoint> peers) { add(peers, false); });
  });
  std::unique_lock<std::mutex> lock(found->mu);
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  found->cv.wait_until(lock, deadline, [&] {
    return found->ended || !found->providers.empty();
  });
  // Others may follow from other nodes: a second more, within the deadline.
  if (!found->ended && !found->providers.empty()) {
    found->cv.wait_until(lock,
                         std::min(deadline, std::chrono::steady_clock::now() +
                                                std::chrono::seconds(1)),
                         [&] { return found->ended; });
  }
  if (!found->ended && found->providers.empty()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the provider lookup took longer than ",
                     absl::FormatDuration(timeout)));
  }
  return std::vector<std::string>(found->providers.begin(),
                                  found->providers.end());
}

}  // namespace shoal::node
