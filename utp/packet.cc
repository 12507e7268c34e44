#include "utp/packet.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace shoal::utp {
namespace {

uint16_t Get16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) << 8 |
                               static_cast<uint8_t>(s[at + 1]));
}

uint32_t Get32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(Get16(s, at)) << 16 | Get16(s, at + 2);
}

void Put16(uint16_t v, std::string& out) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void Put32(uint32_t v, std::string& out) {
  Put16(static_cast<uint16_t>(v >> 16), out);
  Put16(static_cast<uint16_t>(v & 0xffff), out);
}

}  // namespace

bool LooksLikeUtp(std::string_view datagram) {
  if (datagram.size() < kHeaderSize) return false;
  const auto first = static_cast<uint8_t>(datagram[0]);
  return (first & 0x0f) == kVersion && (first >> 4) <= 4;
}

absl::StatusOr<Packet> ParsePacket(std::string_view datagram) {
  if (datagram.size() < kHeaderSize)
    return absl::InvalidArgumentError(
        absl::StrCat("utp packet of ", datagram.size(), " bytes"));
  const auto first = static_cast<uint8_t>(datagram[0]);
  if ((first & 0x0f) != kVersion)
    return absl::InvalidArgumentError(
        absl::StrCat("utp version ", first & 0x0f));
  if ((first >> 4) > 4)
    return absl::InvalidArgumentError(
        absl::StrCat("utp packet type ", first >> 4));
  Packet p;
  Header& h = p.header;
  h.type = static_cast<PacketType>(first >> 4);
  h.connection_id = Get16(datagram, 2);
  h.timestamp_us = Get32(datagram, 4);
  h.timestamp_diff_us = Get32(datagram, 8);
  h.wnd_size = Get32(datagram, 12);
  h.seq_nr = Get16(datagram, 16);
  h.ack_nr = Get16(datagram, 18);
  auto extension = static_cast<uint8_t>(datagram[1]);
  size_t at = kHeaderSize;
  while (extension != 0) {
    if (datagram.size() - at < 2)
      return absl::InvalidArgumentError("utp extension header past the end");
    const auto next = static_cast<uint8_t>(datagram[at]);
    const auto len = static_cast<uint8_t>(datagram[at + 1]);
    at += 2;
    if (datagram.size() - at < len)
      return absl::InvalidArgumentError("utp extension past the end");
    // BEP 29 asks for a multiple of 4 bytes; libtorrent sends whatever its
    // reorder buffer spans (any length), so any length is read.
    if (extension == kExtensionSack) p.sack = datagram.substr(at, len);
    at += len;
    extension = next;
  }
  p.payload = datagram.substr(at);
  if (!p.payload.empty() && h.type != PacketType::kData &&
      h.type != PacketType::kFin) {
    return absl::InvalidArgumentError("utp payload on a control packet");
  }
  return p;
}

void AppendPacket(const Header& header, std::string_view sack,
                  std::string_view payload, std::string& out) {
  out.reserve(out.size() + kHeaderSize + (sack.empty() ? 0 : 2 + sack.size()) +
              payload.size());
  out.push_back(
      static_cast<char>(static_cast<uint8_t>(header.type) << 4 | kVersion));
  out.push_back(static_cast<char>(sack.empty() ? 0 : kExtensionSack));
  Put16(header.connection_id, out);
  Put32(header.timestamp_us, out);
  Put32(header.timestamp_diff_us, out);
  Put32(header.wnd_size, out);
  Put16(header.seq_nr, out);
  Put16(header.ack_nr, out);
  if (!sack.empty()) {
    out.push_back(0);
    out.push_back(static_cast<char>(sack.size()));
    out.append(sack);
  }
  out.append(payload);
}

}  // namespace shoal::utp
