#include "tracker/http_support.h"

#include "tracker/internal/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on

#include <exception>

#include "absl/strings/str_cat.h"

namespace shoal::tracker {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using boost::system::error_code;

absl::StatusOr<std::unique_ptr<ssl::context>> MakeTlsClientContext(
    const std::string& extra_ca_pem) {
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    error_code ec;
    ctx->set_default_verify_paths(ec);
    if (ec) {
      return absl::InternalError(absl::StrCat(
          "https: cannot load the system trust store: ", ec.message()));
    }
    if (!extra_ca_pem.empty()) {
      ctx->add_certificate_authority(asio::buffer(extra_ca_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("https: extra_ca_pem does not load: ", ec.message()));
      }
    }
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (ec) return absl::InternalError(ec.message());
    return ctx;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("https: TLS context: ", e.what()));
  }
}

std::string HostPort(const TrackerUrl& u) {
  std::string host = u.host.find(':') != std::string::npos
                         ? absl::StrCat("[", u.host, "]")
                         : u.host;
  uint16_t default_port = u.scheme == TrackerUrl::Scheme::kHttps ? 443 : 80;
  return u.port == default_port ? host : absl::StrCat(host, ":", u.port);
}

std::string ResolveLocation(const TrackerUrl& base, std::string_view loc) {
  const char* scheme =
      base.scheme == TrackerUrl::Scheme::kHttps ? "https" : "http";
  if (loc.find("://") != std::string_view::npos) return std::string(loc);
  if (loc.starts_with("//")) {
    return absl::StrCat(scheme, ":", std::string(loc));
  }
  std::string origin = absl::StrCat(scheme, "://", HostPort(base));
  if (loc.starts_with("/")) return absl::StrCat(origin, std::string(loc));
  std::string path = base.target.substr(0, base.target.find('?'));
  path = path.substr(0, path.rfind('/') + 1);
  return absl::StrCat(origin, path, std::string(loc));
}

}  // namespace shoal::tracker
