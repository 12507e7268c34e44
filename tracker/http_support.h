// HTTP helpers shared by the tracker client (tracker/http_tracker_client.cc)
// and the web seeds (node/web_seed.cc), both on Boost.Beast.
#ifndef SHOAL_TRACKER_HTTP_SUPPORT_H_
#define SHOAL_TRACKER_HTTP_SUPPORT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tracker/tracker_url.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace shoal::tracker {

// A TLS client context that verifies servers against the system's trust
// store plus `extra_ca_pem` (PEM certificates; may be empty).
// INVALID_ARGUMENT if extra_ca_pem does not load.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsClientContext(
    const std::string& extra_ca_pem);

// The Host header of `u`: the host (IPv6 in brackets), and the port unless
// it is the scheme's default.
std::string HostPort(const TrackerUrl& u);

// The absolute URL a Location header points to, relative to `base`.
std::string ResolveLocation(const TrackerUrl& base, std::string_view loc);

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_HTTP_SUPPORT_H_
