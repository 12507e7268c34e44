#include "api/gateway.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <charconv>
#include <list>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/metrics.h"
#include "node/asio.h"  // first Boost include: see the note there
// clang-format off
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include "node/content_io.h"
#include "node/listen.h"
#include "spdlog/spdlog.h"

namespace shoal::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int kMaxConnections = 256;
constexpr int kIdleTimeoutSeconds = 60;
constexpr std::string_view kContentPrefix = "/content/";

struct Range {
  uint64_t first = 0;
  uint64_t length = 0;
};

enum class RangeResult { kNone, kOk, kUnsatisfiable, kIgnored };

// Parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" against a content of
// `size` bytes. Several ranges, or anything malformed, are ignored (the whole
// content is sent), as RFC 9110 allows.
RangeResult ParseRange(std::string_view header, uint64_t size, Range& out) {
  if (header.empty()) return RangeResult::kNone;
  constexpr std::string_view kBytes = "bytes=";
  if (header.substr(0, kBytes.size()) != kBytes) return RangeResult::kIgnored;
  std::string_view spec = header.substr(kBytes.size());
  if (spec.find(',') != std::string_view::npos) return RangeResult::kIgnored;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::kIgnored;
  auto num = [](std::string_view s, uint64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
  };
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last n bytes
    uint64_t n = 0;
    if (!num(b, n)) return RangeResult::kIgnored;
    if (n == 0 || size == 0) return RangeResult::kUnsatisfiable;
    out.first = size - std::min(n, size);
    out.length = size - out.first;
    return RangeResult::kOk;
  }
  if (!num(a, first)) return RangeResult::kIgnored;
  if (b.empty()) {
    last = size ? size - 1 : 0;
  } else if (!num(b, last) || last < first) {
    return RangeResult::kIgnored;
  }
  if (first >= size) return RangeResult::kUnsatisfiable;
  last = std::min(last, size - 1);
  out.first = first;
  out.length = last - first + 1;
  return RangeResult::kOk;
}

}  // namespace

class Gateway::Impl {
 public:
  explicit Impl(node::Node& node) : node_(node), acceptor_(io_) {}

  ~Impl() {
    stopping_ = true;
    boost::system::error_code ec;
    // shutdown(2) wakes a thread blocked in accept(2); close(2) alone does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    if (accept_thread_.joinable()) accept_thread_.join();
    std::list<Connection> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : conns_) c.socket->shutdown(tcp::socket::shutdown_both, ec);
      conns.swap(conns_);
    }
    for (auto& c : conns) c.thread.join();
  }

  absl::Status Bind(const node::HostPort& hp) {
    auto port = node::BindAndListen(acceptor_, hp, "gateway address");
    if (!port.ok()) return port.status();
    node::HostPort bound = hp;
    bound.port = *port;
    address_ = bound.ToString();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return absl::OkStatus();
  }

  const std::string& address() const { return address_; }

 private:
  struct Connection {
    std::shared_ptr<tcp::socket> socket;  // shared with the thread serving it
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop() {
    while (!stopping_) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      Reap();
      if (conns_.size() >= kMaxConnections) {
        spdlog::warn("gateway: {} connections open, refusing one",
                     conns_.size());
        socket->close(ec);
        continue;
      }
      // Blocking I/O with kernel timeouts: an idle or stalled client gives its
      // thread back.
      timeval tv{kIdleTimeoutSeconds, 0};
      ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
                   sizeof(tv));
      ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv,
                   sizeof(tv));
      Connection& c = conns_.emplace_back();
      c.socket = socket;
      c.thread = std::thread([this, &c] {
        Serve(*c.socket);
        c.done = true;
      });
    }
  }

  // Joins the threads of finished connections. REQUIRES: mu_ held.
  void Reap() {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->done) {
        it->thread.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(16 * 1024);
      boost::system::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != asio::error::eof &&
            ec != asio::error::connection_reset &&
            ec != asio::error::operation_aborted &&
            ec != asio::error::would_block && ec != asio::error::try_again) {
          Outcome outcome;
          SendSimple(socket, http::status::bad_request, 11, false,
                     absl::StrCat("bad request: ", ec.message(), "\n"),
                     outcome);
          ApiMetrics::Get().GatewayRequest(outcome.status, 0,
                                           outcome.body_bytes);
        }
        return;
      }
      const auto& req = parser.get();
      bool keep_alive = req.keep_alive();
      Outcome outcome;
      const auto started = std::chrono::steady_clock::now();
      const bool ok = Handle(socket, req, outcome);
      ApiMetrics::Get().GatewayRequest(
          outcome.status,
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        started)
              .count(),
          outcome.body_bytes);
      if (!ok || !keep_alive || stopping_) {
        socket.shutdown(tcp::socket::shutdown_send, ec);
        return;
      }
    }
  }

  // What a request was answered with, for the metrics.
  struct Outcome {
    int status = 0;
    uint64_t body_bytes = 0;
  };

  // Returns false if the connection must be closed.
  bool SendSimple(tcp::socket& socket, http::status status, unsigned version,
                  bool keep_alive, const std::string& body, Outcome& outcome) {
    outcome.status = static_cast<int>(status);
    outcome.body_bytes = body.size();
    http::response<http::string_body> res{status, version};
    res.set(http::field::server, "shoald");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(keep_alive);
    res.body() = body;
    res.prepare_payload();
    boost::system::error_code ec;
    http::write(socket, res, ec);
    return !ec;
  }

  bool Handle(tcp::socket& socket, const http::request<http::empty_body>& req,
              Outcome& outcome) {
    const unsigned version = req.version();
    const bool keep = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    if (size_t q = target.find('?'); q != std::string_view::npos)
      target = target.substr(0, q);
    const bool head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
      http::response<http::string_body> res{http::status::method_not_allowed,
                                            version};
      res.set(http::field::allow, "GET, HEAD");
      res.keep_alive(keep);
      res.prepare_payload();
      outcome.status = 405;
      boost::system::error_code ec;
      http::write(socket, res, ec);
      return !ec;
    }
    if (target == "/health")
      return SendSimple(socket, http::status::ok, version, keep, "ok\n",
                        outcome);
    if (target.substr(0, kContentPrefix.size()) != kContentPrefix) {
      return SendSimple(socket, http::status::not_found, version, keep,
                        "no such path\n", outcome);
    }
    std::string id_text(target.substr(kContentPrefix.size()));
    auto id = chunk::ContentId::FromHex(id_text);
    if (!id.ok()) {
      return SendSimple(socket, http::status::bad_request, version, keep,
                        absl::StrCat("bad content ID: ",
                                     std::string(id.status().message()), "\n"),
                        outcome);
    }
    auto st = node_.store().Stat(*id);
    if (!st.ok()) {
      return SendSimple(socket, http::status::not_found, version, keep,
                        "no such content\n", outcome);
    }
    if (!st->complete()) {
      return SendSimple(socket, http::status::service_unavailable, version,
                        keep, "content is not fully stored on this node\n",
                        outcome);
    }
    const uint64_t size = st->record.length;
    const std::string etag = absl::StrCat("\"", id->Hex(), "\"");
    auto common = [&](auto& res) {
      res.set(http::field::server, "shoald");
      res.set(http::field::etag, etag);
      res.set(http::field::accept_ranges, "bytes");
      res.set(http::field::cache_control,
              "public, max-age=31536000, immutable");
      res.keep_alive(keep);
    };
    auto inm = req[http::field::if_none_match];
    if (!inm.empty() && (std::string_view(inm.data(), inm.size()) == etag ||
                         std::string_view(inm.data(), inm.size()) == "*")) {
      http::response<http::empty_body> res{http::status::not_modified, version};
      common(res);
      outcome.status = 304;
      boost::system::error_code ec;
      http::write(socket, res, ec);
      return !ec;
    }
    Range range{0, size};
    auto rh = req[http::field::range];
    RangeResult rr =
        ParseRange(std::string_view(rh.data(), rh.size()), size, range);
    if (rr == RangeResult::kUnsatisfiable) {
      http::response<http::string_body> res{http::status::range_not_satisfiable,
                                            version};
      common(res);
      res.set(http::field::content_range, absl::StrCat("bytes */", size));
      res.prepare_payload();
      outcome.status = 416;
      boost::system::error_code ec;
      http::write(socket, res, ec);
      return !ec;
    }
    if (rr != RangeResult::kOk) range = {0, size};

    http::response<http::buffer_body> res{rr == RangeResult::kOk
                                              ? http::status::partial_content
                                              : http::status::ok,
                                          version};
    common(res);
    res.set(http::field::content_type, "application/octet-stream");
    if (rr == RangeResult::kOk) {
      res.set(http::field::content_range,
              absl::StrCat("bytes ", range.first, "-",
                           range.first + range.length - 1, "/", size));
    }
    res.content_length(range.length);
    outcome.status = rr == RangeResult::kOk ? 206 : 200;
    res.body().data = nullptr;
    res.body().more = !head && range.length > 0;
    http::response_serializer<http::buffer_body> sr{res};
    boost::system::error_code ec;
    http::write_header(socket, sr, ec);
    if (ec || head || range.length == 0) return !ec;
    absl::Status s = node::ReadContent(
        node_.store(), node_.pool(), *id, range.first, range.length,
        [&](std::string&& data, uint64_t offset) {
          res.body().data = data.data();
          res.body().size = data.size();
          res.body().more = offset + data.size() < range.first + range.length;
          http::write(socket, sr, ec);
          if (ec == http::error::need_buffer) ec = {};
          if (!ec) outcome.body_bytes += data.size();
          return !ec;
        });
    if (!s.ok() && s.code() != absl::StatusCode::kCancelled) {
      // The status line is gone already: closing short of Content-Length tells
      // the client.
      spdlog::warn("gateway: reading {} failed mid-response: {}", id->Hex(),
                   s.ToString());
      return false;
    }
    return s.ok() && !ec;
  }

  node::Node& node_;
  asio::io_context io_;  // owns the sockets; all I/O on them is blocking
  tcp::acceptor acceptor_;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<Connection> conns_;  // guarded by mu_; list: elements must not move
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;

const std::string& Gateway::address() const { return impl_->address(); }

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(
    node::Node& node, const node::HostPort& address) {
  auto impl = std::make_unique<Impl>(node);
  absl::Status s = impl->Bind(address);
  if (!s.ok()) return s;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

}  // namespace shoal::api
