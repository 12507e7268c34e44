// UdpTrackerClient: announces and scrapes over the UDP tracker protocol
// (BEP 15), asynchronously on a given io_context.
//
//   absl::StatusOr<std::unique_ptr<UdpTrackerClient>> c =
//       UdpTrackerClient::Create(io, "udp://127.0.0.1:6969/announce", {});
//   (*c)->Announce(request, [](absl::StatusOr<AnnounceResponse> r) { ... });
//
// The client owns one ephemeral UDP socket (the node's listen socket belongs
// to the DHT) and runs one transaction at a time; further requests queue.
// A transaction first obtains a connection ID (kept for 60 s), then sends the
// request, matching replies by sender and transaction ID. Each attempt n waits
// base_timeout * 2^n (BEP 15: 15 s * 2^n) before the next; after max_retries
// retries the request fails with DEADLINE_EXCEEDED.
#ifndef SHOAL_TRACKER_UDP_TRACKER_CLIENT_H_
#define SHOAL_TRACKER_UDP_TRACKER_CLIENT_H_

#include <chrono>
#include <cstdint>
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
struct UdpClientState;
}  // namespace internal

// A value type.
struct UdpTrackerClientOptions {
  // BEP 15: 15 s, doubled on every retry.
  std::chrono::milliseconds base_timeout{15'000};
  // BEP 15 allows 8 (n = 0..8); a tracker that is down costs about an hour.
  // The Announcer's backoff covers longer outages, so we give up sooner.
  int max_retries = 3;
  TrackerLimits limits;
  // Seeds the transaction-ID generator. Give each client a different seed.
  uint64_t random_seed = 0;
};

// Thread-compatible: use from the io_context's thread only.
class UdpTrackerClient : public TrackerClient {
 public:
  // A client for `announce_url` (udp://host:port[/path]). INVALID_ARGUMENT
  // for another scheme or a malformed URL. The host is resolved at the first
  // request (address literals are used as they are).
  static absl::StatusOr<std::unique_ptr<UdpTrackerClient>> Create(
      boost::asio::io_context& io, std::string announce_url,
      UdpTrackerClientOptions options = {});

  // Closes the socket; queued and running requests are dropped without
  // calling their callbacks.
  ~UdpTrackerClient() override;
  UdpTrackerClient(const UdpTrackerClient&) = delete;
  UdpTrackerClient& operator=(const UdpTrackerClient&) = delete;

  void Announce(const AnnounceRequest& request, AnnounceCallback done) override;
  // At most 74 hashes (one datagram); more is INVALID_ARGUMENT.
  void Scrape(std::vector<AnnounceHash> hashes, ScrapeCallback done) override;

 private:
  explicit UdpTrackerClient(std::shared_ptr<internal::UdpClientState> state);

  // Shared with the worker coroutine, which may outlive the client by a few
  // handler runs and must see that it is gone.
  std::shared_ptr<internal::UdpClientState> state_;
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_UDP_TRACKER_CLIENT_H_
