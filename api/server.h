// The gRPC server: shoal.v1's services, the standard health service and server
// reflection.
#ifndef SHOAL_API_SERVER_H_
#define SHOAL_API_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "node/node.h"

namespace shoal::api {

// Thread-safe.
class ApiServer {
 public:
  // Starts serving on node.options().api. UNAVAILABLE if the address cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(node::Node& node);
  // Shuts down, giving calls in flight a moment to finish.
  ~ApiServer();

  // The address as bound ("127.0.0.1:7080"; the real port when 0 was asked
  // for).
  const std::string& address() const { return address_; }

  // Reports the HTTP gateway's bound address in GetInfo.
  void set_gateway_address(std::string address);

 private:
  class Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl, std::string address);
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

// Sends gRPC's own log lines to spdlog, so that its errors read like ours.
void RouteGrpcLogsToSpdlog();

}  // namespace shoal::api

#endif  // SHOAL_API_SERVER_H_
