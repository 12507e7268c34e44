// libFuzzer target: the tracker response parsers (HTTP announce and scrape
// bodies, BEP 15 packets) and tracker URL handling on arbitrary bytes. The
// first byte picks the parser; the rest is its input. Besides "never crash",
// it checks the limits and invariants the parsers promise.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "tracker/http_protocol.h"
#include "tracker/tracker_url.h"
#include "tracker/udp_protocol.h"

namespace {

using namespace shoal::tracker;  // NOLINT: a fuzz harness
using shoal::AddressFamily;      // NOLINT
using shoal::PeerEndpoint;       // NOLINT

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr size_t kMaxPeers = 50;
constexpr size_t kMaxScrape = 20;

void CheckPeers(const AnnounceResponse& r) {
  Check(r.peers.size() <= kMaxPeers);
  Check(r.interval.count() >= 0);
  if (r.min_interval) Check(r.min_interval->count() >= 0);
  for (const PeerEndpoint& p : r.peers) {
    Check(p.port != 0);
    Check(!p.ToString().empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  TrackerLimits limits;
  limits.max_peers = kMaxPeers;
  limits.max_scrape_entries = kMaxScrape;
  limits.max_response_bytes = 1 << 16;
  switch (selector % 4) {
    case 0: {
      auto r = ParseAnnounceResponse(in, limits);
      if (r.ok()) CheckPeers(*r);
      break;
    }
    case 1: {
      auto r = ParseScrapeResponse(in, limits);
      if (r.ok()) {
        Check(r->size() <= kMaxScrape);
        for (const ScrapeEntry& e : *r) {
          Check(e.stats.complete >= 0 && e.stats.incomplete >= 0 &&
                e.stats.downloaded >= 0);
        }
      }
      break;
    }
    case 2: {
      const AddressFamily family =
          (selector & 4) ? AddressFamily::kV6 : AddressFamily::kV4;
      auto r = udp::ParseResponse(in, family, limits);
      if (r.ok()) {
        if (auto* a = std::get_if<udp::AnnounceReply>(&*r)) {
          CheckPeers(a->response);
        } else if (auto* c = std::get_if<udp::ConnectResponse>(&*r)) {
          // Connect replies round-trip.
          Check(udp::EncodeConnectResponse(c->transaction, c->connection) ==
                in.substr(0, 16));
        } else if (auto* s = std::get_if<udp::ScrapeReply>(&*r)) {
          Check(s->stats.size() <= kMaxScrape);
        }
      }
      auto req = udp::ParseAnnounceRequest(in);
      if (req.ok()) {
        // Announce requests round-trip (BEP 41 options after byte 98 aside).
        std::string again = udp::EncodeAnnounceRequest(
            req->connection, req->transaction, req->request);
        Check(again.size() == 98);
      }
      break;
    }
    case 3: {
      auto u = ParseTrackerUrl(in);
      auto s = ScrapeUrlFromAnnounce(in);
      if (u.ok()) {
        Check(!u->host.empty() && u->port != 0 && !u->target.empty());
        Check(u->target[0] == '/');
        AnnounceRequest request;
        std::string url = BuildAnnounceUrl(in, request);
        Check(url.find('#') == std::string::npos);
      } else {
        Check(!s.ok());
      }
      break;
    }
  }
  return 0;
}
