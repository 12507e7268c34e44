// KRPC messages (BEP 5), with BEP 32 (nodes6) and BEP 42 (ip) fields.
//
// A KRPC message is a bencoded dictionary: a query ("y":"q") names a method and
// carries arguments, a response ("y":"r") carries return values, an error
// ("y":"e") a code and a message; all carry the querier's transaction ID "t".
// Shoal's cluster DHT adds a top-level key "cn" with the cluster's name, which
// mainline nodes ignore.
//
//   KrpcMessage m = KrpcMessage::Query(KrpcMethod::kPing, "aa", my_id);
//   std::string bytes = EncodeKrpc(m);
//   absl::StatusOr<KrpcMessage> back = DecodeKrpc(bytes);
#ifndef SHOAL_DHT_KRPC_H_
#define SHOAL_DHT_KRPC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dht/node_id.h"

namespace shoal::dht {

enum class KrpcType : uint8_t { kQuery, kResponse, kError };
enum class KrpcMethod : uint8_t {
  kPing,
  kFindNode,
  kGetPeers,
  kAnnouncePeer,
  // Shoal's cluster DHT only: "sh_preheat" asks a node to fetch a content now
  // (and reports how far it is).
  kPreheat,
  kUnknown,  // a query with a method name we do not implement
};

// KRPC error codes (BEP 5).
enum KrpcErrorCode : int {
  kErrorGeneric = 201,
  kErrorServer = 202,
  kErrorProtocol = 203,
  kErrorMethodUnknown = 204,
};

// A node's ID and address: 26 bytes in compact form (38 for IPv6).
struct NodeInfo {
  NodeId id;
  Endpoint endpoint;
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// One KRPC message, decoded or to encode. A value type; which fields are
// meaningful depends on `type` and `method`.
struct KrpcMessage {
  KrpcType type = KrpcType::kQuery;
  std::string transaction_id;
  std::optional<std::string> cluster;  // "cn": set on cluster-DHT messages
  std::optional<Endpoint> ip;          // BEP 42 "ip": the requester, seen by us
  // With a cluster key (dht/cluster_auth.h): "ct", the sender's Unix time,
  // and "cm", the message's MAC.
  std::optional<int64_t> timestamp;
  std::optional<std::string> mac;

  // Queries ("a") and responses ("r").
  NodeId id;  // sender's ID
  // Queries.
  KrpcMethod method = KrpcMethod::kPing;
  std::string method_name;  // as received; set by DecodeKrpc
  NodeId target;            // find_node
  NodeId info_hash;         // get_peers, announce_peer
  uint16_t port = 0;        // announce_peer
  bool implied_port = false;
  // BEP 32 "want" (find_node, get_peers): address families the querier wants
  // nodes of. Both false: unspecified.
  bool want_v4 = false;
  bool want_v6 = false;
  std::string token;    // announce_peer query; get_peers response
  std::string content;  // sh_preheat query: the 32-byte content ID
  // sh_preheat response: "fetching", "complete" or "failed", and progress
  // (pieces, or a directory's files).
  std::string state;
  int64_t done = 0;
  int64_t total = 0;
  // Responses.
  std::vector<NodeInfo> nodes;   // "nodes": IPv4
  std::vector<NodeInfo> nodes6;  // "nodes6": IPv6 (BEP 32)
  std::vector<Endpoint> values;  // "values": peers
  // Errors.
  int error_code = 0;
  std::string error_message;

  static KrpcMessage Query(KrpcMethod method, std::string transaction_id,
                           const NodeId& id);
  static KrpcMessage Response(std::string transaction_id, const NodeId& id);
  static KrpcMessage Error(std::string transaction_id, int code,
                           std::string message);
};

// The wire name of `method` ("ping", ...); "" for kUnknown.
std::string_view KrpcMethodName(KrpcMethod method);

// Returns the bencoding of `message`. Nodes whose address family does not
// match their list (IPv6 in `nodes`) are skipped.
std::string EncodeKrpc(const KrpcMessage& message);

// Decodes an untrusted datagram under tight limits (nesting depth 4, 512
// tokens, strings up to 2 KiB). Returns INVALID_ARGUMENT for malformed
// bencoding, missing or mistyped required keys (t, y, id, target, info_hash,
// port, token), IDs not 20 bytes, compact lists whose length is not a
// multiple of 26 (38), or values that are not 6 (18) bytes. Unknown keys are
// ignored; an unknown query method decodes with method kUnknown.
absl::StatusOr<KrpcMessage> DecodeKrpc(std::string_view datagram);

// Compact node info lists: 26 bytes per IPv4 node, 38 per IPv6 node.
std::string EncodeCompactNodes(const std::vector<NodeInfo>& nodes, bool v6);
absl::StatusOr<std::vector<NodeInfo>> DecodeCompactNodes(std::string_view bytes,
                                                         bool v6);

}  // namespace shoal::dht

#endif  // SHOAL_DHT_KRPC_H_
