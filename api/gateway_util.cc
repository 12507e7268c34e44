#include "api/gateway_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/hex.h"

namespace shoal::api::gateway_internal {

// Waits until `pred` holds, waking whenever `events` reports a change; false
// once `timeout` has passed. The coroutine's io_context has one thread, so a
// wake posted from another thread lands after it has started waiting.
// `pred` is a named function of the caller's (see StartOnPool on lambdas and
// co_await).
asio::awaitable<bool> WaitFor(node::PieceEvents& events,
                              const std::function<bool()>& pred,
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

std::string ResponseHead(int status, unsigned version, bool keep_alive) {
  std::string h =
      absl::StrCat(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", status, " ",
                   std::string(StatusText(status)), "\r\nServer: shoald\r\n");
  if (!keep_alive && version != 10) h += "Connection: close\r\n";
  if (keep_alive && version == 10) h += "Connection: keep-alive\r\n";
  return h;
}

// Fills `plan`. False if the answer has no body of the resource (304,
// 416): the header is the whole answer.
bool PlanResponse(const http::request<http::empty_body>& req,
                  const std::string& etag, uint64_t size,
                  const std::string& content_type, const std::string& extra,
                  ResponsePlan& plan) {
  plan.version = req.version();
  plan.keep_alive = req.keep_alive();
  plan.head = req.method() == http::verb::head;
  const std::string common =
      absl::StrCat("ETag: ", etag,
                   "\r\nAccept-Ranges: bytes\r\nCache-Control: public, "
                   "max-age=31536000, immutable\r\n");
  auto inm = req[http::field::if_none_match];
  const std::string_view inm_text(inm.data(), inm.size());
  if (!inm_text.empty() && (inm_text == etag || inm_text == "*" ||
                            inm_text.find(etag) != std::string_view::npos)) {
    plan.status = 304;
    plan.header =
        ResponseHead(304, plan.version, plan.keep_alive) + common + "\r\n";
    return false;
  }
  auto range_header = req[http::field::range];
  plan.range = {0, size};
  RangeResult rr =
      ParseRange(std::string_view(range_header.data(), range_header.size()),
                 size, plan.range);
  // If-Range: a range only for this very resource (an entity tag; a date
  // can't be checked, so it counts as a mismatch and the whole resource is
  // sent, as RFC 9110 allows).
  auto if_range = req[http::field::if_range];
  if (!if_range.empty() &&
      std::string_view(if_range.data(), if_range.size()) != etag) {
    rr = RangeResult::kNone;
  }
  if (rr == RangeResult::kUnsatisfiable) {
    static constexpr std::string_view kBody = "range not satisfiable\n";
    plan.status = 416;
    plan.header = absl::StrCat(
        ResponseHead(416, plan.version, plan.keep_alive), common,
        "Content-Range: bytes */", size,
        "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        kBody.size(), "\r\n\r\n", plan.head ? "" : std::string(kBody));
    return false;
  }
  if (rr != RangeResult::kOk) plan.range = {0, size};
  plan.status = rr == RangeResult::kOk ? 206 : 200;
  plan.header.reserve(512);
  plan.header = ResponseHead(plan.status, plan.version, plan.keep_alive);
  absl::StrAppend(&plan.header, "Content-Type: ", content_type, "\r\n", common,
                  extra, "Content-Length: ", plan.range.length, "\r\n");
  if (rr == RangeResult::kOk) {
    absl::StrAppend(&plan.header, "Content-Range: bytes ", plan.range.first,
                    "-", plan.range.first + plan.range.length - 1, "/", size,
                    "\r\n");
  }
  plan.header += "\r\n";
  return true;
}

// The listing of folder `path` ("" for the root) of a directory.
std::string FolderListing(const chunk::Directory& dir,
                          const std::string& path) {
  std::vector<ListingEntry> entries;
  for (chunk::DirectoryEntry& e : dir.List(path))
    entries.push_back({std::move(e.name), e.is_folder, e.length});
  std::stable_partition(entries.begin(), entries.end(),
                        [](const ListingEntry& e) { return e.is_folder; });
  return ListingPage(path.empty() ? "/" : "/" + path + "/", entries,
                     !path.empty());
}

std::string HexPath(std::string_view path) { return HexEncode(path); }

}  // namespace shoal::api::gateway_internal
