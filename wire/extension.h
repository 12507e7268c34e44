// The extension protocol's handshake (BEP 10) and the metadata exchange (BEP 9,
// ut_metadata).
#ifndef SHOAL_WIRE_EXTENSION_H_
#define SHOAL_WIRE_EXTENSION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shoal::wire {

// The payload of extended message 0. A value type.
struct ExtensionHandshake {
  // Extension name -> the message ID the sender wants to receive it under (0:
  // disabled).
  std::map<std::string, uint8_t, std::less<>> m;
  // "v": client name and version.
  std::string client;
  // "p": the sender's listening port.
  std::optional<uint16_t> listen_port;
  // "reqq": how many outstanding requests the sender queues.
  std::optional<int64_t> reqq;
  // "yourip": the receiver's address as the sender sees it (4 or 16 bytes).
  std::string yourip;
  // "metadata_size" (BEP 9): size of the info dict in bytes.
  std::optional<int64_t> metadata_size;
  // "upload_only" (BEP 21).
  bool upload_only = false;

  // The ID to send extension `name` under, or 0 if the peer does not support
  // it.
  uint8_t IdOf(std::string_view name) const {
    auto it = m.find(name);
    return it == m.end() ? 0 : it->second;
  }
};

std::string EncodeExtensionHandshake(const ExtensionHandshake& h);

// INVALID_ARGUMENT for a payload that is not a bencoded dictionary, or with an
// "m" entry that is not a dictionary. Unknown keys and values of the wrong type
// are ignored, as BEP 10 asks.
absl::StatusOr<ExtensionHandshake> ParseExtensionHandshake(
    std::string_view payload);

// BEP 9 sends the info dict in 16 KiB pieces.
inline constexpr uint32_t kMetadataPieceSize = 16 * 1024;

enum class MetadataMessageType : uint8_t {
  kRequest = 0,
  kData = 1,
  kReject = 2
};

// A ut_metadata message. For kData, `data` views the bytes after the
// dictionary.
struct MetadataMessage {
  MetadataMessageType type = MetadataMessageType::kRequest;
  uint32_t piece = 0;
  std::optional<int64_t> total_size;  // kData only
  std::string_view data;
};

std::string EncodeMetadataMessage(const MetadataMessage& m);

// INVALID_ARGUMENT for a malformed message, an unknown type, a piece index that
// is negative or too large, or a data message without total_size or with more
// than 16 KiB of data.
absl::StatusOr<MetadataMessage> ParseMetadataMessage(std::string_view payload);

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_EXTENSION_H_
