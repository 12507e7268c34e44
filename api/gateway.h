// The HTTP gateway: content by ID over plain HTTP/1.1, for browsers, curl and
// HTTP caches.
//
//   GET|HEAD /content/<id>     the content; a single `Range: bytes=...` gives
//   206 Partial
//                              Content. ETag is the ID, and the response is
//                              cacheable forever (content never changes under
//                              an ID); If-None-Match gives 304.
//   GET /health                200 "ok"
//
// Errors: 400 malformed ID or request, 404 unknown content or path, 405 other
// methods, 416 a range outside the content, 503 content not fully stored here.
// Each connection is served by its own thread, up to a limit; idle connections
// time out.
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
  // Starts serving on `address`. UNAVAILABLE if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(
      node::Node& node, const node::HostPort& address);
  // Stops accepting, closes open connections and joins their threads.
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
