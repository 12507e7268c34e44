#include "tracker/udp_protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace shoal::tracker::udp {
namespace {

void Put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}
void Put64(std::string& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}
uint32_t Get32(std::string_view in, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}
uint64_t Get64(std::string_view in, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

uint32_t EventCode(TrackerEvent e) {
  switch (e) {
    case TrackerEvent::kNone:
      return 0;
    case TrackerEvent::kCompleted:
      return 1;
    case TrackerEvent::kStarted:
      return 2;
    case TrackerEvent::kStopped:
      return 3;
  }
  return 0;
}

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("udp tracker packet: ", std::string(what)));
}

}  // namespace

std::string EncodeConnectRequest(TransactionId tid) {
  std::string out;
  out.reserve(16);
  Put64(out, kProtocolId);
  Put32(out, static_cast<uint32_t>(Action::kConnect));
  Put32(out, tid.value);
  return out;
}

std::string EncodeAnnounceRequest(ConnectionId cid, TransactionId tid,
                                  const AnnounceRequest& r) {
  std::string out;
  out.reserve(98);
  Put64(out, cid.value);
  Put32(out, static_cast<uint32_t>(Action::kAnnounce));
  Put32(out, tid.value);
  out.append(r.info_hash.AsStringView());
  out.append(r.peer_id.AsStringView());
  Put64(out, static_cast<uint64_t>(std::max<int64_t>(r.downloaded, 0)));
  Put64(out, static_cast<uint64_t>(std::max<int64_t>(r.left, 0)));
  Put64(out, static_cast<uint64_t>(std::max<int64_t>(r.uploaded, 0)));
  Put32(out, EventCode(r.event));
  Put32(out, 0);  // IP: the sender's
  Put32(out, r.key);
  Put32(out, static_cast<uint32_t>(r.numwant.value_or(-1)));
  out.push_back(static_cast<char>(r.port >> 8));
  out.push_back(static_cast<char>(r.port & 0xff));
  return out;
}

std::string EncodeScrapeRequest(ConnectionId cid, TransactionId tid,
                                std::span<const AnnounceHash> hashes) {
  std::string out;
  out.reserve(16 + 20 * hashes.size());
  Put64(out, cid.value);
  Put32(out, static_cast<uint32_t>(Action::kScrape));
  Put32(out, tid.value);
  for (const AnnounceHash& h : hashes) out.append(h.AsStringView());
  return out;
}

absl::StatusOr<Response> ParseResponse(std::string_view p, AddressFamily family,
                                       const TrackerLimits& limits) {
  if (p.size() < 8) {
    return Malformed(absl::StrCat(p.size(), " bytes is shorter than a header"));
  }
  const uint32_t action = Get32(p, 0);
  const TransactionId tid{Get32(p, 4)};
  switch (action) {
    case static_cast<uint32_t>(Action::kConnect): {
      if (p.size() < 16) return Malformed("connect response shorter than 16");
      return ConnectResponse{tid, ConnectionId{Get64(p, 8)}};
    }
    case static_cast<uint32_t>(Action::kAnnounce): {
      if (p.size() < 20) return Malformed("announce response shorter than 20");
      AnnounceReply reply;
      reply.transaction = tid;
      // Clamp to a week, as for HTTP.
      reply.response.interval =
          std::chrono::seconds(std::min<uint32_t>(Get32(p, 8), 7 * 24 * 3600));
      reply.response.incomplete = Get32(p, 12);
      reply.response.complete = Get32(p, 16);
      absl::StatusOr<std::vector<PeerEndpoint>> peers =
          ParseCompactPeers(p.substr(20), family, limits.max_peers);
      if (!peers.ok()) {
        return Malformed(std::string(peers.status().message()));
      }
      reply.response.peers = *std::move(peers);
      return reply;
    }
    case static_cast<uint32_t>(Action::kScrape): {
      std::string_view body = p.substr(8);
      if (body.size() % 12 != 0) {
        return Malformed("scrape response is not a whole number of entries");
      }
      ScrapeReply reply;
      reply.transaction = tid;
      size_t n = std::min(body.size() / 12, limits.max_scrape_entries);
      for (size_t i = 0; i < n; ++i) {
        ScrapeStats s;
        s.complete = Get32(body, i * 12);
        s.downloaded = Get32(body, i * 12 + 4);
        s.incomplete = Get32(body, i * 12 + 8);
        reply.stats.push_back(s);
      }
      return reply;
    }
    case static_cast<uint32_t>(Action::kError): {
      ErrorReply reply;
      reply.transaction = tid;
      reply.message = std::string(p.substr(8, 512));
      return reply;
    }
    default:
      return Malformed(absl::StrCat("unknown action ", action));
  }
}

TransactionId TransactionOf(const Response& response) {
  return std::visit([](const auto& r) { return r.transaction; }, response);
}

std::string EncodeConnectResponse(TransactionId tid, ConnectionId cid) {
  std::string out;
  Put32(out, static_cast<uint32_t>(Action::kConnect));
  Put32(out, tid.value);
  Put64(out, cid.value);
  return out;
}

std::string EncodeAnnounceReply(TransactionId tid, uint32_t interval,
                                uint32_t leechers, uint32_t seeders,
                                const std::vector<PeerEndpoint>& peers) {
  std::string out;
  Put32(out, static_cast<uint32_t>(Action::kAnnounce));
  Put32(out, tid.value);
  Put32(out, interval);
  Put32(out, leechers);
  Put32(out, seeders);
  out.append(EncodeCompactPeers(peers));
  return out;
}

std::string EncodeErrorReply(TransactionId tid, std::string_view message) {
  std::string out;
  Put32(out, static_cast<uint32_t>(Action::kError));
  Put32(out, tid.value);
  out.append(message);
  return out;
}

absl::StatusOr<AnnounceRequestPacket> ParseAnnounceRequest(std::string_view p) {
  if (p.size() < 98) return Malformed("announce request shorter than 98");
  if (Get32(p, 8) != static_cast<uint32_t>(Action::kAnnounce)) {
    return Malformed("not an announce request");
  }
  AnnounceRequestPacket out;
  out.connection = ConnectionId{Get64(p, 0)};
  out.transaction = TransactionId{Get32(p, 12)};
  AnnounceRequest& r = out.request;
  r.info_hash = AnnounceHash::FromBytes(p.substr(16, 20));
  r.peer_id = PeerId::FromBytes(p.substr(36, 20));
  r.downloaded = static_cast<int64_t>(Get64(p, 56));
  r.left = static_cast<int64_t>(Get64(p, 64));
  r.uploaded = static_cast<int64_t>(Get64(p, 72));
  switch (Get32(p, 80)) {
    case 1:
      r.event = TrackerEvent::kCompleted;
      break;
    case 2:
      r.event = TrackerEvent::kStarted;
      break;
    case 3:
      r.event = TrackerEvent::kStopped;
      break;
    default:
      r.event = TrackerEvent::kNone;
  }
  r.key = Get32(p, 88);
  int32_t numwant = static_cast<int32_t>(Get32(p, 92));
  if (numwant != -1) r.numwant = numwant;
  r.port = static_cast<uint16_t>((static_cast<uint8_t>(p[96]) << 8) |
                                 static_cast<uint8_t>(p[97]));
  return out;
}

}  // namespace shoal::tracker::udp
