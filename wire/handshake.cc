#include "wire/handshake.h"

#include <cstring>

namespace shoal::wire {
namespace {

constexpr std::string_view kProtocol(
    "\x13"
    "BitTorrent protocol",
    20);

}  // namespace

std::string EncodeHandshake(const Handshake& h) {
  std::string out;
  out.reserve(kHandshakeLength);
  out.append(kProtocol);
  out.append(reinterpret_cast<const char*>(h.reserved.data()), 8);
  out.append(reinterpret_cast<const char*>(h.info_hash.data()), 20);
  out.append(reinterpret_cast<const char*>(h.peer_id.data()), 20);
  return out;
}

absl::Status CheckHandshakePrefix(std::string_view bytes) {
  if (bytes.substr(0, kProtocol.size()) != kProtocol) {
    return absl::InvalidArgumentError(
        "peer did not send a BitTorrent handshake");
  }
  return absl::OkStatus();
}

absl::StatusOr<Handshake> ParseHandshake(std::string_view bytes) {
  if (absl::Status s = CheckHandshakePrefix(bytes); !s.ok()) return s;
  Handshake h;
  std::memcpy(h.reserved.data(), bytes.data() + 20, 8);
  std::memcpy(h.info_hash.data(), bytes.data() + 28, 20);
  std::memcpy(h.peer_id.data(), bytes.data() + 48, 20);
  return h;
}

}  // namespace shoal::wire
