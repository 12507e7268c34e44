// absl::Status to grpc::Status: absl::StatusCode mirrors grpc::StatusCode
// value for value.
#ifndef SHOAL_API_GRPC_STATUS_H_
#define SHOAL_API_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace shoal::api {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

}  // namespace shoal::api

#endif  // SHOAL_API_GRPC_STATUS_H_
