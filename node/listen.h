// Opening listening TCP sockets with the same checks and messages everywhere
// (peer port, HTTP gateway).
#ifndef SHOAL_NODE_LISTEN_H_
#define SHOAL_NODE_LISTEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "node/asio.h"
#include "node/options.h"

namespace shoal::node {

// Binds `acceptor` to `address` and listens. Returns the bound port.
// INVALID_ARGUMENT if the host is not an IP address; FAILED_PRECONDITION if
// the host lacks the address's family (no IPv6); UNAVAILABLE (naming `what`
// and the address) if it cannot be bound. `v6_only` makes an IPv6 socket
// IPv6-only (so that an IPv4 socket can take the same port).
inline absl::StatusOr<uint16_t> BindAndListen(tcp::acceptor& acceptor,
                                              const HostPort& address,
                                              const std::string& what,
                                              bool v6_only = false) {
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(address.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an IP address, got '", address.host, "'"));
  }
  tcp::endpoint ep(addr, address.port);
  acceptor.open(ep.protocol(), ec);
  if (ec == asio::error::address_family_not_supported) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", what, " ", address.ToString(),
                     ": the host has no ", addr.is_v6() ? "IPv6" : "IPv4"));
  }
  if (!ec && v6_only && addr.is_v6())
    acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", what, " ",
                                               address.ToString(), ": ",
                                               ec.message()));
  }
  return acceptor.local_endpoint().port();
}

}  // namespace shoal::node

#endif  // SHOAL_NODE_LISTEN_H_
