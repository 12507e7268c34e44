#include "api/gateway.h"

#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "node/asio.h"  // first Boost include: see the note there
// clang-format off
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include "api/http_util.h"
#include "api/metrics.h"
#include "node/listen.h"
#include "node/piece_events.h"
#include "spdlog/spdlog.h"

namespace shoal::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kContentPrefix = "/content/";
// Bytes handed to one socket write: a slow reader's write times out after the
// idle timeout without progress, not after a whole piece.
constexpr size_t kWriteSlice = 256 * 1024;

using Clock = std::chrono::steady_clock;
using Piece = std::shared_ptr<const std::string>;

// Verified pieces shared by the readers of the same content, least recently
// used out first. Bytes under an ID never change, so an entry is never stale.
class PieceCache {
 public:
  explicit PieceCache(uint64_t capacity) : capacity_(capacity) {}

  Piece Get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }

  void Put(const std::string& key, Piece piece) {
    if (piece->size() > capacity_ / 4) return;  // would crowd out the rest
    std::lock_guard<std::mutex> lock(mu_);
    if (map_.contains(key)) return;
    lru_.push_front(key);
    bytes_ += piece->size();
    map_.emplace(key, std::make_pair(std::move(piece), lru_.begin()));
    while (bytes_ > capacity_ && !lru_.empty()) {
      auto victim = map_.find(lru_.back());
      bytes_ -= victim->second.first->size();
      map_.erase(victim);
      lru_.pop_back();
    }
  }

 private:
  const uint64_t capacity_;
  std::mutex mu_;
  std::list<std::string> lru_;
  std::unordered_map<std::string,
                     std::pair<Piece, std::list<std::string>::iterator>>
      map_;
  uint64_t bytes_ = 0;
};

std::string CacheKey(const chunk::ContentId& id, uint32_t piece) {
  std::string key(id.AsStringView());
  key.append(reinterpret_cast<const char*>(&piece), sizeof piece);
  return key;
}

// Runs `fn` on the node's pool and resumes the coroutine on its own executor
// (a strand) with the result. The pool's wake-up is posted to that strand, so
// it lands after the coroutine has started waiting.
template <typename T>
asio::awaitable<T> OnPool(ThreadPool& pool, std::function<T()> fn) {
  auto ex = co_await asio::this_coro::executor;
  auto done = std::make_shared<asio::steady_timer>(
      ex, asio::steady_timer::time_point::max());
  auto result = std::make_shared<std::optional<T>>();
  pool.Post([done, result, fn = std::move(fn), ex] {
    *result = fn();
    asio::post(ex, [done] { done->cancel(); });
  });
  boost::system::error_code ec;  // operation_aborted: the pool is done
  co_await done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return std::move(**result);
}

// Waits until `pred` holds, waking whenever `events` reports a change; false
// once `timeout` has passed. The coroutine runs on a strand, so a wake posted
// from another thread lands after it has started waiting.
asio::awaitable<bool> WaitFor(node::PieceEvents& events,
                              std::function<bool()> pred,
                              absl::Duration timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex);
  const auto deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!pred()) {
    if (Clock::now() >= deadline) co_return false;
    timer->expires_at(deadline);
    events.AddWaiter(
        [timer, ex] { asio::post(ex, [timer] { timer->cancel(); }); });
    if (pred()) break;
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return true;
}

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

// What a request was answered with, for the metrics.
struct Outcome {
  int status = 0;
  uint64_t body_bytes = 0;
};

}  // namespace

class Gateway::Impl {
 public:
  Impl(node::Node& node)
      : node_(node),
        options_(node.options()),
        cache_(options_.gateway_cache_bytes),
        io_(Threads()),
        acceptor_(io_) {}

  ~Impl() {
    stopping_ = true;
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  absl::Status Bind(const node::HostPort& hp) {
    auto port = node::BindAndListen(acceptor_, hp, "gateway address");
    if (!port.ok()) return port.status();
    node::HostPort bound = hp;
    bound.port = *port;
    address_ = bound.ToString();
    asio::co_spawn(io_, Accept(), asio::detached);
    for (int i = 0; i < Threads(); ++i)
      threads_.emplace_back([this] { io_.run(); });
    return absl::OkStatus();
  }

  const std::string& address() const { return address_; }

 private:
  int Threads() const {
    if (options_.gateway_threads > 0) return options_.gateway_threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(
          asio::make_strand(io_),
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping_) co_return;
        // EMFILE and the like: let the system breathe rather than spin.
        asio::steady_timer pause(io_, std::chrono::milliseconds(50));
        co_await pause.async_wait(
            asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      if (connections_.load() >= options_.gateway_max_connections) {
        if (Clock::now() - last_refusal_log_ > std::chrono::seconds(10)) {
          last_refusal_log_ = Clock::now();
          spdlog::warn(
              "gateway: {} connections open (gateway_max_connections), "
              "refusing more",
              connections_.load());
        }
        socket.close(ec);
        continue;
      }
      ++connections_;
      auto ex = socket.get_executor();
      asio::co_spawn(ex, Serve(std::move(socket)), [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          spdlog::warn("gateway: connection ended by an exception: {}",
                       x.what());
        }
      });
    }
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    struct Count {
      std::atomic<int>& n;
      ~Count() { --n; }
    } count{connections_};
    socket.set_option(tcp::no_delay(true));
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    const auto header_timeout =
        absl::ToChronoNanoseconds(options_.gateway_header_timeout);
    const auto idle_timeout =
        absl::ToChronoNanoseconds(options_.gateway_idle_timeout);
    bool first = true;
    while (!stopping_) {
      boost::system::error_code ec;
      if (!first && buffer.size() == 0) {
        // Keep-alive: the next request may take its time to begin.
        stream.expires_after(idle_timeout);
        const size_t n = co_await stream.async_read_some(
            buffer.prepare(4096),
            asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        buffer.commit(n);
      }
      first = false;
      stream.expires_after(header_timeout);
      http::request_parser<http::empty_body> parser;
      parser.header_limit(
          static_cast<uint32_t>(options_.gateway_max_header_bytes));
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      const auto started = Clock::now();
      if (ec) {
        if (ec == http::error::header_limit) {
          Outcome o;
          co_await SendSimple(stream, 431, 11, false,
                              "request header too large\n", o);
          Report(o, started);
        } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                   ec != asio::error::connection_reset &&
                   ec != beast::error::timeout &&
                   ec != asio::error::operation_aborted) {
          Outcome o;
          co_await SendSimple(stream, 400, 11, false,
                              absl::StrCat("bad request: ", ec.message(), "\n"),
                              o);
          Report(o, started);
        }
        break;
      }
      const auto& req = parser.get();
      const bool keep_alive = req.keep_alive();
      Outcome outcome;
      const bool ok = co_await Handle(stream, req, outcome);
      Report(outcome, started);
      if (!ok || !keep_alive) break;
    }
    spdlog::debug("gateway: connection done");
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void Report(const Outcome& o, Clock::time_point started) {
    if (o.status == 0) return;
    ApiMetrics::Get().GatewayRequest(
        o.status, std::chrono::duration<double>(Clock::now() - started).count(),
        o.body_bytes);
  }

  // Writes `data` with the idle timeout per write.
  template <typename Buffers>
  asio::awaitable<bool> Write(beast::tcp_stream& stream, const Buffers& data) {
    boost::system::error_code ec;
    stream.expires_after(
        absl::ToChronoNanoseconds(options_.gateway_idle_timeout));
    co_await asio::async_write(stream, data,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) spdlog::debug("gateway: write: {}", ec.message());
    co_return !ec;
  }

  static std::string Head(int status, unsigned version, bool keep_alive) {
    std::string h =
        absl::StrCat(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", status, " ",
                     std::string(StatusText(status)), "\r\nServer: shoald\r\n");
    if (!keep_alive && version != 10) h += "Connection: close\r\n";
    if (keep_alive && version == 10) h += "Connection: keep-alive\r\n";
    return h;
  }

  asio::awaitable<bool> SendSimple(beast::tcp_stream& stream, int status,
                                   unsigned version, bool keep_alive,
                                   std::string body, Outcome& outcome,
                                   std::string extra_headers = {},
                                   bool head = false) {
    outcome.status = status;
    std::string msg = Head(status, version, keep_alive);
    absl::StrAppend(&msg, "Content-Type: text/plain; charset=utf-8\r\n",
                    "Content-Length: ", body.size(), "\r\n", extra_headers,
                    "\r\n");
    if (!head) {
      outcome.body_bytes = body.size();
      msg += body;
    }
    co_return co_await Write(stream, asio::buffer(msg));
  }

  // A fetch slot for a missing content: requests for one ID share a slot,
  // and at most gateway_max_fetches IDs are fetched at once.
  class FetchSlot {
   public:
    FetchSlot() = default;
    FetchSlot(Impl* impl, std::string key)
        : impl_(impl), key_(std::move(key)) {}
    FetchSlot(FetchSlot&& o) noexcept
        : impl_(std::exchange(o.impl_, nullptr)), key_(std::move(o.key_)) {}
    FetchSlot& operator=(FetchSlot&& o) noexcept {
      std::swap(impl_, o.impl_);
      std::swap(key_, o.key_);
      return *this;
    }
    ~FetchSlot() {
      if (!impl_) return;
      std::lock_guard<std::mutex> lock(impl_->fetch_mu_);
      if (--impl_->fetching_[key_] == 0) impl_->fetching_.erase(key_);
    }
    bool held() const { return impl_ != nullptr; }

   private:
    Impl* impl_ = nullptr;
    std::string key_;
  };

  FetchSlot TakeFetchSlot(const chunk::ContentId& id) {
    std::string key(id.AsStringView());
    std::lock_guard<std::mutex> lock(fetch_mu_);
    auto it = fetching_.find(key);
    if (it == fetching_.end()) {
      if (static_cast<int>(fetching_.size()) >= options_.gateway_max_fetches)
        return {};
      it = fetching_.emplace(key, 0).first;
    }
    ++it->second;
    return FetchSlot(this, std::move(key));
  }

  asio::awaitable<absl::StatusOr<Piece>> ReadPiece(const chunk::ContentId& id,
                                                   uint32_t i) {
    const std::string key = CacheKey(id, i);
    if (Piece p = cache_.Get(key)) co_return p;
    store::ChunkStore& store = node_.store();
    auto read = co_await OnPool<absl::StatusOr<std::string>>(
        node_.pool(), [&store, id, i] { return store.ReadPiece(id, i); });
    if (!read.ok()) co_return read.status();
    Piece p = std::make_shared<const std::string>(*std::move(read));
    cache_.Put(key, p);
    co_return p;
  }

  asio::awaitable<bool> Handle(beast::tcp_stream& stream,
                               const http::request<http::empty_body>& req,
                               Outcome& outcome) {
    const unsigned version = req.version();
    const bool keep = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    std::string_view query;
    if (size_t q = target.find('?'); q != std::string_view::npos) {
      query = target.substr(q + 1);
      target = target.substr(0, q);
    }
    const bool head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
      co_return co_await SendSimple(stream, 405, version, keep,
                                    "use GET or HEAD\n", outcome,
                                    "Allow: GET, HEAD\r\n");
    }
    if (target == "/health") {
      co_return co_await SendSimple(stream, 200, version, keep, "ok\n", outcome,
                                    {}, head);
    }
    if (target.substr(0, kContentPrefix.size()) != kContentPrefix) {
      co_return co_await SendSimple(stream, 404, version, keep,
                                    "no such path\n", outcome, {}, head);
    }
    auto id = chunk::ContentId::FromHex(
        std::string(target.substr(kContentPrefix.size())));
    if (!id.ok()) {
      co_return co_await SendSimple(
          stream, 400, version, keep,
          absl::StrCat("bad content ID: ", std::string(id.status().message()),
                       "\n"),
          outcome, {}, head);
    }
    auto range_header = req[http::field::range];
    const std::string_view range_text(range_header.data(), range_header.size());

    // Held here, or fetched from the cluster as the response streams.
    auto st = node_.store().Stat(*id);
    std::shared_ptr<node::PieceEvents> arriving;
    FetchSlot slot;
    if (!st.ok() || !st->complete()) {
      if (stopping_) {
        co_return co_await SendSimple(stream, 503, version, false,
                                      "shutting down\n", outcome, {}, head);
      }
      slot = TakeFetchSlot(*id);
      if (!slot.held()) {
        co_return co_await SendSimple(
            stream, 503, version, keep,
            "too many fetches under way (gateway_max_fetches)\n", outcome,
            "Retry-After: 1\r\n", head);
      }
      if (!st.ok() && !node_.session().ClusterReachable()) {
        co_return co_await SendSimple(
            stream, 404, version, keep,
            "no such content here, and the cluster DHT knows no node to ask\n",
            outcome, {}, head);
      }
      ByteRange guess;  // only for where the deadlines start
      (void)ParseRange(range_text, UINT64_MAX, guess);
      auto events =
          node_.session().Fetch(*id, {}, guess.first, UINT64_MAX - guess.first);
      if (!events.ok()) {
        co_return co_await SendSimple(
            stream, 500, version, keep,
            absl::StrCat(std::string(events.status().message()), "\n"), outcome,
            {}, head);
      }
      arriving = *std::move(events);
      // Until the metadata arrives, or the first provider lookup has found
      // nobody.
      const bool known = co_await WaitFor(
          *arriving,
          [&] {
            return arriving->known() || arriving->failed() ||
                   (arriving->lookups() > 0 && !arriving->providers_found());
          },
          options_.fetch_timeout);
      if (!known || !arriving->known()) {
        // 404 only once a lookup has found nobody; a timeout before any
        // lookup ended, or with providers that didn't deliver, is 504.
        const bool found =
            arriving->providers_found() || arriving->lookups() == 0;
        co_return co_await SendSimple(
            stream, found ? 504 : 404, version, keep,
            found ? "the content did not arrive from the cluster in time\n"
                  : "no provider of this content found\n",
            outcome, {}, head);
      }
      st = node_.store().Stat(*id);
      if (!st.ok()) {
        co_return co_await SendSimple(
            stream, 500, version, keep,
            absl::StrCat(std::string(st.status().message()), "\n"), outcome, {},
            head);
      }
    }
    const store::ContentRecord& record = st->record;
    const uint64_t size = record.length;
    const std::string etag = absl::StrCat("\"", id->Hex(), "\"");
    std::string common = absl::StrCat(
        "ETag: ", etag,
        "\r\nAccept-Ranges: bytes\r\nCache-Control: public, max-age=31536000, "
        "immutable\r\n");
    auto inm = req[http::field::if_none_match];
    const std::string_view inm_text(inm.data(), inm.size());
    if (!inm_text.empty() && (inm_text == etag || inm_text == "*" ||
                              inm_text.find(etag) != std::string_view::npos)) {
      outcome.status = 304;
      std::string msg = Head(304, version, keep) + common + "\r\n";
      co_return co_await Write(stream, asio::buffer(msg));
    }
    ByteRange range{0, size};
    RangeResult rr = ParseRange(range_text, size, range);
    // If-Range: a range only for this very content (an entity tag; a date
    // can't be checked, so it counts as a mismatch and the whole content is
    // sent, as RFC 9110 allows).
    auto if_range = req[http::field::if_range];
    if (!if_range.empty() &&
        std::string_view(if_range.data(), if_range.size()) != etag) {
      rr = RangeResult::kNone;
    }
    if (rr == RangeResult::kUnsatisfiable) {
      co_return co_await SendSimple(
          stream, 416, version, keep, "range not satisfiable\n", outcome,
          absl::StrCat(common, "Content-Range: bytes */", size, "\r\n"), head);
    }
    if (rr != RangeResult::kOk) range = {0, size};
    if (arriving && range.length > 0) {
      // Deadlines from where this reader starts.
      (void)node_.session().Fetch(*id, {}, range.first, range.length);
    }

    std::string_view content_type = "application/octet-stream";
    if (auto name = QueryParam(query, "filename"); name && !name->empty()) {
      content_type = MimeTypeFor(*name);
      absl::StrAppend(
          &common, "Content-Disposition: ", ContentDisposition(*name), "\r\n");
    }
    const int status = rr == RangeResult::kOk ? 206 : 200;
    outcome.status = status;
    std::string header = Head(status, version, keep);
    absl::StrAppend(&header, "Content-Type: ", std::string(content_type),
                    "\r\n", common, "Content-Length: ", range.length, "\r\n");
    if (rr == RangeResult::kOk) {
      absl::StrAppend(&header, "Content-Range: bytes ", range.first, "-",
                      range.first + range.length - 1, "/", size, "\r\n");
    }
    header += "\r\n";
    if (head || range.length == 0) {
      co_return co_await Write(stream, asio::buffer(header));
    }

    const auto layout = record.layout();
    const uint64_t end = range.first + range.length;
    const uint32_t first_piece =
        static_cast<uint32_t>(range.first / layout.piece_length);
    const uint32_t last_piece =
        static_cast<uint32_t>((end - 1) / layout.piece_length);
    (void)node_.store().Touch(*id);
    bool header_sent = false;
    for (uint32_t i = first_piece; i <= last_piece; ++i) {
      if (arriving && !arriving->Has(i)) {
        const bool came = co_await WaitFor(
            *arriving, [&] { return arriving->Has(i) || arriving->failed(); },
            options_.fetch_timeout);
        if (!came || !arriving->Has(i)) {
          spdlog::warn(
              "gateway: {}: piece {} did not arrive in time{}",
              id->Hex().substr(0, 12), i,
              arriving->failed()
                  ? absl::StrCat(" (", arriving->failure().ToString(), ")")
                  : "");
          if (!header_sent) {
            co_return co_await SendSimple(
                stream, 504, version, keep,
                "the content did not arrive in time\n", outcome);
          }
          co_return false;  // short of Content-Length: the client can tell
        }
      }
      auto piece = co_await ReadPiece(*id, i);
      if (!piece.ok()) {
        spdlog::warn("gateway: reading {} piece {}: {}",
                     id->Hex().substr(0, 12), i, piece.status().ToString());
        if (!header_sent) {
          co_return co_await SendSimple(
              stream,
              piece.status().code() == absl::StatusCode::kDataLoss ? 500 : 503,
              version, false,
              absl::StrCat(std::string(piece.status().message()), "\n"),
              outcome);
        }
        co_return false;
      }
      const uint64_t piece_start = layout.piece_offset(i);
      size_t from =
          static_cast<size_t>(std::max(range.first, piece_start) - piece_start);
      const size_t to = static_cast<size_t>(
          std::min<uint64_t>(end, piece_start + (*piece)->size()) -
          piece_start);
      while (from < to) {
        const size_t n = std::min(kWriteSlice, to - from);
        const asio::const_buffer body((*piece)->data() + from, n);
        bool ok;
        if (!header_sent) {
          header_sent = true;
          const std::array<asio::const_buffer, 2> both = {asio::buffer(header),
                                                          body};
          ok = co_await Write(stream, both);
        } else {
          ok = co_await Write(stream, body);
        }
        if (!ok) {
          spdlog::debug("gateway: write failed at piece {}", i);
          co_return false;
        }
        outcome.body_bytes += n;
        from += n;
      }
    }
    co_return true;
  }

  node::Node& node_;
  const node::NodeOptions& options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  Clock::time_point last_refusal_log_{};  // the accept loop's
  PieceCache cache_;
  std::mutex fetch_mu_;
  std::unordered_map<std::string, int> fetching_;  // guarded by fetch_mu_
  std::string address_;
  std::vector<std::thread> threads_;
  // Last: destroyed first, with the coroutines it still holds, while the
  // members they use are alive.
  asio::io_context io_;
  tcp::acceptor acceptor_;
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
