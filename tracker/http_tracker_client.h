// HttpTrackerClient: announces and scrapes over http:// and https:// (BEP 3,
// BEP 23, BEP 7, BEP 48) with Boost.Beast, asynchronously on a given
// io_context.
//
//   absl::StatusOr<std::unique_ptr<HttpTrackerClient>> c =
//       HttpTrackerClient::Create(io, "https://t.example/announce", {});
//   (*c)->Announce(request, [](absl::StatusOr<AnnounceResponse> r) { ... });
//
// Each request opens its own connection ("Connection: close"), follows at
// most options.max_redirects redirects (http and https only), reads at most
// limits.max_response_bytes of body, and fails with DEADLINE_EXCEEDED if the
// whole exchange (each hop) takes longer than options.timeout. https verifies
// the server's certificate chain against the system's trust store (plus
// options.extra_ca_pem) and its name against the URL's host, and sends SNI.
#ifndef SHOAL_TRACKER_HTTP_TRACKER_CLIENT_H_
#define SHOAL_TRACKER_HTTP_TRACKER_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracker/announce.h"
#include "tracker/tracker_client.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace shoal::tracker {
namespace internal {
struct HttpClientState;
}  // namespace internal

// A value type.
struct HttpTrackerClientOptions {
  // Bound on one HTTP exchange (resolve, connect, TLS, request, response).
  std::chrono::milliseconds timeout{30'000};
  int max_redirects = 5;
  TrackerLimits limits;
  std::string user_agent = "Shoal/0.1";
  // PEM certificates trusted in addition to the system store (a private
  // tracker's CA; tests).
  std::string extra_ca_pem;
};

// Thread-compatible: use from the io_context's thread only.
class HttpTrackerClient : public TrackerClient {
 public:
  using GetCallback = std::function<void(absl::StatusOr<std::string> body)>;

  // A client for `announce_url` (http:// or https://). INVALID_ARGUMENT for
  // another scheme or a malformed URL, or if extra_ca_pem does not load.
  static absl::StatusOr<std::unique_ptr<HttpTrackerClient>> Create(
      boost::asio::io_context& io, std::string announce_url,
      HttpTrackerClientOptions options = {});

  // Cancels requests in flight; their callbacks are not called.
  ~HttpTrackerClient() override;
  HttpTrackerClient(const HttpTrackerClient&) = delete;
  HttpTrackerClient& operator=(const HttpTrackerClient&) = delete;

  void Announce(const AnnounceRequest& request, AnnounceCallback done) override;
  void Scrape(std::vector<AnnounceHash> hashes, ScrapeCallback done) override;

  // GETs `url` (http or https) and returns the body of a 200 response.
  // UNAVAILABLE for network errors and other statuses ("HTTP 404"),
  // DEADLINE_EXCEEDED on timeout, RESOURCE_EXHAUSTED for an oversized
  // response, UNAVAILABLE for too many redirects. Same callback rules as
  // Announce.
  void Get(std::string url, GetCallback done);

  const std::string& announce_url() const { return announce_url_; }

 private:
  HttpTrackerClient(std::string announce_url,
                    std::shared_ptr<internal::HttpClientState> shared);

  const std::string announce_url_;
  // Shared with the coroutines of requests in flight, which may outlive the
  // client by a few handler runs and must see that it is gone.
  std::shared_ptr<internal::HttpClientState> shared_;
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_HTTP_TRACKER_CLIENT_H_
