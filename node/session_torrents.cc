// Session: the torrent registry, its persistence in the store, and the torrent
// calls the API makes.
#include <ifaddrs.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "chunk/magnet.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"
#include "node/listen.h"
#include "node/peer_connection.h"
#include "node/run_on.h"
#include "node/session.h"
#include "spdlog/spdlog.h"
#include "wire/handshake.h"

namespace shoal::node {

// --- Torrents
// -------------------------------------------------------------------------

namespace {

// The first global unicast IPv6 address (2000::/3) of the host's interfaces.
std::optional<asio::ip::address_v6> GlobalIpv6Address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<asio::ip::address_v6> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET6) continue;
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), sin6->sin6_addr.s6_addr, b.size());
    if ((b[0] & 0xe0) == 0x20) found = asio::ip::address_v6(b);
  }
  freeifaddrs(list);
  return found;
}

constexpr char kTorrentIndexKey[] = "torrents";
constexpr char kRateLimitsKey[] = "rate limits";

std::string EncodeLimits(uint64_t down, uint64_t up) {
  codec::bencode::Dict d;
  d["down"] = static_cast<int64_t>(down);
  d["up"] = static_cast<int64_t>(up);
  return codec::bencode::Encode(codec::bencode::Value(d));
}

std::pair<uint64_t, uint64_t> DecodeLimits(std::string_view bytes) {
  auto doc = codec::Bdecode(bytes);
  if (!doc.ok()) return {0, 0};
  return {static_cast<uint64_t>(
              std::max<int64_t>(0, doc->root().FindInt("down").value_or(0))),
          static_cast<uint64_t>(
              std::max<int64_t>(0, doc->root().FindInt("up").value_or(0)))};
}

std::string LimitsKey(const std::string& id) {
  return absl::StrCat("limits/", id);
}

std::string TorrentKey(const std::string& id) {
  return absl::StrCat("torrent/", id);
}

}  // namespace

TorrentSwarm* Session::FindTorrent(const std::string& id) {
  AssertNetworkThread();
  std::string lower = id;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  auto it = torrents_.find(lower);
  if (it != torrents_.end()) return it->second.get();
  for (auto& [k, t] : torrents_) {
    const chunk::InfoHashes& h = t->hashes();
    if ((h.v1 && h.v1->Hex() == lower) || (h.v2 && h.v2->Hex() == lower))
      return t.get();
  }
  return nullptr;
}

template <typename Fn>
auto Session::WithTorrent(const std::string& id, Fn fn) {
  using R = decltype(fn(std::declval<TorrentSwarm&>()));
  return RunOn(io_, [&]() -> R {
    TorrentSwarm* t = FindTorrent(id);
    if (t == nullptr)
      return absl::NotFoundError(absl::StrCat("no torrent ", id));
    return fn(*t);
  });
}

absl::StatusOr<TorrentStatus> Session::AddTorrent(
    const AddTorrentParams& params) {
  return RunOn(io_, [&] { return AddTorrentHere(params, /*persist=*/true); });
}

absl::StatusOr<TorrentStatus> Session::AddTorrentHere(
    const AddTorrentParams& params, bool persist) {
  if (params.torrent_bytes.empty() == params.magnet.empty()) {
    return absl::InvalidArgumentError(
        "give either a .torrent file or a magnet link");
  }
  chunk::InfoHashes hashes;
  std::shared_ptr<chunk::Metainfo> metainfo;
  TorrentConfig config;
  config.paused = params.paused;
  config.sequential = params.sequential;
  config.source.torrent_bytes = params.torrent_bytes;
  config.source.magnet = params.magnet;
  config.source.save_path =
      params.save_path.empty() ? options_.default_save_path : params.save_path;
  config.source.in_store = params.in_store;
  if (params.in_store) config.source.save_path.clear();
  auto add_peer = [&](const std::string& host, uint16_t port) -> absl::Status {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("peer address must be an IP address, got '", host, "'"));
    }
    config.peers.push_back(ToPeerEndpoint(tcp::endpoint(addr, port)));
    return absl::OkStatus();
  };
  if (!params.torrent_bytes.empty()) {
    auto m = chunk::ParseMetainfo(params.torrent_bytes);
    if (!m.ok()) return m.status();
    hashes = m->info_hashes;
    std::map<int, std::vector<std::string>> tiers;
    for (const auto& t : m->trackers) tiers[t.tier].push_back(t.url);
    for (auto& [tier, urls] : tiers) config.trackers.push_back(urls);
    metainfo = std::make_shared<chunk::Metainfo>(*std::move(m));
  } else {
    auto mag = chunk::ParseMagnetUri(params.magnet);
    if (!mag.ok()) return mag.status();
    hashes = mag->info_hashes;
    config.display_name = mag->display_name;
    config.select_only = mag->select_only;
    config.web_seeds = mag->web_seeds;
    for (const auto& url : mag->trackers) config.trackers.push_back({url});
    for (const std::string& pe : mag->peers) {
      auto hp = HostPort::Parse(pe);
      if (!hp.ok()) return hp.status();
      std::string host = hp->host;
      if (host.size() > 2 && host.front() == '[')
        host = host.substr(1, host.size() - 2);
      SHOAL_RETURN_IF_ERROR(add_peer(host, hp->port));
    }
  }
  for (const HostPort& hp : params.peers)
    SHOAL_RETURN_IF_ERROR(add_peer(hp.host, hp.port));
  const std::string id = hashes.BestHex();
  if (FindTorrent(id) != nullptr ||
      (hashes.v1 && FindTorrent(hashes.v1->Hex()) != nullptr)) {
    return absl::AlreadyExistsError(
        absl::StrCat("torrent ", id, " is already added"));
  }
  if (persist) {
    codec::bencode::Dict d;
    if (!params.torrent_bytes.empty()) {
      d["torrent"] = params.torrent_bytes;
    } else {
      d["magnet"] = params.magnet;
    }
    d["save path"] = config.source.save_path.string();
    d["in store"] = int64_t{params.in_store};
    std::string peers;
    for (const HostPort& hp : params.peers) peers += hp.ToString() + " ";
    d["peers"] = peers;
    d["paused"] = int64_t{params.paused};
    d["sequential"] = int64_t{params.sequential};
    SHOAL_RETURN_IF_ERROR(store_.PutState(
        TorrentKey(id), codec::bencode::Encode(codec::bencode::Value(d))));
  }
  SwarmOptions so;
  so.max_peers = options_.max_peers_per_torrent;
  so.peer_retry_ticks = static_cast<uint64_t>(options_.peer_retry_seconds);
  so.upload_slots = options_.upload_slots;
  so.download_budget = download_budget_;
  so.strategy = params.sequential ? chunk::PickStrategy::kSequential
                                  : chunk::PickStrategy::kRarestFirst;
  tracker::AnnouncerOptions ao;
  ao.peer_id = tracker::PeerId::FromBytes(std::string_view(
      reinterpret_cast<const char*>(peer_id_.data()), peer_id_.size()));
  ao.listen_port = port_;
  AdvertiseAddresses(ao);
  ao.random_seed = (uint64_t{peer_id_[8]} << 8 | peer_id_[9]) ^ next_key_;
  auto t = std::make_unique<TorrentSwarm>(swarm_env_, io_, store_, pool_,
                                          hashes, metainfo, config, so, ao,
                                          options_.client_name, port_, events_);
  TorrentSwarm* raw = t.get();
  raw->set_node_seed_limits(node_seed_limits_);
  raw->set_queue_position(next_queue_position_++);
  torrents_[id] = std::move(t);
  Register(raw);
  if (persist) SaveTorrentIndex();
  if (auto limits = store_.GetState(LimitsKey(id)); limits.ok()) {
    auto [down, up] = DecodeLimits(*limits);
    raw->SetRateLimits(down, up);
  }
  raw->Start(/*queued=*/true);
  RunQueue();
  return raw->Status();
}

void Session::RunQueue() {
  AssertNetworkThread();
  std::vector<TorrentSwarm*> order;
  for (auto& [id, t] : torrents_) order.push_back(t.get());
  std::sort(order.begin(), order.end(), [](TorrentSwarm* a, TorrentSwarm* b) {
    return a->queue_position() < b->queue_position();
  });
  int downloads = 0, seeds = 0;
  for (TorrentSwarm* t : order) {
    const TorrentState state = t->state();
    if (state == TorrentState::kPaused || state == TorrentState::kError ||
        t->removed())
      continue;
    const bool seed = t->LikelySeed();
    int& running = seed ? seeds : downloads;
    const int limit = seed ? options_.active_seeds : options_.active_downloads;
    if (limit <= 0 || running < limit) {
      ++running;
      if (state == TorrentState::kQueued) {
        t->Resume();
        Discover(*t);
      }
    } else if (state == TorrentState::kDownloading ||
               state == TorrentState::kSeeding) {
      t->Queue();
      Discover(*t);  // stops providing it
    }
  }
}

void Session::QueueTick() {
  RunQueue();
  auto timer =
      std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (!ec) QueueTick();
  });
}

void Session::SaveTorrentIndex() {
  AssertNetworkThread();
  // In queue order: loading them in this order keeps it.
  std::vector<const TorrentSwarm*> order;
  for (const auto& [id, t] : torrents_) order.push_back(t.get());
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->queue_position() < b->queue_position();
  });
  codec::bencode::List ids;
  for (const TorrentSwarm* t : order) ids.emplace_back(t->id());
  if (absl::Status s = store_.PutState(
          kTorrentIndexKey, codec::bencode::Encode(codec::bencode::Value(ids)));
      !s.ok()) {
    spdlog::warn("saving the torrent list: {}", s.ToString());
  }
}

void Session::LoadTorrents() {
  if (auto limits = store_.GetState(kRateLimitsKey); limits.ok()) {
    auto [down, up] = DecodeLimits(*limits);
    global_down_->set_rate(down);
    global_up_->set_rate(up);
  }
  auto index = store_.GetState(kTorrentIndexKey);
  if (!index.ok() || index->empty()) return;
  auto doc = codec::Bdecode(*index);
  if (!doc.ok() || !doc->root().is_list()) return;
  for (const codec::BNode& item : doc->root().list_items()) {
    if (!item.is_string()) continue;
    const std::string id(item.string_value());
    auto value = store_.GetState(TorrentKey(id));
    if (!value.ok() || value->empty()) continue;
    auto d = codec::Bdecode(*value);
    if (!d.ok()) continue;
    AddTorrentParams p;
    if (auto t = d->root().FindString("torrent"))
      p.torrent_bytes = std::string(*t);
    if (auto m = d->root().FindString("magnet")) p.magnet = std::string(*m);
    if (auto s = d->root().FindString("save path"))
      p.save_path = std::string(*s);
    if (auto peers = d->root().FindString("peers")) {
      const std::vector<std::string> parts =
          absl::StrSplit(std::string(*peers), ' ', absl::SkipEmpty());
      for (const std::string& part : parts) {
        auto hp = HostPort::Parse(part);
        if (hp.ok()) p.peers.push_back(*hp);
      }
    }
    p.paused = d->root().FindInt("paused").value_or(0) != 0;
    p.sequential = d->root().FindInt("sequential").value_or(0) != 0;
    p.in_store = d->root().FindInt("in store").value_or(0) != 0;
    auto st = AddTorrentHere(p, /*persist=*/false);
    if (!st.ok()) {
      spdlog::warn("torrent {}: cannot restore: {}", id,
                   st.status().ToString());
    } else {
      spdlog::info("torrent {}: restored ({})", id, st->name);
    }
  }
}

std::vector<TorrentStatus> Session::ListTorrents() {
  return RunOn(io_, [&] {
    std::vector<TorrentStatus> out;
    for (const auto& [id, t] : torrents_) out.push_back(t->Status());
    return out;
  });
}

absl::StatusOr<TorrentStatus> Session::GetTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::StatusOr<TorrentStatus> {
    return t.Status();
  });
}

absl::StatusOr<std::vector<PeerInfo>> Session::TorrentPeers(
    const std::string& id) {
  return WithTorrent(
      id, [](TorrentSwarm& t) -> absl::StatusOr<std::vector<PeerInfo>> {
        return t.Peers();
      });
}

absl::StatusOr<std::vector<TorrentFileInfo>> Session::TorrentFiles(
    const std::string& id) {
  return WithTorrent(
      id, [](TorrentSwarm& t) -> absl::StatusOr<std::vector<TorrentFileInfo>> {
        if (t.known_metainfo() == nullptr)
          return absl::FailedPreconditionError(
              "the torrent's metadata is not known yet");
        return t.Files();
      });
}

absl::StatusOr<TorrentSwarm::ReadSource> Session::TorrentReadSource(
    const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) { return t.GetReadSource(); });
}

absl::Status Session::WantTorrentRange(const std::string& id, uint64_t offset,
                                       uint64_t length) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.WantRange(offset, length);
    return absl::OkStatus();
  });
}

absl::Status Session::ReadTorrentFile(const std::string& id, size_t file,
                                      uint64_t offset,
                                      std::optional<uint64_t> length,
                                      const ReadSink& sink,
                                      absl::Duration wait) {
  SHOAL_ASSIGN_OR_RETURN(
      TorrentSwarm::ReadSource src,
      WithTorrent(id, [](TorrentSwarm& t) { return t.GetReadSource(); }));
  const chunk::Metainfo& m = *src.metainfo;
  if (file >= m.files.size() || m.files[file].pad_file) {
    return absl::InvalidArgumentError(
        absl::StrCat("no file ", file, " in the torrent (it has ",
                     m.files.size(), " entries, pad files included)"));
  }
  const chunk::FileEntry& e = m.files[file];
  if (offset > e.length) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset ", offset, " is past the end of the file (",
                     e.length, " bytes)"));
  }
  const uint64_t len = length.value_or(e.length - offset);
  if (len > e.length - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("range ", offset, "+", len,
                     " is past the end of the file (", e.length, " bytes)"));
  }
  uint64_t pos = e.offset + offset;  // in the torrent's byte stream
  const uint64_t end = pos + len;
  bool wanted = false;
  while (pos < end) {
    const uint32_t p = static_cast<uint32_t>(pos / m.piece_length);
    if (p < m.num_pieces && !src.have.test(p) && wait > absl::ZeroDuration()) {
      if (!wanted) {
        wanted = true;  // deadlines from here to the end of the range
        SHOAL_RETURN_IF_ERROR(WantTorrentRange(id, pos, end - pos));
      }
      absl::Status arrived = src.arriving->WaitForPiece(p, wait);
      if (!arrived.ok()) {
        return absl::UnavailableError(
            absl::StrCat("piece ", p, " (byte ", pos - e.offset, " of ", e.path,
                         ") did not arrive: ", std::string(arrived.message())));
      }
      src.have.set(p);
    }
    if (p >= m.num_pieces || !src.have.test(p)) {
      return absl::UnavailableError(absl::StrCat("piece ", p, " (byte ",
                                                 pos - e.offset, " of ", e.path,
                                                 ") is not downloaded yet"));
    }
    SHOAL_ASSIGN_OR_RETURN(std::string data, src.storage->ReadPiece(p));
    if (src.verifier != nullptr && !src.verifier->Verify(p, data).ok()) {
      return absl::DataLossError(
          absl::StrCat("piece ", p,
                       " changed on disk since it was verified; recheck the "
                       "torrent"));
    }
    const uint64_t start = uint64_t{p} * m.piece_length;
    const uint64_t from = pos - start;
    const uint64_t to = std::min<uint64_t>(end - start, data.size());
    if (to <= from) {
      return absl::InternalError(
          absl::StrCat("piece ", p, " is shorter than the file needs"));
    }
    if (from != 0 || to != data.size()) data = data.substr(from, to - from);
    if (!sink(std::move(data), pos - e.offset))
      return absl::CancelledError("reader went away");
    pos = start + to;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Session::TorrentFileEntries(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::StatusOr<size_t> {
    if (t.known_metainfo() == nullptr)
      return absl::FailedPreconditionError(
          "the torrent's metadata is not known yet");
    return t.known_metainfo()->files.size();
  });
}

absl::Status Session::PauseTorrent(const std::string& id) {
  return WithTorrent(id, [this](TorrentSwarm& t) -> absl::Status {
    t.Pause();
    Discover(t);
    RunQueue();
    return absl::OkStatus();
  });
}

absl::Status Session::ResumeTorrent(const std::string& id) {
  return WithTorrent(id, [this](TorrentSwarm& t) -> absl::Status {
    t.Requeue();
    RunQueue();
    return absl::OkStatus();
  });
}

void Session::AdvertiseAddresses(tracker::AnnouncerOptions& ao) const {
  // Single-stack: the tracker sees the one address on the connection.
  if (ports_.size() < 2) return;
  for (const auto& p : ports_) {
    boost::system::error_code ec;
    asio::ip::address a = asio::ip::make_address(p->bound.host, ec);
    if (ec) continue;
    if (a.is_unspecified()) {
      // A wildcard's IPv4 address is likely private (NAT): the tracker
      // learns the public one from an IPv4 announce. IPv6 addresses are
      // global: name the interfaces' first.
      if (a.is_v4()) continue;
      std::optional<asio::ip::address_v6> global = GlobalIpv6Address();
      if (!global) continue;
      a = *global;
    }
    const bool other_port = p->bound.port != port_;
    if (a.is_v4()) {
      ao.ipv4 = other_port ? absl::StrCat(a.to_string(), ":", p->bound.port)
                           : a.to_string();
    } else {
      ao.ipv6 = other_port
                    ? absl::StrCat("[", a.to_string(), "]:", p->bound.port)
                    : a.to_string();
    }
  }
}

absl::Status Session::RemoveTorrent(const std::string& id, bool delete_data) {
  auto removed = std::make_shared<std::promise<void>>();
  auto future = removed->get_future();
  absl::Status s = WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    const std::string key = t.id();
    Unregister(&t);
    if (dht_) {
      for (const std::string& hk : t.HandshakeKeys()) {
        DhtService::Key k;
        std::memcpy(k.data(), hk.data(), 20);
        dht_->StopProviding(DhtService::Network::kPublic, k);
      }
    }
    (void)store_.PutState(TorrentKey(key), "");
    (void)store_.PutState(LimitsKey(key), "");
    t.Remove(delete_data, [this, key, removed] {
      // Destroy it later: we are inside its callback.
      asio::post(io_, [this, key, removed] {
        torrents_.erase(key);
        lsd_announced_.erase(key);
        SaveTorrentIndex();
        RunQueue();
        removed->set_value();
      });
    });
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  // "stopped" to the trackers is bounded by the announcer's stop timeout.
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready)
    return absl::DeadlineExceededError("removing the torrent timed out");
  return absl::OkStatus();
}

absl::Status Session::SetFilePriorities(const std::string& id,
                                        std::vector<uint8_t> priorities) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    return t.SetFilePriorities(std::move(priorities));
  });
}

absl::Status Session::SetSuperSeeding(const std::string& id, bool on) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetSuperSeeding(on);
    return absl::OkStatus();
  });
}

absl::Status Session::SetSequential(const std::string& id, bool on) {
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetSequential(on);
    return absl::OkStatus();
  });
}

absl::Status Session::RecheckTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::Status {
    if (!t.ready())
      return absl::FailedPreconditionError(
          "the torrent is not checked or downloading yet");
    t.Recheck();
    return absl::OkStatus();
  });
}

absl::Status Session::ReannounceTorrent(const std::string& id) {
  return WithTorrent(id, [](TorrentSwarm& t) -> absl::Status {
    t.Reannounce();
    return absl::OkStatus();
  });
}

absl::Status Session::SetRateLimits(const std::string& id, uint64_t download,
                                    uint64_t upload) {
  if (id.empty()) {
    return RunOn(io_, [&] {
      global_down_->set_rate(download);
      global_up_->set_rate(upload);
      return store_.PutState(kRateLimitsKey, EncodeLimits(download, upload));
    });
  }
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetRateLimits(download, upload);
    return store_.PutState(LimitsKey(t.id()), EncodeLimits(download, upload));
  });
}

absl::StatusOr<Session::Limits> Session::GetRateLimits(const std::string& id) {
  if (id.empty()) {
    return RunOn(io_, [&]() -> absl::StatusOr<Limits> {
      return Limits{global_down_->rate(), global_up_->rate(),
                    *node_seed_limits_};
    });
  }
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::StatusOr<Limits> {
    return Limits{t.download_limit(), t.upload_limit(),
                  t.EffectiveSeedLimits()};
  });
}

absl::Status Session::SetSeedLimits(const std::string& id,
                                    const SeedLimits& limits) {
  if (id.empty()) {
    return RunOn(io_, [&] {
      if (limits.share_ratio)
        node_seed_limits_->share_ratio = limits.share_ratio;
      if (limits.seed_time) node_seed_limits_->seed_time = limits.seed_time;
      return absl::OkStatus();
    });
  }
  return WithTorrent(id, [&](TorrentSwarm& t) -> absl::Status {
    t.SetSeedLimits(limits);
    return absl::OkStatus();
  });
}

}  // namespace shoal::node
