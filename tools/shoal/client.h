// What every `shoal` command shares: the connection to shoald and error
// reporting.
#ifndef SHOAL_TOOLS_SHOAL_CLIENT_H_
#define SHOAL_TOOLS_SHOAL_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "shoal/v1/shoal.grpc.pb.h"

namespace shoal::cli {

// How to reach shoald's API.
struct ClientOptions {
  // HOST:PORT, or https://HOST:PORT / tls://HOST:PORT for TLS.
  std::string address;
  // Sent as `authorization: Bearer <token>` when not empty.
  std::string token;
  // PEM files: the CA that signed the node's certificate (implies TLS), and
  // for mTLS this client's certificate and key.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// The API address and stubs for one invocation.
class Client {
 public:
  // INVALID_ARGUMENT / NOT_FOUND for an unreadable certificate file.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  const std::string& address() const { return address_; }
  v1::ContentService::Stub& content() { return *content_; }
  v1::NodeService::Stub& node() { return *node_; }
  v1::TorrentService::Stub& torrents() { return *torrents_; }

  // Turns a failed call into a Status whose message reads well on one line.
  absl::Status Check(const grpc::Status& status) const;

 private:
  Client(std::string address, std::shared_ptr<grpc::Channel> channel);

  std::string address_;
  std::shared_ptr<grpc::Channel>
      channel_;  // shared by the stubs, as gRPC requires
  std::unique_ptr<v1::ContentService::Stub> content_;
  std::unique_ptr<v1::NodeService::Stub> node_;
  std::unique_ptr<v1::TorrentService::Stub> torrents_;
};

// "1.5 GiB".
std::string HumanBytes(uint64_t bytes);
// "45s", "12m05s", "3h07m", "2d04h": a duration to read at a glance.
std::string HumanDuration(int64_t seconds);

// RFC 3339 UTC.
std::string FormatTimestamp(const google::protobuf::Timestamp& t);

// The JSON form of a content (stat --json, ls --json).
nlohmann::json ContentJson(const v1::ContentInfo& c);

// Prints one JSON object on stdout.
void PrintJson(const nlohmann::json& j);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_CLIENT_H_
