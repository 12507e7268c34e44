#include "tracker/udp_tracker_client.h"

#include <array>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <variant>

#include "absl/strings/str_cat.h"
#include "tracker/internal/asio.h"
#include "tracker/tracker_url.h"
#include "tracker/udp_protocol.h"

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
using UdpSocket = asio::ip::udp::socket;
using UdpEndpoint = asio::ip::udp::endpoint;
using UdpResolver = asio::ip::udp::resolver;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

struct AnnounceJob {
  AnnounceRequest request;
  AnnounceCallback done;
};
struct ScrapeJob {
  std::vector<AnnounceHash> hashes;
  ScrapeCallback done;
};
using Job = std::variant<AnnounceJob, ScrapeJob>;

}  // namespace

namespace internal {

struct UdpClientState {
  UdpClientState(asio::io_context& io_in, TrackerUrl url_in,
                 UdpTrackerClientOptions options_in)
      : io(io_in),
        url(std::move(url_in)),
        options(std::move(options_in)),
        socket(io_in),
        timer(io_in),
        resolver(io_in),
        rng(options.random_seed) {}

  asio::io_context& io;
  const TrackerUrl url;
  const UdpTrackerClientOptions options;
  UdpSocket socket;
  asio::steady_timer timer;
  UdpResolver resolver;
  std::mt19937 rng;
  std::optional<UdpEndpoint> tracker;
  std::optional<udp::ConnectionId> connection;
  Clock::time_point connection_received{};
  std::deque<Job> queue;
  bool worker_running = false;
  bool cancelled = false;
  // Receive-timeout bookkeeping: a timer handler only acts if `generation`
  // is still the one it was armed for.
  uint64_t generation = 0;
  bool timed_out = false;
};

}  // namespace internal

namespace {

using State = internal::UdpClientState;

absl::Status Cancelled() {
  return absl::CancelledError("udp tracker: client destroyed");
}

asio::awaitable<absl::Status> EnsureSocket(std::shared_ptr<State> s) {
  if (s->tracker) co_return absl::OkStatus();
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(s->url.host, ec);
  UdpEndpoint endpoint;
  if (!ec) {
    endpoint = UdpEndpoint(addr, s->url.port);
  } else {
    const std::string service = std::to_string(s->url.port);
    auto results = co_await s->resolver.async_resolve(
        s->url.host, service, asio::redirect_error(asio::use_awaitable, ec));
    if (s->cancelled) co_return Cancelled();
    if (ec || results.empty()) {
      co_return absl::UnavailableError(
          absl::StrCat("udp tracker: resolve ", s->url.host, ": ",
                       ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  s->socket.open(endpoint.protocol(), ec);
  if (!ec) s->socket.bind(UdpEndpoint(endpoint.protocol(), 0), ec);
  if (ec) {
    error_code ignored;
    s->socket.close(ignored);
    co_return absl::UnavailableError(
        absl::StrCat("udp tracker: socket: ", ec.message()));
  }
  s->tracker = endpoint;
  co_return absl::OkStatus();
}

// Sends `packet` and waits until `deadline` for a reply from the tracker with
// transaction `tid`. nullopt on timeout; an error for socket failures.
asio::awaitable<absl::StatusOr<std::optional<udp::Response>>> Transact(
    std::shared_ptr<State> s, const std::string& packet, udp::TransactionId tid,
    Clock::time_point deadline) {
  error_code ec;
  co_await s->socket.async_send_to(
      asio::buffer(packet), *s->tracker,
      asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  if (ec) {
    co_return absl::UnavailableError(
        absl::StrCat("udp tracker: send: ", ec.message()));
  }
  const AddressFamily family =
      s->tracker->address().is_v4() ? AddressFamily::kV4 : AddressFamily::kV6;
  std::array<char, 65536> buffer;
  while (true) {
    if (Clock::now() >= deadline) co_return std::optional<udp::Response>();
    const uint64_t generation = ++s->generation;
    s->timed_out = false;
    s->timer.expires_at(deadline);
    s->timer.async_wait([s, generation](const error_code& e) {
      if (e || s->generation != generation || s->cancelled) return;
      s->timed_out = true;
      error_code ignored;
      s->socket.cancel(ignored);
    });
    UdpEndpoint sender;
    size_t n = co_await s->socket.async_receive_from(
        asio::buffer(buffer), sender,
        asio::redirect_error(asio::use_awaitable, ec));
    ++s->generation;
    s->timer.cancel();
    if (s->cancelled) co_return Cancelled();
    if (s->timed_out) co_return std::optional<udp::Response>();
    if (ec == asio::error::connection_refused) {
      // ICMP port unreachable from an earlier datagram: keep waiting, the
      // retransmit will tell.
      continue;
    }
    if (ec) {
      co_return absl::UnavailableError(
          absl::StrCat("udp tracker: receive: ", ec.message()));
    }
    if (sender != *s->tracker) continue;  // not from our tracker
    absl::StatusOr<udp::Response> r = udp::ParseResponse(
        std::string_view(buffer.data(), n), family, s->options.limits);
    if (!r.ok() || udp::TransactionOf(*r) != tid) continue;
    co_return std::optional<udp::Response>(*std::move(r));
  }
}

absl::Status ErrorFromReply(const udp::ErrorReply& e) {
  return absl::FailedPreconditionError(
      absl::StrCat("tracker failure: ", e.message));
}

using Encoder =
    std::function<std::string(udp::ConnectionId, udp::TransactionId)>;

// Runs one job's request through connect + request with retransmits.
// `encode` builds the request datagram for a connection and transaction.
//
// GCC 12 may destroy temporaries in a co_await operand twice, so callers pass
// named objects (by reference), never temporaries with destructors.
asio::awaitable<absl::StatusOr<udp::Response>> RunTransaction(
    std::shared_ptr<State> s, const Encoder& encode) {
  absl::Status socket_status = co_await EnsureSocket(s);
  if (!socket_status.ok()) co_return socket_status;
  for (int attempt = 0; attempt <= s->options.max_retries; ++attempt) {
    const auto timeout =
        s->options.base_timeout * (int64_t{1} << std::min(attempt, 16));
    const Clock::time_point deadline = Clock::now() + timeout;
    if (!s->connection ||
        Clock::now() - s->connection_received >= udp::kConnectionIdLifetime) {
      s->connection.reset();
      udp::TransactionId tid{static_cast<uint32_t>(s->rng())};
      const std::string packet = udp::EncodeConnectRequest(tid);
      absl::StatusOr<std::optional<udp::Response>> r =
          co_await Transact(s, packet, tid, deadline);
      if (!r.ok()) co_return r.status();
      if (!r->has_value()) continue;  // timed out: next attempt
      if (auto* e = std::get_if<udp::ErrorReply>(&**r)) {
        co_return ErrorFromReply(*e);
      }
      auto* c = std::get_if<udp::ConnectResponse>(&**r);
      if (c == nullptr) continue;
      s->connection = c->connection;
      s->connection_received = Clock::now();
    }
    udp::TransactionId tid{static_cast<uint32_t>(s->rng())};
    const std::string packet = encode(*s->connection, tid);
    absl::StatusOr<std::optional<udp::Response>> r =
        co_await Transact(s, packet, tid, deadline);
    if (!r.ok()) co_return r.status();
    if (!r->has_value()) continue;
    if (auto* e = std::get_if<udp::ErrorReply>(&**r)) {
      // A stale connection ID is reported as an error by some trackers.
      s->connection.reset();
      co_return ErrorFromReply(*e);
    }
    co_return std::move(**r);
  }
  co_return absl::DeadlineExceededError(
      absl::StrCat("udp tracker: no reply from ", s->url.host, ":", s->url.port,
                   " after ", s->options.max_retries + 1, " attempts"));
}

asio::awaitable<void> RunJob(std::shared_ptr<State> s, Job& job) {
  if (auto* a = std::get_if<AnnounceJob>(&job)) {
    const AnnounceRequest request = a->request;
    const Encoder encode = [request](udp::ConnectionId cid,
                                     udp::TransactionId tid) {
      return udp::EncodeAnnounceRequest(cid, tid, request);
    };
    absl::StatusOr<udp::Response> r = co_await RunTransaction(s, encode);
    if (s->cancelled) co_return;
    if (!r.ok()) {
      a->done(r.status());
    } else if (auto* reply = std::get_if<udp::AnnounceReply>(&*r)) {
      a->done(std::move(reply->response));
    } else {
      a->done(absl::InvalidArgumentError(
          "udp tracker: reply to announce is not an announce reply"));
    }
    co_return;
  }
  auto& sj = std::get<ScrapeJob>(job);
  const std::vector<AnnounceHash> hashes = sj.hashes;
  const Encoder encode = [&hashes](udp::ConnectionId cid,
                                   udp::TransactionId tid) {
    return udp::EncodeScrapeRequest(cid, tid, hashes);
  };
  absl::StatusOr<udp::Response> r = co_await RunTransaction(s, encode);
  if (s->cancelled) co_return;
  if (!r.ok()) {
    sj.done(r.status());
    co_return;
  }
  auto* reply = std::get_if<udp::ScrapeReply>(&*r);
  if (reply == nullptr) {
    sj.done(absl::InvalidArgumentError(
        "udp tracker: reply to scrape is not a scrape reply"));
    co_return;
  }
  std::vector<ScrapeEntry> entries;
  for (size_t i = 0; i < hashes.size() && i < reply->stats.size(); ++i) {
    entries.push_back(ScrapeEntry{hashes[i], reply->stats[i]});
  }
  sj.done(std::move(entries));
}

asio::awaitable<void> Worker(std::shared_ptr<State> s) {
  while (!s->cancelled && !s->queue.empty()) {
    Job job = std::move(s->queue.front());
    s->queue.pop_front();
    try {
      co_await RunJob(s, job);
    } catch (const std::exception& e) {
      if (s->cancelled) break;
      absl::Status status =
          absl::InternalError(absl::StrCat("udp tracker: ", e.what()));
      std::visit([&](auto& j) { j.done(status); }, job);
    }
  }
  s->worker_running = false;
}

void Enqueue(const std::shared_ptr<State>& s, Job job) {
  s->queue.push_back(std::move(job));
  if (s->worker_running) return;
  s->worker_running = true;
  // co_spawn on an io_context never runs the coroutine inline, so callbacks
  // never run inside Announce/Scrape.
  asio::co_spawn(s->io, Worker(s), asio::detached);
}

}  // namespace

absl::StatusOr<std::unique_ptr<UdpTrackerClient>> UdpTrackerClient::Create(
    asio::io_context& io, std::string announce_url,
    UdpTrackerClientOptions options) {
  absl::StatusOr<TrackerUrl> u = ParseTrackerUrl(announce_url);
  if (!u.ok()) return u.status();
  if (u->scheme != TrackerUrl::Scheme::kUdp) {
    return absl::InvalidArgumentError("UdpTrackerClient: only udp:// urls");
  }
  return std::unique_ptr<UdpTrackerClient>(new UdpTrackerClient(
      std::make_shared<State>(io, *std::move(u), std::move(options))));
}

UdpTrackerClient::UdpTrackerClient(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

UdpTrackerClient::~UdpTrackerClient() {
  state_->cancelled = true;
  state_->queue.clear();
  error_code ignored;
  state_->socket.close(ignored);
  state_->timer.cancel();
  state_->resolver.cancel();
}

void UdpTrackerClient::Announce(const AnnounceRequest& request,
                                AnnounceCallback done) {
  Enqueue(state_, AnnounceJob{request, std::move(done)});
}

void UdpTrackerClient::Scrape(std::vector<AnnounceHash> hashes,
                              ScrapeCallback done) {
  if (hashes.empty() || hashes.size() > udp::kMaxScrapeHashes) {
    asio::post(state_->io,
               [s = state_, done = std::move(done), n = hashes.size()] {
                 if (!s->cancelled) {
                   done(absl::InvalidArgumentError(absl::StrCat(
                       "udp tracker: a scrape takes 1 to 74 hashes, not ", n)));
                 }
               });
    return;
  }
  Enqueue(state_, ScrapeJob{std::move(hashes), std::move(done)});
}

}  // namespace shoal::tracker
