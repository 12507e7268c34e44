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
// INVALID_ARGUMENT if the host is not an IP address; UNAVAILABLE (naming `what`
// and the address) if it cannot be bound.
inline absl::StatusOr<uint16_t> BindAndListen(tcp::acceptor& acceptor,
                                              const HostPort& address,
                                              const std::string& what) {
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(address.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an IP address, got '", address.host, "'"));
  }
  tcp::endpoint ep(addr, address.port);
  acceptor.open(ep.protocol(), ec);
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
