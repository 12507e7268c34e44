// The HTTP gateway's parts that need none of its state: the shared piece
// cache, pool jobs a coroutine awaits, waiting on a fetch's events, directory
// listings, and planning an answer from the conditional and range headers.
// Used by api/gateway.cc only.
#ifndef SHOAL_API_GATEWAY_UTIL_H_
#define SHOAL_API_GATEWAY_UTIL_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/time/time.h"
#include "node/asio.h"  // first Boost include: see the note there
// clang-format off
#include <boost/beast/http.hpp>
// clang-format on
#include "api/http_util.h"
#include "base/thread_pool.h"
#include "chunk/content_id.h"
#include "chunk/directory.h"
#include "node/piece_events.h"

namespace shoal::api::gateway_internal {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using Piece = std::shared_ptr<const std::string>;
using tcp = asio::ip::tcp;

// Verified pieces shared by the readers of the same content, least recently
// used out first. Bytes under an ID never change, so an entry is never stale.
// A piece of a content: the first 28 bytes of its ID (ample against chance
// collisions; nobody picks IDs) and the index, with no allocation per lookup.
struct PieceKey {
  std::array<char, 32> bytes;
  friend bool operator==(const PieceKey&, const PieceKey&) = default;
};
struct PieceKeyHash {
  size_t operator()(const PieceKey& k) const {
    size_t h;
    std::memcpy(&h, k.bytes.data(), sizeof h);  // the ID is a SHA-256
    uint32_t piece;
    std::memcpy(&piece, k.bytes.data() + 28, sizeof piece);
    return h ^ (static_cast<size_t>(piece) * 0x9E3779B97F4A7C15ull);
  }
};

class PieceCache {
 public:
  explicit PieceCache(uint64_t capacity) : capacity_(capacity) {}

  Piece Get(const PieceKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }

  void Put(const PieceKey& key, Piece piece) {
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
  std::list<PieceKey> lru_;
  std::unordered_map<PieceKey, std::pair<Piece, std::list<PieceKey>::iterator>,
                     PieceKeyHash>
      map_;
  uint64_t bytes_ = 0;
};

inline PieceKey CacheKey(const chunk::ContentId& id, uint32_t piece) {
  PieceKey key;
  std::memcpy(key.bytes.data(), id.AsStringView().data(), 28);
  std::memcpy(key.bytes.data() + 28, &piece, sizeof piece);
  return key;
}

// A job on the node's pool whose result a coroutine awaits: the pool's
// wake-up is posted to the coroutine's executor (a single-threaded
// io_context), so it lands after the coroutine has started waiting.
template <typename T>
struct PoolJob {
  asio::steady_timer done;
  std::optional<T> result;
  explicit PoolJob(const asio::any_io_executor& ex)
      : done(ex, asio::steady_timer::time_point::max()) {}
};

// Starts `fn` on the pool; `co_await job->done.async_wait(...)`, then read
// job->result. Never write a capturing lambda in an expression that also
// holds a co_await: GCC 12 destroys such a lambda twice (its shared_ptr
// captures were released twice: use-after-free under ASan).
template <typename T, typename Fn>
std::shared_ptr<PoolJob<T>> StartOnPool(ThreadPool& pool,
                                        const asio::any_io_executor& ex,
                                        Fn fn) {
  auto job = std::make_shared<PoolJob<T>>(ex);
  pool.Post([job, fn = std::move(fn), ex]() mutable {
    job->result = fn();
    asio::post(ex, [job] { job->done.cancel(); });
  });
  return job;
}

// Waits until `pred` holds, waking whenever `events` reports a change; false
// once `timeout` has passed. The coroutine's io_context has one thread, so a
// wake posted from another thread lands after it has started waiting.
// `pred` is a named function of the caller's (see StartOnPool on lambdas and
// co_await).
asio::awaitable<bool> WaitFor(node::PieceEvents& events,
                              const std::function<bool()>& pred,
                              absl::Duration timeout);

std::string_view StatusText(int status);

// What a request was answered with, for the metrics.
struct Outcome {
  int status = 0;
  uint64_t body_bytes = 0;
};

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// One connection: its socket and the deadline of the read or write under way.
// One sweeper enforces the deadlines of all connections (a timer per read and
// write costs a timer-queue update, under the reactor's lock, for each).
struct Conn {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;  // used on its io_context's thread only
  std::atomic<int64_t> deadline_ms{INT64_MAX};
  std::list<std::weak_ptr<Conn>>::iterator registered;

  void ExpiresAfter(absl::Duration d) {
    deadline_ms.store(NowMs() + absl::ToInt64Milliseconds(d),
                      std::memory_order_relaxed);
  }
};

// The status line, Server and Connection headers of an answer.
std::string ResponseHead(int status, unsigned version, bool keep_alive);

// How to answer a GET or HEAD of `size` bytes under `etag`, after the
// conditional and range headers.
struct ResponsePlan {
  int status = 200;
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false;
  ByteRange range;
  std::string header;  // the whole header, ready to send
};

// Fills `plan`. False if the answer has no body of the resource (304,
// 416): the header is the whole answer.
bool PlanResponse(const http::request<http::empty_body>& req,
                  const std::string& etag, uint64_t size,
                  const std::string& content_type, const std::string& extra,
                  ResponsePlan& plan);

// The listing of folder `path` ("" for the root) of a directory.
std::string FolderListing(const chunk::Directory& dir, const std::string& path);
// `path` hexed, for a listing's ETag.
std::string HexPath(std::string_view path);

}  // namespace shoal::api::gateway_internal

#endif  // SHOAL_API_GATEWAY_UTIL_H_
