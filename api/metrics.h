// Prometheus metrics and health endpoints, served over plaintext HTTP on the
// `metrics` address by a small Beast server on its own thread:
//   GET /metrics  the text exposition format (prometheus-cpp's serializer)
//   GET /healthz  200 while the process serves requests
//   GET /readyz   200 once the store is open and the cluster DHT has nodes
//                 (or no bootstrap is configured), else 503
// Kubernetes' probes use the last two, since they can't speak the API's TLS.
#ifndef SHOAL_API_METRICS_H_
#define SHOAL_API_METRICS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "node/node.h"

namespace grpc::experimental {
class ServerInterceptorFactoryInterface;
}

namespace shoal::api {

// Counters of the front ends (API calls, gateway requests), next to the
// node's own (node/stats.h). One per process; thread-safe.
class ApiMetrics {
 public:
  static ApiMetrics& Get();

  // One finished gRPC call: its method ("ContentService/Add") and status code.
  void ApiCall(std::string_view method, int code);
  // One answered gateway request.
  void GatewayRequest(int status, double seconds, uint64_t body_bytes);

  // The text exposition of these and of the node's metrics.
  std::string Render(node::Node& node);

  // For the gRPC server: counts every call by method and code.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  MakeInterceptorFactory();

  ~ApiMetrics();

 private:
  ApiMetrics();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class MetricsServer {
 public:
  // Binds `address` and starts serving. UNAVAILABLE if it can't be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      node::Node& node, const node::HostPort& address);
  ~MetricsServer();

  // As bound (the real port when 0 was asked for).
  const std::string& address() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::api

#endif  // SHOAL_API_METRICS_H_
