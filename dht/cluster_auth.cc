#include "dht/cluster_auth.h"

#include <sodium.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "codec/bdecode.h"

namespace shoal::dht {
namespace {

// The bytes of the "cm" entry in a sealed message: key, then value.
constexpr std::string_view kMacEntryPrefix = "2:cm32:";

absl::Status Unauthenticated(const char* why) {
  return absl::UnauthenticatedError(why);
}

}  // namespace

absl::StatusOr<ClusterKey> ParseClusterKey(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  ClusterKey key;
  if (text.size() != 2 * key.size()) {
    return absl::InvalidArgumentError(
        "a cluster key is 64 hex characters (make one with `shoal keygen`)");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    int v = 0;
    for (char c : text.substr(2 * i, 2)) {
      const char l = absl::ascii_tolower(c);
      int d = l >= '0' && l <= '9'   ? l - '0'
              : l >= 'a' && l <= 'f' ? l - 'a' + 10
                                     : -1;
      if (d < 0) {
        return absl::InvalidArgumentError(
            "a cluster key is 64 hex characters (make one with `shoal "
            "keygen`)");
      }
      v = v * 16 + d;
    }
    key[i] = static_cast<uint8_t>(v);
  }
  return key;
}

std::string SealKrpc(KrpcMessage m, const ClusterKey& key,
                     int64_t unix_seconds) {
  m.timestamp = unix_seconds;
  m.mac.reset();
  const std::string unsealed = EncodeKrpc(m);
  std::string mac(crypto_auth_BYTES, '\0');
  crypto_auth(reinterpret_cast<unsigned char*>(mac.data()),
              reinterpret_cast<const unsigned char*>(unsealed.data()),
              unsealed.size(), key.data());
  m.mac = std::move(mac);
  return EncodeKrpc(m);
}

absl::Status VerifyKrpc(std::string_view datagram, const ClusterKey& key,
                        int64_t now_unix_seconds) {
  codec::BdecodeOptions limits;
  limits.max_depth = 4;
  limits.max_tokens = 512;
  limits.max_string_length = 2048;
  auto doc = codec::Bdecode(datagram, limits);
  if (!doc.ok() || !doc->root().is_dict())
    return Unauthenticated("not a dictionary");
  const codec::BNode root = doc->root();
  const std::optional<std::string_view> mac = root.FindString("cm");
  if (!mac || mac->size() != crypto_auth_BYTES)
    return Unauthenticated("no cluster MAC");
  const codec::BNode ct = root.Find("ct");
  if (!ct || !ct.is_int()) return Unauthenticated("no timestamp");
  if (std::llabs(ct.int_value() - now_unix_seconds) > kClusterMaxSkewSeconds)
    return Unauthenticated("timestamp outside the window");
  // The MAC's value starts right after "2:cm32:"; cut the whole entry out.
  const size_t value = static_cast<size_t>(mac->data() - datagram.data());
  if (value < kMacEntryPrefix.size() ||
      datagram.substr(value - kMacEntryPrefix.size(), kMacEntryPrefix.size()) !=
          kMacEntryPrefix) {
    return Unauthenticated("malformed cluster MAC");
  }
  std::string unsealed;
  unsealed.reserve(datagram.size());
  unsealed.append(datagram.substr(0, value - kMacEntryPrefix.size()));
  unsealed.append(datagram.substr(value + crypto_auth_BYTES));
  if (crypto_auth_verify(
          reinterpret_cast<const unsigned char*>(mac->data()),
          reinterpret_cast<const unsigned char*>(unsealed.data()),
          unsealed.size(), key.data()) != 0) {
    return Unauthenticated("bad cluster MAC");
  }
  return absl::OkStatus();
}

}  // namespace shoal::dht
