#include "node/web_seed.h"

#include "node/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chunk/piece_verifier.h"
#include "tracker/http_support.h"
#include "tracker/tracker_url.h"
#include "wire/message.h"

namespace shoal::node {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using boost::system::error_code;

// Keys of web seed links: far above the session's connection keys.
uint64_t NextKey() {
  static uint64_t next = uint64_t{1} << 62;
  return next++;
}

absl::Status FromError(const std::string& url, const error_code& ec,
                       const char* what) {
  const std::string where = absl::StrCat("web seed ", url, ": ", what, ": ");
  if (ec == beast::error::timeout)
    return absl::DeadlineExceededError(absl::StrCat(where, "timed out"));
  if (ec == http::error::body_limit)
    return absl::ResourceExhaustedError(
        absl::StrCat(where, "response larger than asked for"));
  return absl::UnavailableError(absl::StrCat(where, ec.message()));
}

struct Response {
  unsigned status = 0;
  std::string content_range;
  std::string location;
  std::string retry_after;
  bool keep_alive = false;
  std::string body;
};

template <class Stream>
asio::awaitable<absl::StatusOr<Response>> Exchange(
    Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
    const http::request<http::empty_body>& req, uint64_t body_limit,
    std::chrono::milliseconds timeout, const std::string& url) {
  error_code ec;
  lowest.expires_after(timeout);
  co_await http::async_write(stream, req,
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return FromError(url, ec, "write");
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(64 * 1024);
  lowest.expires_after(timeout);
  co_await http::async_read(stream, buffer, parser,
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec && !parser.is_done()) co_return FromError(url, ec, "read");
  Response r;
  auto& msg = parser.get();
  r.status = msg.result_int();
  auto header = [&](http::field f) {
    auto it = msg.find(f);
    return it == msg.end() ? std::string() : std::string(it->value());
  };
  r.content_range = header(http::field::content_range);
  r.location = header(http::field::location);
  r.retry_after = header(http::field::retry_after);
  r.keep_alive = msg.keep_alive() && !ec;
  r.body = std::move(msg.body());
  co_return r;
}

// The first byte of "bytes A-B/N".
std::optional<uint64_t> RangeStart(const std::string& content_range) {
  constexpr std::string_view kPrefix = "bytes ";
  if (!content_range.starts_with(kPrefix)) return std::nullopt;
  const size_t dash = content_range.find('-');
  uint64_t start = 0;
  if (dash == std::string::npos ||
      !absl::SimpleAtoi(
          content_range.substr(kPrefix.size(), dash - kPrefix.size()), &start))
    return std::nullopt;
  return start;
}

}  // namespace

std::string WebSeedFileUrl(std::string_view base, const chunk::Metainfo& m,
                           size_t file) {
  std::string url(base);
  if (!m.multi_file) {
    if (url.ends_with('/')) url += tracker::PercentEncode(m.name);
    return url;
  }
  if (!url.ends_with('/')) url += '/';
  // A multi-file entry's path starts with the torrent's name.
  bool first = true;
  for (absl::string_view part : absl::StrSplit(m.files[file].path, '/')) {
    if (!first) url += '/';
    first = false;
    url += tracker::PercentEncode(std::string_view(part.data(), part.size()));
  }
  return url;
}

// The connection to one origin, kept alive between requests.
struct WebSeedLink::Conn {
  explicit Conn(asio::io_context& io_in) : io(io_in) {}
  asio::io_context& io;
  std::unique_ptr<ssl::context> tls_context;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  std::string origin;  // scheme, host and port of the open connection
  beast::flat_buffer buffer;

  bool open() const { return plain || tls; }
  beast::tcp_stream& lowest() {
    return plain ? *plain : beast::get_lowest_layer(*tls);
  }
  // Closes the socket: operations in flight end with an error. The streams
  // stay until Reset (the coroutine may be inside one).
  void Cancel() {
    if (open()) lowest().close();
  }
  void Reset() {
    Cancel();
    plain.reset();
    tls.reset();
    origin.clear();
    buffer.clear();
  }
};

struct WebSeedLink::Run {
  uint64_t start = 0;  // in the torrent's byte stream
  uint32_t length = 0;
  std::vector<wire::BlockSpec> blocks;
};

absl::StatusOr<std::shared_ptr<WebSeedLink>> WebSeedLink::Create(
    asio::io_context& io, std::string url,
    std::shared_ptr<const chunk::Metainfo> metainfo, WebSeedOptions options) {
  absl::StatusOr<tracker::TrackerUrl> u = tracker::ParseTrackerUrl(url);
  if (!u.ok() || u->scheme == tracker::TrackerUrl::Scheme::kUdp) {
    return absl::InvalidArgumentError(
        absl::StrCat("web seed: not an http(s) URL: ", url));
  }
  PeerEndpoint remote =
      PeerEndpoint::FromIpString(u->host, u->port).value_or(PeerEndpoint{});
  remote.port = u->port;
  return std::shared_ptr<WebSeedLink>(new WebSeedLink(
      io, std::move(url), std::move(metainfo), std::move(options), remote));
}

WebSeedLink::WebSeedLink(asio::io_context& io, std::string url,
                         std::shared_ptr<const chunk::Metainfo> metainfo,
                         WebSeedOptions options, PeerEndpoint remote)
    : io_(io),
      url_(std::move(url)),
      m_(std::move(metainfo)),
      options_(std::move(options)),
      remote_(remote),
      key_(NextKey()),
      conn_(std::make_unique<Conn>(io)),
      wake_(io) {}

WebSeedLink::~WebSeedLink() = default;

wire::Handshake WebSeedLink::handshake(
    const std::array<uint8_t, 20>& info_hash) const {
  wire::Handshake h;
  h.info_hash = info_hash;
  h.set_fast(true);
  // A peer ID of its own per URL, so that the swarm's one-connection-per-
  // peer-ID rule keeps every web seed.
  std::memcpy(h.peer_id.data(), "-WS0001-", 8);
  const size_t hash = std::hash<std::string>{}(url_);
  for (int i = 0; i < 12; ++i)
    h.peer_id[8 + i] = static_cast<uint8_t>(hash >> (8 * (i % 8)));
  return h;
}

void WebSeedLink::Start(Handler* handler) {
  handler_ = handler;
  asio::co_spawn(io_, Loop(shared_from_this()), asio::detached);
}

void WebSeedLink::Send(std::string bytes) {
  sent_ += bytes.size();
  std::string_view view(bytes);
  while (!closed_) {
    absl::StatusOr<std::optional<wire::Message>> m = wire::ParseMessage(view);
    if (!m.ok() || !m->has_value()) break;
    OnRequestMessage(**m);
  }
}

void WebSeedLink::Send(const wire::Message& message) {
  std::string bytes;
  wire::AppendMessage(message, bytes);
  sent_ += bytes.size();
  OnRequestMessage(message);
}

void WebSeedLink::OnRequestMessage(const wire::Message& m) {
  if (const auto* r = std::get_if<wire::Request>(&m)) {
    queue_.push_back(r->block);
    Wake();
  } else if (const auto* c = std::get_if<wire::Cancel>(&m)) {
    // Not fetched yet: dropped. A block in a run being fetched arrives
    // anyway, and the swarm ignores it.
    auto it = std::find(queue_.begin(), queue_.end(), c->block);
    if (it != queue_.end()) queue_.erase(it);
  }
}

void WebSeedLink::SetRateLimits(std::vector<std::shared_ptr<RateLimit>> down,
                                std::vector<std::shared_ptr<RateLimit>>) {
  down_ = std::move(down);
}

void WebSeedLink::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = why;
  queue_.clear();
  wake_.cancel();
  conn_->Cancel();
  if (handler_) handler_->OnClose(*this, why);
}

void WebSeedLink::Wake() { wake_.cancel(); }

bool WebSeedLink::Deliver(const wire::Message& m) {
  if (closed_ || handler_ == nullptr) return false;
  handler_->OnMessage(*this, m);
  return !closed_;
}

WebSeedLink::Run WebSeedLink::TakeRun() {
  Run run;
  const uint64_t piece_length = m_->piece_length;
  while (!queue_.empty()) {
    const wire::BlockSpec b = queue_.front();
    const uint64_t at = b.piece * piece_length + b.begin;
    const bool valid =
        b.piece < m_->num_pieces && b.length > 0 &&
        uint64_t{b.begin} + b.length <= chunk::PieceSize(*m_, b.piece);
    if (!valid) {  // the swarm asks only for real blocks; skip it anyway
      queue_.pop_front();
      continue;
    }
    if (run.blocks.empty()) {
      run.start = at;
    } else if (at != run.start + run.length ||
               run.length + b.length > options_.max_run_bytes) {
      break;
    }
    run.length += b.length;
    run.blocks.push_back(b);
    queue_.pop_front();
  }
  return run;
}

asio::awaitable<void> WebSeedLink::Loop(
    [[maybe_unused]] std::shared_ptr<WebSeedLink> self) {
  // The swarm is still in AddPeer: what it hears comes from the loop.
  co_await asio::post(io_, asio::use_awaitable);
  if (!Deliver(wire::HaveAll{}) || !Deliver(wire::Unchoke{})) co_return;
  received_ += 10;  // as if both had come over the wire
  asio::steady_timer pause(io_);
  while (!closed_) {
    if (queue_.empty()) {
      error_code ec;
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    Run run = TakeRun();
    if (run.blocks.empty()) continue;
    // The download rate limits: wait until they allow the run.
    RateLimit::Clock::duration wait{};
    for (const auto& l : down_) wait = std::max(wait, l->Wait(run.length));
    if (wait > RateLimit::Clock::duration::zero()) {
      error_code ec;
      pause.expires_after(wait);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return;
    }
    std::string data;
    absl::Status s;
    try {
      s = co_await FetchRun(run.start, run.length, data);
    } catch (const std::exception& e) {
      s = absl::InternalError(absl::StrCat("web seed ", url_, ": ", e.what()));
    }
    if (closed_) co_return;
    if (!s.ok()) {
      conn_->Reset();
      Close(s);
      co_return;
    }
    for (const auto& l : down_) l->Consume(run.length);
    uint64_t offset = 0;
    for (const wire::BlockSpec& b : run.blocks) {
      received_ += 13 + b.length;
      payload_ += b.length;
      const std::string_view block =
          std::string_view(data).substr(offset, b.length);
      offset += b.length;
      if (!Deliver(wire::Piece{b.piece, b.begin, block})) co_return;
    }
  }
}

asio::awaitable<absl::Status> WebSeedLink::FetchRun(uint64_t start,
                                                    uint32_t length,
                                                    std::string& out) {
  out.assign(length, '\0');
  for (const chunk::FileSlice& slice : chunk::MapRange(*m_, start, length)) {
    if (m_->files[slice.file_index].pad_file) continue;  // zeros
    std::string url = WebSeedFileUrl(url_, *m_, slice.file_index);
    char* into = out.data() + slice.piece_offset;
    absl::Status s =
        co_await Get(std::move(url), slice.file_offset, slice.length, into);
    if (!s.ok()) co_return s;
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> WebSeedLink::Get(std::string url, uint64_t offset,
                                               uint32_t length, char* out) {
  for (int hop = 0;; ++hop) {
    absl::StatusOr<tracker::TrackerUrl> u = tracker::ParseTrackerUrl(url);
    if (!u.ok() || u->scheme == tracker::TrackerUrl::Scheme::kUdp) {
      co_return absl::InvalidArgumentError(
          absl::StrCat("web seed: not an http(s) URL: ", url));
    }
    const bool https = u->scheme == tracker::TrackerUrl::Scheme::kHttps;
    const std::string origin =
        absl::StrCat(https ? "https://" : "http://", tracker::HostPort(*u));
    if (!conn_->open() || conn_->origin != origin) {
      conn_->Reset();
      // Connect: an address literal as it is, a name through the resolver.
      error_code ec;
      std::vector<tcp::endpoint> endpoints;
      const asio::ip::address addr = asio::ip::make_address(u->host, ec);
      if (!ec) {
        endpoints.emplace_back(addr, u->port);
      } else {
        tcp::resolver resolver(io_);
        const std::string service = std::to_string(u->port);
        auto results = co_await resolver.async_resolve(
            u->host, service, asio::redirect_error(asio::use_awaitable, ec));
        if (closed_) co_return absl::CancelledError("closed");
        if (ec) co_return FromError(url_, ec, "resolve");
        for (const auto& r : results) endpoints.push_back(r.endpoint());
      }
      if (https) {
        if (!conn_->tls_context) {
          auto ctx = tracker::MakeTlsClientContext("");
          if (!ctx.ok()) co_return ctx.status();
          conn_->tls_context = *std::move(ctx);
        }
        conn_->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(
            io_, *conn_->tls_context);
      } else {
        conn_->plain = std::make_unique<beast::tcp_stream>(io_);
      }
      beast::tcp_stream& lowest = conn_->lowest();
      lowest.expires_after(options_.timeout);
      co_await lowest.async_connect(
          endpoints, asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return absl::CancelledError("closed");
      if (ec) co_return FromError(url_, ec, "connect");
      if (https) {
        asio::ip::make_address(u->host, ec);
        if (ec)  // SNI only for names
          SSL_set_tlsext_host_name(conn_->tls->native_handle(),
                                   u->host.c_str());
        conn_->tls->set_verify_mode(ssl::verify_peer, ec);
        conn_->tls->set_verify_callback(ssl::host_name_verification(u->host),
                                        ec);
        lowest.expires_after(options_.timeout);
        co_await conn_->tls->async_handshake(
            ssl::stream_base::client,
            asio::redirect_error(asio::use_awaitable, ec));
        if (closed_) co_return absl::CancelledError("closed");
        if (ec) co_return FromError(url_, ec, "TLS handshake");
      }
      conn_->origin = origin;
    }
    http::request<http::empty_body> req{http::verb::get, u->target, 11};
    req.set(http::field::host, tracker::HostPort(*u));
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::accept_encoding, "identity");
    req.set(http::field::range,
            absl::StrCat("bytes=", offset, "-", offset + length - 1));
    req.keep_alive(true);
    // A server that ignores Range sends the whole file: accepted for a small
    // file only (memory stays bounded), the body limit fails the rest.
    const uint64_t limit =
        2 * std::max<uint64_t>(length, options_.max_run_bytes) + 1;
    absl::StatusOr<Response> r;
    if (conn_->tls) {
      r = co_await Exchange(*conn_->tls, conn_->lowest(), conn_->buffer, req,
                            limit, options_.timeout, url_);
    } else {
      r = co_await Exchange(*conn_->plain, conn_->lowest(), conn_->buffer, req,
                            limit, options_.timeout, url_);
    }
    if (closed_) co_return absl::CancelledError("closed");
    if (!r.ok()) co_return r.status();
    if (!r->keep_alive) conn_->Reset();
    const bool redirect = r->status == 301 || r->status == 302 ||
                          r->status == 303 || r->status == 307 ||
                          r->status == 308;
    if (redirect && !r->location.empty()) {
      if (hop >= options_.max_redirects) {
        co_return absl::UnavailableError(
            absl::StrCat("web seed ", url_, ": more than ",
                         options_.max_redirects, " redirects"));
      }
      url = tracker::ResolveLocation(*u, r->location);
      continue;
    }
    if (r->status == 206) {
      if (RangeStart(r->content_range) != offset || r->body.size() != length) {
        co_return absl::DataLossError(absl::StrCat(
            "web seed ", url, ": asked for ", length, " bytes at ", offset,
            ", got ", r->body.size(), " (", r->content_range, ")"));
      }
      std::memcpy(out, r->body.data(), length);
      co_return absl::OkStatus();
    }
    if (r->status == 200) {  // the whole file: Range ignored
      if (r->body.size() < offset + length) {
        co_return absl::DataLossError(
            absl::StrCat("web seed ", url, ": the file is ", r->body.size(),
                         " bytes, shorter than the torrent says"));
      }
      std::memcpy(out, r->body.data() + offset, length);
      co_return absl::OkStatus();
    }
    if (r->status == 503 || r->status == 429) {
      int seconds = 0;
      if (absl::SimpleAtoi(r->retry_after, &seconds) && seconds > 0)
        retry_after_ = seconds;
    }
    co_return absl::UnavailableError(
        absl::StrCat("web seed ", url, ": HTTP ", r->status));
  }
}

}  // namespace shoal::node
