// The gRPC services of shoal.v1, translating between protobuf and the node.
#ifndef SHOAL_API_SERVICES_H_
#define SHOAL_API_SERVICES_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "api/auth.h"
#include "node/node.h"
#include "shoal/v1/shoal.grpc.pb.h"

namespace shoal::api {

// Thread-safe: gRPC calls its methods from its own threads.
class ContentServiceImpl final : public v1::ContentService::Service {
 public:
  ContentServiceImpl(node::Node& node, const Authorizer& auth)
      : node_(node), auth_(auth) {}

  grpc::Status Add(grpc::ServerContext* ctx,
                   grpc::ServerReader<v1::AddRequest>* reader,
                   v1::AddResponse* response) override;
  grpc::Status AddFile(grpc::ServerContext* ctx,
                       const v1::AddFileRequest* request,
                       v1::AddResponse* response) override;
  grpc::Status Read(grpc::ServerContext* ctx, const v1::ReadRequest* request,
                    grpc::ServerWriter<v1::ReadResponse>* writer) override;
  grpc::Status Stat(grpc::ServerContext* ctx, const v1::StatRequest* request,
                    v1::StatResponse* response) override;
  grpc::Status List(grpc::ServerContext* ctx, const v1::ListRequest* request,
                    v1::ListResponse* response) override;
  grpc::Status Pin(grpc::ServerContext* ctx, const v1::PinRequest* request,
                   v1::PinResponse* response) override;
  grpc::Status Unpin(grpc::ServerContext* ctx, const v1::UnpinRequest* request,
                     v1::UnpinResponse* response) override;
  grpc::Status Remove(grpc::ServerContext* ctx,
                      const v1::RemoveRequest* request,
                      v1::RemoveResponse* response) override;
  grpc::Status ListTree(
      grpc::ServerContext* ctx, const v1::ListTreeRequest* request,
      grpc::ServerWriter<v1::ListTreeResponse>* writer) override;
  grpc::Status Preheat(
      grpc::ServerContext* ctx, const v1::PreheatRequest* request,
      grpc::ServerWriter<v1::PreheatProgress>* writer) override;
  grpc::Status FindProviders(grpc::ServerContext* ctx,
                             const v1::FindProvidersRequest* request,
                             v1::FindProvidersResponse* response) override;

 private:
  // The state of `id`, fetching its metadata from `peers` (or the cluster's
  // providers) when it is not held here: for a directory that is its dict.
  // NOT_FOUND when nobody provides it within the fetch timeout, or at once
  // when there is nobody to ask. `events` gets the fetch's events, if any.
  // Counts a fetch that found nobody (NodeStats) and publishes fetch_failed;
  // returns NOT_FOUND with `why`.
  absl::Status FetchNotFound(const chunk::ContentId& id, double seconds,
                             std::string why);
  absl::StatusOr<store::ContentState> StatOrFetch(
      const chunk::ContentId& id,
      const google::protobuf::RepeatedPtrField<std::string>& peers,
      std::shared_ptr<node::PieceEvents>* events,
      std::optional<chunk::ContentId> directory = std::nullopt,
      uint64_t offset = 0, uint64_t length = UINT64_MAX);
  absl::Status AddDirectoryStream(grpc::ServerContext* ctx,
                                  grpc::ServerReader<v1::AddRequest>* reader,
                                  const v1::AddHeader& header,
                                  v1::AddResponse* response);
  grpc::Status SetPinned(const char* method, const std::string& id_text,
                         bool pinned, v1::ContentInfo* out);

  node::Node& node_;
  const Authorizer& auth_;
};

// Thread-safe.
class NodeServiceImpl final : public v1::NodeService::Service {
 public:
  NodeServiceImpl(node::Node& node, const Authorizer& auth)
      : node_(node), auth_(auth) {}

  // The API address as bound, once the server has started.
  void set_api_address(std::string address) {
    absl::MutexLock lock(&mu_);
    api_address_ = std::move(address);
  }
  void set_gateway_address(std::string address) {
    absl::MutexLock lock(&mu_);
    gateway_address_ = std::move(address);
  }

  grpc::Status GetInfo(grpc::ServerContext* ctx,
                       const v1::GetInfoRequest* request,
                       v1::NodeInfo* response) override;
  grpc::Status Events(grpc::ServerContext* ctx,
                      const v1::EventsRequest* request,
                      grpc::ServerWriter<v1::Event>* writer) override;
  grpc::Status GetConfig(grpc::ServerContext* ctx,
                         const v1::GetConfigRequest* request,
                         v1::GetConfigResponse* response) override;

 private:
  node::Node& node_;
  const Authorizer& auth_;
  absl::Mutex mu_;
  std::string api_address_ ABSL_GUARDED_BY(mu_);
  std::string gateway_address_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shoal::api

#endif  // SHOAL_API_SERVICES_H_
