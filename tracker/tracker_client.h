// TrackerClient: sends announces and scrapes to one tracker URL. The seam
// between the Announcer and the transports (HttpTrackerClient for http:// and
// https://, UdpTrackerClient for udp://, fakes in tests).
#ifndef SHOAL_TRACKER_TRACKER_CLIENT_H_
#define SHOAL_TRACKER_TRACKER_CLIENT_H_

#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "tracker/announce.h"

namespace shoal::tracker {

using AnnounceCallback =
    std::function<void(absl::StatusOr<AnnounceResponse> response)>;
using ScrapeCallback =
    std::function<void(absl::StatusOr<std::vector<ScrapeEntry>> entries)>;

// Implementations run on one io_context thread and are not thread-safe.
class TrackerClient {
 public:
  virtual ~TrackerClient() = default;

  // Sends `request` and calls `done` exactly once with the tracker's answer or
  // an error (UNAVAILABLE: network; DEADLINE_EXCEEDED: timeout;
  // FAILED_PRECONDITION: the tracker refused; INVALID_ARGUMENT /
  // RESOURCE_EXHAUSTED: a malformed or oversized reply) -- unless the client
  // is destroyed first, in which case `done` is never called. `done` runs on
  // the io_context, never inside this call.
  virtual void Announce(const AnnounceRequest& request,
                        AnnounceCallback done) = 0;

  // Scrapes `hashes` (BEP 48 / BEP 15) with the same conventions.
  // UNIMPLEMENTED (through `done`) if the tracker has no scrape URL.
  virtual void Scrape(std::vector<AnnounceHash> hashes,
                      ScrapeCallback done) = 0;
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_TRACKER_CLIENT_H_
