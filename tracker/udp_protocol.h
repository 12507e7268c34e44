// The UDP tracker protocol (BEP 15) without I/O: encoding requests and
// decoding responses. All integers are big-endian.
//
//   connect   -> 16 bytes: protocol id 0x41727101980, action 0, transaction
//   announce  -> 98 bytes: connection id, action 1, transaction, hash, ...
//   scrape    -> 16 + 20n bytes
//   responses <- action, transaction, payload (error: action 3 and a message)
//
// The transport is the caller's: it matches transaction IDs, keeps the
// connection ID for 60 seconds and retransmits. IPv4 and IPv6 announce
// responses differ only in peer size, which follows the socket's family.
#ifndef SHOAL_TRACKER_UDP_PROTOCOL_H_
#define SHOAL_TRACKER_UDP_PROTOCOL_H_

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "tracker/announce.h"

namespace shoal::tracker::udp {

inline constexpr uint64_t kProtocolId = 0x41727101980;
// BEP 15: a connection ID may be used for one minute after it was received.
inline constexpr std::chrono::seconds kConnectionIdLifetime{60};
// At most this many hashes fit one scrape request (BEP 15).
inline constexpr size_t kMaxScrapeHashes = 74;

enum class Action : uint32_t {
  kConnect = 0,
  kAnnounce = 1,
  kScrape = 2,
  kError = 3
};

// A connection ID (from a connect response). A value type.
struct ConnectionId {
  uint64_t value = 0;
  friend bool operator==(const ConnectionId&, const ConnectionId&) = default;
};

// A transaction ID chosen by the client. A value type.
struct TransactionId {
  uint32_t value = 0;
  friend bool operator==(const TransactionId&, const TransactionId&) = default;
};

std::string EncodeConnectRequest(TransactionId tid);

// `request.numwant` nullopt is sent as -1 (tracker's default); the IP field is
// 0 (use the sender's address). tracker_id is not part of BEP 15.
std::string EncodeAnnounceRequest(ConnectionId cid, TransactionId tid,
                                  const AnnounceRequest& request);

// REQUIRES: 1 <= hashes.size() <= kMaxScrapeHashes.
std::string EncodeScrapeRequest(ConnectionId cid, TransactionId tid,
                                std::span<const AnnounceHash> hashes);

struct ConnectResponse {
  TransactionId transaction;
  ConnectionId connection;
};

struct AnnounceReply {
  TransactionId transaction;
  // interval, complete (seeders), incomplete (leechers) and peers are set.
  AnnounceResponse response;
};

struct ScrapeReply {
  TransactionId transaction;
  // In request order: (seeders, completed, leechers) per hash.
  std::vector<ScrapeStats> stats;
};

struct ErrorReply {
  TransactionId transaction;
  std::string message;
};

using Response =
    std::variant<ConnectResponse, AnnounceReply, ScrapeReply, ErrorReply>;

// Decodes one datagram from a tracker. `family` is the family of the socket it
// arrived on (it decides the peer size of announce replies). INVALID_ARGUMENT
// if the packet is too short, has an unknown action, or an announce reply's
// peer bytes are not a whole number of entries. At most limits.max_peers
// peers and limits.max_scrape_entries scrape entries are decoded.
absl::StatusOr<Response> ParseResponse(std::string_view packet,
                                       AddressFamily family,
                                       const TrackerLimits& limits);

// The transaction ID of a decoded response.
TransactionId TransactionOf(const Response& response);

// Encoders of responses, for tests and fake trackers.
std::string EncodeConnectResponse(TransactionId tid, ConnectionId cid);
std::string EncodeAnnounceReply(TransactionId tid, uint32_t interval,
                                uint32_t leechers, uint32_t seeders,
                                const std::vector<PeerEndpoint>& peers);
std::string EncodeErrorReply(TransactionId tid, std::string_view message);

// A decoded announce request, for tests and fake trackers.
struct AnnounceRequestPacket {
  ConnectionId connection;
  TransactionId transaction;
  AnnounceRequest request;
};
// Decodes a 98-byte (or longer, BEP 41) announce request.
absl::StatusOr<AnnounceRequestPacket> ParseAnnounceRequest(
    std::string_view packet);

}  // namespace shoal::tracker::udp

#endif  // SHOAL_TRACKER_UDP_PROTOCOL_H_
