// The cluster key: authenticates every cluster-DHT message, so that a node
// without the key can neither join the cluster's routing tables nor read or
// write its provider records.
//
// A sealed message is an ordinary KRPC dictionary with two extra top-level
// keys: "ct", the sender's Unix time in seconds, and "cm", a 32-byte
// HMAC-SHA-512-256 (libsodium crypto_auth) under the key of the message's
// bencoding without "cm". Bencoded dictionaries are canonical (keys sorted),
// so the receiver gets the MAC's input back by cutting the "cm" entry out of
// the datagram. A message whose "ct" is more than `max_skew` seconds from the
// receiver's clock is refused: a recorded message can be replayed only within
// that window, and replaying one changes nothing (KRPC queries are
// idempotent; a response is taken only for a query in flight).
#ifndef SHOAL_DHT_CLUSTER_AUTH_H_
#define SHOAL_DHT_CLUSTER_AUTH_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "dht/krpc.h"

namespace shoal::dht {

using ClusterKey = std::array<uint8_t, 32>;

// Seconds a sealed message's timestamp may differ from our clock.
inline constexpr int64_t kClusterMaxSkewSeconds = 120;

// 64 hex characters, optionally followed by a newline (the key file's form).
// INVALID_ARGUMENT otherwise.
absl::StatusOr<ClusterKey> ParseClusterKey(std::string_view text);

// `m` encoded with "ct" = unix_seconds and its "cm".
std::string SealKrpc(KrpcMessage m, const ClusterKey& key,
                     int64_t unix_seconds);

// OK if `datagram` carries a valid "cm" for `key` and a "ct" within
// kClusterMaxSkewSeconds of `now_unix_seconds`; UNAUTHENTICATED otherwise.
absl::Status VerifyKrpc(std::string_view datagram, const ClusterKey& key,
                        int64_t now_unix_seconds);

}  // namespace shoal::dht

#endif  // SHOAL_DHT_CLUSTER_AUTH_H_
