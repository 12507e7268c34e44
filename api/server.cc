#include "api/server.h"

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "api/services.h"
#include "api/torrent_service.h"
#include "spdlog/spdlog.h"

namespace shoal::api {

class ApiServer::Impl {
 public:
  explicit Impl(node::Node& node)
      : content_(node), node_service_(node), torrents_(node) {}
  ContentServiceImpl content_;
  NodeServiceImpl node_service_;
  TorrentServiceImpl torrents_;
  std::unique_ptr<grpc::Server> server_;
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}

ApiServer::~ApiServer() {
  if (impl_->server_) {
    impl_->server_->Shutdown(std::chrono::system_clock::now() +
                             std::chrono::seconds(2));
  }
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(node::Node& node) {
  auto impl = std::make_unique<Impl>(node);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const node::HostPort& api = node.options().api;
  int port = 0;
  builder.AddListeningPort(api.ToString(), grpc::InsecureServerCredentials(),
                           &port);
  // Without this gRPC sets SO_REUSEPORT and a second node could share the port
  // silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A .torrent may be as large as the metainfo parser accepts (64 MiB).
  builder.SetMaxReceiveMessageSize(72 << 20);
  builder.RegisterService(&impl->content_);
  builder.RegisterService(&impl->node_service_);
  builder.RegisterService(&impl->torrents_);
  impl->server_ = builder.BuildAndStart();
  if (!impl->server_ || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on API address ", api.ToString(),
                     " (in use, or not an address of this host)"));
  }
  node::HostPort bound = api;
  bound.port = static_cast<uint16_t>(port);
  impl->node_service_.set_api_address(bound.ToString());
  impl->server_->GetHealthCheckService()->SetServingStatus(true);
  return std::unique_ptr<ApiServer>(
      new ApiServer(std::move(impl), bound.ToString()));
}

void ApiServer::set_gateway_address(std::string address) {
  impl_->node_service_.set_gateway_address(std::move(address));
}

void RouteGrpcLogsToSpdlog() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    // gRPC's errors about a port already in use are reported by us in one clear
    // line.
    spdlog::debug("grpc: {}", args->message);
  });
}

}  // namespace shoal::api
