// The HTTP gateway: content by ID over HTTP/1.1, for browsers, curl and HTTP
// caches.
//
//   GET|HEAD /content/<id>[?filename=NAME]
//       The content. A single `Range: bytes=...` gives 206 (If-Range is
//       honoured); the ETag is the ID and the response is cacheable forever
//       (content never changes under an ID); If-None-Match gives 304.
//       `filename` sets the Content-Type from its extension and a
//       Content-Disposition (the ID alone names no file).
//       Content not held here is fetched from the cluster (the providers the
//       cluster DHT knows), and the response streams as its pieces arrive and
//       verify, starting at the requested range. Requests for the same
//       missing content share one fetch.
//   GET /health  200 "ok"
//
// Errors: 400 malformed ID or request, 404 unknown content (nobody provides
// it, or the cluster DHT knows no node to ask), 405 other methods, 416 a range
// outside the content, 431 a header over the limit, 503 while shutting down or
// over the limit of fetches at once, 504 providers found but the content did
// not arrive within the fetch timeout.
//
// Event-driven: Boost.Beast on its own threads (gateway_threads), each with its
// own io_context, one coroutine per connection; never the network thread. A
// header must arrive within gateway_header_timeout, a keep-alive connection
// may idle gateway_idle_timeout, and a client that stops reading for that long
// is dropped; a slow client slows only itself. Verified pieces are kept in a
// shared cache (gateway_cache) so that readers of the same content share
// buffers and reads.
#ifndef SHOAL_API_GATEWAY_H_
#define SHOAL_API_GATEWAY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "node/node.h"

namespace shoal::api {

// Thread-safe.
class Gateway {
 public:
  // Starts serving on `address`, with the limits of node.options().
  // UNAVAILABLE if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(
      node::Node& node, const node::HostPort& address);
  // Stops accepting, closes open connections and joins the threads.
  ~Gateway();

  // The address as bound (the real port when 0 was asked for).
  const std::string& address() const;

 private:
  class Impl;
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::api

#endif  // SHOAL_API_GATEWAY_H_
