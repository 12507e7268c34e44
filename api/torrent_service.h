// The gRPC TorrentService of shoal.v1: public torrents on the node's session.
#ifndef SHOAL_API_TORRENT_SERVICE_H_
#define SHOAL_API_TORRENT_SERVICE_H_

#include "api/auth.h"
#include "node/node.h"
#include "shoal/v1/shoal.grpc.pb.h"

namespace shoal::api {

// Thread-safe: gRPC calls its methods from its own threads.
class TorrentServiceImpl final : public v1::TorrentService::Service {
 public:
  TorrentServiceImpl(node::Node& node, const Authorizer& auth)
      : node_(node), auth_(auth) {}

  grpc::Status Add(grpc::ServerContext* ctx,
                   const v1::AddTorrentRequest* request,
                   v1::TorrentStatus* response) override;
  grpc::Status List(grpc::ServerContext* ctx,
                    const v1::ListTorrentsRequest* request,
                    v1::ListTorrentsResponse* response) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx,
                         const v1::TorrentRequest* request,
                         v1::TorrentStatus* response) override;
  grpc::Status Pause(grpc::ServerContext* ctx,
                     const v1::TorrentRequest* request,
                     v1::TorrentStatus* response) override;
  grpc::Status Resume(grpc::ServerContext* ctx,
                      const v1::TorrentRequest* request,
                      v1::TorrentStatus* response) override;
  grpc::Status Remove(grpc::ServerContext* ctx,
                      const v1::RemoveTorrentRequest* request,
                      v1::RemoveTorrentResponse* response) override;
  grpc::Status Peers(grpc::ServerContext* ctx,
                     const v1::TorrentRequest* request,
                     v1::TorrentPeersResponse* response) override;
  grpc::Status Files(grpc::ServerContext* ctx,
                     const v1::TorrentRequest* request,
                     v1::TorrentFilesResponse* response) override;
  grpc::Status SetFilePriorities(grpc::ServerContext* ctx,
                                 const v1::SetFilePrioritiesRequest* request,
                                 v1::TorrentFilesResponse* response) override;
  grpc::Status SetSuperSeeding(grpc::ServerContext* ctx,
                               const v1::SetSuperSeedingRequest* request,
                               v1::TorrentStatus* response) override;
  grpc::Status SetSequential(grpc::ServerContext* ctx,
                             const v1::SetSequentialRequest* request,
                             v1::TorrentStatus* response) override;
  grpc::Status Recheck(grpc::ServerContext* ctx,
                       const v1::TorrentRequest* request,
                       v1::TorrentStatus* response) override;
  grpc::Status Reannounce(grpc::ServerContext* ctx,
                          const v1::TorrentRequest* request,
                          v1::TorrentStatus* response) override;
  grpc::Status SetRateLimits(grpc::ServerContext* ctx,
                             const v1::RateLimits* request,
                             v1::RateLimits* response) override;
  grpc::Status ReadFile(grpc::ServerContext* ctx,
                        const v1::ReadTorrentFileRequest* request,
                        grpc::ServerWriter<v1::ReadResponse>* writer) override;
  grpc::Status GetRateLimits(grpc::ServerContext* ctx,
                             const v1::TorrentRequest* request,
                             v1::RateLimits* response) override;

 private:
  // Writes the torrent's status into `response`.
  grpc::Status StatusOf(const std::string& id, v1::TorrentStatus* response);

  node::Node& node_;
  const Authorizer& auth_;
};

}  // namespace shoal::api

#endif  // SHOAL_API_TORRENT_SERVICE_H_
