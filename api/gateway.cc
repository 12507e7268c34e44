#include "api/gateway.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
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
#include "api/gateway_util.h"
#include "api/http_util.h"
#include "api/metrics.h"
#include "base/hex.h"
#include "base/transfer_all.h"
#include "chunk/directory.h"
#include "node/listen.h"
#include "node/piece_events.h"
#include "spdlog/spdlog.h"

namespace shoal::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace gateway_internal;  // NOLINT: the gateway's own parts

namespace {

constexpr std::string_view kContentPrefix = "/content/";
constexpr std::string_view kTorrentPrefix = "/torrent/";
// Bytes handed to one socket write: a slow reader's write times out after the
// idle timeout without progress, not after a whole piece.
constexpr size_t kWriteSlice = 256 * 1024;

}  // namespace

class Gateway::Impl {
 public:
  Impl(node::Node& node)
      : node_(node),
        options_(node.options()),
        cache_(options_.gateway_cache_bytes),
        ios_(MakeContexts(Threads())),
        io_(*ios_[0]),
        acceptor_(io_) {}

  ~Impl() {
    stopping_ = true;
    for (auto& io : ios_) io->stop();
    for (auto& t : threads_) t.join();
  }

  absl::Status Bind(const node::HostPort& hp) {
    auto port = node::BindAndListen(acceptor_, hp, "gateway address");
    if (!port.ok()) return port.status();
    node::HostPort bound = hp;
    bound.port = *port;
    address_ = bound.ToString();
    asio::co_spawn(io_, Accept(), asio::detached);
    asio::co_spawn(io_, Sweep(), asio::detached);
    for (auto& io : ios_) {
      // Idle contexts (no connection yet) must keep running.
      threads_.emplace_back([ctx = io.get()] {
        auto work = asio::make_work_guard(*ctx);
        ctx->run();
      });
    }
    return absl::OkStatus();
  }

  const std::string& address() const { return address_; }

 private:
  // One io_context per thread, as nginx has a worker per core: a connection
  // lives on one thread for good, so its coroutine needs no strand and its
  // data stays in one core's cache.
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (int i = 0; i < n; ++i)
      out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }

  int Threads() const {
    if (options_.gateway_threads > 0) return options_.gateway_threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }

  asio::awaitable<void> Accept() {
    boost::system::error_code ec;
    acceptor_.non_blocking(true, ec);
    for (;;) {
      ec = {};
      tcp::socket socket = co_await acceptor_.async_accept(
          NextContext(), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping_) co_return;
        // EMFILE and the like: let the system breathe rather than spin.
        asio::steady_timer pause(io_, std::chrono::milliseconds(50));
        co_await pause.async_wait(
            asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      Start(std::move(socket));
      // Take every connection already queued now: accepting one per turn of
      // this thread's event loop left thousands waiting behind busy
      // connections for seconds.
      for (int i = 0; i < 1024 && !stopping_; ++i) {
        tcp::socket more(NextContext());
        acceptor_.accept(more, ec);
        if (ec) break;
        Start(std::move(more));
      }
    }
  }

  asio::io_context& NextContext() { return *ios_[next_io_++ % ios_.size()]; }

  void Start(tcp::socket socket) {
    boost::system::error_code ec;
    if (connections_.load() >= options_.gateway_max_connections) {
      if (Clock::now() - last_refusal_log_ > std::chrono::seconds(10)) {
        last_refusal_log_ = Clock::now();
        spdlog::warn(
            "gateway: {} connections open (gateway_max_connections), "
            "refusing more",
            connections_.load());
      }
      socket.close(ec);
      return;
    }
    ++connections_;
    auto ex = socket.get_executor();
    asio::co_spawn(ex, Serve(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::warn("gateway: connection ended by an exception: {}", x.what());
      }
    });
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    struct Count {
      std::atomic<int>& n;
      ~Count() { --n; }
    } count{connections_};
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(socket));
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      conns_.push_front(conn);
      conn->registered = conns_.begin();
    }
    struct Unregister {
      Impl* impl;
      Conn* c;
      ~Unregister() {
        std::lock_guard<std::mutex> lock(impl->conns_mu_);
        impl->conns_.erase(c->registered);
      }
    } unregister{this, conn.get()};
    Conn& c = *conn;
    beast::flat_buffer buffer;
    bool first = true;
    while (!stopping_) {
      ec = {};
      if (!first && buffer.size() == 0) {
        // Keep-alive: the next request may take its time to begin.
        c.ExpiresAfter(options_.gateway_idle_timeout);
        const size_t n = co_await c.socket.async_read_some(
            buffer.prepare(4096),
            asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        buffer.commit(n);
      }
      first = false;
      c.ExpiresAfter(options_.gateway_header_timeout);
      http::request_parser<http::empty_body> parser;
      parser.header_limit(
          static_cast<uint32_t>(options_.gateway_max_header_bytes));
      co_await http::async_read(c.socket, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      c.deadline_ms.store(INT64_MAX, std::memory_order_relaxed);
      const auto started = Clock::now();
      if (ec) {
        if (ec == http::error::header_limit) {
          Outcome o;
          co_await SendSimple(c, 431, 11, false, "request header too large\n",
                              o);
          Report(o, started);
        } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                   ec != asio::error::connection_reset &&
                   ec != asio::error::operation_aborted &&
                   ec != asio::error::bad_descriptor) {
          Outcome o;
          co_await SendSimple(c, 400, 11, false,
                              absl::StrCat("bad request: ", ec.message(), "\n"),
                              o);
          Report(o, started);
        }
        break;
      }
      const auto& req = parser.get();
      const bool keep_alive = req.keep_alive();
      Outcome outcome;
      const bool ok = co_await Handle(c, req, outcome);
      Report(outcome, started);
      if (!ok || !keep_alive) break;
    }
    spdlog::debug("gateway: connection ends ({})", ec.message());
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  // Closes connections whose read or write is past its deadline. The close
  // runs on the connection's thread, and checks the deadline again there: the
  // operation may have finished, and another begun, meanwhile.
  asio::awaitable<void> Sweep() {
    asio::steady_timer timer(io_);
    while (!stopping_) {
      timer.expires_after(std::chrono::milliseconds(250));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      const int64_t now = NowMs();
      std::vector<std::shared_ptr<Conn>> late;
      {
        std::lock_guard<std::mutex> lock(conns_mu_);
        for (const auto& w : conns_) {
          auto c = w.lock();
          if (c && c->deadline_ms.load(std::memory_order_relaxed) <= now)
            late.push_back(std::move(c));
        }
      }
      for (auto& c : late) {
        asio::post(c->socket.get_executor(), [c, now] {
          if (c->deadline_ms.load(std::memory_order_relaxed) > now) return;
          spdlog::debug("gateway: closing a connection past its deadline");
          boost::system::error_code ignored;
          c->socket.close(ignored);
        });
      }
    }
  }

  void Report(const Outcome& o, Clock::time_point started) {
    if (o.status == 0) return;
    ApiMetrics::Get().GatewayRequest(
        o.status, std::chrono::duration<double>(Clock::now() - started).count(),
        o.body_bytes);
  }

  // Writes `data` with the idle timeout per write.
  template <typename Buffers>
  asio::awaitable<bool> Write(Conn& c, const Buffers& data) {
    boost::system::error_code ec;
    c.ExpiresAfter(options_.gateway_idle_timeout);
    co_await asio::async_write(c.socket, data, TransferAll(),
                               asio::redirect_error(asio::use_awaitable, ec));
    c.deadline_ms.store(INT64_MAX, std::memory_order_relaxed);
    if (ec) spdlog::debug("gateway: write: {}", ec.message());
    co_return !ec;
  }

  asio::awaitable<bool> SendSimple(
      Conn& stream, int status, unsigned version, bool keep_alive,
      std::string body, Outcome& outcome, std::string extra_headers = {},
      bool head = false,
      std::string_view content_type = "text/plain; charset=utf-8") {
    outcome.status = status;
    std::string msg = ResponseHead(status, version, keep_alive);
    absl::StrAppend(&msg, "Content-Type: ", std::string(content_type), "\r\n",
                    "Content-Length: ", body.size(), "\r\n", extra_headers,
                    "\r\n");
    if (!head) {
      outcome.body_bytes = body.size();
      msg += body;
    }
    const bool sent = co_await Write(stream, asio::buffer(msg));
    co_return sent;
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

  asio::awaitable<absl::StatusOr<Piece>> ReadPiece(chunk::ContentId id,
                                                   uint32_t i) {
    const PieceKey key = CacheKey(id, i);
    if (Piece p = cache_.Get(key)) co_return p;
    store::ChunkStore* store = &node_.store();
    // The executor first, in a statement of its own: GCC 12 frees a capturing
    // lambda twice when it shares an expression with co_await.
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto job = StartOnPool<absl::StatusOr<std::string>>(
        node_.pool(), ex, [store, id, i] { return store->ReadPiece(id, i); });
    boost::system::error_code ec;  // operation_aborted: the job is done
    co_await job->done.async_wait(
        asio::redirect_error(asio::use_awaitable, ec));
    absl::StatusOr<std::string>& read = *job->result;
    if (!read.ok()) co_return read.status();
    Piece p = std::make_shared<const std::string>(std::move(*read));
    cache_.Put(key, p);
    co_return p;
  }

  asio::awaitable<bool> Handle(Conn& stream,
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
      const bool sent =
          co_await SendSimple(stream, 405, version, keep, "use GET or HEAD\n",
                              outcome, "Allow: GET, HEAD\r\n");
      co_return sent;
    }
    if (target == "/health") {
      const bool sent = co_await SendSimple(stream, 200, version, keep, "ok\n",
                                            outcome, {}, head);
      co_return sent;
    }
    if (target.substr(0, kTorrentPrefix.size()) == kTorrentPrefix) {
      const bool sent = co_await HandleTorrent(
          stream, req, target.substr(kTorrentPrefix.size()), outcome);
      co_return sent;
    }
    if (target.substr(0, kContentPrefix.size()) != kContentPrefix) {
      const bool sent = co_await SendSimple(
          stream, 404, version, keep, "no such path\n", outcome, {}, head);
      co_return sent;
    }
    // /content/<id>, or /content/<id>/<path> for a directory's file.
    std::string_view rest = target.substr(kContentPrefix.size());
    std::optional<std::string_view> sub;
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      sub = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
    auto id = chunk::ContentId::FromHex(std::string(rest));
    if (!id.ok()) {
      const bool sent = co_await SendSimple(
          stream, 400, version, keep,
          absl::StrCat("bad content ID: ", std::string(id.status().message()),
                       "\n"),
          outcome, {}, head);
      co_return sent;
    }
    // A path is checked before anything is looked up or fetched.
    std::string path;
    bool folder_syntax = false;  // ends with '/'
    if (sub && !sub->empty()) {
      std::string_view p = *sub;
      if (p.back() == '/') {
        folder_syntax = true;
        p.remove_suffix(1);
      }
      auto safe = SafePath(p);
      if (!safe) {
        const bool sent = co_await SendSimple(
            stream, 400, version, keep,
            "bad path: empty, '.' or '..' segments, backslashes and bad "
            "escapes are refused\n",
            outcome, {}, head);
        co_return sent;
      }
      path = *std::move(safe);
    }
    auto range_header = req[http::field::range];
    const std::string_view range_text(range_header.data(), range_header.size());
    ByteRange guess;  // only for where the deadlines start
    (void)ParseRange(range_text, UINT64_MAX, guess);

    Obtained ob;
    co_await Obtain(*id, std::nullopt, guess.first, ob);
    if (ob.status != 0) {
      const bool sent =
          co_await SendObtainFailure(stream, ob, version, keep, head, outcome);
      co_return sent;
    }
    if (!ob.brief.is_directory()) {
      if (sub) {
        const bool sent = co_await SendSimple(
            stream, 404, version, keep,
            "this content is a single file, not a directory\n", outcome, {},
            head);
        co_return sent;
      }
      std::string content_type = "application/octet-stream";
      std::string extra;
      if (auto name = QueryParam(query, "filename"); name && !name->empty()) {
        content_type = std::string(MimeTypeFor(*name));
        extra = absl::StrCat("Content-Disposition: ", ContentDisposition(*name),
                             "\r\n");
      }
      const bool sent = co_await ServeContent(stream, req, *id, ob,
                                              content_type, extra, outcome);
      co_return sent;
    }

    // A directory.
    const std::shared_ptr<const chunk::Directory> dir = ob.brief.directory;
    if (!sub) {
      // Relative links in its pages resolve against the folder.
      const bool sent = co_await SendSimple(
          stream, 301, version, keep, "see the directory's folder\n", outcome,
          absl::StrCat("Location: ", std::string(kContentPrefix), id->Hex(),
                       "/\r\n",
                       "Cache-Control: public, max-age=31536000, "
                       "immutable\r\n"),
          head);
      co_return sent;
    }
    int64_t file = folder_syntax ? -1 : dir->Find(path);
    if (file < 0) {
      if (!dir->IsFolder(path)) {
        const bool sent = co_await SendSimple(
            stream, 404, version, keep, "no such file in this directory\n",
            outcome, {}, head);
        co_return sent;
      }
      if (!path.empty() && !folder_syntax) {
        const bool sent = co_await SendSimple(
            stream, 301, version, keep, "see the folder\n", outcome,
            absl::StrCat("Location: ", std::string(kContentPrefix), id->Hex(),
                         "/", std::string(*sub), "/\r\n"),
            head);
        co_return sent;
      }
      const std::string index =
          path.empty() ? "index.html" : absl::StrCat(path, "/index.html");
      file = dir->Find(index);
      if (file < 0) {
        // A listing: immutable like the directory itself.
        std::string html = FolderListing(*dir, path);
        const bool sent = co_await SendSimple(
            stream, 200, version, keep, std::move(html), outcome,
            absl::StrCat("ETag: \"", id->Hex(), ":", HexPath(path), "\"\r\n",
                         "Cache-Control: public, max-age=31536000, "
                         "immutable\r\n"),
            head, "text/html; charset=utf-8");
        co_return sent;
      }
      path = index;
    }
    const chunk::ContentId fid = dir->file_id(static_cast<size_t>(file));
    Obtained fob;
    co_await Obtain(fid, *id, guess.first, fob);
    if (fob.status != 0) {
      const bool sent =
          co_await SendObtainFailure(stream, fob, version, keep, head, outcome);
      co_return sent;
    }
    const size_t slash = path.rfind('/');
    const std::string_view base_name =
        slash == std::string::npos ? std::string_view(path)
                                   : std::string_view(path).substr(slash + 1);
    const bool sent =
        co_await ServeContent(stream, req, fid, fob,
                              std::string(MimeTypeFor(base_name)), {}, outcome);
    co_return sent;
  }

  // A content held here, or being fetched for a request.
  struct Obtained {
    store::ContentBrief brief;
    std::shared_ptr<node::PieceEvents> arriving;  // set while fetching
    FetchSlot slot;
    // Non-zero: answer with this status, message and headers instead.
    int status = 0;
    std::string message;
    std::string extra;
  };

  // Finds `id` here (recording the access), or starts fetching it from the
  // cluster (a file of `directory`, if given) and waits for its metadata;
  // for a directory that is its dict.
  asio::awaitable<void> Obtain(chunk::ContentId id,
                               std::optional<chunk::ContentId> directory,
                               uint64_t first_byte, Obtained& out) {
    std::optional<store::ContentBrief> held =
        node_.store().Brief(id, /*touch=*/true);
    if (held && (held->complete || held->is_directory())) {
      out.brief = *std::move(held);
      co_return;
    }
    auto fail = [&](int status, std::string message, std::string extra = {}) {
      out.status = status;
      out.message = std::move(message);
      out.extra = std::move(extra);
    };
    if (stopping_) co_return fail(503, "shutting down\n");
    out.slot = TakeFetchSlot(id);
    if (!out.slot.held()) {
      co_return fail(503, "too many fetches under way (gateway_max_fetches)\n",
                     "Retry-After: 1\r\n");
    }
    if (!held && !node_.session().ClusterReachable()) {
      co_return fail(404,
                     "no such content here, and the cluster DHT knows no "
                     "node to ask\n");
    }
    auto events = node_.session().Fetch(id, {}, first_byte,
                                        UINT64_MAX - first_byte, directory);
    if (!events.ok()) {
      co_return fail(
          500, absl::StrCat(std::string(events.status().message()), "\n"));
    }
    out.arriving = *std::move(events);
    node::PieceEvents& arriving = *out.arriving;
    // Until the metadata arrives, or the first provider lookup has found
    // nobody.
    const std::function<bool()> settled = [&arriving] {
      return arriving.known() || arriving.failed() ||
             (arriving.lookups() > 0 && !arriving.providers_found());
    };
    const bool known =
        co_await WaitFor(arriving, settled, options_.fetch_timeout);
    if (!known || !arriving.known()) {
      // 404 only once a lookup has found nobody; a timeout before any
      // lookup ended, or with providers that didn't deliver, is 504.
      const bool found = arriving.providers_found() || arriving.lookups() == 0;
      co_return fail(
          found ? 504 : 404,
          found ? "the content did not arrive from the cluster in time\n"
                : "no provider of this content found\n");
    }
    held = node_.store().Brief(id, /*touch=*/false);
    if (!held) {
      co_return fail(500, absl::StrCat("content ", id.Hex(),
                                       " was removed while it arrived\n"));
    }
    out.brief = *std::move(held);
    if (out.brief.is_directory()) out.arriving.reset();
  }

  // Answers with the status Obtain() failed with (closing the connection
  // when shutting down).
  asio::awaitable<bool> SendObtainFailure(Conn& stream, const Obtained& ob,
                                          unsigned version, bool keep,
                                          bool head, Outcome& outcome) {
    const bool keep_alive = keep && !(ob.status == 503 && stopping_);
    const bool sent =
        co_await SendSimple(stream, ob.status, version, keep_alive, ob.message,
                            outcome, ob.extra, head);
    co_return sent;
  }

  // Answers a GET or HEAD of single-file content `id`.
  asio::awaitable<bool> ServeContent(Conn& stream,
                                     const http::request<http::empty_body>& req,
                                     chunk::ContentId id, Obtained& ob,
                                     std::string content_type,
                                     std::string extra, Outcome& outcome) {
    const store::ContentBrief& brief = ob.brief;
    const std::string etag = absl::StrCat("\"", id.Hex(), "\"");
    ResponsePlan plan;
    if (!PlanResponse(req, etag, brief.length, content_type, extra, plan)) {
      const bool sent = co_await SendPlanned(stream, plan, outcome);
      co_return sent;
    }
    if (ob.arriving && plan.range.length > 0) {
      // Deadlines from where this reader starts.
      (void)node_.session().Fetch(id, {}, plan.range.first, plan.range.length);
    }
    PieceSource source;
    source.content = id;
    source.piece_length = brief.piece_length;
    source.arriving = ob.arriving;
    source.peek = [this, id](uint32_t i) {
      return cache_.Get(CacheKey(id, i));
    };
    source.read = [this, id](uint32_t i) { return ReadPiece(id, i); };
    const bool sent =
        co_await StreamBody(stream, plan, source, plan.range.first, outcome);
    co_return sent;
  }

  asio::awaitable<bool> SendPlanned(Conn& c, const ResponsePlan& plan,
                                    Outcome& outcome) {
    outcome.status = plan.status;
    const bool sent = co_await Write(c, asio::buffer(plan.header));
    co_return sent;
  }

  // Where a body's pieces come from.
  struct PieceSource {
    // For logs: a torrent's label, or the content (hexed only when logged).
    std::string label;
    std::optional<chunk::ContentId> content;
    std::string Label() const {
      return content ? content->Hex().substr(0, 12) : label;
    }
    uint64_t piece_length = 0;
    // Set while the pieces are being fetched: pieces not there yet are
    // waited for.
    std::shared_ptr<node::PieceEvents> arriving;
    std::function<asio::awaitable<absl::StatusOr<Piece>>(uint32_t)> read;
    // A piece at hand (cached) without a coroutine, or null.
    std::function<Piece(uint32_t)> peek;
  };

  // Sends the planned header and bytes [plan.range) of the resource, which
  // begins at byte `base` of the source's piece stream. False if the
  // connection must close (the response could not be completed).
  asio::awaitable<bool> StreamBody(Conn& c, const ResponsePlan& plan,
                                   PieceSource& src, uint64_t base,
                                   Outcome& outcome) {
    outcome.status = plan.status;
    if (plan.head || plan.range.length == 0) {
      const bool sent = co_await Write(c, asio::buffer(plan.header));
      co_return sent;
    }
    const uint64_t end = base + plan.range.length;
    const uint32_t first_piece = static_cast<uint32_t>(base / src.piece_length);
    const uint32_t last_piece =
        static_cast<uint32_t>((end - 1) / src.piece_length);
    bool header_sent = false;
    for (uint32_t i = first_piece; i <= last_piece; ++i) {
      node::PieceEvents* arriving = src.arriving.get();
      if (arriving && !arriving->Has(i)) {
        const std::function<bool()> here = [&] {
          return arriving->Has(i) || arriving->failed();
        };
        const bool came =
            co_await WaitFor(*arriving, here, options_.fetch_timeout);
        if (!came || !arriving->Has(i)) {
          spdlog::warn(
              "gateway: {}: piece {} did not arrive in time{}", src.Label(), i,
              arriving->failed()
                  ? absl::StrCat(" (", arriving->failure().ToString(), ")")
                  : "");
          if (!header_sent) {
            const bool sent = co_await SendSimple(
                c, 504, plan.version, plan.keep_alive,
                "the data did not arrive in time\n", outcome);
            co_return sent;
          }
          co_return false;  // short of Content-Length: the client can tell
        }
      }
      absl::StatusOr<Piece> piece = src.peek ? src.peek(i) : nullptr;
      if (*piece == nullptr) piece = co_await src.read(i);
      if (!piece.ok()) {
        spdlog::warn("gateway: reading {} piece {}: {}", src.Label(), i,
                     piece.status().ToString());
        if (!header_sent) {
          const bool sent = co_await SendSimple(
              c,
              piece.status().code() == absl::StatusCode::kDataLoss ? 500 : 503,
              plan.version, false,
              absl::StrCat(std::string(piece.status().message()), "\n"),
              outcome);
          co_return sent;
        }
        co_return false;
      }
      const uint64_t piece_start = uint64_t{i} * src.piece_length;
      size_t from =
          static_cast<size_t>(std::max(base, piece_start) - piece_start);
      const size_t to = static_cast<size_t>(
          std::min<uint64_t>(end, piece_start + (*piece)->size()) -
          piece_start);
      while (from < to) {
        const size_t n = std::min(kWriteSlice, to - from);
        const asio::const_buffer body((*piece)->data() + from, n);
        bool ok;
        if (!header_sent) {
          header_sent = true;
          const std::array<asio::const_buffer, 2> both = {
              asio::buffer(plan.header), body};
          ok = co_await Write(c, both);
        } else {
          ok = co_await Write(c, body);
        }
        if (!ok) co_return false;
        outcome.body_bytes += n;
        from += n;
      }
    }
    co_return true;
  }

  // A torrent's piece, read and checked on the pool.
  asio::awaitable<absl::StatusOr<Piece>> ReadTorrentPiece(
      std::shared_ptr<store::PieceStorage> storage,
      std::shared_ptr<chunk::PieceVerifier> verifier, uint32_t i) {
    // The executor first, in a statement of its own: GCC 12 frees a capturing
    // lambda twice when it shares an expression with co_await.
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto job = StartOnPool<absl::StatusOr<std::string>>(
        node_.pool(), ex,
        [storage, verifier, i]() -> absl::StatusOr<std::string> {
          auto d = storage->ReadPiece(i);
          if (d.ok() && verifier && !verifier->Verify(i, *d).ok()) {
            return absl::DataLossError(absl::StrCat(
                "piece ", i, " changed on disk since it was verified"));
          }
          return d;
        });
    boost::system::error_code ec;  // operation_aborted: the job is done
    co_await job->done.async_wait(
        asio::redirect_error(asio::use_awaitable, ec));
    absl::StatusOr<std::string>& data = *job->result;
    if (!data.ok()) co_return data.status();
    co_return std::make_shared<const std::string>(std::move(*data));
  }

  // GET|HEAD /torrent/<id>/<path>: a file of one of the node's torrents,
  // streamed while it downloads (its range gets deadlines).
  asio::awaitable<bool> HandleTorrent(
      Conn& c, const http::request<http::empty_body>& req,
      std::string_view rest, Outcome& outcome) {
    const unsigned version = req.version();
    const bool keep = req.keep_alive();
    const bool head = req.method() == http::verb::head;
    if (!options_.gateway_torrents) {
      const bool sent = co_await SendSimple(
          c, 404, version, keep,
          "this gateway serves no torrents (gateway_torrents = false)\n",
          outcome, {}, head);
      co_return sent;
    }
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) {
      const bool sent =
          co_await SendSimple(c, 400, version, keep,
                              "use /torrent/<id>/<path>\n", outcome, {}, head);
      co_return sent;
    }
    const std::string id(rest.substr(0, slash));
    auto path = SafePath(rest.substr(slash + 1));
    if (!path) {
      const bool sent = co_await SendSimple(
          c, 400, version, keep, "bad file path\n", outcome, {}, head);
      co_return sent;
    }
    auto files = node_.session().TorrentFiles(id);
    if (!files.ok()) {
      const bool sent = co_await SendSimple(
          c, absl::IsNotFound(files.status()) ? 404 : 503, version, keep,
          absl::StrCat(std::string(files.status().message()), "\n"), outcome,
          {}, head);
      co_return sent;
    }
    const node::TorrentFileInfo* file = nullptr;
    for (const auto& f : *files)
      if (f.path == *path) file = &f;
    if (file == nullptr) {
      const bool sent = co_await SendSimple(c, 404, version, keep,
                                            "no such file in the torrent\n",
                                            outcome, {}, head);
      co_return sent;
    }
    auto src = node_.session().TorrentReadSource(id);
    if (!src.ok()) {
      const bool sent = co_await SendSimple(
          c, 503, version, keep,
          absl::StrCat(std::string(src.status().message()), "\n"), outcome, {},
          head);
      co_return sent;
    }
    const chunk::Metainfo& m = *src->metainfo;
    const chunk::FileEntry& entry = m.files[file->index];
    ResponsePlan plan;
    if (!PlanResponse(req, absl::StrCat("\"", id, ":", file->index, "\""),
                      entry.length, std::string(MimeTypeFor(*path)), {},
                      plan)) {
      const bool sent = co_await SendPlanned(c, plan, outcome);
      co_return sent;
    }
    const uint64_t base = entry.offset + plan.range.first;
    PieceSource source;
    source.label = id.substr(0, 12);
    source.piece_length = m.piece_length;
    bool missing = false;
    if (plan.range.length > 0) {
      for (uint64_t p = base / m.piece_length;
           p <= (base + plan.range.length - 1) / m.piece_length; ++p)
        missing |= !src->have.test(static_cast<uint32_t>(p));
    }
    if (missing) {
      source.arriving = src->arriving;
      (void)node_.session().WantTorrentRange(id, base, plan.range.length);
    }
    auto storage = src->storage;
    auto verifier = src->verifier;
    source.read = [this, storage, verifier](uint32_t i) {
      return ReadTorrentPiece(storage, verifier, i);
    };
    const bool sent = co_await StreamBody(c, plan, source, base, outcome);
    co_return sent;
  }

  node::Node& node_;
  const node::NodeOptions& options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  Clock::time_point last_refusal_log_{};  // the accept loop's
  PieceCache cache_;
  std::mutex fetch_mu_;
  std::unordered_map<std::string, int> fetching_;  // guarded by fetch_mu_
  std::mutex conns_mu_;
  std::list<std::weak_ptr<Conn>> conns_;  // guarded by conns_mu_
  std::string address_;
  std::vector<std::thread> threads_;
  size_t next_io_ = 0;  // the accept loop's
  // Last: destroyed first, with the coroutines they still hold, while the
  // members those use are alive.
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  asio::io_context& io_;  // the first: accepting and sweeping
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
