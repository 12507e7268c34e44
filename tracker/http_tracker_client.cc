#include "tracker/http_tracker_client.h"

#include "tracker/internal/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on
#include <openssl/ssl.h>

#include <algorithm>
#include <exception>
#include <set>

#include "absl/strings/str_cat.h"
#include "tracker/http_protocol.h"
#include "tracker/http_support.h"
#include "tracker/tracker_url.h"

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct HttpResult {
  unsigned status = 0;
  std::string location;
  std::string body;
};

absl::Status FromError(const error_code& ec, std::string_view what) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(
        absl::StrCat("tracker http: timed out (", std::string(what), ")"));
  }
  if (ec == http::error::body_limit || ec == http::error::header_limit ||
      ec == http::error::buffer_overflow) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tracker http: response exceeds the size limit (", ec.message(), ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("tracker http: ", std::string(what), ": ", ec.message()));
}

absl::Status Cancelled() {
  return absl::CancelledError("tracker http: client destroyed");
}

}  // namespace

namespace internal {

struct HttpClientState {
  HttpClientState(asio::io_context& io_in, HttpTrackerClientOptions options_in)
      : io(io_in), options(std::move(options_in)) {}

  asio::io_context& io;
  const HttpTrackerClientOptions options;
  // Created at the first https request (or in Create if extra_ca_pem is set).
  std::unique_ptr<ssl::context> tls;
  bool cancelled = false;
  // Streams of requests in flight, closed when the client goes away.
  std::set<beast::tcp_stream*> live;
};

}  // namespace internal

namespace {

using Shared = internal::HttpClientState;

// Registers a stream in Shared::live for the lifetime of one exchange.
class LiveStream {
 public:
  LiveStream(Shared& s, beast::tcp_stream* stream) : s_(s), stream_(stream) {
    s_.live.insert(stream_);
  }
  ~LiveStream() { s_.live.erase(stream_); }
  LiveStream(const LiveStream&) = delete;
  LiveStream& operator=(const LiveStream&) = delete;

 private:
  Shared& s_;
  beast::tcp_stream* stream_;
};

template <class Stream>
asio::awaitable<absl::StatusOr<HttpResult>> Exchange(Stream& stream,
                                                     std::shared_ptr<Shared> s,
                                                     const TrackerUrl& u) {
  http::request<http::empty_body> req{http::verb::get, u.target, 11};
  req.set(http::field::host, HostPort(u));
  req.set(http::field::user_agent, s->options.user_agent);
  req.set(http::field::accept_encoding, "identity");
  req.set(http::field::connection, "close");
  error_code ec;
  co_await http::async_write(stream, req,
                             asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  if (ec) co_return FromError(ec, "write");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(s->options.limits.max_response_bytes);
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(s->options.limits.max_response_bytes, 64 * 1024)));
  co_await http::async_read(stream, buffer, parser,
                            asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  // A server that closes a TLS connection without close_notify after a
  // complete message is fine.
  if (ec && !parser.is_done()) co_return FromError(ec, "read");
  HttpResult r;
  r.status = parser.get().result_int();
  auto loc = parser.get().find(http::field::location);
  if (loc != parser.get().end()) r.location = std::string(loc->value());
  r.body = std::move(parser.get().body());
  co_return r;
}

asio::awaitable<absl::StatusOr<std::vector<tcp::endpoint>>> Resolve(
    std::shared_ptr<Shared> s, const TrackerUrl& u) {
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(u.host, ec);
  if (!ec) co_return std::vector<tcp::endpoint>{tcp::endpoint(addr, u.port)};
  tcp::resolver resolver(s->io);
  // A named string: GCC 12 may destroy temporaries in a co_await operand
  // twice.
  const std::string service = std::to_string(u.port);
  auto results = co_await resolver.async_resolve(
      u.host, service, asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  if (ec) co_return FromError(ec, absl::StrCat("resolve ", u.host));
  std::vector<tcp::endpoint> out;
  for (const auto& r : results) out.push_back(r.endpoint());
  if (out.empty()) {
    co_return absl::UnavailableError(
        absl::StrCat("tracker http: no address for ", u.host));
  }
  co_return out;
}

asio::awaitable<absl::StatusOr<HttpResult>> FetchOnce(std::shared_ptr<Shared> s,
                                                      const TrackerUrl& u) {
  absl::StatusOr<std::vector<tcp::endpoint>> endpoints = co_await Resolve(s, u);
  if (!endpoints.ok()) co_return endpoints.status();
  error_code ec;
  if (u.scheme == TrackerUrl::Scheme::kHttp) {
    beast::tcp_stream stream(s->io);
    LiveStream live(*s, &stream);
    stream.expires_after(s->options.timeout);
    co_await stream.async_connect(
        *endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (s->cancelled) co_return Cancelled();
    if (ec) co_return FromError(ec, absl::StrCat("connect to ", HostPort(u)));
    co_return co_await Exchange(stream, s, u);
  }
  if (!s->tls) {
    absl::StatusOr<std::unique_ptr<ssl::context>> tls =
        MakeTlsClientContext(s->options.extra_ca_pem);
    if (!tls.ok()) co_return tls.status();
    s->tls = *std::move(tls);
  }
  beast::ssl_stream<beast::tcp_stream> stream(s->io, *s->tls);
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
  LiveStream live(*s, &lowest);
  lowest.expires_after(s->options.timeout);
  co_await lowest.async_connect(*endpoints,
                                asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  if (ec) co_return FromError(ec, absl::StrCat("connect to ", HostPort(u)));
  asio::ip::make_address(u.host, ec);
  if (ec) {  // SNI only for names, not address literals
    SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str());
  }
  stream.set_verify_mode(ssl::verify_peer, ec);
  stream.set_verify_callback(ssl::host_name_verification(u.host), ec);
  if (ec) co_return FromError(ec, "TLS setup");
  co_await stream.async_handshake(
      ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (s->cancelled) co_return Cancelled();
  if (ec) co_return FromError(ec, "TLS handshake");
  co_return co_await Exchange(stream, s, u);
}

// GETs `url`, following redirects.
asio::awaitable<absl::StatusOr<HttpResult>> Fetch(std::shared_ptr<Shared> s,
                                                  std::string url) {
  for (int hop = 0;; ++hop) {
    absl::StatusOr<TrackerUrl> u = ParseTrackerUrl(url);
    if (!u.ok()) co_return u.status();
    if (u->scheme == TrackerUrl::Scheme::kUdp) {
      co_return absl::InvalidArgumentError(
          absl::StrCat("tracker http: not an http(s) url: ", url));
    }
    absl::StatusOr<HttpResult> r = co_await FetchOnce(s, *u);
    if (!r.ok() || s->cancelled) co_return r;
    const bool redirect = r->status == 301 || r->status == 302 ||
                          r->status == 303 || r->status == 307 ||
                          r->status == 308;
    if (!redirect || r->location.empty()) co_return r;
    if (hop >= s->options.max_redirects) {
      co_return absl::UnavailableError(absl::StrCat(
          "tracker http: more than ", s->options.max_redirects, " redirects"));
    }
    url = ResolveLocation(*u, r->location);
  }
}

using FetchCallback = std::function<void(absl::StatusOr<HttpResult>)>;

asio::awaitable<void> RunFetch(std::shared_ptr<Shared> s, std::string url,
                               FetchCallback done) {
  absl::StatusOr<HttpResult> result;
  try {
    result = co_await Fetch(s, std::move(url));
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("tracker http: ", e.what()));
  }
  if (s->cancelled) co_return;
  done(std::move(result));
}

void StartFetch(const std::shared_ptr<Shared>& s, std::string url,
                FetchCallback done) {
  asio::co_spawn(s->io, RunFetch(s, std::move(url), std::move(done)),
                 asio::detached);
}

// The body of a 200 response; for other statuses an error that carries the
// tracker's "failure reason" if the body has one.
absl::StatusOr<std::string> BodyOf(absl::StatusOr<HttpResult> r,
                                   const TrackerLimits& limits) {
  if (!r.ok()) return r.status();
  if (r->status == 200) return std::move(r->body);
  absl::StatusOr<AnnounceResponse> parsed =
      ParseAnnounceResponse(r->body, limits);
  if (parsed.status().code() == absl::StatusCode::kFailedPrecondition) {
    return parsed.status();
  }
  return absl::UnavailableError(absl::StrCat("tracker http: HTTP ", r->status));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTrackerClient>> HttpTrackerClient::Create(
    asio::io_context& io, std::string announce_url,
    HttpTrackerClientOptions options) {
  absl::StatusOr<TrackerUrl> u = ParseTrackerUrl(announce_url);
  if (!u.ok()) return u.status();
  if (u->scheme == TrackerUrl::Scheme::kUdp) {
    return absl::InvalidArgumentError(
        "HttpTrackerClient: udp:// urls need UdpTrackerClient");
  }
  auto shared =
      std::make_shared<internal::HttpClientState>(io, std::move(options));
  if (!shared->options.extra_ca_pem.empty()) {
    absl::StatusOr<std::unique_ptr<ssl::context>> tls =
        MakeTlsClientContext(shared->options.extra_ca_pem);
    if (!tls.ok()) return tls.status();
    shared->tls = *std::move(tls);
  }
  return std::unique_ptr<HttpTrackerClient>(
      new HttpTrackerClient(std::move(announce_url), std::move(shared)));
}

HttpTrackerClient::HttpTrackerClient(
    std::string announce_url, std::shared_ptr<internal::HttpClientState> shared)
    : announce_url_(std::move(announce_url)), shared_(std::move(shared)) {}

HttpTrackerClient::~HttpTrackerClient() {
  shared_->cancelled = true;
  for (beast::tcp_stream* stream : shared_->live) {
    error_code ignored;
    stream->socket().close(ignored);
  }
}

void HttpTrackerClient::Get(std::string url, GetCallback done) {
  TrackerLimits limits = shared_->options.limits;
  StartFetch(shared_, std::move(url),
             [done = std::move(done), limits](absl::StatusOr<HttpResult> r) {
               done(BodyOf(std::move(r), limits));
             });
}

void HttpTrackerClient::Announce(const AnnounceRequest& request,
                                 AnnounceCallback done) {
  TrackerLimits limits = shared_->options.limits;
  StartFetch(shared_, BuildAnnounceUrl(announce_url_, request),
             [done = std::move(done), limits](absl::StatusOr<HttpResult> r) {
               absl::StatusOr<std::string> body = BodyOf(std::move(r), limits);
               if (!body.ok()) {
                 done(body.status());
                 return;
               }
               done(ParseAnnounceResponse(*body, limits));
             });
}

void HttpTrackerClient::Scrape(std::vector<AnnounceHash> hashes,
                               ScrapeCallback done) {
  TrackerLimits limits = shared_->options.limits;
  absl::StatusOr<std::string> url = BuildScrapeUrl(announce_url_, hashes);
  if (!url.ok()) {
    asio::post(shared_->io,
               [s = shared_, done = std::move(done), status = url.status()] {
                 if (!s->cancelled) done(status);
               });
    return;
  }
  StartFetch(shared_, *std::move(url),
             [done = std::move(done), limits](absl::StatusOr<HttpResult> r) {
               absl::StatusOr<std::string> body = BodyOf(std::move(r), limits);
               if (!body.ok()) {
                 done(body.status());
                 return;
               }
               done(ParseScrapeResponse(*body, limits));
             });
}

}  // namespace shoal::tracker
